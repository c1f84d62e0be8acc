"""Rating record v1: the signed, hash-chained unit of everything pingjia counts.

A record is created once, on the terminal, when a customer's press (or an unanswered invitation) is
stored; it is never edited. A correction is a new record of kind `amend` naming the seq it replaces.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Final

from protocol import canonical, limits
from protocol.canonical import show, show_names
from protocol.compact import compact_pickle
from protocol.fields import (
    BASE64,
    BOOT,
    DEVICE_ID,
    HEX64,
    HEX128,
    bad_field,
    check_keys,
    check_version,
    checked_int,
    checked_text,
    mismatch,
    valid_device_id,
)
from protocol.keys import RECORD_CONTEXT, SigningKey, VerifyKey, leaf_hash
from protocol.limits import MAX_FW_CHARS, MAX_ID_CHARS, MAX_MS, MAX_SEQ, MAX_TICKET_CHARS

__all__ = ["INDICATORS", "Flag", "Kind", "Rating", "rating_from_wire"]


class Kind(StrEnum):
    PRESS = "press"  # a customer pressed a key
    TIMEOUT = "timeout"  # invited to rate, no press within the window; no score
    AMEND = "amend"  # corrects the record `amends` of the same device; the hub counts the latest


class Flag(StrEnum):
    MISUSE = "misuse"  # pressed within the misuse interval after a rating; kept, left out of figures
    UNINVITED = "uninvited"  # pressed with no open invitation while the terminal runs in invited mode


# The sub-scores a customer may give after the overall level: the national offline indicators
# 服务态度 (attitude), 办理效率 (efficiency) and 业务水平 (competence), each a level 1..5.
INDICATORS: Final = ("attitude", "efficiency", "competence")

REQUIRED: Final = frozenset({"v", "device", "seq", "kind", "t", "boot", "mono", "fw", "prev", "sig"})
OPTIONAL: Final = frozenset({"staff", "score", "amends", "reasons", "subscores", "contact", "ticket", "flags"})
_ALL: Final = REQUIRED | OPTIONAL
_FLAGS: Final = frozenset(flag.value for flag in Flag)
_KINDS: Final = {kind.value: kind for kind in Kind}
# Bound once: the validator below runs for every record of every batch.
_boot = BOOT.fullmatch
_hex64 = HEX64.fullmatch
_hex128 = HEX128.fullmatch
_base64 = BASE64.fullmatch


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
    # (indicator, level 1..5), at most one per indicator of INDICATORS, sorted by indicator (the wire
    # form is an object, so the order carries nothing; sorted, a decoded record equals the one made)
    subscores: tuple[tuple[str, int], ...] = ()
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
        if self.subscores:
            wire["subscores"] = dict(self.subscores)
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


def rating_from_wire(obj: object) -> Rating:
    """Validate one decoded record object and build the Rating; raise DecodeError naming the field.

    Does not check the signature or the chain: that is the batch's (or an audit's) job.
    """
    if type(obj) is not dict:
        raise bad_field(f"a record must be a JSON object, got {type(obj).__name__}")
    check_keys(obj, REQUIRED, _ALL, "record")
    check_version(obj["v"], "record")
    device = obj["device"]
    if not valid_device_id(device):
        raise mismatch(device, DEVICE_ID, "device id")
    seq = checked_int(obj["seq"], 1, MAX_SEQ, "seq", device=device)
    named = obj["kind"]
    kind = _KINDS.get(named) if type(named) is str else None  # a dict lookup: Kind(named) costs eight times as much
    if kind is None:
        raise bad_field(f"kind must be one of {list(_KINDS)}, got {show(named)}", device, seq)
    t = checked_int(obj["t"], 0, MAX_MS, "t", device=device, seq=seq)
    mono = checked_int(obj["mono"], 0, MAX_MS, "mono", device=device, seq=seq)
    boot = obj["boot"]
    if type(boot) is not str or _boot(boot) is None:
        raise mismatch(boot, BOOT, "boot", device=device, seq=seq)
    fw = checked_text(obj["fw"], MAX_FW_CHARS, "fw", device=device, seq=seq)
    prev = obj["prev"]
    if type(prev) is not str or _hex64(prev) is None:
        raise mismatch(prev, HEX64, "prev", device=device, seq=seq)
    sig = obj["sig"]
    if type(sig) is not str or _hex128(sig) is None:
        raise mismatch(sig, HEX128, "sig", device=device, seq=seq)

    staff = checked_text(obj["staff"], MAX_ID_CHARS, "staff", device=device, seq=seq) if "staff" in obj else None
    score = checked_int(obj["score"], 1, 5, "score", device=device, seq=seq) if "score" in obj else None
    amends = None
    if "amends" in obj:
        amends = checked_int(obj["amends"], 1, seq - 1, "amends", device=device, seq=seq)
    ticket = None
    if "ticket" in obj:
        ticket = checked_text(obj["ticket"], MAX_TICKET_CHARS, "ticket", device=device, seq=seq)
    contact = None
    if "contact" in obj:
        contact = checked_text(obj["contact"], limits.MAX_CONTACT_CHARS, "contact", device=device, seq=seq)
        if _base64(contact) is None:
            raise mismatch(contact, BASE64, "contact", device=device, seq=seq)
    reasons: tuple[int, ...] = ()
    if "reasons" in obj:
        raw = obj["reasons"]
        if (
            type(raw) is not list
            or not 0 < len(raw) <= limits.MAX_REASONS
            or any(type(r) is not int or not 1 <= r <= limits.MAX_REASON_CODE for r in raw)
            or len(set(raw)) != len(raw)
        ):
            raise bad_field(
                f"reasons must be 1..{limits.MAX_REASONS} distinct integers in 1..{limits.MAX_REASON_CODE}",
                device=device,
                seq=seq,
            )
        reasons = tuple(raw)
    subscores: tuple[tuple[str, int], ...] = ()
    if "subscores" in obj:
        subscores = _subscores(obj["subscores"], device, seq)
    flags: tuple[Flag, ...] = ()
    if "flags" in obj:
        raw = obj["flags"]
        if (
            type(raw) is not list
            or not raw
            or any(type(f) is not str or f not in _FLAGS for f in raw)
            or raw != sorted(set(raw))
        ):
            raise bad_field(
                f"flags must be a non-empty sorted list of distinct {sorted(_FLAGS)}", device=device, seq=seq
            )
        flags = tuple(Flag(f) for f in raw)

    if kind is Kind.TIMEOUT:
        if score is not None or amends is not None or reasons or subscores:
            raise bad_field("a timeout record has no score, amends, reasons or subscores", device, seq)
        if staff is None:
            raise bad_field("a timeout record names the staff member who invited", device, seq)
    elif score is None:
        raise bad_field(f"a {kind.value} record needs a score", device, seq)
    if kind is Kind.AMEND:
        if amends is None or staff is None:
            raise bad_field("an amend record names the seq it corrects and the staff member", device, seq)
    elif amends is not None:
        raise bad_field(f"only amend records carry amends, this one is {kind.value}", device, seq)

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
        subscores=subscores,
        contact=contact,
        ticket=ticket,
        flags=flags,
    )


def _subscores(raw: object, device: str, seq: int) -> tuple[tuple[str, int], ...]:
    """The `subscores` object as sorted (indicator, level) pairs; DecodeError(bad_field) saying what
    is wrong with it."""
    if type(raw) is not dict:
        raise bad_field(f"subscores must be a JSON object, got {type(raw).__name__}", device, seq)
    if not raw:
        raise bad_field("subscores must not be empty (leave the field out)", device, seq)
    unknown = sorted(name for name in raw if name not in INDICATORS)
    if unknown:
        raise bad_field(
            f"subscores: unknown indicators {show_names(unknown)}; known: {', '.join(INDICATORS)}", device, seq
        )
    for name, level in raw.items():
        checked_int(level, 1, 5, f"subscores {name}", device=device, seq=seq)
    return tuple(sorted(raw.items()))
