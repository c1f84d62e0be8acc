"""Messages of protocol v1: batch (terminal -> hub), ack (hub -> terminal), status (retained).

Every message is canonical JSON (see protocol.canonical) with "type" and "v". Decoders take bytes and
return values or raise a DecodeError whose reason names what was wrong; `verify_batch` raises an
AuthError. Nothing here touches a socket, a file or a clock: callers pass times in.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from protocol import canonical, limits
from protocol.canonical import printable, show, show_names
from protocol.compact import compact_pickle
from protocol.errors import AuthError, DecodeError, ProtocolError, Reason
from protocol.keys import GENESIS, HEAD_CONTEXT, SigningKey, VerifyKey, leaf_hash
from protocol.record import Rating, rating_from_wire, valid_device_id

__all__ = [
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
    "verify_batch",
    "verify_batches",
]

_HEX64: Final = re.compile(r"[0-9a-f]{64}")
_HEX128: Final = re.compile(r"[0-9a-f]{128}")


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


def _type_and_version(obj: object, expected: str) -> dict[str, Any]:
    if type(obj) is not dict:
        raise DecodeError(f"a message must be a JSON object, got {type(obj).__name__}")
    if obj.get("v") != limits.VERSION or type(obj.get("v")) is not int:
        raise DecodeError(f"version {show(obj.get('v'))} is not 1", reason=Reason.UNKNOWN_VERSION)
    if obj.get("type") != expected:
        raise DecodeError(f"expected a {expected} message, got type {show(obj.get('type'))}", reason=Reason.WRONG_TYPE)
    return obj


def _check_size(raw: bytes) -> None:
    if len(raw) > limits.MAX_MESSAGE_BYTES:
        raise DecodeError(f"{len(raw)} bytes is over the {limits.MAX_MESSAGE_BYTES}-byte limit", reason=Reason.OVERSIZE)


def _keys(obj: dict[str, Any], required: frozenset[str], optional: frozenset[str], what: str) -> None:
    keys = obj.keys()
    if not required <= keys or not keys <= required | optional:
        unknown = show_names(sorted(keys - required - optional))
        raise DecodeError(
            f"{what} fields: missing {sorted(required - keys)}, unknown {unknown}",
            reason=Reason.BAD_FIELD,
        )


# -- batch -----------------------------------------------------------------------------------------

_BATCH_KEYS: Final = frozenset({"v", "type", "head", "records"})
_HEAD_KEYS: Final = frozenset({"v", "device", "first", "last", "last_hash", "sig"})


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
        raise DecodeError("head must be a JSON object", reason=Reason.BAD_FIELD)
    _keys(obj, _HEAD_KEYS, frozenset(), "head")
    if obj["v"] != limits.VERSION or type(obj["v"]) is not int:
        raise DecodeError(f"head version {show(obj['v'])} is not 1", reason=Reason.UNKNOWN_VERSION)
    device = obj["device"]
    if not valid_device_id(device):
        raise DecodeError(f"head device id {show(device)} is not valid", reason=Reason.BAD_FIELD)
    first, last = obj["first"], obj["last"]
    if type(first) is not int or type(last) is not int or not 1 <= first <= last <= limits.MAX_SEQ:
        raise DecodeError(
            f"head range {show(first)}..{show(last)} is not valid", reason=Reason.BAD_FIELD, device=device
        )
    if type(obj["last_hash"]) is not str or _HEX64.fullmatch(obj["last_hash"]) is None:
        raise DecodeError("head last_hash must be 64 lowercase hex digits", reason=Reason.BAD_FIELD, device=device)
    if type(obj["sig"]) is not str or _HEX128.fullmatch(obj["sig"]) is None:
        raise DecodeError("head sig must be 128 lowercase hex digits", reason=Reason.BAD_FIELD, device=device)
    return Head(device=device, first=first, last=last, last_hash=obj["last_hash"], sig=obj["sig"])


def decode_batch(raw: bytes) -> Batch:
    """Decode and structurally validate a batch; raise DecodeError with the reason and the place.

    Checks: size, strict JSON, version, type, every field of the head and of every record, one
    device throughout, consecutive seqs matching the head, and the canonical encoding of the whole
    message (so that any changed byte is either a changed value or a rejection).
    """
    _check_size(raw)
    obj = _type_and_version(canonical.decode(raw), "batch")
    _keys(obj, _BATCH_KEYS, frozenset(), "batch")
    head = _head_from_wire(obj["head"])
    wire_records = obj["records"]
    if type(wire_records) is not list:
        raise DecodeError("records must be a JSON array", reason=Reason.BAD_FIELD, device=head.device)
    count = len(wire_records)
    if not 0 < count <= limits.MAX_BATCH_RECORDS:
        raise DecodeError(
            f"a batch holds 1..{limits.MAX_BATCH_RECORDS} records, got {count}",
            reason=Reason.TOO_MANY_RECORDS,
            device=head.device,
        )
    if head.last - head.first + 1 != count:
        raise DecodeError(
            f"head says {head.first}..{head.last} but the batch holds {count} records",
            reason=Reason.BAD_FIELD,
            device=head.device,
        )
    records: list[Rating] = []
    bodies: list[bytes] = []
    hashes: list[str] = []
    encode = canonical.encode
    expected_seq = head.first
    for wire in wire_records:
        record = rating_from_wire(wire)
        if record.device != head.device:
            raise DecodeError(
                f"record of device {record.device} in a batch of {head.device}",
                reason=Reason.BAD_FIELD,
                device=head.device,
                seq=record.seq,
            )
        if record.seq != expected_seq:
            raise DecodeError(
                f"records must be consecutive: expected seq {expected_seq}, got {record.seq}",
                reason=Reason.BAD_FIELD,
                device=head.device,
                seq=record.seq,
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

    `t` is the hub's clock (UTC ms) when the ack was made, for the terminal's clock check.
    """

    device: str
    upto: int
    t: int
    rejects: tuple[Rejection, ...] = ()


_ACK_KEYS: Final = frozenset({"v", "type", "device", "upto", "t"})
_REJECT_KEYS: Final = frozenset({"reason", "detail"})


def encode_ack(ack: Ack) -> bytes:
    wire: dict[str, Any] = {
        "v": limits.VERSION,
        "type": "ack",
        "device": ack.device,
        "upto": ack.upto,
        "t": ack.t,
    }
    if ack.rejects:
        wire["rejects"] = [r.wire() for r in ack.rejects[: limits.MAX_REJECTS]]
    return canonical.encode(wire)


def decode_ack(raw: bytes) -> Ack:
    _check_size(raw)
    obj = _type_and_version(canonical.decode(raw), "ack")
    _keys(obj, _ACK_KEYS, frozenset({"rejects"}), "ack")
    if not valid_device_id(obj["device"]):
        raise DecodeError("ack device id is not valid", reason=Reason.BAD_FIELD)
    upto, t = obj["upto"], obj["t"]
    if type(upto) is not int or not 0 <= upto <= limits.MAX_SEQ:
        raise DecodeError(f"ack upto {show(upto)} is not a seq", reason=Reason.BAD_FIELD)
    if type(t) is not int or not 0 <= t <= limits.MAX_MS:
        raise DecodeError(f"ack t {show(t)} is not a time in ms", reason=Reason.BAD_FIELD)
    rejects: list[Rejection] = []
    raw_rejects = obj.get("rejects", [])
    if type(raw_rejects) is not list or ("rejects" in obj and not raw_rejects):
        raise DecodeError("ack rejects must be a non-empty array when present", reason=Reason.BAD_FIELD)
    for entry in raw_rejects:
        if type(entry) is not dict:
            raise DecodeError("an ack reject must be an object", reason=Reason.BAD_FIELD)
        _keys(entry, _REJECT_KEYS, frozenset({"seq"}), "ack reject")
        try:
            reason = Reason(entry["reason"])
        except ValueError:
            raise DecodeError(f"unknown reject reason {show(entry['reason'])}", reason=Reason.BAD_FIELD) from None
        seq = entry.get("seq")
        if seq is not None and (type(seq) is not int or not 1 <= seq <= limits.MAX_SEQ):
            raise DecodeError("ack reject seq is not a seq", reason=Reason.BAD_FIELD)
        if type(entry["detail"]) is not str or len(entry["detail"]) > limits.MAX_DETAIL_CHARS:
            raise DecodeError("ack reject detail must be text", reason=Reason.BAD_FIELD)
        rejects.append(Rejection(reason=reason, detail=entry["detail"], seq=seq))
    ack = Ack(device=obj["device"], upto=upto, t=t, rejects=tuple(rejects))
    if encode_ack(ack) != raw:
        raise DecodeError("ack is not in canonical form", reason=Reason.NOT_CANONICAL, device=ack.device)
    return ack


# -- status ----------------------------------------------------------------------------------------


class StatusState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    """Retained presence of a terminal. `session` grows with every connection the terminal makes
    (across restarts too), and the offline status sits in that connection's MQTT will."""

    device: str
    state: StatusState
    session: int


_STATUS_KEYS: Final = frozenset({"v", "type", "device", "state", "session"})


def encode_status(status: Status) -> bytes:
    return canonical.encode(
        {
            "v": limits.VERSION,
            "type": "status",
            "device": status.device,
            "state": status.state.value,
            "session": status.session,
        }
    )


def decode_status(raw: bytes) -> Status:
    _check_size(raw)
    obj = _type_and_version(canonical.decode(raw), "status")
    _keys(obj, _STATUS_KEYS, frozenset(), "status")
    if not valid_device_id(obj["device"]):
        raise DecodeError("status device id is not valid", reason=Reason.BAD_FIELD)
    try:
        state = StatusState(obj["state"])
    except ValueError:
        raise DecodeError(f"status state {show(obj['state'])} is not online/offline", reason=Reason.BAD_FIELD) from None
    session = obj["session"]
    if type(session) is not int or not 0 <= session <= limits.MAX_SESSION:
        raise DecodeError("status session must be a non-negative integer", reason=Reason.BAD_FIELD)
    status = Status(device=obj["device"], state=state, session=session)
    if encode_status(status) != raw:
        raise DecodeError("status is not in canonical form", reason=Reason.NOT_CANONICAL, device=status.device)
    return status


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
