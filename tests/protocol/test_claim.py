"""Claims (protocol/claim.py): the claim account a pairing code names, the terminal's signed claim
request and the hub's signed answer.

Both sides derive the same account from the code and nothing else; every code names its own
account; requests and answers round-trip; a signature refuses any change, and the answer any
request but its own; the sealed password opens only with the request's key and only as that
terminal's; and whatever bytes arrive, decoding raises a DecodeError or nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import AuthError, DecodeError, Purpose, Reason, SealKey, SigningKey, canonical, limits, signed
from protocol import claim as wire
from protocol.topics import claim_topics, claim_user_of

TERMINAL = SigningKey.generate()
HUB = SigningKey.generate()
HUB_SEAL = SealKey.generate()
REPLY_KEY = SealKey.generate()
DEVICE = "hall1-w03"
CODE = "042917"

codes = st.integers(0, 999_999).map(lambda number: f"{number:06d}")
device_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", fullmatch=True)
places = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Cf", "Co", "Cn")), min_size=1, max_size=64
).filter(str.isprintable)
passwords = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FFF), min_size=1, max_size=128).filter(
    str.isprintable
)


def request(code: str = CODE, device: str = DEVICE, key: SigningKey = TERMINAL) -> tuple[bytes, wire.ClaimRequest]:
    raw = wire.encode_request(key, code=code, device=device, reply_key=REPLY_KEY.public_hex)
    return raw, wire.decode_request(raw)


def answer(asked: wire.ClaimRequest, password: str = "s3cret-password", **changes: Any) -> wire.ClaimReply:
    values: dict[str, Any] = {
        "account": asked.account,
        "device": asked.device,
        "pubkey": asked.pubkey,
        "reply_key": asked.reply_key,
        "hub_sign": HUB.public.hex,
        "hub_seal": HUB_SEAL.public_hex,
        "username": asked.device,
        "password": wire.seal_password(asked, password),
        "department": "综合受理",
        "counter": "3号窗口",
        "by": "wang",
        "site": "hall1",
    }
    return wire.ClaimReply(**(values | changes))


# -- the claim account -----------------------------------------------------------------------------


def test_the_account_is_named_by_a_labelled_hash_of_the_code() -> None:
    digest = hashlib.sha256(b"pingjia/v2/claim-user\x00" + CODE.encode()).hexdigest()
    assert wire.claim_user(CODE) == "claim-" + digest[:16]
    assert claim_user_of(claim_topics(wire.claim_user(CODE))[0]) == wire.claim_user(CODE)


@given(codes)
def test_both_sides_derive_the_same_account_from_the_code_alone(code: str) -> None:
    user, password = wire.claim_user(code), wire.claim_password(code)
    assert (user, password) == (wire.claim_user(code), wire.claim_password(code))
    assert user.startswith(wire.CLAIM_PREFIX)
    assert len(user) == len("claim-") + 16
    assert len(password) == 64
    assert int(password, 16) >= 0
    # The password is not the username's hash, nor any part of it.
    assert user[len("claim-") :] not in password
    assert password != hashlib.sha256(b"pingjia/v2/claim-user\x00" + code.encode()).hexdigest()


def test_every_code_names_its_own_account() -> None:
    users = {wire.claim_user(f"{number:06d}") for number in range(1_000_000)}
    assert len(users) == 1_000_000


def test_codes_give_different_passwords() -> None:
    assert len({wire.claim_password(f"{number:06d}") for number in range(0, 1_000_000, 997)}) == len(
        range(0, 1_000_000, 997)
    )


@pytest.mark.parametrize("code", ["12345", "1234567", "12345a", "１２３４５６", " 123456", "", "-12345"])
def test_only_six_ascii_digits_are_a_code(code: str) -> None:
    with pytest.raises(ValueError, match="6 digits"):
        wire.claim_user(code)
    with pytest.raises(ValueError, match="6 digits"):
        wire.claim_password(code)
    with pytest.raises(ValueError, match="6 digits"):
        wire.encode_request(TERMINAL, code=code, device=DEVICE, reply_key=REPLY_KEY.public_hex)


# -- the request -----------------------------------------------------------------------------------


@given(codes, device_ids)
def test_a_request_round_trips_and_verifies(code: str, device: str) -> None:
    raw, asked = request(code, device)
    made = wire.ClaimRequest(
        account=wire.claim_user(code), device=device, pubkey=TERMINAL.public.hex, reply_key=REPLY_KEY.public_hex
    )
    assert asked == dataclasses.replace(made, sig=asked.sig)
    wire.verify_request(asked, wire.claim_user(code))
    assert raw == canonical.encode(json.loads(raw))  # canonical bytes
    assert json.loads(raw)["type"] == "claim"
    assert json.loads(raw)["v"] == limits.CONTROL_VERSION


def test_a_request_is_signed_under_its_own_context() -> None:
    _, asked = request()
    body = signed.body("claim", asked.fields())
    assert TERMINAL.public.verify(bytes.fromhex(asked.sig), b"pingjia/v2/claim-request\x00", body)
    for purpose in Purpose:  # no purpose of protocol.signed takes it, nor gives one it takes
        assert not TERMINAL.public.verify(bytes.fromhex(asked.sig), signed.context(purpose), body)
        forged = dataclasses.replace(asked, sig=TERMINAL.sign(signed.context(purpose), body).hex())
        with pytest.raises(AuthError) as caught:
            wire.verify_request(forged, asked.account)
        assert caught.value.reason is Reason.BAD_SIGNATURE


_SAME_SHAPE = {
    "account": wire.claim_user("000001"),
    "device": "hall1-w04",
    "pubkey": SigningKey.generate().public.hex,
    "reply_key": SealKey.generate().public_hex,
}


@pytest.mark.parametrize("name", sorted(_SAME_SHAPE))
def test_a_request_signature_refuses_any_change(name: str) -> None:
    _, asked = request()
    changed = dataclasses.replace(asked, **{name: _SAME_SHAPE[name]})
    with pytest.raises(AuthError) as caught:
        wire.verify_request(changed, changed.account)
    assert caught.value.reason is Reason.BAD_SIGNATURE


def test_a_request_signed_by_another_key_than_it_names_is_refused() -> None:
    _, asked = request()
    other = SigningKey.generate()
    body = signed.body("claim", asked.fields())
    forged = dataclasses.replace(asked, sig=other.sign(wire.REQUEST_CONTEXT, body).hex())
    with pytest.raises(AuthError, match="does not verify"):
        wire.verify_request(forged, asked.account)


def test_a_request_made_for_another_claim_account_is_refused() -> None:
    _, asked = request()
    with pytest.raises(AuthError) as caught:
        wire.verify_request(asked, wire.claim_user("999999"))
    assert caught.value.reason is Reason.TOPIC_MISMATCH


def test_a_request_through_an_account_that_is_not_a_claim_account_is_refused() -> None:
    _, asked = request()
    wire_form = json.loads(request()[0])
    wire_form["account"] = "hall1-w03"
    with pytest.raises(DecodeError) as caught:
        wire.decode_request(canonical.encode(wire_form))
    assert caught.value.reason is Reason.BAD_FIELD
    assert asked.account.startswith("claim-")


def test_a_request_is_refused_unless_canonical() -> None:
    raw, _ = request()
    spaced = json.dumps(json.loads(raw), sort_keys=True).encode()
    with pytest.raises(DecodeError) as caught:
        wire.decode_request(spaced)
    assert caught.value.reason is Reason.NOT_CANONICAL


@pytest.mark.parametrize(
    ("device", "reply_key"),
    [("hall/1", REPLY_KEY.public_hex), ("", REPLY_KEY.public_hex), (DEVICE, "AB" * 32), (DEVICE, "ab" * 31)],
)
def test_a_request_cannot_be_made_of_bad_values(device: str, reply_key: str) -> None:
    with pytest.raises(ValueError, match=r"device id|reply_key"):
        wire.encode_request(TERMINAL, code=CODE, device=device, reply_key=reply_key)


# -- the answer ------------------------------------------------------------------------------------


placements = st.fixed_dictionaries({"department": places, "counter": places, "by": places, "site": st.none() | places})


@given(device_ids, placements, passwords)
def test_an_answer_round_trips_verifies_and_opens(device: str, placement: dict[str, Any], password: str) -> None:
    _, asked = request(device=device)
    reply = answer(asked, password, **placement)
    raw = wire.encode_reply(reply, HUB)
    taken = wire.decode_reply(raw)
    assert taken == dataclasses.replace(reply, sig=taken.sig)
    wire.verify_reply(taken, asked)
    assert wire.open_password(taken, REPLY_KEY) == password
    assert json.loads(raw)["type"] == "claimed"


def test_an_answer_may_name_another_broker() -> None:
    _, asked = request()
    taken = wire.decode_reply(wire.encode_reply(answer(asked, broker="mqtts://hub.example:8883"), HUB))
    wire.verify_reply(taken, asked)
    assert taken.broker == "mqtts://hub.example:8883"
    assert "s3cret" not in repr(taken)


def test_an_answer_is_signed_for_the_claim_purpose() -> None:
    _, asked = request()
    reply = answer(asked)
    for purpose in Purpose:
        raw = signed.sign(HUB, purpose, "claimed", reply.fields())
        if purpose is Purpose.CLAIM:
            wire.verify_reply(wire.decode_reply(raw), asked)
        else:
            with pytest.raises(AuthError):
                wire.verify_reply(wire.decode_reply(raw), asked)


_OTHER_VALUES = {
    "hub_sign": SigningKey.generate().public.hex,
    "hub_seal": SealKey.generate().public_hex,
    "username": "hall1-w99",
    "department": "另一个",
    "counter": "9号窗口",
    "by": "li",
    "site": "hall2",
    "broker": "mqtt://elsewhere:1883",
}


@pytest.mark.parametrize("name", sorted(_OTHER_VALUES))
def test_an_answer_signature_refuses_any_change(name: str) -> None:
    _, asked = request()
    taken = wire.decode_reply(wire.encode_reply(answer(asked), HUB))
    with pytest.raises(AuthError) as caught:
        wire.verify_reply(dataclasses.replace(taken, **{name: _OTHER_VALUES[name]}), asked)
    assert caught.value.reason is Reason.BAD_SIGNATURE


def test_a_changed_sealed_password_breaks_the_signature() -> None:
    _, asked = request()
    taken = wire.decode_reply(wire.encode_reply(answer(asked), HUB))
    with pytest.raises(AuthError):
        wire.verify_reply(dataclasses.replace(taken, password=wire.seal_password(asked, "another")), asked)


def test_an_answer_signed_by_another_key_than_it_carries_is_refused() -> None:
    _, asked = request()
    raw = wire.encode_reply(answer(asked), SigningKey.generate())
    with pytest.raises(AuthError, match="hub key it carries"):
        wire.verify_reply(wire.decode_reply(raw), asked)


@pytest.mark.parametrize("name", ["account", "device", "pubkey", "reply_key"])
def test_an_answer_to_another_request_is_refused(name: str) -> None:
    _, asked = request()
    other = dataclasses.replace(asked, **{name: _SAME_SHAPE[name]})
    raw = wire.encode_reply(answer(other), HUB)  # validly signed, for the other request
    with pytest.raises(AuthError) as caught:
        wire.verify_reply(wire.decode_reply(raw), asked)
    assert caught.value.reason is Reason.REPLAYED
    assert name in caught.value.detail


def test_the_password_opens_only_with_the_request_key_and_as_that_terminal() -> None:
    _, asked = request()
    taken = wire.decode_reply(wire.encode_reply(answer(asked), HUB))
    with pytest.raises(DecodeError):
        wire.open_password(taken, SealKey.generate())
    # Sealed for another terminal (or key) and moved into this answer: it does not open.
    moved = dataclasses.replace(
        taken, password=wire.seal_password(dataclasses.replace(asked, device="hall1-w04"), "s3cret-password")
    )
    with pytest.raises(DecodeError):
        wire.open_password(moved, REPLY_KEY)
    for garbage in ("", "bm90IHNlYWxlZA==", "!!!"):
        with pytest.raises(DecodeError):
            wire.open_password(dataclasses.replace(taken, password=garbage), REPLY_KEY)


def test_a_reply_key_no_key_can_be_agreed_with_is_refused() -> None:
    _, asked = request()
    with pytest.raises(DecodeError) as caught:
        wire.seal_password(dataclasses.replace(asked, reply_key="00" * 32), "password")
    assert caught.value.reason is Reason.BAD_FIELD
    for password in ("", "x" * 129):
        with pytest.raises(ValueError, match=r"1\.\.128"):
            wire.seal_password(asked, password)


def test_an_oversize_sealed_password_is_refused() -> None:
    _, asked = request()
    reply = answer(asked, password="s")
    raw = wire.encode_reply(dataclasses.replace(reply, password="A" * 1000), HUB)
    with pytest.raises(DecodeError) as caught:
        wire.decode_reply(raw)
    assert caught.value.reason is Reason.BAD_FIELD


# -- whatever arrives ------------------------------------------------------------------------------


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_only_raise_decode_errors(raw: bytes) -> None:
    for decode in (wire.decode_request, wire.decode_reply):
        with contextlib.suppress(DecodeError):
            decode(raw)


_VALID = (request()[0], wire.encode_reply(answer(request()[1]), HUB))


@given(st.sampled_from(_VALID), st.data())
def test_changed_bytes_of_valid_messages_only_raise_decode_errors_or_fail_to_verify(raw: bytes, data: Any) -> None:
    position = data.draw(st.integers(0, len(raw) - 1))
    value = data.draw(st.integers(0, 255))
    changed = raw[:position] + bytes([value]) + raw[position + 1 :]
    _, asked = request()
    try:
        if b'"type":"claim"' in raw:
            wire.verify_request(wire.decode_request(changed), asked.account)
        else:
            reply = wire.decode_reply(changed)
            wire.verify_reply(reply, asked)
            wire.open_password(reply, REPLY_KEY)
    except (DecodeError, AuthError):
        return
    assert changed == raw  # only an unchanged message is taken


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), lambda inner: st.lists(inner, max_size=3)))
def test_any_json_value_in_any_field_only_raises_decode_errors(value: object) -> None:
    for raw, decode in ((_VALID[0], wire.decode_request), (_VALID[1], wire.decode_reply)):
        for name in json.loads(raw):
            obj = json.loads(raw)
            obj[name] = value
            with contextlib.suppress(DecodeError):
                decode(canonical.encode(obj))
