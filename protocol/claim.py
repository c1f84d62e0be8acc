"""Claiming a registration over MQTT: pairing a terminal without a laptop (pure computation, no I/O).

The models are AWS IoT's fleet provisioning by claim and ThingsBoard's device provisioning: a
short-lived claim credential that can do one thing, trade itself for the device's own credential.

1. A terminal that is not paired shows its pairing code (6 digits, 10 minutes, one use).
2. The operator types the code at the hub (`pingjia hub claim CODE --department D --counter C`).
   The hub keeps no code: it opens a broker account named `claim_user(code)` with the password
   `claim_password(code)`, good for 10 minutes, which may only publish
   `pingjia/claim/<claim-user>/request` and read `pingjia/claim/<claim-user>/reply`.
3. The terminal derives the same account from the code it shows (so nothing secret is stored in
   advance), connects with it, and publishes a `claim` request: its device id, its Ed25519 key and a
   fresh X25519 key for the answer, signed with its own key (context `pingjia/v2/claim-request`).
   It sends it again every few seconds until it is answered or the code changes.
4. The hub checks the request, registers the terminal, closes the claim account and answers with a
   `claimed` message signed with its key (purpose `claim`): its two public keys, the terminal's own
   broker account with the password sealed to the request's X25519 key, and where the terminal
   stands. The answer repeats the claim account, device, key and reply key of the request it
   answers, so that it cannot be taken for the answer to another request.
5. The terminal checks the answer with the hub key the answer carries: trust on first use, as a
   technician's first `pair` is. What vouches for it is the channel: only hub accounts may publish
   on a reply topic, and the topic is named after the code the terminal shows.

What the code is worth: the claim account's name and password are hashes of a 6-digit code, so
they are exactly as strong as the code (a million guesses; whoever sees a claim account's name in
a broker log or file can find its code). The password only has to be there because the broker
takes no account without one. The protection is elsewhere: the account exists only between the
operator typing the code and the terminal's claim (seconds, at most 10 minutes), it is closed by
the first claim, and nothing secret passes in the clear on it (the terminal's password is sealed
to a key only the requesting terminal holds).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from protocol import canonical, limits, signed
from protocol.canonical import show
from protocol.console import CODE_DIGITS, CODE_LIFETIME_MS, MAX_SECRET_CHARS, MAX_URL_CHARS
from protocol.errors import AuthError, DecodeError, Reason
from protocol.fields import (
    BASE64,
    DEVICE_ID,
    HEX64,
    Field,
    bad_field,
    decode_fields,
    envelope,
    matching,
    text,
)
from protocol.keys import SigningKey, VerifyKey
from protocol.sealed import SealKey, open_sealed, seal
from protocol.signed import Purpose

__all__ = [
    "CLAIMED_FIELDS",
    "CLAIM_FIELDS",
    "CLAIM_LIFETIME_MS",
    "CLAIM_PREFIX",
    "REPLY_KIND",
    "REQUEST_CONTEXT",
    "REQUEST_KIND",
    "ClaimReply",
    "ClaimRequest",
    "check_code",
    "claim_password",
    "claim_user",
    "decode_reply",
    "decode_request",
    "encode_reply",
    "encode_request",
    "open_password",
    "seal_password",
    "verify_reply",
    "verify_request",
]

CLAIM_PREFIX: Final = "claim-"  # the broker role's prefix (hub.brokerconf): no terminal may be named so
CLAIM_LIFETIME_MS: Final = CODE_LIFETIME_MS  # a claim account lives as long as a code is good
REQUEST_CONTEXT: Final = b"pingjia/v2/claim-request\x00"  # what a terminal signs its claim request under
REQUEST_KIND: Final = "claim"
REPLY_KIND: Final = "claimed"

_USER_LABEL: Final = b"pingjia/v2/claim-user\x00"
_PASSWORD_SALT: Final = b"pingjia/v2/claim-password"
_PASSWORD_INFO: Final = b"pingjia/v2/claim-password\x00broker"
_SEAL_LABEL: Final = "pingjia/v2/claim-password"
_CODE: Final = re.compile(rf"[0-9]{{{CODE_DIGITS}}}")
_PLACE: Final = limits.MAX_ID_CHARS
# A sealed password: base64 of a 32-byte key, a 12-byte nonce, the password and a 16-byte tag.
_MAX_SEALED_CHARS: Final = 4 * -(-(32 + 12 + MAX_SECRET_CHARS * 4 + 16) // 3)


# -- the claim account a code names ----------------------------------------------------------------


def check_code(code: str) -> str:
    """`code` if it is a pairing code (6 ASCII digits); ValueError if not."""
    if not isinstance(code, str) or _CODE.fullmatch(code) is None:
        raise ValueError(f"a pairing code is {CODE_DIGITS} digits, not {show(code)}")
    return code


def claim_user(code: str) -> str:
    """The claim account's username for pairing code `code`: `claim-` and the first 16 hex digits
    of SHA-256("pingjia/v2/claim-user" NUL code). ValueError if `code` is not 6 digits."""
    digest = hashlib.sha256(_USER_LABEL + check_code(code).encode("ascii")).hexdigest()
    return CLAIM_PREFIX + digest[:16]


def claim_password(code: str) -> str:
    """The claim account's password for pairing code `code`: 64 hex digits of HKDF-SHA256 of the
    code, with a fixed salt and a label of its own (so it is not the username's hash). ValueError
    if `code` is not 6 digits."""
    kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_PASSWORD_SALT, info=_PASSWORD_INFO)
    return kdf.derive(check_code(code).encode("ascii")).hex()


# -- the terminal's request ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimRequest:
    """A terminal claiming its registration through claim account `account`.

    `pubkey` is its Ed25519 key (hex), which signs the request (`sig`); `reply_key` is a fresh
    X25519 public key (hex) the hub seals the terminal's broker password to.
    """

    account: str
    device: str
    pubkey: str
    reply_key: str
    sig: str = ""

    def fields(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "device": self.device,
            "pubkey": self.pubkey,
            "reply_key": self.reply_key,
            "sig": self.sig,
        }


CLAIM_FIELDS: Final[dict[str, Field]] = signed.signed_fields(
    {
        **envelope(REQUEST_KIND, limits.CONTROL_VERSION),
        "account": matching(DEVICE_ID, doc="the claim account it is sent through (`claim-...`)"),
        "device": matching(DEVICE_ID, doc="the terminal's device id"),
        "pubkey": matching(HEX64, doc="the terminal's Ed25519 public key: it signs this request"),
        "reply_key": matching(HEX64, doc="a fresh X25519 public key: the hub seals the terminal's password to it"),
    }
)


def encode_request(key: SigningKey, *, code: str, device: str, reply_key: str) -> bytes:
    """The wire bytes of a claim request for pairing code `code` by terminal `device`, whose key
    `key` signs it (context `pingjia/v2/claim-request`). ValueError for a code that is not one or a
    device id or reply key of the wrong shape."""
    if DEVICE_ID.fullmatch(device) is None:
        raise ValueError(f"device id {device!r} cannot claim: it is not a device id")
    if HEX64.fullmatch(reply_key) is None:
        raise ValueError("reply_key must be an X25519 public key, 64 lowercase hex digits")
    request = ClaimRequest(account=claim_user(code), device=device, pubkey=key.public.hex, reply_key=reply_key)
    return _signed_with(key, REQUEST_CONTEXT, REQUEST_KIND, request.fields())


def decode_request(raw: bytes) -> ClaimRequest:
    """Decode a claim request (v2); DecodeError for anything that is not one. Its signature is
    checked by `verify_request`."""
    obj = decode_fields(raw, REQUEST_KIND, CLAIM_FIELDS, limits.CONTROL_VERSION)
    if not obj["account"].startswith(CLAIM_PREFIX):
        raise bad_field(f"claim account must start {CLAIM_PREFIX!r}, got {show(obj['account'])}", obj["device"])
    return ClaimRequest(**obj)


def verify_request(request: ClaimRequest, claim_account: str) -> None:
    """AuthError unless the request was signed with the key it names and came through
    `claim_account` (the account of the topic it arrived on): bad_signature, or topic_mismatch for
    a request made for another claim account."""
    if request.account != claim_account:
        raise AuthError(
            f"a claim request for account {request.account} arrived through {claim_account}",
            reason=Reason.TOPIC_MISMATCH,
            device=request.device,
        )
    sig = request.sig
    try:
        key = VerifyKey.from_hex(request.pubkey)
        good = key.verify(bytes.fromhex(sig), REQUEST_CONTEXT, signed.body(REQUEST_KIND, request.fields()))
    except (DecodeError, ValueError):  # not a key cryptography takes; a sig that is not hex
        good = False
    if not good:
        raise AuthError(
            "claim request signature does not verify with the key it names",
            reason=Reason.BAD_SIGNATURE,
            device=request.device,
        )


# -- the hub's answer ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimReply:
    """The hub's answer to one claim request (`account`, `device`, `pubkey`, `reply_key` repeat it).

    `hub_sign` signed it (`sig`, purpose `claim`); `hub_seal` is the key the terminal seals
    customers' contacts to. `username` and `password` are the terminal's own broker account, the
    password sealed to `reply_key`; `broker`, if set, is where to reach it (None: the broker the
    claim went through). `by` entered the code at the hub.
    """

    account: str
    device: str
    pubkey: str
    reply_key: str
    hub_sign: str
    hub_seal: str
    username: str
    password: str  # sealed (base64), see `open_password`
    department: str
    counter: str
    by: str
    site: str | None = None
    broker: str | None = None
    sig: str = ""

    def fields(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "device": self.device,
            "pubkey": self.pubkey,
            "reply_key": self.reply_key,
            "hub_sign": self.hub_sign,
            "hub_seal": self.hub_seal,
            "username": self.username,
            "password": self.password,
            "department": self.department,
            "counter": self.counter,
            "by": self.by,
            "site": self.site,
            "broker": self.broker,
            "sig": self.sig,
        }

    def __repr__(self) -> str:  # the sealed password is no secret, but it says nothing to a reader either
        return (
            f"ClaimReply(device={self.device!r}, hub={self.hub_sign[:16]}, username={self.username!r}, "
            f"department={self.department!r}, counter={self.counter!r}, by={self.by!r})"
        )


CLAIMED_FIELDS: Final[dict[str, Field]] = signed.signed_fields(
    {
        **envelope(REPLY_KIND, limits.CONTROL_VERSION),
        "account": matching(DEVICE_ID, doc="the claim account the request came through"),
        "device": matching(DEVICE_ID, doc="the request's device id"),
        "pubkey": matching(HEX64, doc="the request's Ed25519 key: the key the hub registered"),
        "reply_key": matching(HEX64, doc="the request's X25519 key: `password` is sealed to it"),
        "hub_sign": matching(HEX64, doc="the hub's Ed25519 public key, to pin: it signs this answer"),
        "hub_seal": matching(HEX64, doc="the hub's X25519 public key, to pin (sealed contacts)"),
        "username": matching(DEVICE_ID, doc="the terminal's own broker account"),
        "password": matching(BASE64, doc="its password, sealed to `reply_key` (protocol/sealed.py)"),
        "department": text(_PLACE, doc="the terminal's department"),
        "counter": text(_PLACE, doc="its counter (window)"),
        "by": text(_PLACE, doc="who entered the code at the hub"),
        "site": text(_PLACE, required=False, doc="the site (hall) it stands in"),
        "broker": text(
            MAX_URL_CHARS, required=False, doc="`mqtt(s)://host:port` to use from now on; absent: the claim's broker"
        ),
    }
)


def _associated(device: str, pubkey: str) -> bytes:
    # The sealed password opens only as this terminal's (with this key): moved into another answer,
    # it does not open.
    return f"{_SEAL_LABEL}\x00{device}\x00{pubkey}".encode()


def seal_password(request: ClaimRequest, password: str) -> str:
    """`password` sealed to the request's reply key, for the answer's `password` (base64 text).
    ValueError for an empty password or one over 128 characters; DecodeError(bad_field) for a
    reply key no key can be agreed with."""
    if not 0 < len(password) <= MAX_SECRET_CHARS:
        raise ValueError(f"a broker password is 1..{MAX_SECRET_CHARS} characters")
    try:
        return seal(request.reply_key, password.encode("utf-8"), _associated(request.device, request.pubkey))
    except ValueError as exc:  # a point of small order: no shared key can be made with it
        raise bad_field(f"reply_key is not a usable X25519 key: {exc}", request.device) from None


def encode_reply(reply: ClaimReply, key: SigningKey) -> bytes:
    """The answer's wire bytes, signed with the hub's key (purpose `claim`)."""
    return signed.sign(key, Purpose.CLAIM, REPLY_KIND, reply.fields())


def decode_reply(raw: bytes) -> ClaimReply:
    """Decode a claim answer (v2); DecodeError for anything that is not one. Check it with
    `verify_reply` before anything of it is used."""
    obj = decode_fields(raw, REPLY_KIND, CLAIMED_FIELDS, limits.CONTROL_VERSION)
    if len(obj["password"]) > _MAX_SEALED_CHARS:
        raise bad_field(f"claimed password must be at most {_MAX_SEALED_CHARS} characters of base64", obj["device"])
    return ClaimReply(**obj)


def verify_reply(reply: ClaimReply, request: ClaimRequest) -> None:
    """AuthError unless `reply` answers `request` (replayed: the answer to another request, or for
    another terminal) and is signed by the hub key it carries (bad_signature)."""
    asked = (request.account, request.device, request.pubkey, request.reply_key)
    answered = (reply.account, reply.device, reply.pubkey, reply.reply_key)
    if asked != answered:
        names = ("account", "device", "pubkey", "reply_key")
        wrong = [name for name, mine, theirs in zip(names, asked, answered, strict=True) if mine != theirs]
        raise AuthError(
            f"the claim answer is for another request (its {', '.join(wrong)} differ)",
            reason=Reason.REPLAYED,
            device=request.device,
        )
    try:
        key = VerifyKey.from_hex(reply.hub_sign)
    except (DecodeError, ValueError):
        raise AuthError(
            "the claim answer's hub_sign is not an Ed25519 key", reason=Reason.BAD_SIGNATURE, device=request.device
        ) from None
    signed.verify(key, Purpose.CLAIM, REPLY_KIND, reply.fields(), device=request.device, who="the hub key it carries")


def open_password(reply: ClaimReply, reply_key: SealKey) -> str:
    """The terminal's broker password from a verified answer, opened with the private half of the
    request's reply key. DecodeError(bad_field) if it does not open, or is not a password."""
    plain = open_sealed(reply_key, reply.password, _associated(reply.device, reply.pubkey))
    try:
        password = plain.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_field("the sealed password is not UTF-8", reply.device) from None
    if not 0 < len(password) <= MAX_SECRET_CHARS or not password.isprintable():
        raise bad_field(f"the sealed password is not 1..{MAX_SECRET_CHARS} printable characters", reply.device)
    return password


def _signed_with(key: SigningKey, context: bytes, kind: str, fields: dict[str, Any]) -> bytes:
    """protocol.signed's rule (the canonical message without `sig`, signed after a context) under a
    context of our own: a terminal's request is no hub message and takes no hub purpose."""
    sig = key.sign(context, signed.body(kind, fields)).hex()
    wire = {name: value for name, value in fields.items() if name != "sig" and value is not None}
    return canonical.encode({**wire, "v": limits.CONTROL_VERSION, "type": kind, "sig": sig})
