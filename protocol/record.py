"""Rating record v1: the signed, hash-chained unit of everything pingjia counts.

A record is created once, on the terminal, when a customer's press (or an unanswered invitation) is
stored; it is never edited. A correction is a new record of kind `amend` naming the seq it replaces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Final

from protocol import canonical, limits
from protocol.canonical import show, show_names
from protocol.compact import compact_pickle
from protocol.errors import DecodeError, Reason
from protocol.keys import RECORD_CONTEXT, SigningKey, VerifyKey, leaf_hash

__all__ = ["DEVICE_ID", "Flag", "Kind", "Rating", "rating_from_wire", "valid_device_id"]

DEVICE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_HEX64: Final = re.compile(r"[0-9a-f]{64}")
_HEX128: Final = re.compile(r"[0-9a-f]{128}")
_BOOT: Final = re.compile(rf"[A-Za-z0-9-]{{1,{limits.MAX_BOOT_CHARS}}}")
_BASE64: Final = re.compile(r"[A-Za-z0-9+/=_-]+")


class Kind(StrEnum):
    PRESS = "press"  # a customer pressed a key
    TIMEOUT = "timeout"  # invited to rate, no press within the window; no score
    AMEND = "amend"  # corrects the record `amends` of the same device; the hub counts the latest


class Flag(StrEnum):
    MISUSE = "misuse"  # pressed within the misuse interval after a rating; kept, left out of figures
    UNINVITED = "uninvited"  # pressed with no open invitation while the terminal runs in invited mode


REQUIRED: Final = frozenset({"v", "device", "seq", "kind", "t", "boot", "mono", "fw", "prev", "sig"})
OPTIONAL: Final = frozenset({"staff", "score", "amends", "reasons", "contact", "ticket", "flags"})
_ALL: Final = REQUIRED | OPTIONAL
_FLAGS: Final = frozenset(flag.value for flag in Flag)


def valid_device_id(text: object) -> bool:
    return isinstance(text, str) and DEVICE_ID.fullmatch(text) is not None


@compact_pickle
@dataclass(frozen=True, slots=True, kw_only=True)
class Rating:
    """One rating record. Times: `t` is the terminal's wall clock in UTC ms (it may be wrong),
    `mono` is ms since the boot named by `boot` (it is never wrong within a boot)."""

    device: str
    seq: int
    kind: Kind
    t: int
    boot: str
    mono: int
    fw: str
    prev: str
    sig: str = ""
    staff: str | None = None  # None: nobody logged in (an unattended press, counted for no one)
    score: int | None = None  # 1..5; None only for a timeout
    amends: int | None = None
    reasons: tuple[int, ...] = ()
    contact: str | None = None  # sealed to the hub's key; opaque to the terminal
    ticket: str | None = None  # the queue system's service ticket
    flags: tuple[Flag, ...] = ()

    def unsigned_wire(self) -> dict[str, Any]:
        """The record as a JSON object without `sig`, defaults omitted."""
        wire: dict[str, Any] = {
            "v": limits.VERSION,
            "device": self.device,
            "seq": self.seq,
            "kind": self.kind.value,
            "t": self.t,
            "boot": self.boot,
            "mono": self.mono,
            "fw": self.fw,
            "prev": self.prev,
        }
        if self.staff is not None:
            wire["staff"] = self.staff
        if self.score is not None:
            wire["score"] = self.score
        if self.amends is not None:
            wire["amends"] = self.amends
        if self.reasons:
            wire["reasons"] = list(self.reasons)
        if self.contact is not None:
            wire["contact"] = self.contact
        if self.ticket is not None:
            wire["ticket"] = self.ticket
        if self.flags:
            wire["flags"] = [flag.value for flag in self.flags]
        return wire

    def wire(self) -> dict[str, Any]:
        wire = self.unsigned_wire()
        wire["sig"] = self.sig
        return wire

    def canonical(self) -> bytes:
        """Canonical bytes of the whole record, signature included (what the chain hashes)."""
        return canonical.encode(self.wire())

    def signing_bytes(self) -> bytes:
        return canonical.encode(self.unsigned_wire())

    def signed(self, key: SigningKey) -> Rating:
        return replace(self, sig=key.sign(RECORD_CONTEXT, self.signing_bytes()).hex())

    def verify(self, key: VerifyKey) -> bool:
        """True if this record's own signature holds (the audit path; ingest checks batch heads)."""
        try:
            signature = bytes.fromhex(self.sig)
        except ValueError:
            return False
        return key.verify(signature, RECORD_CONTEXT, self.signing_bytes())

    def hash(self) -> str:
        return leaf_hash(self.canonical())


def _fail(detail: str, device: str | None = None, seq: int | None = None) -> DecodeError:
    return DecodeError(detail, reason=Reason.BAD_FIELD, device=device, seq=seq)


def _int(obj: dict[str, Any], key: str, low: int, high: int, *, device: str | None, seq: int | None) -> int:
    value = obj[key]
    if type(value) is not int or not low <= value <= high:
        raise _fail(f"{key} must be an integer in {low}..{high}, got {show(value)}", device, seq)
    return value


def _text(obj: dict[str, Any], key: str, most: int, *, device: str | None, seq: int | None) -> str:
    value = obj[key]
    if type(value) is not str or not 0 < len(value) <= most or not value.isprintable():
        raise _fail(f"{key} must be 1..{most} printable characters, got {show(value)}", device, seq)
    return value


def rating_from_wire(obj: object) -> Rating:
    """Validate one decoded record object and build the Rating; raise DecodeError naming the field.

    Does not check the signature or the chain: that is the batch's (or an audit's) job.
    """
    if type(obj) is not dict:
        raise _fail(f"a record must be a JSON object, got {type(obj).__name__}")
    keys = obj.keys()
    if not keys >= REQUIRED or not keys <= _ALL:
        missing = sorted(REQUIRED - keys)
        unknown = sorted(keys - _ALL)
        device = obj.get("device")
        raise _fail(
            f"record fields: missing {missing}, unknown {show_names(unknown)}",
            device if valid_device_id(device) else None,
            None,
        )
    if obj["v"] != limits.VERSION or type(obj["v"]) is not int:
        raise DecodeError(f"record version {show(obj['v'])} is not 1", reason=Reason.UNKNOWN_VERSION)
    device = obj["device"]
    if not valid_device_id(device):
        raise _fail(f"device id {show(device)} is not 1..64 of [A-Za-z0-9_.-]")
    seq = _int(obj, "seq", 1, limits.MAX_SEQ, device=device, seq=None)
    try:
        kind = Kind(obj["kind"])
    except (ValueError, TypeError):
        raise _fail(f"kind must be one of {[k.value for k in Kind]}, got {show(obj['kind'])}", device, seq) from None
    t = _int(obj, "t", 0, limits.MAX_MS, device=device, seq=seq)
    mono = _int(obj, "mono", 0, limits.MAX_MS, device=device, seq=seq)
    boot = obj["boot"]
    if type(boot) is not str or _BOOT.fullmatch(boot) is None:
        raise _fail(f"boot must be 1..64 of [A-Za-z0-9-], got {show(boot)}", device, seq)
    fw = _text(obj, "fw", limits.MAX_FW_CHARS, device=device, seq=seq)
    prev = obj["prev"]
    if type(prev) is not str or _HEX64.fullmatch(prev) is None:
        raise _fail("prev must be 64 lowercase hex digits", device, seq)
    sig = obj["sig"]
    if type(sig) is not str or _HEX128.fullmatch(sig) is None:
        raise _fail("sig must be 128 lowercase hex digits", device, seq)

    staff = _text(obj, "staff", limits.MAX_ID_CHARS, device=device, seq=seq) if "staff" in obj else None
    score = _int(obj, "score", 1, 5, device=device, seq=seq) if "score" in obj else None
    amends = _int(obj, "amends", 1, seq - 1 if seq > 1 else 0, device=device, seq=seq) if "amends" in obj else None
    ticket = _text(obj, "ticket", limits.MAX_TICKET_CHARS, device=device, seq=seq) if "ticket" in obj else None
    contact = None
    if "contact" in obj:
        contact = _text(obj, "contact", limits.MAX_CONTACT_CHARS, device=device, seq=seq)
        if _BASE64.fullmatch(contact) is None:
            raise _fail("contact must be base64 text (sealed on the terminal)", device, seq)
    reasons: tuple[int, ...] = ()
    if "reasons" in obj:
        raw = obj["reasons"]
        if (
            type(raw) is not list
            or not 0 < len(raw) <= limits.MAX_REASONS
            or any(type(r) is not int or not 1 <= r <= limits.MAX_REASON_CODE for r in raw)
            or len(set(raw)) != len(raw)
        ):
            raise _fail(
                f"reasons must be 1..{limits.MAX_REASONS} distinct integers in 1..{limits.MAX_REASON_CODE}",
                device,
                seq,
            )
        reasons = tuple(raw)
    flags: tuple[Flag, ...] = ()
    if "flags" in obj:
        raw = obj["flags"]
        if (
            type(raw) is not list
            or not raw
            or any(type(f) is not str or f not in _FLAGS for f in raw)
            or raw != sorted(set(raw))
        ):
            raise _fail(f"flags must be a non-empty sorted list of distinct {sorted(_FLAGS)}", device, seq)
        flags = tuple(Flag(f) for f in raw)

    if kind is Kind.TIMEOUT:
        if score is not None or amends is not None or reasons:
            raise _fail("a timeout record has no score, amends or reasons", device, seq)
        if staff is None:
            raise _fail("a timeout record names the staff member who invited", device, seq)
    elif score is None:
        raise _fail(f"a {kind.value} record needs a score", device, seq)
    if kind is Kind.AMEND:
        if amends is None or staff is None:
            raise _fail("an amend record names the seq it corrects and the staff member", device, seq)
    elif amends is not None:
        raise _fail(f"only amend records carry amends, this one is {kind.value}", device, seq)

    return Rating(
        device=device,
        seq=seq,
        kind=kind,
        t=t,
        boot=boot,
        mono=mono,
        fw=fw,
        prev=prev,
        sig=sig,
        staff=staff,
        score=score,
        amends=amends,
        reasons=reasons,
        contact=contact,
        ticket=ticket,
        flags=flags,
    )
