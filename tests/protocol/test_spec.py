"""protocol/README.md is what third parties build from: its examples are test vectors, and its
generated tables are what the code holds.

Examples are found by their message type, not by their place, so that adding one breaks nothing;
each documented value below must be among the examples of its type.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol import (
    GENESIS,
    Ack,
    Batch,
    Command,
    CommandName,
    DeviceEvent,
    EventKind,
    Health,
    Kind,
    PanelState,
    Rating,
    Reason,
    Rejection,
    SigningKey,
    Status,
    StatusState,
    commands,
    decode,
    decode_ack,
    decode_batch,
    decode_command,
    decode_event,
    decode_health,
    decode_status,
    encode_ack,
    encode_command,
    encode_event,
    encode_health,
    encode_status,
    errors,
    health,
    hub_session,
    hub_started_ms,
    hub_status_topic,
    leaf_hash,
    limits,
    rating_from_wire,
    seal_batch,
    spec,
    terminal_session,
    topic,
    verify_batch,
)
from protocol.fields import SHAPES, Field, matching
from protocol.messages import STATUS_FIELDS
from protocol.session import HUB_ATTEMPT_BITS, TERMINAL_ATTEMPT_BITS
from protocol.topics import HUB_STATUS, QOS, RETAINED, ROUTES, Channel

SPEC_PATH = Path(__file__).parents[2] / "protocol" / "README.md"
SPEC = SPEC_PATH.read_text(encoding="utf-8")
EXAMPLES = [
    line for block in re.findall(r"^```json\n(.*?)^```", SPEC, re.S | re.M) for line in block.splitlines() if line
]

# The examples are signed with this key (Ed25519 signatures are deterministic, so they can be made
# again here): the private key whose 32 bytes are 00 01 02 ... 1f.
TEST_KEY = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))


def _type(line: str) -> str:
    """A message's `type`; a record, which has none, is "record"."""
    obj = decode(line.encode())
    assert type(obj) is dict, line
    return str(obj.get("type", "record"))


def _reseal(batch: Batch) -> bytes:
    return seal_batch(TEST_KEY, batch.device, batch.head.first, batch.bodies, batch.head.last_hash)


DECODERS: dict[str, Callable[[bytes], Any]] = {
    "record": lambda raw: rating_from_wire(decode(raw)),
    "batch": decode_batch,
    "ack": decode_ack,
    "status": decode_status,
    "cmd": decode_command,
    "health": decode_health,
    "event": decode_event,
}
ENCODERS: dict[str, Callable[[Any], bytes]] = {
    "record": Rating.canonical,
    "batch": _reseal,  # a fresh head signature with the test key: the same bytes, signature included
    "ack": encode_ack,
    "status": encode_status,
    "cmd": encode_command,
    "health": encode_health,
    "event": encode_event,
}
BY_TYPE: dict[str, list[Any]] = {}
for _line in EXAMPLES:
    BY_TYPE.setdefault(_type(_line), []).append(DECODERS[_type(_line)](_line.encode()))

# What the text says the examples hold.
BOOT = "3f9a1c2e-5b7d-4e11-9c0a-7d2e8f4b6a10"
FIRST = Rating(
    device="hall1-w03",
    seq=1,
    kind=Kind.PRESS,
    t=1763800000123,
    boot=BOOT,
    mono=5123456,
    fw="0.1.0",
    prev=GENESIS,
    staff="E1024",
    score=5,
).signed(TEST_KEY)
AMEND = Rating(  # the customer changed 5 to 4 within the amend window
    device="hall1-w03",
    seq=2,
    kind=Kind.AMEND,
    t=1763800003456,
    boot=BOOT,
    mono=5126789,
    fw="0.1.0",
    prev=FIRST.hash(),
    staff="E1024",
    score=4,
    amends=1,
).signed(TEST_KEY)
HUB_STARTED_MS = 1763799990000
DOCUMENTED: dict[str, list[Any]] = {
    "record": [FIRST],
    "batch": [(FIRST, AMEND)],  # compared with the batch's records
    "ack": [
        Ack(device="hall1-w03", upto=2, t=1763800003500),
        Ack(
            device="hall1-w03",
            upto=2,
            t=1763800003500,
            rejects=(
                Rejection(
                    reason=Reason.BROKEN_CHAIN, detail="prev of seq 3 is not the hash of the stored seq 2", seq=3
                ),
            ),
        ),
    ],
    "status": [
        Status(device="hall1-w03", state=StatusState.ONLINE, session=terminal_session(1, 1)),
        Status(device="hall1-w03", state=StatusState.OFFLINE, session=terminal_session(1, 1)),
        Status(device="pingjia-hub", state=StatusState.ONLINE, session=hub_session(HUB_STARTED_MS, 1)),
    ],
    "cmd": [
        Command(device="hall1-w03", cmd=CommandName.LOGIN, staff="E1024", id="pc-7781"),
        Command(device="hall1-w03", cmd=CommandName.INVITE, ticket="A0123"),
        Command(device="hall1-w03", cmd=CommandName.LOGOUT),
    ],
    "health": [
        Health(  # right after a start: no panel yet, nobody logged in, no ack yet
            device="hall1-w03",
            t=1763794880123,
            boot=BOOT,
            mono=3456,
            fw="0.1.0",
            uptime_s=2,
            state="closed",
            panel=PanelState.DISCONNECTED,
            outbox_depth=0,
            free_disk_bytes=12884901888,
            misuse_alarms=0,
            rejected=0,
            session=terminal_session(1, 1),
            panel_dropped=0,
            unreadable=0,
        ),
        Health(  # every field
            device="hall1-w03",
            t=1763800063500,
            boot=BOOT,
            mono=5186833,
            fw="0.1.0",
            uptime_s=5185,
            state="idle",
            panel=PanelState.CONNECTED,
            outbox_depth=1,
            free_disk_bytes=12884901888,
            misuse_alarms=0,
            rejected=0,
            session=terminal_session(1, 1),
            staff="E1024",
            panel_fw="panel-1.0",
            oldest_unacked_s=2,
            hub_offset_ms=37,
            last_error="unreadable command on pingjia/v1/hall1-w03/cmd (9 bytes): malformed: not JSON: "
            "Expecting value at char 0",
            panel_dropped=0,
            unreadable=1,
        ),
    ],
    "event": [
        DeviceEvent(
            device="hall1-w03", t=1763800066667, boot=BOOT, mono=5190000, kind=EventKind.PANEL_DOWN, detail="unplugged"
        ),
        DeviceEvent(
            device="hall1-w03",
            t=1763800070000,
            boot=BOOT,
            mono=5193333,
            kind=EventKind.MISUSE_BURST,
            detail="6 presses within 10 s",
        ),
        DeviceEvent(device="hall1-w03", t=1763800080000, boot=BOOT, mono=5203333, kind=EventKind.RECOVERED),
    ],
}


# -- the examples ----------------------------------------------------------------------------------


@pytest.mark.parametrize("line", EXAMPLES, ids=[f"{_type(line)}-{n}" for n, line in enumerate(EXAMPLES)])
def test_every_example_decodes_verifies_and_encodes_to_the_same_bytes(line: str) -> None:
    kind = _type(line)
    value = DECODERS[kind](line.encode())
    assert ENCODERS[kind](value) == line.encode()
    if kind == "record":
        assert value.verify(TEST_KEY.public)
        assert value.signed(TEST_KEY) == value
    elif kind == "batch":
        verify_batch(value, TEST_KEY.public)
        assert all(record.verify(TEST_KEY.public) for record in value.records)


@pytest.mark.parametrize("kind", sorted(DOCUMENTED))
def test_the_examples_hold_the_documented_values(kind: str) -> None:
    found = BY_TYPE.get(kind, [])
    if kind == "batch":
        found = [batch.records for batch in found]
    for value in DOCUMENTED[kind]:
        assert value in found, f"no {kind} example holds {value}"


def test_every_message_type_has_an_example_and_one_health_shows_every_field() -> None:
    assert set(BY_TYPE) == set(DECODERS)
    shown = [set(decode(encode_health(h))) for h in BY_TYPE["health"]]
    assert set(health.HEALTH_FIELDS) in shown


def test_the_text_around_the_examples_agrees_with_them() -> None:
    assert f"public key\n`{TEST_KEY.public.hex}`" in SPEC
    assert f"Its chain hash is `{leaf_hash(FIRST.canonical())}`" in SPEC
    assert f"`boots << {TERMINAL_ATTEMPT_BITS} | attempt`" in SPEC
    assert f"`started_ms << {HUB_ATTEMPT_BITS} | attempt`" in SPEC
    assert f"The example above is `1 << {TERMINAL_ATTEMPT_BITS} | 1`" in SPEC
    assert terminal_session(1, 1) == 1 << TERMINAL_ATTEMPT_BITS | 1
    started = datetime.fromtimestamp(hub_started_ms(hub_session(HUB_STARTED_MS, 1)) / 1000, UTC)
    assert f"That worker started at {HUB_STARTED_MS} ({started:%Y-%m-%d %H:%M:%S} UTC)" in SPEC
    last_year = datetime.fromtimestamp(hub_started_ms(limits.MAX_SESSION) / 1000, UTC).year
    assert f"below 2^63 until the year {last_year}" in SPEC


# -- the generated blocks --------------------------------------------------------------------------


def test_the_generated_blocks_are_current() -> None:
    assert spec.refresh(SPEC) == SPEC, "protocol/README.md is stale: run python -m protocol.spec"


def test_refresh_rewrites_a_stale_block_and_nothing_else() -> None:
    fresh = spec.refresh(SPEC)
    stale = fresh.replace("| `oversize` |", "| `too_big` |")
    assert stale != fresh
    assert spec.refresh(stale) == fresh
    assert spec.refresh("before\n" + fresh + "after\n") == "before\n" + fresh + "after\n"


def test_refresh_refuses_a_spec_that_lost_a_block() -> None:
    with pytest.raises(ValueError, match="generated:limits"):
        spec.refresh(SPEC.replace("<!-- END generated:limits -->", ""))


def test_the_command_checks_and_refreshes_a_file(tmp_path: Path) -> None:
    fresh = spec.refresh(SPEC)
    path = tmp_path / "README.md"
    path.write_text(fresh.replace("| `oversize` |", "| `too_big` |"), encoding="utf-8")
    assert spec.main([str(path), "--check"]) == 1
    assert spec.main([str(path)]) == 0
    assert path.read_text(encoding="utf-8") == fresh
    assert spec.main([str(path), "--check"]) == 0


def test_every_reason_event_and_command_has_its_meaning() -> None:
    assert set(errors.MEANING) == set(Reason)
    assert set(health.MEANING) == set(EventKind)
    assert set(commands.MEANING) == set(CommandName)
    assert all(text and "|" not in text for text in (*errors.MEANING.values(), *health.MEANING.values()))
    assert Reason.OVERSIZE.meaning == f"message over {limits.MAX_MESSAGE_BYTES} bytes"


def test_every_limit_is_described_once_with_its_value() -> None:
    constants = {name: getattr(limits, name) for name in dir(limits) if name.startswith("MAX_")}
    described = {limit.name: limit.value for limit in limits.LIMITS}
    assert len(described) == len(limits.LIMITS)
    assert described == constants


def test_every_topic_has_its_route_and_the_qos_table_is_drawn_from_them() -> None:
    assert set(ROUTES) == set(Channel)
    for channel, route in ROUTES.items():
        assert route.topic == topic("DEVICE", channel).replace("/DEVICE/", "/<device>/")
    assert HUB_STATUS.topic == hub_status_topic("CLIENT").replace("/CLIENT/", "/<client-id>/")
    assert {channel: route.qos for channel, route in ROUTES.items()} == QOS
    assert QOS[Channel.ACK] == 0
    assert {Channel.STATUS, Channel.HEALTH} == RETAINED


@pytest.mark.parametrize(
    ("fields", "cls"),
    [
        (STATUS_FIELDS, Status),
        (commands.COMMAND_FIELDS, Command),
        (health.HEALTH_FIELDS, Health),
        (health.EVENT_FIELDS, DeviceEvent),
    ],
)
def test_each_field_table_declares_exactly_the_fields_of_its_value(fields: dict[str, Field], cls: type) -> None:
    assert set(fields) == {"v", "type"} | {field.name for field in dataclasses.fields(cls)}
    assert all(field.doc for field in fields.values())


def test_a_pattern_field_needs_its_rule_in_words() -> None:
    assert all(SHAPES.values())
    with pytest.raises(ValueError, match="no words"):
        matching(re.compile("[a-z]+"))


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0, "0"),
        (524288, "524288"),
        (2**63 - 1, "2^63−1"),
        (2**53 - 1, "2^53−1"),
        (2**40, "2^40"),
        (-(2**53 - 1), "−(2^53−1)"),
        (-5, "−5"),
    ],
)
def test_numbers_are_written_as_the_spec_writes_them(value: int, shown: str) -> None:
    assert spec.number(value) == shown
