"""Protocol v2 signs every control message (protocol/signed.py): one rule, one purpose per message type.

Every signed type round-trips and verifies with its signer's key and no other; a signature made for
one purpose never verifies for another; any changed field, added or dropped one breaks it; the
unsigned v1 forms are refused as `unknown_version`, a missing or malformed `sig` as `bad_field`. The
configuration document's settings and the sealed contact have their own rules, here too.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from protocol import (
    Ack,
    AuthError,
    Command,
    CommandName,
    ConfigDoc,
    DecodeError,
    DeviceEvent,
    EventKind,
    Health,
    PanelState,
    ProtocolError,
    Purpose,
    Reason,
    Rejection,
    SealKey,
    SigningKey,
    Status,
    StatusState,
    canonical,
    decode_ack,
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
    limits,
    open_sealed,
    seal,
    signed,
    verify_ack,
    verify_command,
    verify_config,
    verify_event,
    verify_health,
    verify_status,
)
from protocol.card import Card, decode_card, encode_card, verify_card
from protocol.config import SETTING_NAME
from protocol.keys import VerifyKey
from tests.strategies import HUB_KEY, KEY, acks, cards, commands, configs, device_events, healths, statuses

OTHER_KEY = SigningKey.generate()


@dataclasses.dataclass(frozen=True)
class Signed:
    """One signed message type: how to make one, sign it, read it and check it, and with whose key."""

    kind: str  # the wire `type`
    purpose: Purpose
    values: st.SearchStrategy[Any]
    encode: Callable[[Any, SigningKey], bytes]
    decode: Callable[[bytes], Any]
    verify: Callable[[Any, VerifyKey], None]
    key: SigningKey  # the signer: the hub, or the terminal

    def wire(self, value: Any) -> dict[str, Any]:
        """The fields as they go on the wire (None: absent), `sig` included."""
        fields: dict[str, Any] = value.fields() if hasattr(value, "fields") else dataclasses.asdict(value)
        return {name: item for name, item in fields.items() if item is not None}

    def raw(self, fields: dict[str, Any]) -> bytes:
        """Canonical wire bytes of `fields` as they are: no signing, the `sig` they carry."""
        return canonical.encode({**fields, "v": limits.CONTROL_VERSION, "type": self.kind})


SIGNED: dict[str, Signed] = {
    "ack": Signed("ack", Purpose.ACK, acks, encode_ack, decode_ack, verify_ack, HUB_KEY),
    "cmd": Signed("cmd", Purpose.CMD, commands, encode_command, decode_command, verify_command, HUB_KEY),
    "config": Signed("config", Purpose.CONFIG, configs, encode_config, decode_config, verify_config, HUB_KEY),
    "card": Signed("card", Purpose.CARD, cards, encode_card, decode_card, verify_card, HUB_KEY),
    "status": Signed("status", Purpose.STATUS, statuses, encode_status, decode_status, verify_status, KEY),
    "hub-status": Signed(
        "status",
        Purpose.HUB_STATUS,
        statuses,
        lambda status, key: encode_status(status, key, hub=True),
        decode_status,
        lambda status, key: verify_status(status, key, hub=True),
        HUB_KEY,
    ),
    "health": Signed("health", Purpose.HEALTH, healths, encode_health, decode_health, verify_health, KEY),
    "event": Signed("event", Purpose.EVENT, device_events, encode_event, decode_event, verify_event, KEY),
}
NAMES = sorted(SIGNED)


def refusal(kind: Signed, raw: bytes, key: VerifyKey) -> ProtocolError:
    """The error that refuses `raw` as a message of `kind` signed with `key`; AssertionError if it is taken."""
    try:
        kind.verify(kind.decode(raw), key)
    except ProtocolError as exc:
        return exc
    raise AssertionError(f"taken: {raw!r}")


def test_every_purpose_has_its_own_context() -> None:
    contexts = {signed.context(purpose) for purpose in Purpose}
    assert len(contexts) == len(Purpose)
    assert all(c.startswith(b"pingjia/v2/") and c.endswith(b"\x00") and c.count(b"\x00") == 1 for c in contexts)
    assert signed.context(Purpose.HUB_STATUS) == b"pingjia/v2/hub-status\x00"


# -- round trips -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_every_signed_message_round_trips_and_verifies_with_its_signers_key_only(
    name: str, data: st.DataObject
) -> None:
    kind = SIGNED[name]
    value = data.draw(kind.values)
    raw = kind.encode(value, kind.key)
    decoded = kind.decode(raw)
    assert decoded == dataclasses.replace(value, sig=decoded.sig)
    kind.verify(decoded, kind.key.public)
    assert kind.encode(decoded, kind.key) == raw
    assert kind.raw(kind.wire(decoded)) == raw
    # The signature is over the context and the canonical message without `sig`, nothing else.
    body = signed.body(kind.kind, kind.wire(decoded))
    assert kind.key.public.verify(bytes.fromhex(decoded.sig), signed.context(kind.purpose), body)
    assert refusal(kind, raw, OTHER_KEY.public).reason is Reason.BAD_SIGNATURE


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_an_unsigned_message_does_not_verify(name: str, data: st.DataObject) -> None:
    """A value that never went through `encode` (sig "") is refused, not taken as signed."""
    kind = SIGNED[name]
    with pytest.raises(AuthError) as caught:
        kind.verify(data.draw(kind.values), kind.key.public)
    assert caught.value.reason is Reason.BAD_SIGNATURE


# -- purposes --------------------------------------------------------------------------------------


@given(
    st.sampled_from(list(Purpose)),
    st.sampled_from(list(Purpose)),
    st.sampled_from(sorted({kind.kind for kind in SIGNED.values()})),
    st.dictionaries(st.sampled_from(["device", "t", "n", "upto", "session"]), st.integers(0, 10**6)),
)
def test_a_signature_made_for_one_purpose_never_verifies_for_another(
    made_for: Purpose, taken_as: Purpose, kind: str, fields: dict[str, Any]
) -> None:
    """The same key and the very same bytes: only the purpose differs."""
    wire = json.loads(signed.sign(HUB_KEY, made_for, kind, fields))
    if made_for is taken_as:
        signed.verify(HUB_KEY.public, taken_as, kind, wire)
        return
    with pytest.raises(AuthError) as caught:
        signed.verify(HUB_KEY.public, taken_as, kind, wire)
    assert caught.value.reason is Reason.BAD_SIGNATURE


@given(statuses)
def test_a_terminals_status_is_not_a_hub_status_nor_the_other_way(status: Status) -> None:
    """Even where one key signed both (a hub and its own status reader must not confuse them)."""
    terminal = decode_status(encode_status(status, HUB_KEY))
    hub = decode_status(encode_status(status, HUB_KEY, hub=True))
    verify_status(terminal, HUB_KEY.public)
    verify_status(hub, HUB_KEY.public, hub=True)
    with pytest.raises(AuthError):
        verify_status(terminal, HUB_KEY.public, hub=True)
    with pytest.raises(AuthError):
        verify_status(hub, HUB_KEY.public)


@pytest.mark.parametrize(
    ("made", "taken"),
    [
        ("ack", "cmd"),
        ("cmd", "ack"),
        ("ack", "config"),
        ("config", "cmd"),
        ("config", "card"),
        ("card", "config"),
        ("hub-status", "ack"),
        ("cmd", "hub-status"),
        ("status", "health"),
        ("health", "event"),
        ("event", "status"),
    ],
)
@given(data=st.data())
def test_a_signature_moved_onto_another_message_type_does_not_verify(
    made: str, taken: str, data: st.DataObject
) -> None:
    """An ack's signature on a command (of the same key) is no command's signature."""
    source, target = SIGNED[made], SIGNED[taken]
    sig = source.decode(source.encode(data.draw(source.values), HUB_KEY)).sig
    value = dataclasses.replace(data.draw(target.values), sig=sig)
    assert refusal(target, target.raw(target.wire(value)), HUB_KEY.public).reason is Reason.BAD_SIGNATURE


# -- any change breaks it --------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_any_changed_field_breaks_the_signature(name: str, data: st.DataObject) -> None:
    """Another valid value in any one field, the signature kept: refused, by the signature when the
    changed message is well formed."""
    kind = SIGNED[name]
    value = data.draw(kind.values, label="signed")
    signed_value = kind.decode(kind.encode(value, kind.key))
    other = data.draw(kind.values, label="other")
    names = [
        f.name
        for f in dataclasses.fields(value)
        if f.name != "sig" and getattr(value, f.name) != getattr(other, f.name)
    ]
    assume(names)
    field = data.draw(st.sampled_from(names), label="field")
    changed = dataclasses.replace(signed_value, **{field: getattr(other, field)})
    error = refusal(kind, kind.raw(kind.wire(changed)), kind.key.public)
    if isinstance(error, AuthError):
        assert error.reason is Reason.BAD_SIGNATURE


# An optional field of each type that has some, with a value to add where it is absent.
OPTIONAL: dict[str, dict[str, object]] = {
    "ack": {"held": [10**6, 10**6 + 5], "rejects": [{"detail": "x", "reason": "bad_field"}]},
    "cmd": {"id": "ref-1", "ticket": "A1"},
    "health": {"staff": "E1", "refused": 1, "refused_last": "cmd: replayed", "config_version": 3, "hub_key": "00ff"},
    "event": {"detail": "more"},
    "card": {"department": "综合受理", "counter": "3号窗口", "photo": "/9j/"},
}


@pytest.mark.parametrize("name", sorted(OPTIONAL))
@given(data=st.data())
def test_an_added_or_dropped_optional_field_breaks_the_signature(name: str, data: st.DataObject) -> None:
    kind = SIGNED[name]
    wire = json.loads(kind.encode(data.draw(kind.values), kind.key))
    for extra, item in OPTIONAL[name].items():
        changed = dict(wire)
        if extra in changed:
            del changed[extra]
        else:
            changed[extra] = item
        refusal(kind, encode(changed), kind.key.public)


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_any_changed_byte_of_a_signed_message_is_refused(name: str, data: st.DataObject) -> None:
    kind = SIGNED[name]
    raw = bytearray(kind.encode(data.draw(kind.values), kind.key))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= data.draw(st.integers(1, 255))
    refusal(kind, bytes(raw), kind.key.public)


ACK = Ack(
    device="d1",
    upto=4,
    t=1_763_800_000_000,
    held=(7, 9),
    rejects=(Rejection(reason=Reason.BROKEN_CHAIN, detail="prev of 5", seq=5),),
)
COMMAND = Command(device="d1", cmd=CommandName.INVITE, ticket="A0123", id="q-1", n=41, t=1_763_800_000_000)
CONFIG = ConfigDoc(device="d1", version=7, t=1_763_800_000_000, settings={"language": "zh", "thank_you_ms": "3000"})
HEALTH = Health(
    device="d1",
    t=1_763_800_000_000,
    boot="boot-1",
    mono=5,
    fw="0.1.0",
    uptime_s=1,
    state="idle",
    panel=PanelState.CONNECTED,
    outbox_depth=0,
    free_disk_bytes=10,
    misuse_alarms=0,
    rejected=0,
    session=1,
    refused=2,
    refused_last="cmd: replayed",
    config_version=7,
    hub_key="0123456789abcdef",
)
EVENT = DeviceEvent(device="d1", t=1_763_800_000_000, boot="boot-1", mono=5, kind=EventKind.PANEL_UP, detail="p-1")
STATUS = Status(device="d1", state=StatusState.ONLINE, session=1)
CARD = Card(
    device="d1", version=9, t=1_763_800_000_000, staff="E1", name="王芳", department="综合受理", counter="3号窗口"
)


@pytest.mark.parametrize(
    ("name", "value", "changes"),
    [
        ("ack", ACK, {"held": (7, 10)}),
        ("ack", ACK, {"held": (8, 9)}),
        ("ack", ACK, {"held": None}),
        ("ack", ACK, {"upto": 5}),
        ("ack", ACK, {"t": 1_763_800_000_001}),
        ("ack", ACK, {"rejects": ()}),
        ("ack", ACK, {"rejects": (Rejection(reason=Reason.BROKEN_CHAIN, detail="prev of 5", seq=6),)}),
        ("ack", ACK, {"rejects": (Rejection(reason=Reason.REPLAY_CONFLICT, detail="prev of 5", seq=5),)}),
        ("ack", ACK, {"rejects": (Rejection(reason=Reason.BROKEN_CHAIN, detail="prev of 5"),)}),
        ("ack", ACK, {"device": "d2"}),
        ("cmd", COMMAND, {"n": 42}),
        ("cmd", COMMAND, {"t": 1_763_800_120_000}),
        ("cmd", COMMAND, {"ticket": "A0124"}),
        ("cmd", COMMAND, {"ticket": None}),
        ("cmd", COMMAND, {"id": None}),
        ("cmd", COMMAND, {"cmd": CommandName.LOGOUT, "ticket": None}),
        ("config", CONFIG, {"version": 8}),
        ("config", CONFIG, {"version": 6}),
        ("config", CONFIG, {"t": 0}),
        ("config", CONFIG, {"settings": {"language": "en", "thank_you_ms": "3000"}}),
        ("config", CONFIG, {"settings": {"language": "zh"}}),
        ("config", CONFIG, {"settings": {"language": "zh", "thank_you_ms": "3000", "mode": "kiosk"}}),
        ("config", CONFIG, {"settings": {"language": "zh", "thank_you_ms2": "3000"}}),
        ("config", CONFIG, {"settings": {}}),
        ("status", STATUS, {"session": 2}),
        ("status", STATUS, {"state": StatusState.OFFLINE}),
        ("hub-status", STATUS, {"session": 0}),
        ("health", HEALTH, {"config_version": 8}),
        ("health", HEALTH, {"hub_key": "0123456789abcdee"}),
        ("health", HEALTH, {"refused": 3}),
        ("health", HEALTH, {"mono": 6}),
        ("event", EVENT, {"kind": EventKind.PANEL_DOWN}),
        ("event", EVENT, {"detail": None}),
    ],
)
def test_each_named_field_is_covered_by_the_signature(name: str, value: Any, changes: dict[str, Any]) -> None:
    kind = SIGNED[name]
    signed_value = kind.decode(kind.encode(value, kind.key))
    raw = kind.raw(kind.wire(dataclasses.replace(signed_value, **changes)))
    decoded = kind.decode(raw)  # well formed: only the signature refuses it
    with pytest.raises(AuthError) as caught:
        kind.verify(decoded, kind.key.public)
    assert caught.value.reason is Reason.BAD_SIGNATURE


@pytest.mark.parametrize("name", NAMES)
def test_another_version_is_refused_even_with_the_signature(name: str) -> None:
    kind = SIGNED[name]
    value = {"ack": ACK, "cmd": COMMAND, "config": CONFIG, "health": HEALTH, "event": EVENT, "card": CARD}.get(
        name, STATUS
    )
    wire = json.loads(kind.encode(value, kind.key))
    for version in (1, 3, 0):
        with pytest.raises(DecodeError) as caught:
            kind.decode(encode({**wire, "v": version}))
        assert caught.value.reason is Reason.UNKNOWN_VERSION


# -- v1 and unsigned -------------------------------------------------------------------------------

# The v1 spec's own examples: what a terminal or hub not yet upgraded sends.
V1 = [
    ("ack", b'{"device":"hall1-w03","t":1763800003500,"type":"ack","upto":2,"v":1}'),
    ("cmd", b'{"cmd":"login","device":"hall1-w03","id":"pc-7781","staff":"E1024","type":"cmd","v":1}'),
    ("cmd", b'{"cmd":"logout","device":"hall1-w03","type":"cmd","v":1}'),
    ("status", b'{"device":"hall1-w03","session":16777217,"state":"online","type":"status","v":1}'),
    ("hub-status", b'{"device":"pingjia-hub","session":1849478338314240001,"state":"online","type":"status","v":1}'),
    (
        "health",
        b'{"boot":"3f9a1c2e-5b7d-4e11-9c0a-7d2e8f4b6a10","device":"hall1-w03","free_disk_bytes":12884901888,'
        b'"fw":"0.1.0","misuse_alarms":0,"mono":3456,"outbox_depth":0,"panel":"disconnected","panel_dropped":0,'
        b'"rejected":0,"session":16777217,"state":"closed","t":1763794880123,"type":"health","unreadable":0,'
        b'"uptime_s":2,"v":1}',
    ),
    (
        "event",
        b'{"boot":"3f9a1c2e-5b7d-4e11-9c0a-7d2e8f4b6a10","detail":"unplugged","device":"hall1-w03",'
        b'"kind":"panel_down","mono":5190000,"t":1763800066667,"type":"event","v":1}',
    ),
    ("config", b'{"device":"hall1-w03","settings":{},"t":0,"type":"config","v":1,"version":1}'),
]


@pytest.mark.parametrize(("name", "raw"), V1, ids=[f"{name}-{n}" for n, (name, _) in enumerate(V1)])
def test_an_unsigned_v1_message_is_an_unknown_version(name: str, raw: bytes) -> None:
    with pytest.raises(DecodeError) as caught:
        SIGNED[name].decode(raw)
    assert caught.value.reason is Reason.UNKNOWN_VERSION


@pytest.mark.parametrize(("name", "raw"), V1, ids=[f"{name}-{n}" for n, (name, _) in enumerate(V1)])
def test_a_v1_message_relabelled_v2_is_still_unsigned(name: str, raw: bytes) -> None:
    """Only the version changed: now it is a v2 message without its `sig` (and, for a command, its `n`
    and `t`)."""
    with pytest.raises(DecodeError) as caught:
        SIGNED[name].decode(raw.replace(b'"v":1', b'"v":2'))
    assert caught.value.reason is Reason.BAD_FIELD


BAD_SIGS: list[object] = [
    "",
    "ab" * 63,
    "ab" * 64 + "a",
    "AB" * 64,
    "zz" * 64,
    " " + "ab" * 63 + "a",
    1,
    None,
    True,
    ["ab" * 64],
    {"sig": "ab" * 64},
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("sig", [*BAD_SIGS, "missing"], ids=repr)
def test_a_missing_or_malformed_sig_is_a_bad_field(name: str, sig: object) -> None:
    kind = SIGNED[name]
    value = {"ack": ACK, "cmd": COMMAND, "config": CONFIG, "health": HEALTH, "event": EVENT, "card": CARD}.get(
        name, STATUS
    )
    wire = json.loads(kind.encode(value, kind.key))
    if sig == "missing":
        del wire["sig"]
    else:
        wire["sig"] = sig
    with pytest.raises(DecodeError) as caught:
        kind.decode(encode(wire))
    assert caught.value.reason is Reason.BAD_FIELD


@pytest.mark.parametrize("sig", ["", "ab" * 63, "AB" * 64, "x"])
def test_verify_refuses_a_value_whose_sig_is_not_a_signature(sig: str) -> None:
    """A value built in code, not decoded: `verify` still says bad_signature, never ValueError."""
    with pytest.raises(AuthError) as caught:
        verify_ack(dataclasses.replace(ACK, sig=sig), HUB_KEY.public)
    assert caught.value.reason is Reason.BAD_SIGNATURE


# -- configuration documents ------------------------------------------------------------------------


def _config_with(settings: object) -> bytes:
    wire = json.loads(encode_config(CONFIG, HUB_KEY))
    wire["settings"] = settings
    return encode(wire)


@pytest.mark.parametrize(
    "setting",
    ["Mode", "1mode", "_mode", "mode-x", "mode x", "", "m" * 65, "modé", "模式", "mode\n", "thank.you"],
)
def test_a_setting_name_off_the_pattern_is_refused(setting: str) -> None:
    assert SETTING_NAME.fullmatch(setting) is None
    with pytest.raises(DecodeError) as caught:
        decode_config(_config_with({setting: "1"}))
    assert caught.value.reason is Reason.BAD_FIELD


@given(st.text(max_size=70))
def test_any_setting_name_is_taken_exactly_when_it_keeps_the_pattern(setting: str) -> None:
    raw = _config_with({setting: "1"})
    if SETTING_NAME.fullmatch(setting) is not None:
        assert decode_config(raw).settings == {setting: "1"}
        return
    with pytest.raises(DecodeError) as caught:
        decode_config(raw)
    assert caught.value.reason is Reason.BAD_FIELD


@pytest.mark.parametrize(
    "value", [1, 0, -1, None, True, False, [], ["1"], {}, {"a": "1"}, "x" * (limits.MAX_SETTING_CHARS + 1), "a\nb"]
)
def test_a_setting_value_that_is_not_printable_text_within_its_limit_is_refused(value: object) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_config(_config_with({"mode": value}))
    assert caught.value.reason is Reason.BAD_FIELD


@pytest.mark.parametrize("settings", [[], ["mode", "1"], "mode=1", 1, None])
def test_settings_must_be_an_object(settings: object) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_config(_config_with(settings))
    assert caught.value.reason is Reason.BAD_FIELD


def test_too_many_settings_are_refused_and_not_signed() -> None:
    most = {f"s{n:02}": str(n) for n in range(limits.MAX_SETTINGS)}
    doc = decode_config(encode_config(dataclasses.replace(CONFIG, settings=most), HUB_KEY))
    verify_config(doc, HUB_KEY.public)
    assert dict(doc.settings) == most
    over = {**most, "s_over": "1"}
    with pytest.raises(DecodeError) as caught:
        decode_config(_config_with(over))
    assert caught.value.reason is Reason.BAD_FIELD
    with pytest.raises(ValueError, match="at most"):
        encode_config(dataclasses.replace(CONFIG, settings=over), HUB_KEY)


@pytest.mark.parametrize(
    ("field", "value"), [("version", 0), ("version", -1), ("version", "7"), ("t", -1), ("device", "d/1")]
)
def test_a_config_field_out_of_its_rule_is_a_bad_field(field: str, value: object) -> None:
    wire = json.loads(encode_config(CONFIG, HUB_KEY))
    wire[field] = value
    with pytest.raises(DecodeError) as caught:
        decode_config(encode(wire))
    assert caught.value.reason is Reason.BAD_FIELD


def test_a_config_is_refused_out_of_canonical_order() -> None:
    raw = encode_config(CONFIG, HUB_KEY)
    shuffled = raw.replace(b'"language":"zh","thank_you_ms":"3000"', b'"thank_you_ms":"3000","language":"zh"')
    assert shuffled != raw
    with pytest.raises(DecodeError) as caught:
        decode_config(shuffled)
    assert caught.value.reason is Reason.NOT_CANONICAL


# -- sealing ---------------------------------------------------------------------------------------

HUB_SEAL = SealKey.generate()
associated = st.binary(max_size=64)


@given(st.binary(max_size=2000), associated)
def test_a_sealed_text_opens_with_the_hubs_key_and_associated_data(plaintext: bytes, data: bytes) -> None:
    text = seal(HUB_SEAL.public_hex, plaintext, data)
    assert base64.b64decode(text, validate=True)
    assert open_sealed(HUB_SEAL, text, data) == plaintext
    assert seal(HUB_SEAL.public_hex, plaintext, data) != text  # a fresh ephemeral key and nonce each time


@given(st.binary(max_size=200), associated, associated)
def test_a_sealed_text_opens_with_no_other_key_or_associated_data(plaintext: bytes, data: bytes, other: bytes) -> None:
    text = seal(HUB_SEAL.public_hex, plaintext, data)
    with pytest.raises(DecodeError) as caught:
        open_sealed(SealKey.generate(), text, data)
    assert caught.value.reason is Reason.BAD_FIELD
    if other != data:
        with pytest.raises(DecodeError):
            open_sealed(HUB_SEAL, text, other)


def test_a_contact_sealed_for_one_terminal_does_not_open_as_anothers() -> None:
    text = seal(HUB_SEAL.public_hex, b"+86 138 0013 8000", b"hall1-w03")
    assert open_sealed(HUB_SEAL, text, b"hall1-w03") == b"+86 138 0013 8000"
    with pytest.raises(DecodeError):
        open_sealed(HUB_SEAL, text, b"hall1-w04")


@given(st.binary(max_size=200), st.data())
def test_any_changed_byte_of_a_sealed_text_is_refused(plaintext: bytes, data: st.DataObject) -> None:
    raw = bytearray(base64.b64decode(seal(HUB_SEAL.public_hex, plaintext, b"d1")))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= data.draw(st.integers(1, 255))
    with pytest.raises(DecodeError):
        open_sealed(HUB_SEAL, base64.b64encode(raw).decode(), b"d1")


def _opens_or_decode_error(text: str, data: bytes = b"d1") -> None:
    """`text` opens, or is a DecodeError(bad_field): nothing else comes out of `open_sealed`."""
    refused: DecodeError | None = None
    try:
        open_sealed(HUB_SEAL, text, data)
    except DecodeError as exc:
        refused = exc
    if refused is not None:
        assert refused.reason is Reason.BAD_FIELD
        assert str(refused)


@given(st.text(alphabet=st.characters(blacklist_categories=()), max_size=300))
def test_arbitrary_text_gives_only_a_decode_error(text: str) -> None:
    _opens_or_decode_error(text)


@given(st.binary(max_size=300))
def test_arbitrary_base64_gives_only_a_decode_error(raw: bytes) -> None:
    _opens_or_decode_error(base64.b64encode(raw).decode())
    _opens_or_decode_error(base64.urlsafe_b64encode(raw).decode())


@pytest.mark.parametrize(
    "ephemeral",
    [
        bytes(32),  # the all-zero point: the key agreement yields zero
        b"\x01" + bytes(31),  # a point of small order
        bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),  # order 8
        b"\xff" * 32,
    ],
)
def test_a_weak_ephemeral_key_gives_a_decode_error(ephemeral: bytes) -> None:
    _opens_or_decode_error(base64.b64encode(ephemeral + bytes(12) + bytes(16)).decode())


@pytest.mark.parametrize("public", ["", "00", "zz" * 32, "ab" * 31, "ab" * 33])
def test_sealing_to_something_that_is_no_public_key_is_a_decode_error(public: str) -> None:
    with pytest.raises(DecodeError) as caught:
        seal(public, b"x", b"d1")
    assert caught.value.reason is Reason.BAD_FIELD


def test_a_seal_key_survives_its_file() -> None:
    again = SealKey.from_pem(HUB_SEAL.to_pem())
    assert again.public_hex == HUB_SEAL.public_hex
    assert open_sealed(again, seal(HUB_SEAL.public_hex, b"x", b"d1"), b"d1") == b"x"
    with pytest.raises(DecodeError):
        SealKey.from_pem(KEY.to_pem())  # an Ed25519 key is no X25519 key
