"""A clerk's card (`pingjia/v1/<device>/card`, retained): who serves at a terminal, as its screen shows it.

The hub signs, for one terminal, the card of the clerk logged in there: the staff id, the name,
the department and the counter as the directory names them that day, and optionally a photo. The
version comes from one counter of the hub's, so it only grows; a terminal verifies a card with the
hub key it pinned at pairing, refuses one older than the newest it took (`rollback`; the same
version again is the retained copy, and changes nothing), and keeps the latest card of each clerk
it has seen, so that a clerk who logs in again is shown at once, before the hub answers.

The photo is the standard base64 (with padding, no line breaks) of a PNG or JPEG file, at most
MAX_PHOTO_BYTES decoded; the decoder checks the base64 is the one encoding of its bytes (canonical
bytes, as everywhere) and the bytes start as a PNG or a JPEG does. It does not decode the image:
a screen that cannot draw it shows the placeholder.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Final

from protocol import limits, signed
from protocol.fields import BASE64, DEVICE_ID, Field, bad_field, decode_fields, envelope, integer, matching, text
from protocol.keys import SigningKey, VerifyKey
from protocol.signed import Purpose

__all__ = [
    "CARD_FIELDS",
    "MAX_PHOTO_CHARS",
    "PHOTO_MAGIC",
    "Card",
    "ClerkCard",
    "decode_card",
    "encode_card",
    "photo_problem",
    "verify_card",
]

# The first bytes of the image formats a card may carry.
PHOTO_MAGIC: Final = {"PNG": b"\x89PNG\r\n\x1a\n", "JPEG": b"\xff\xd8\xff"}
MAX_PHOTO_CHARS: Final = 4 * -(-limits.MAX_PHOTO_BYTES // 3)  # the base64 of MAX_PHOTO_BYTES


@dataclass(frozen=True, slots=True)
class ClerkCard:
    """What a screen shows of the clerk at its counter. `department` and `counter` are display
    names ('' when the directory has none that day); `photo` is PNG or JPEG bytes, or None (the
    screen shows a placeholder)."""

    staff: str
    name: str
    department: str
    counter: str
    photo: bytes | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Card:
    """A card as it goes on the wire; `photo` is its base64 text (see the module's text)."""

    device: str
    version: int  # from one counter of the hub's: grows with every card it makes, for any terminal
    t: int  # hub clock when signed, UTC ms
    staff: str
    name: str
    department: str | None = None
    counter: str | None = None
    photo: str | None = None
    sig: str = ""

    def fields(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "version": self.version,
            "t": self.t,
            "staff": self.staff,
            "name": self.name,
            "department": self.department,
            "counter": self.counter,
            "photo": self.photo,
            "sig": self.sig,
        }

    @property
    def clerk(self) -> ClerkCard:
        photo = None if self.photo is None else base64.b64decode(self.photo, validate=True)
        return ClerkCard(self.staff, self.name, self.department or "", self.counter or "", photo)

    @classmethod
    def of(cls, clerk: ClerkCard, *, device: str, version: int, t: int) -> Card:
        """The unsigned card of `clerk` for `device`."""
        return cls(
            device=device,
            version=version,
            t=t,
            staff=clerk.staff,
            name=clerk.name,
            department=clerk.department or None,
            counter=clerk.counter or None,
            photo=None if clerk.photo is None else base64.b64encode(clerk.photo).decode("ascii"),
        )


CARD_FIELDS: Final[dict[str, Field]] = {
    **envelope("card", limits.CONTROL_VERSION),
    "device": matching(DEVICE_ID, doc="the terminal the card is for: the topic's device"),
    "version": integer(
        1, limits.MAX_COUNTER, doc="from one counter of the hub's, for any terminal; a lower one is `rollback`"
    ),
    "t": integer(0, limits.MAX_MS, doc="hub clock when signed, UTC ms"),
    "staff": text(limits.MAX_ID_CHARS, doc="the clerk's staff id (the staff number shown)"),
    "name": text(limits.MAX_NAME_CHARS, doc="the clerk's name"),
    "department": text(
        limits.MAX_NAME_CHARS, required=False, doc="the clerk's department that day, by name; absent: none"
    ),
    "counter": text(
        limits.MAX_NAME_CHARS, required=False, doc="the counter the terminal stands at that day, by name; absent: none"
    ),
    "photo": matching(
        BASE64,
        required=False,
        doc=f"the clerk's photo: standard base64 of a PNG or JPEG file of at most {limits.MAX_PHOTO_BYTES} bytes; "
        "absent: a placeholder",
    ),
    "sig": signed.SIG_FIELD,
}


def photo_problem(photo: bytes) -> str | None:
    """Why `photo` cannot go on a card (too big, neither PNG nor JPEG), or None."""
    if len(photo) > limits.MAX_PHOTO_BYTES:
        return f"the photo is {len(photo)} bytes, over the card's limit of {limits.MAX_PHOTO_BYTES}"
    if not any(photo.startswith(magic) for magic in PHOTO_MAGIC.values()):
        return "the photo is neither a PNG nor a JPEG file (by its first bytes)"
    return None


def encode_card(card: Card, key: SigningKey) -> bytes:
    """The card's wire bytes, signed with the hub's key; ValueError for a photo the decoder would refuse."""
    if card.photo is not None:
        problem = _photo_text_problem(card.photo)
        if problem is not None:
            raise ValueError(problem)
    return signed.sign(key, Purpose.CARD, "card", card.fields())


def verify_card(card: Card, key: VerifyKey) -> None:
    """AuthError(bad_signature) unless the hub key `key` signed this card."""
    signed.verify(key, Purpose.CARD, "card", card.fields(), device=card.device, who="the pinned hub key")


def decode_card(raw: bytes) -> Card:
    """DecodeError for anything but a canonical v2 card, naming the field that breaks its rule."""
    obj = decode_fields(raw, "card", CARD_FIELDS, limits.CONTROL_VERSION)
    card = Card(
        device=obj["device"],
        version=obj["version"],
        t=obj["t"],
        staff=obj["staff"],
        name=obj["name"],
        department=obj.get("department"),
        counter=obj.get("counter"),
        photo=obj.get("photo"),
        sig=obj["sig"],
    )
    if card.photo is not None:
        problem = _photo_text_problem(card.photo)
        if problem is not None:
            raise bad_field(f"card photo: {problem}", card.device)
    return card


def _photo_text_problem(photo: str) -> str | None:
    # The length first: a long text is refused before it is decoded.
    if len(photo) > MAX_PHOTO_CHARS:
        return f"{len(photo)} base64 characters is over {MAX_PHOTO_CHARS} ({limits.MAX_PHOTO_BYTES} bytes)"
    try:
        data = base64.b64decode(photo, validate=True)
    except (binascii.Error, ValueError):
        return "not standard base64 (A-Z a-z 0-9 + /, padded with =)"
    if base64.b64encode(data).decode("ascii") != photo:
        return "not the canonical base64 of its bytes"
    return photo_problem(data)
