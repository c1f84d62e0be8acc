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
    ConfigDoc,
    DeviceEvent,
    EventKind,
    Health,
    Kind,
    PanelState,
    Purpose,
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
    decode_config,
    decode_event,
    decode_health,
    decode_status,
    encode,
    encode_ack,
    encode_command,
    encode_config,
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
    signed,
    spec,
    terminal_session,
    topic,
    verify_ack,
    verify_batch,
    verify_command,
    verify_config,
    verify_event,
    verify_health,
    verify_status,
)
from protocol.card import CARD_FIELDS, Card, decode_card, encode_card, verify_card
from protocol.config import REMOTE_SETTINGS, SETTING_NAME
from protocol.fields import SHAPES, Field, matching
from protocol.keys import HEAD_CONTEXT, RECORD_CONTEXT
from protocol.messages import STATUS_FIELDS
from protocol.session import HUB_ATTEMPT_BITS, TERMINAL_ATTEMPT_BITS
from protocol.topics import HUB_STATUS, PREFIX, QOS, RETAINED, ROUTES, Channel

SPEC_PATH = Path(__file__).parents[2] / "protocol" / "README.md"
SPEC = SPEC_PATH.read_text(encoding="utf-8")
EXAMPLES = [
    line for block in re.findall(r"^```json\n(.*?)^```", SPEC, re.S | re.M) for line in block.splitlines() if line
]

# The examples are signed with these keys (Ed25519 signatures are deterministic, so they can be made
# again here): records, batch heads and a terminal's messages with the private key whose 32 bytes
# are 00 01 02 ... 1f; the hub's messages with the one whose bytes are 20 21 22 ... 3f.
TEST_KEY = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
HUB_TEST_KEY = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64))))
HUB_CLIENT = "pingjia-hub"  # the hub worker of the examples: its status is the hub's


def _type(line: str) -> str:
    """A message's `type`; a record, which has none, is "record"."""
    obj = decode(line.encode())
    assert type(obj) is dict, line
    return str(obj.get("type", "record"))


def _reseal(batch: Batch) -> bytes:
    return seal_batch(TEST_KEY, batch.device, batch.head.first, batch.bodies, batch.head.last_hash)


def _is_hub(status: Status) -> bool:
    return status.device == HUB_CLIENT


DECODERS: dict[str, Callable[[bytes], Any]] = {
    "record": lambda raw: rating_from_wire(decode(raw)),
    "batch": decode_batch,
    "ack": decode_ack,
    "status": decode_status,
    "cmd": decode_command,
    "config": decode_config,
    "card": decode_card,
    "health": decode_health,
    "event": decode_event,
}
ENCODERS: dict[str, Callable[[Any], bytes]] = {
    "record": Rating.canonical,
    "batch": _reseal,  # a fresh head signature with the test key: the same bytes, signature included
    "ack": lambda ack: encode_ack(ack, HUB_TEST_KEY),
    "status": lambda s: encode_status(s, HUB_TEST_KEY if _is_hub(s) else TEST_KEY, hub=_is_hub(s)),
    "cmd": lambda command: encode_command(command, HUB_TEST_KEY),
    "config": lambda doc: encode_config(doc, HUB_TEST_KEY),
    "card": lambda card: encode_card(card, HUB_TEST_KEY),
    "health": lambda h: encode_health(h, TEST_KEY),
    "event": lambda event: encode_event(event, TEST_KEY),
}
VERIFIERS: dict[str, Callable[[Any], None]] = {
    "ack": lambda ack: verify_ack(ack, HUB_TEST_KEY.public),
    "status": lambda s: verify_status(s, (HUB_TEST_KEY if _is_hub(s) else TEST_KEY).public, hub=_is_hub(s)),
    "cmd": lambda command: verify_command(command, HUB_TEST_KEY.public),
    "config": lambda doc: verify_config(doc, HUB_TEST_KEY.public),
    "card": lambda card: verify_card(card, HUB_TEST_KEY.public),
    "health": lambda h: verify_health(h, TEST_KEY.public),
    "event": lambda event: verify_event(event, TEST_KEY.public),
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
HUB_KEY_PREFIX = HUB_TEST_KEY.public.hex[:16]
STARTED = Health(  # right after a start: no panel yet, nobody logged in, no ack yet; paired, configured
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
    refused=0,
    config_version=7,
    hub_key=HUB_KEY_PREFIX,
)
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
        Ack(device="hall1-w03", upto=2, t=1763800009000, held=(5, 7)),  # 3 and 4 missing: gap repair
    ],
    "status": [
        Status(device="hall1-w03", state=StatusState.ONLINE, session=terminal_session(1, 1)),
        Status(device="hall1-w03", state=StatusState.OFFLINE, session=terminal_session(1, 1)),
        Status(device=HUB_CLIENT, state=StatusState.ONLINE, session=hub_session(HUB_STARTED_MS, 1)),
    ],
    "cmd": [
        Command(device="hall1-w03", cmd=CommandName.LOGIN, staff="E1024", id="pc-7781", n=41, t=1763800000000),
        Command(device="hall1-w03", cmd=CommandName.INVITE, ticket="A0123", n=42, t=1763800002000),
        Command(device="hall1-w03", cmd=CommandName.LOGOUT, n=43, t=1763800090000),
    ],
    "config": [
        ConfigDoc(
            device="hall1-w03",
            version=7,
            t=1763799000000,
            settings={
                "invite_window_s": "60",
                "language": "zh-CN",
                "opening_hours": "08:30-12:00,13:30-17:00",
                "reason_labels": "等候时间长,服务态度差,业务不熟练,流程繁琐,其他",
            },
        )
    ],
    "card": [
        Card(
            device="hall1-w03",
            version=12,
            t=1763800000100,
            staff="E1024",
            name="王芳",
            department="综合受理",
            counter="3号窗口",
            photo="iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNoAAAAggCBd81ytgAAAABJRU5ErkJggg==",
        ),
        Card(device="hall1-w03", version=13, t=1763800090100, staff="E2048", name="李强"),
    ],
    "health": [
        STARTED,
        dataclasses.replace(  # an hour and a half later: every field
            STARTED,
            t=1763800063500,
            mono=5186833,
            uptime_s=5185,
            state="idle",
            panel=PanelState.CONNECTED,
            outbox_depth=1,
            staff="E1024",
            panel_fw="panel-1.0",
            oldest_unacked_s=2,
            hub_offset_ms=37,
            last_error="refused command: replayed: command counter 41 is not above the last taken, 41",
            refused=1,
            refused_last="command: replayed",
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


def _unsigned(value: Any) -> Any:
    """A decoded message without its signature, to compare with a documented value (sig "")."""
    return dataclasses.replace(value, sig="") if hasattr(value, "sig") and not isinstance(value, Rating) else value


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
    else:
        VERIFIERS[kind](value)


@pytest.mark.parametrize("kind", sorted(DOCUMENTED))
def test_the_examples_hold_the_documented_values(kind: str) -> None:
    found = [_unsigned(value) for value in BY_TYPE.get(kind, [])]
    if kind == "batch":
        found = [batch.records for batch in BY_TYPE.get(kind, [])]
    for value in DOCUMENTED[kind]:
        assert value in found, f"no {kind} example holds {value}"


def test_every_message_type_has_an_example_and_one_health_shows_every_field() -> None:
    assert set(BY_TYPE) == set(DECODERS)
    shown = [set(decode(ENCODERS["health"](h))) for h in BY_TYPE["health"]]
    assert set(health.HEALTH_FIELDS) in shown


def test_an_ack_example_shows_a_gap_and_a_hub_status_example_is_the_hubs() -> None:
    assert any(ack.held is not None for ack in BY_TYPE["ack"])
    assert any(ack.rejects for ack in BY_TYPE["ack"])
    hub = [status for status in BY_TYPE["status"] if _is_hub(status)]
    assert hub
    for status in hub:  # signed for the hub, not as a terminal's status, even with the hub's key
        with pytest.raises(errors.AuthError):
            verify_status(status, HUB_TEST_KEY.public)


def test_the_text_around_the_examples_agrees_with_them() -> None:
    assert f"public key\n`{TEST_KEY.public.hex}`" in SPEC
    assert f"| hub | 20 21 22 … 3f | `{HUB_TEST_KEY.public.hex}` |" in SPEC
    assert f"| terminal (and the records above) | 00 01 02 … 1f | `{TEST_KEY.public.hex}` |" in SPEC
    assert "The topic layout stays `pingjia/v1/...` in protocol v2" in SPEC
    assert PREFIX == "pingjia/v1"
    assert "# pingjia wire protocol v2" in SPEC
    assert limits.CONTROL_VERSION == 2
    assert limits.VERSION == 1
    assert f"Its chain hash is `{leaf_hash(FIRST.canonical())}`" in SPEC
    assert f"`boots << {TERMINAL_ATTEMPT_BITS} | attempt`" in SPEC
    assert f"`started_ms << {HUB_ATTEMPT_BITS} | attempt`" in SPEC
    assert f"The example above is `1 << {TERMINAL_ATTEMPT_BITS} | 1`" in SPEC
    assert terminal_session(1, 1) == 1 << TERMINAL_ATTEMPT_BITS | 1
    started = datetime.fromtimestamp(hub_started_ms(hub_session(HUB_STARTED_MS, 1)) / 1000, UTC)
    assert f"That worker started at {HUB_STARTED_MS} ({started:%Y-%m-%d %H:%M:%S} UTC)" in SPEC
    last_year = datetime.fromtimestamp(hub_started_ms(limits.MAX_SESSION) / 1000, UTC).year
    assert f"below 2^63 until the year {last_year}" in SPEC


# -- signatures and test vectors ------------------------------------------------------------------

VECTOR = re.compile(
    r"```text\ncontext     ([0-9a-f]+)\nbody        (.+)\nsigned      ([0-9a-f]+)\nsig         ([0-9a-f]{128})\n```"
    r"\n\n```json\n(.+)\n```"
)


def test_the_vectors_say_what_each_signature_is_over() -> None:
    """What another implementation would check, from the text alone: the context is a purpose's,
    the signed bytes are context || body, the signature verifies over them, and the message is the
    body with `sig` added."""
    vectors = VECTOR.findall(SPEC)
    contexts = {signed.context(purpose).hex(): purpose for purpose in Purpose}
    purposes = []
    for context, body, signed_hex, sig, message in vectors:
        purposes.append(contexts[context])
        assert signed_hex == context + body.encode().hex()
        assert any(
            key.public.verify(bytes.fromhex(sig), b"", bytes.fromhex(signed_hex)) for key in (TEST_KEY, HUB_TEST_KEY)
        )
        wire = decode(message.encode())
        assert wire["sig"] == sig
        del wire["sig"]
        assert encode(wire) == body.encode()
    assert {Purpose.ACK, Purpose.CMD, Purpose.CONFIG, Purpose.CARD, Purpose.HUB_STATUS} <= set(purposes)


def test_every_purpose_has_its_row_and_its_own_context() -> None:
    assert set(spec.PURPOSES) == set(Purpose)
    for purpose in Purpose:
        context = signed.context(purpose)
        assert f"| `{purpose.value}` | `{context[:-1].decode()}` + NUL |" in SPEC
    for context in (RECORD_CONTEXT, HEAD_CONTEXT):
        assert f"`{context[:-1].decode()}` + NUL" in SPEC


def test_the_spec_has_the_sections_of_v2() -> None:
    for heading in (
        "## Signatures",
        "### Replays",
        "## Sealed contacts",
        "## Configuration documents",
        "## Clerks' cards",
        "## Test vectors",
        "## Upgrading from v1",
    ):
        assert f"\n{heading}\n" in SPEC, heading
    replays = SPEC[SPEC.index("### Replays") : SPEC.index("## Rating record")]
    for message in ("ack", "cmd", "config", "card", "hub status", "terminal status", "health", "event"):
        assert f"\n| {message} |" in replays, message
    for reason in (Reason.REPLAYED, Reason.ROLLBACK, Reason.STALE):
        assert f"`{reason.value}`" in replays
    assert "`CMD_MAX_AGE_MS`" in SPEC


def test_the_settings_a_document_may_carry_are_the_codes() -> None:
    assert all(SETTING_NAME.fullmatch(name) for name in REMOTE_SETTINGS)
    assert len(set(REMOTE_SETTINGS)) == len(REMOTE_SETTINGS)
    assert spec.remote_settings() in SPEC
    assert all(f"`{name}`" in spec.remote_settings() for name in REMOTE_SETTINGS)


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
    # Every number the module holds but the two versions, which bound nothing.
    constants = {
        name: value
        for name in limits.__all__
        if type(value := getattr(limits, name)) is int and name not in ("VERSION", "CONTROL_VERSION")
    }
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
    assert {Channel.STATUS, Channel.HEALTH, Channel.CONFIG, Channel.CARD} == RETAINED


@pytest.mark.parametrize(
    ("fields", "cls"),
    [
        (STATUS_FIELDS, Status),
        (commands.COMMAND_FIELDS, Command),
        (health.HEALTH_FIELDS, Health),
        (health.EVENT_FIELDS, DeviceEvent),
        (CARD_FIELDS, Card),
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
