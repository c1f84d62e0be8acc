"""A clerk's card (protocol/card.py): round trips, the photo's rules, and a precise refusal per bad field.

The generic properties of signed messages (any changed byte or field, another purpose, another
key, poison) run over cards too, in test_signed.py and test_poison.py.
"""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest
from hypothesis import given

from protocol import AuthError, DecodeError, Reason, SigningKey, canonical, limits
from protocol.card import (
    MAX_PHOTO_CHARS,
    PHOTO_MAGIC,
    Card,
    ClerkCard,
    decode_card,
    encode_card,
    photo_problem,
    verify_card,
)
from tests.strategies import HUB_KEY, cards

PNG = PHOTO_MAGIC["PNG"] + b"\x00" * 41  # 49 bytes: its base64 ends in padding
JPEG = PHOTO_MAGIC["JPEG"] + b"\x01" * 40
CARD = Card(
    device="hall1-w03",
    version=12,
    t=1_763_800_000_100,
    staff="E1024",
    name="王芳",
    department="综合受理",
    counter="3号窗口",
    photo=base64.b64encode(PNG).decode(),
)


def _wire(**changes: object) -> bytes:
    """The card's wire bytes with fields changed (None: dropped), its signature kept."""
    wire = json.loads(encode_card(CARD, HUB_KEY))
    for name, value in changes.items():
        if value is None:
            wire.pop(name, None)
        else:
            wire[name] = value
    return canonical.encode(wire)


def _refused(raw: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        decode_card(raw)
    return caught.value


@given(cards)
def test_a_card_round_trips_and_verifies(card: Card) -> None:
    raw = encode_card(card, HUB_KEY)
    decoded = decode_card(raw)
    assert decoded == dataclasses.replace(card, sig=decoded.sig)
    verify_card(decoded, HUB_KEY.public)
    assert encode_card(decoded, HUB_KEY) == raw


def test_the_screen_gets_names_and_photo_bytes() -> None:
    card = decode_card(encode_card(CARD, HUB_KEY))
    assert card.clerk == ClerkCard(staff="E1024", name="王芳", department="综合受理", counter="3号窗口", photo=PNG)
    bare = decode_card(encode_card(Card(device="d1", version=1, t=0, staff="E2", name="李强"), HUB_KEY))
    assert bare.clerk == ClerkCard(staff="E2", name="李强", department="", counter="", photo=None)
    assert Card.of(card.clerk, device=card.device, version=card.version, t=card.t) == dataclasses.replace(card, sig="")
    assert Card.of(bare.clerk, device="d1", version=1, t=0).department is None  # '' goes as absent


def test_a_jpeg_and_a_photo_at_the_limit_are_taken() -> None:
    top = PHOTO_MAGIC["JPEG"] + b"\xaa" * (limits.MAX_PHOTO_BYTES - 3)
    for photo in (JPEG, top):
        card = dataclasses.replace(CARD, photo=base64.b64encode(photo).decode())
        assert decode_card(encode_card(card, HUB_KEY)).clerk.photo == photo
    assert len(base64.b64encode(top)) == MAX_PHOTO_CHARS


def test_a_card_signed_by_another_key_or_for_another_purpose_is_refused() -> None:
    forged = decode_card(encode_card(CARD, SigningKey.generate()))
    with pytest.raises(AuthError) as caught:
        verify_card(forged, HUB_KEY.public)
    assert caught.value.reason is Reason.BAD_SIGNATURE
    assert caught.value.device == "hall1-w03"


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("device", "hall1/w03", "card device must be"),
        ("device", "", "card device must be"),
        ("version", 0, "card version must be an integer in 1.."),
        ("version", limits.MAX_COUNTER + 1, "card version must be"),
        ("version", "12", "card version must be"),
        ("t", -1, "card t must be an integer in 0.."),
        ("t", limits.MAX_MS + 1, "card t must be"),
        ("staff", "", "card staff must be 1..64 printable"),
        ("staff", "E" * (limits.MAX_ID_CHARS + 1), "card staff must be"),
        ("staff", 1024, "card staff must be"),
        ("name", "王\n芳", "card name must be 1..64 printable"),
        ("name", "x" * (limits.MAX_NAME_CHARS + 1), "card name must be"),
        ("department", "", "card department must be"),
        ("department", "d" * (limits.MAX_NAME_CHARS + 1), "card department must be"),
        ("counter", "\x00", "card counter must be"),
        ("counter", ["3号窗口"], "card counter must be"),
        ("photo", "", "card photo must be base64 text"),
        ("photo", 5, "card photo must be base64 text"),
        ("photo", "iVBORw0K GgoA", "card photo must be base64 text"),
        ("photo", base64.urlsafe_b64encode(b"\xff\xd8\xff\xfe\xff").decode(), "not standard base64"),
        ("photo", base64.b64encode(PNG).decode().rstrip("="), "not standard base64"),
        ("photo", "/9j/+A=", "not standard base64"),
        ("photo", "/9j/+B==", "not the canonical base64"),  # the last bits are not zero
        ("photo", base64.b64encode(b"GIF89a" + b"\x00" * 10).decode(), "neither a PNG nor a JPEG"),
        ("photo", base64.b64encode(b"\x89PNG").decode(), "neither a PNG nor a JPEG"),
        ("photo", "A" * (MAX_PHOTO_CHARS + 4), "base64 characters is over"),
        ("sig", "ab" * 63, "card sig must be 128 lowercase hex digits"),
        ("extra", "x", "unknown ['extra']"),
    ],
)
def test_each_bad_field_is_refused_by_name(field: str, value: object, says: str) -> None:
    error = _refused(_wire(**{field: value}))
    assert error.reason is Reason.BAD_FIELD
    assert says in error.detail


@pytest.mark.parametrize("field", ["device", "version", "t", "staff", "name", "sig"])
def test_a_required_field_missing_is_refused(field: str) -> None:
    error = _refused(_wire(**{field: None}))
    assert error.reason is Reason.BAD_FIELD
    assert f"missing ['{field}']" in error.detail


def test_the_envelope_and_the_bytes_are_checked() -> None:
    assert _refused(_wire(v=1)).reason is Reason.UNKNOWN_VERSION
    assert _refused(_wire(type="config")).reason is Reason.WRONG_TYPE
    raw = encode_card(CARD, HUB_KEY)
    assert _refused(raw.replace(b'{"counter"', b'{ "counter"')).reason is Reason.NOT_CANONICAL
    assert _refused(b"\xff").reason is Reason.MALFORMED


def test_an_oversize_photo_is_refused_before_signing() -> None:
    over = PHOTO_MAGIC["PNG"] + b"\x00" * limits.MAX_PHOTO_BYTES
    assert photo_problem(over) is not None
    assert photo_problem(PNG) is None
    with pytest.raises(ValueError, match="over"):
        encode_card(dataclasses.replace(CARD, photo=base64.b64encode(over).decode()), HUB_KEY)
    with pytest.raises(ValueError, match="neither a PNG nor a JPEG"):
        encode_card(dataclasses.replace(CARD, photo=base64.b64encode(b"BM" + b"\x00" * 9).decode()), HUB_KEY)
