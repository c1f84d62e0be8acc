"""Messages: batch (terminal -> hub, v1), ack (hub -> terminal, v2, signed), status (retained, v2, signed).

Every message is canonical JSON (see protocol.canonical) with "type" and "v". Decoders take bytes and
return values or raise a DecodeError whose reason names what was wrong; `verify_*` raise an
AuthError. Nothing here touches a socket, a file or a clock: callers pass times in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from protocol import canonical, limits, signed
from protocol.canonical import printable, show
from protocol.compact import compact_pickle
from protocol.errors import AuthError, DecodeError, ProtocolError, Reason
from protocol.fields import (
    DEVICE_ID,
    HEX64,
    HEX128,
    Field,
    bad_field,
    check_keys,
    check_version,
    checked_int,
    decode_fields,
    envelope,
    integer,
    matching,
    mismatch,
    one_of,
    open_message,
    valid_device_id,
)
from protocol.keys import GENESIS, HEAD_CONTEXT, SigningKey, VerifyKey, leaf_hash
from protocol.record import Rating, rating_from_wire
from protocol.signed import Purpose

__all__ = [
    "STATUS_FIELDS",
    "Ack",
    "Batch",
    "Head",
    "Rejection",
    "Status",
    "StatusState",
    "decode_ack",
    "decode_batch",
    "decode_status",
    "encode_ack",
    "encode_status",
    "newer_status",
    "seal_batch",
    "verify_ack",
    "verify_batch",
    "verify_batches",
    "verify_status",
]


@compact_pickle
@dataclass(frozen=True, slots=True, kw_only=True)
class Head:
    """The signed head of a batch: the device vouches for the chain ending at `last_hash`."""

    device: str
    first: int
    last: int
    last_hash: str
    sig: str = ""

    def unsigned_wire(self) -> dict[str, Any]:
        return {
            "v": limits.VERSION,
            "device": self.device,
            "first": self.first,
            "last": self.last,
            "last_hash": self.last_hash,
        }

    def wire(self) -> dict[str, Any]:
        return {**self.unsigned_wire(), "sig": self.sig}


@compact_pickle
@dataclass(frozen=True, slots=True)
class Batch:
    """A decoded batch: 1..500 consecutive records of one device, with each record's canonical
    bytes and chain hash (computed once while decoding, so the hub can store them as they are)."""

    head: Head
    records: tuple[Rating, ...]
    bodies: tuple[bytes, ...]
    hashes: tuple[str, ...]

    @property
    def device(self) -> str:
        return self.head.device


# -- batch -----------------------------------------------------------------------------------------

_BATCH_KEYS: Final = frozenset({"v", "type", "head", "records"})
_HEAD_KEYS: Final = frozenset({"v", "device", "first", "last", "last_hash", "sig"})
_hex64 = HEX64.fullmatch
_hex128 = HEX128.fullmatch


def _head_bytes(head: Head) -> bytes:
    return canonical.encode(head.unsigned_wire())


def _assemble(head_wire: dict[str, Any], bodies: Sequence[bytes]) -> bytes:
    # Equal to canonical.encode() of the whole batch object (keys head < records < type < v), built
    # from the stored record bytes so that neither side re-encodes records it already has.
    return b"".join(
        (
            b'{"head":',
            canonical.encode(head_wire),
            b',"records":[',
            b",".join(bodies),
            b'],"type":"batch","v":1}',
        )
    )


def seal_batch(key: SigningKey, device: str, first: int, bodies: Sequence[bytes], last_hash: str) -> bytes:
    """Wire bytes of a batch of stored records `first..first+len(bodies)-1`, with a freshly signed head.

    `bodies` are the records' canonical bytes as the outbox holds them, `last_hash` the chain hash of
    the last one.
    """
    if not 0 < len(bodies) <= limits.MAX_BATCH_RECORDS:
        raise ValueError(f"a batch holds 1..{limits.MAX_BATCH_RECORDS} records, got {len(bodies)}")
    head = Head(device=device, first=first, last=first + len(bodies) - 1, last_hash=last_hash)
    signature = key.sign(HEAD_CONTEXT, _head_bytes(head)).hex()
    return _assemble({**head.unsigned_wire(), "sig": signature}, bodies)


def _head_from_wire(obj: object) -> Head:
    if type(obj) is not dict:
        raise bad_field("head must be a JSON object")
    check_keys(obj, _HEAD_KEYS, _HEAD_KEYS, "head")
    check_version(obj["v"], "head")
    device = obj["device"]
    if not valid_device_id(device):
        raise mismatch(device, DEVICE_ID, "head device")
    first = checked_int(obj["first"], 1, limits.MAX_SEQ, "head first", device=device)
    last = checked_int(obj["last"], first, limits.MAX_SEQ, "head last", device=device)
    last_hash, sig = obj["last_hash"], obj["sig"]
    if type(last_hash) is not str or _hex64(last_hash) is None:
        raise mismatch(last_hash, HEX64, "head last_hash", device=device)
    if type(sig) is not str or _hex128(sig) is None:
        raise mismatch(sig, HEX128, "head sig", device=device)
    return Head(device=device, first=first, last=last, last_hash=last_hash, sig=sig)


def decode_batch(raw: bytes) -> Batch:
    """Decode and structurally validate a batch; raise DecodeError with the reason and the place.

    Checks: size, strict JSON, version, type, every field of the head and of every record, one
    device throughout, consecutive seqs matching the head, and the canonical encoding of the whole
    message (so that any changed byte is either a changed value or a rejection).
    """
    obj = open_message(raw, "batch")
    check_keys(obj, _BATCH_KEYS, _BATCH_KEYS, "batch")
    head = _head_from_wire(obj["head"])
    wire_records = obj["records"]
    if type(wire_records) is not list:
        raise bad_field("records must be a JSON array", head.device)
    count = len(wire_records)
    if not 0 < count <= limits.MAX_BATCH_RECORDS:
        raise DecodeError(
            f"a batch holds 1..{limits.MAX_BATCH_RECORDS} records, got {count}",
            reason=Reason.TOO_MANY_RECORDS,
            device=head.device,
        )
    if head.last - head.first + 1 != count:
        raise bad_field(f"head says {head.first}..{head.last} but the batch holds {count} records", head.device)
    records: list[Rating] = []
    bodies: list[bytes] = []
    hashes: list[str] = []
    encode = canonical.encode
    expected_seq = head.first
    for wire in wire_records:
        record = rating_from_wire(wire)
        if record.device != head.device:
            raise bad_field(f"record of device {record.device} in a batch of {head.device}", head.device, record.seq)
        if record.seq != expected_seq:
            raise bad_field(
                f"records must be consecutive: expected seq {expected_seq}, got {record.seq}", head.device, record.seq
            )
        expected_seq += 1
        body = encode(wire)
        records.append(record)
        bodies.append(body)
        hashes.append(leaf_hash(body))
    if _assemble(obj["head"], bodies) != raw:
        raise DecodeError(
            "not in canonical form (sorted keys, no whitespace, defaults omitted)",
            reason=Reason.NOT_CANONICAL,
            device=head.device,
        )
    return Batch(head=head, records=tuple(records), bodies=tuple(bodies), hashes=tuple(hashes))


def verify_batch(batch: Batch, key: VerifyKey) -> None:
    """Authenticate a whole batch with one signature check plus the hash chain.

    The head signature covers `last_hash`; each record's `prev` must be the hash of the record
    before it, so the signature reaches every record. Raises AuthError (bad_signature or
    broken_chain). Linking the first record to what the hub already holds is the hub's job.
    """
    head = batch.head
    if not key.verify(bytes.fromhex(head.sig), HEAD_CONTEXT, _head_bytes(head)):
        raise AuthError("batch head signature does not verify", reason=Reason.BAD_SIGNATURE, device=head.device)
    _check_links(batch)


def _check_links(batch: Batch) -> None:
    head = batch.head
    if batch.hashes[-1] != head.last_hash:
        raise AuthError(
            "the last record's hash is not the head's last_hash",
            reason=Reason.BROKEN_CHAIN,
            device=head.device,
            seq=head.last,
        )
    records, hashes = batch.records, batch.hashes
    if records[0].seq == 1 and records[0].prev != GENESIS:
        raise AuthError("seq 1 must have the genesis prev", reason=Reason.BROKEN_CHAIN, device=head.device, seq=1)
    for index in range(1, len(records)):
        if records[index].prev != hashes[index - 1]:
            raise AuthError(
                "prev is not the hash of the record before it",
                reason=Reason.BROKEN_CHAIN,
                device=head.device,
                seq=records[index].seq,
            )


def verify_batches(batches: Sequence[Batch], key: VerifyKey) -> list[AuthError | None]:
    """Authenticate several batches of one device with as few signature checks as the chain allows.

    Newest first: a batch whose last hash is the `prev` of the first record of an authenticated
    batch that starts right after it is authenticated by that batch's signature (the hash chain
    carries it), once its own links hold; any other batch is verified on its own. Returns, in the
    given order, None for an authentic batch or the AuthError that refuses it.
    """
    results: list[AuthError | None] = [None] * len(batches)
    following: Batch | None = None  # the authenticated batch that starts where the next one ends
    for index in sorted(range(len(batches)), key=lambda i: batches[i].head.first, reverse=True):
        batch = batches[index]
        linked = (
            following is not None
            and following.head.first == batch.head.last + 1
            and following.records[0].prev == batch.hashes[-1]
        )
        try:
            if linked:
                _check_links(batch)
            else:
                verify_batch(batch, key)
        except AuthError as exc:
            results[index] = exc
        following = batch if results[index] is None else None
    return results


# -- ack -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejection:
    """Why the hub refused a record (`seq`) or a whole message (`seq` None)."""

    reason: Reason
    detail: str
    seq: int | None = None

    @classmethod
    def from_error(cls, error: ProtocolError) -> Rejection:
        return cls(reason=error.reason, detail=printable(error.detail, limits.MAX_DETAIL_CHARS), seq=error.seq)

    def wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"reason": self.reason.value, "detail": self.detail}
        if self.seq is not None:
            wire["seq"] = self.seq
        return wire


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack:
    """The hub's answer to a device: every seq up to `upto` is durably stored (0: none yet).

    `t` is the hub's clock (UTC ms) when the ack was made, for the terminal's clock check and for
    telling a fresh ack from a replayed one. `held` (first, last), when present, says the hub also
    holds seqs first..last while upto+1..first-1 are missing: the terminal sends the gap again at
    once (gap repair) instead of waiting for its ack timeout. Signed by the hub (`sig`).
    """

    device: str
    upto: int
    t: int
    held: tuple[int, int] | None = None
    rejects: tuple[Rejection, ...] = ()
    sig: str = ""

    def fields(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"device": self.device, "upto": self.upto, "t": self.t, "sig": self.sig}
        if self.held is not None:
            wire["held"] = list(self.held)
        if self.rejects:
            wire["rejects"] = [r.wire() for r in self.rejects[: limits.MAX_REJECTS]]
        return wire


_ACK_KEYS: Final = frozenset({"v", "type", "device", "upto", "t", "sig"})
_ACK_ALL: Final = _ACK_KEYS | {"rejects", "held"}
_REJECT_KEYS: Final = frozenset({"reason", "detail"})
_REJECT_ALL: Final = _REJECT_KEYS | {"seq"}


def encode_ack(ack: Ack, key: SigningKey) -> bytes:
    """The ack's wire bytes, signed with the hub's key; ValueError for a `held` no terminal would take."""
    if ack.held is not None and not ack.upto + 1 < ack.held[0] <= ack.held[1]:
        raise ValueError(f"held {ack.held} must start above upto + 1 ({ack.upto + 1}) and not end before it starts")
    return signed.sign(key, Purpose.ACK, "ack", ack.fields())


def decode_ack(raw: bytes) -> Ack:
    """Decode an ack (v2); its signature is checked by `verify_ack`, with the key the terminal pinned."""
    obj = open_message(raw, "ack", limits.CONTROL_VERSION)
    check_keys(obj, _ACK_KEYS, _ACK_ALL, "ack")
    device = obj["device"]
    if not valid_device_id(device):
        raise mismatch(device, DEVICE_ID, "ack device")
    upto = checked_int(obj["upto"], 0, limits.MAX_SEQ, "ack upto", device=device)
    t = checked_int(obj["t"], 0, limits.MAX_MS, "ack t", device=device)
    sig = obj["sig"]
    if type(sig) is not str or _hex128(sig) is None:
        raise mismatch(sig, HEX128, "ack sig", device=device)
    held: tuple[int, int] | None = None
    if "held" in obj:
        span = obj["held"]
        if type(span) is not list or len(span) != 2:
            raise bad_field("ack held must be [first, last]", device)
        first = checked_int(span[0], 2, limits.MAX_SEQ, "ack held first", device=device)
        if first <= upto + 1:
            raise bad_field(f"ack held must start above upto + 1 ({upto + 1}), got {first}", device)
        last = checked_int(span[1], first, limits.MAX_SEQ, "ack held last", device=device)
        held = (first, last)
    rejects: list[Rejection] = []
    raw_rejects = obj.get("rejects", [])
    if type(raw_rejects) is not list or ("rejects" in obj and not raw_rejects):
        raise bad_field("ack rejects must be a non-empty array when present", device)
    if len(raw_rejects) > limits.MAX_REJECTS:
        raise bad_field(f"an ack carries at most {limits.MAX_REJECTS} rejects", device)
    for entry in raw_rejects:
        if type(entry) is not dict:
            raise bad_field("an ack reject must be an object", device)
        check_keys(entry, _REJECT_KEYS, _REJECT_ALL, "ack reject")
        try:
            reason = Reason(entry["reason"])
        except ValueError:
            raise bad_field(f"unknown reject reason {show(entry['reason'])}", device) from None
        seq = checked_int(entry["seq"], 1, limits.MAX_SEQ, "ack reject seq", device=device) if "seq" in entry else None
        detail = entry["detail"]
        if type(detail) is not str or len(detail) > limits.MAX_DETAIL_CHARS or not detail.isprintable():
            raise bad_field(
                f"ack reject detail must be printable text of at most {limits.MAX_DETAIL_CHARS} characters", device
            )
        rejects.append(Rejection(reason=reason, detail=detail, seq=seq))
    if canonical.encode(obj) != raw:
        raise DecodeError("ack is not in canonical form", reason=Reason.NOT_CANONICAL, device=device)
    return Ack(device=device, upto=upto, t=t, held=held, rejects=tuple(rejects), sig=sig)


def verify_ack(ack: Ack, key: VerifyKey) -> None:
    """AuthError(bad_signature) unless the hub key `key` signed this ack."""
    signed.verify(key, Purpose.ACK, "ack", ack.fields(), device=ack.device, who="the pinned hub key")


# -- status ----------------------------------------------------------------------------------------


class StatusState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    """Retained presence of a terminal or a hub worker. `session` grows with every connection
    (across restarts too), and the offline status sits in that connection's MQTT will. Signed
    (`sig`) by the terminal's key, or by the hub's key for a hub's status."""

    device: str
    state: StatusState
    session: int
    sig: str = ""

    def fields(self) -> dict[str, Any]:
        return {"device": self.device, "state": self.state.value, "session": self.session, "sig": self.sig}


STATUS_FIELDS: Final[dict[str, Field]] = signed.signed_fields(
    {
        **envelope("status", limits.CONTROL_VERSION),
        "device": matching(DEVICE_ID, doc="the terminal's device id; in a hub's status, the hub's MQTT client id"),
        "state": one_of(
            (s.value for s in StatusState),
            doc="`online`: connected (published retained); `offline`: the MQTT will, or a clean stop",
        ),
        "session": integer(0, limits.MAX_SESSION, doc="grows with every connection, across restarts (see below)"),
    }
)


def encode_status(status: Status, key: SigningKey, *, hub: bool = False) -> bytes:
    """The status's wire bytes, signed by the terminal's key (or, `hub`, by the hub's)."""
    return signed.sign(key, Purpose.HUB_STATUS if hub else Purpose.STATUS, "status", status.fields())


def decode_status(raw: bytes) -> Status:
    obj = decode_fields(raw, "status", STATUS_FIELDS, limits.CONTROL_VERSION)
    return Status(device=obj["device"], state=StatusState(obj["state"]), session=obj["session"], sig=obj["sig"])


def verify_status(status: Status, key: VerifyKey, *, hub: bool = False) -> None:
    """AuthError(bad_signature) unless `key` signed this status (as a hub's status, if `hub`)."""
    who = "the pinned hub key" if hub else "the terminal's registered key"
    purpose = Purpose.HUB_STATUS if hub else Purpose.STATUS
    signed.verify(key, purpose, "status", status.fields(), device=status.device, who=who)


def newer_status(current: Status | None, incoming: Status) -> bool:
    """Whether `incoming` should replace what is known of a device (Sparkplug's bdSeq rule).

    An online status of the same or a later session wins; an offline status only ends the session
    it belongs to, so the will of an old connection, delivered late, cannot mark a fresh one offline.
    """
    if current is None:
        return True
    if incoming.state is StatusState.ONLINE:
        return incoming.session >= current.session
    return (
        incoming.session == current.session
        if current.state is StatusState.ONLINE
        else incoming.session > current.session
    )
