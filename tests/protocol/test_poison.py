"""No byte string makes an inbound decoder fail with anything but a protocol error.

Every decoder a terminal or a hub runs on what arrives from the broker is fed
arbitrary bytes, arbitrary JSON-shaped values, and valid messages with one field replaced by a value
at or beyond a documented limit: integers past 2**63 and past Python's 4,300-digit limit, lone
surrogates, deep nesting, huge arrays and strings. Only `ProtocolError` may come out, its text must
render, whatever decodes must encode again to the same bytes, and verifying a signed message that
decodes gives nothing but an AuthError either. (The key panel's frame decoder
has the same property test in test_panel_codec.py; the hub's whole preparing step in
tests/hub/test_poison.py.)
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import (
    AuthError,
    ProtocolError,
    Rejection,
    canonical,
    decode,
    decode_ack,
    decode_batch,
    decode_command,
    decode_config,
    decode_event,
    decode_health,
    decode_status,
    encode_ack,
    encode_command,
    encode_config,
    encode_event,
    encode_health,
    encode_status,
    limits,
    parse,
    rating_from_wire,
    verify_ack,
    verify_batch,
    verify_command,
    verify_config,
    verify_event,
    verify_health,
    verify_status,
)
from protocol.card import decode_card, encode_card, verify_card
from protocol.messages import Ack
from tests.helpers import batch_bytes, chain
from tests.strategies import HUB_KEY, KEY, acks, cards, chains, commands, configs, device_events, healths, statuses

DECODERS: dict[str, Callable[[bytes], Any]] = {
    "canonical": decode,
    "batch": decode_batch,
    "ack": decode_ack,
    "status": decode_status,
    "health": decode_health,
    "event": decode_event,
    "command": decode_command,
    "config": decode_config,
    "card": decode_card,
}
# The `type` each decoder takes, and its version.
TYPES: dict[str, tuple[str, int]] = {
    "canonical": ("canonical", limits.VERSION),
    "batch": ("batch", limits.VERSION),
    "ack": ("ack", limits.CONTROL_VERSION),
    "status": ("status", limits.CONTROL_VERSION),
    "health": ("health", limits.CONTROL_VERSION),
    "event": ("event", limits.CONTROL_VERSION),
    "command": ("cmd", limits.CONTROL_VERSION),
    "config": ("config", limits.CONTROL_VERSION),
    "card": ("card", limits.CONTROL_VERSION),
}
# Signed messages, made with these keys (Ed25519 signatures are deterministic, so a valid message
# that went through untouched encodes again to its own bytes), and checked with their verifier.
ENCODERS: dict[str, Callable[[Any], bytes]] = {
    "ack": lambda ack: encode_ack(ack, HUB_KEY),
    "status": lambda status: encode_status(status, KEY),
    "health": lambda health: encode_health(health, KEY),
    "event": lambda event: encode_event(event, KEY),
    "command": lambda command: encode_command(command, HUB_KEY),
    "config": lambda doc: encode_config(doc, HUB_KEY),
    "card": lambda card: encode_card(card, HUB_KEY),
}
VERIFIERS: dict[str, Callable[[Any], None]] = {
    "ack": lambda ack: verify_ack(ack, HUB_KEY.public),
    "status": lambda status: verify_status(status, KEY.public),
    "health": lambda health: verify_health(health, KEY.public),
    "event": lambda event: verify_event(event, KEY.public),
    "command": lambda command: verify_command(command, HUB_KEY.public),
    "config": lambda doc: verify_config(doc, HUB_KEY.public),
    "card": lambda card: verify_card(card, HUB_KEY.public),
}

# Values at and just beyond every documented limit, and the shapes that broke decoders before.
DEEP = 5_000
EDGES: list[Any] = [
    0,
    -1,
    1,
    limits.MAX_SEQ,
    limits.MAX_SEQ + 1,
    -(limits.MAX_SEQ + 2),
    limits.MAX_MS,
    limits.MAX_MS + 1,
    2**64,
    10**25,
    "",
    "\ud800",
    "a\udfffb",
    "\x00",
    "x" * 100_000,
    [0] * 50_000,
    [],
    {},
    None,
    True,
    False,
    {"v": 1},
    ["\ud800"],
]
HUGE_INT = "9" * 5_000  # over Python's int() limit for a string


def _dump(value: Any) -> bytes:
    """Bytes of any JSON value, lone surrogates included (as \\u escapes)."""
    try:
        return canonical.encode(value)
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True, sort_keys=True, separators=(",", ":")).encode()


def check(name: str, raw: bytes) -> None:
    """Feed `raw` to the decoder `name`: a value that encodes again, or a protocol error."""
    refused: ProtocolError | None = None
    try:
        value = DECODERS[name](raw)
    except ProtocolError as exc:
        refused = exc
    if refused is not None:
        assert str(refused)  # renders, whatever it holds
        rejection = Rejection.from_error(refused)  # and fits in an ack
        encode_ack(Ack(device="d", upto=0, t=0, rejects=(rejection,)), HUB_KEY)
        return
    if name in VERIFIERS:
        kind, version = TYPES[name]
        fields = dataclasses.asdict(value)
        if isinstance(value, Ack):
            fields = value.fields()  # held and rejects as they go on the wire
        wire = {key: item for key, item in fields.items() if item is not None}
        assert canonical.encode({**wire, "v": version, "type": kind}) == raw  # sig included
        forged: AuthError | None = None
        try:
            VERIFIERS[name](value)
        except AuthError as exc:
            forged = exc
        if forged is None:
            assert ENCODERS[name](value) == raw  # authentic: it is what the key signs
        else:
            assert str(forged)
    elif name == "canonical":
        canonical.encode(value)  # whatever decodes can be written again


def _valid_messages() -> st.SearchStrategy[tuple[str, bytes]]:
    batch = st.integers(1, 3).map(lambda n: batch_bytes(KEY, chain(KEY, "dev-1", n)))
    # Records with any mix of optional fields (reasons, subscores, contact, ...): their insides are
    # places to poison too.
    rich = chains(max_size=3).map(lambda records: batch_bytes(KEY, records))
    return st.one_of(
        st.tuples(st.just("batch"), batch),
        st.tuples(st.just("batch"), rich),
        st.tuples(st.just("ack"), acks.map(ENCODERS["ack"])),
        st.tuples(st.just("status"), statuses.map(ENCODERS["status"])),
        st.tuples(st.just("health"), healths.map(ENCODERS["health"])),
        st.tuples(st.just("event"), device_events.map(ENCODERS["event"])),
        st.tuples(st.just("command"), commands.map(ENCODERS["command"])),
        st.tuples(st.just("config"), configs.map(ENCODERS["config"])),
        st.tuples(st.just("card"), cards.map(ENCODERS["card"])),
    )


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**62, max_value=2**70),
    st.sampled_from([limits.MAX_SEQ, limits.MAX_SEQ + 1, limits.MAX_MS + 1, -1]),
    st.text(alphabet=st.characters(blacklist_categories=()), max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)


@pytest.mark.parametrize("name", sorted(DECODERS))
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_give_only_protocol_errors(name: str, raw: bytes) -> None:
    check(name, raw)


@pytest.mark.parametrize("name", sorted(DECODERS))
@given(value=json_values)
def test_arbitrary_json_gives_only_protocol_errors(name: str, value: Any) -> None:
    kind, version = TYPES[name]
    check(name, _dump(value))
    check(name, _dump({"v": version, "type": kind, "x": value}))
    # Every field of a configuration document right but its settings, which hold the value.
    config = {"v": version, "type": kind, "device": "d1", "version": 1, "t": 0, "sig": "ab" * 64}
    check(name, _dump({**config, "settings": value}))
    check(name, _dump({**config, "settings": {"mode": value}}))


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a decoded message where a value sits (keys of objects, first array item)."""
    found = []
    if isinstance(obj, dict):
        for key, item in obj.items():
            found.append((*prefix, key))
            found += _paths(item, (*prefix, key))
    elif isinstance(obj, list) and obj:
        found.append((*prefix, 0))
        found += _paths(obj[0], (*prefix, 0))
    return found


def _replace(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = dict(obj) if isinstance(obj, dict) else list(obj)
    copy[path[0]] = _replace(copy[path[0]], path[1:], value)
    return copy


@given(_valid_messages(), st.data())
def test_one_field_at_or_beyond_a_limit_gives_a_value_or_a_protocol_error(
    message: tuple[str, bytes], data: st.DataObject
) -> None:
    name, raw = message
    obj = json.loads(raw)
    path = data.draw(st.sampled_from(_paths(obj)), label="path")
    value = data.draw(st.sampled_from(EDGES) | json_values, label="value")
    check(name, _dump(_replace(obj, path, value)))
    # The same place with an integer no int() may parse, and nested deeper than any stack.
    marker = "\u2603marker\u2603"
    text = _dump(_replace(obj, path, marker)).decode()
    for literal in (HUGE_INT, "-" + HUGE_INT, "[" * DEEP + "]" * DEEP, '{"a":' * DEEP + "1" + "}" * DEEP):
        check(name, text.replace(json.dumps(marker, ensure_ascii=False), literal).encode())


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_the_known_poisons_are_refused_with_their_reason(name: str) -> None:
    """The inputs that stopped processes before: each is a protocol error with a reason code."""
    ack = encode_ack(Ack(device="t01", upto=1, t=1), HUB_KEY).decode()
    poisons = [
        ack.replace('"upto":1', f'"upto":{HUGE_INT}').encode(),
        ack.replace('"upto":1', f'"upto":{10**30}').encode(),
        ack.replace('"t":1,', '"rejects":[{"detail":"\\ud800","reason":"malformed"}],"t":1,').encode(),
        b'{"v":1,"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"type":"ack","v":' + HUGE_INT.encode() + b"}",
        b'{"v":1,"type":"' + b"x" * (limits.MAX_MESSAGE_BYTES + 1) + b'"}',
    ]
    if name == "canonical":  # well-formed JSON, only not a valid message: three are poison at any level
        poisons = [poisons[0], poisons[2], poisons[3]]
    for raw in poisons:
        with pytest.raises(ProtocolError) as caught:
            DECODERS[name](raw)
        assert caught.value.reason.value in {"malformed", "oversize", "wrong_type", "bad_field", "unknown_version"}


@pytest.mark.parametrize("value", [*EDGES, {"attitude": 2**64}, {"attitude": None}, {"\ud800": 1}, {"x" * 100_000: 1}])
def test_a_bad_subscores_value_is_a_bad_field(value: Any) -> None:
    (record,) = chain(KEY, "dev-1", 1)
    wire = {**record.wire(), "subscores": value}
    check("batch", _dump({"head": {}, "records": [wire], "type": "batch", "v": 1}))
    with pytest.raises(ProtocolError) as caught:
        rating_from_wire(json.loads(_dump(wire)))
    assert caught.value.reason.value == "bad_field"
    assert len(str(caught.value)) < 400  # a long or strange key is clipped in the error, not copied whole


def test_values_at_the_documented_limits_decode() -> None:
    """The largest seq, session and time are valid, not a poison."""
    top = chain(KEY, "dev-1", 1, first=limits.MAX_SEQ, t=limits.MAX_MS)
    batch = decode_batch(batch_bytes(KEY, top))
    verify_batch(batch, KEY.public)
    assert batch.head.last == limits.MAX_SEQ
    top_ack = decode_ack(encode_ack(Ack(device="d", upto=limits.MAX_SEQ, t=limits.MAX_MS), HUB_KEY))
    assert top_ack.upto == limits.MAX_SEQ
    verify_ack(top_ack, HUB_KEY.public)
    record = rating_from_wire(decode(top[0].canonical()))
    assert record.seq == limits.MAX_SEQ


@given(st.text(alphabet=st.characters(blacklist_categories=()), max_size=200))
def test_any_topic_parses_or_is_a_bad_topic(name: str) -> None:
    refused: ProtocolError | None = None
    try:
        parse(name)
    except ProtocolError as exc:
        refused = exc
    if refused is not None:
        assert refused.reason.value == "bad_topic"
        assert len(str(refused)) < 400  # a long topic is clipped in the error, not copied whole
