"""The one exception tree of the wire protocol, with a reason code per error.

    ProtocolError                 every error below; carries reason, detail, device, seq
    ├── DecodeError               the bytes are not a valid v1 message
    │     reasons: malformed, oversize, unknown_version, wrong_type, bad_field,
    │              not_canonical, too_many_records, bad_topic, topic_mismatch
    └── AuthError                 the message is well formed but not authentic, or not to be acted on
          reasons: bad_signature, broken_chain, replayed, rollback, stale, not_paired, revoked, fork

The hub adds its own refusals (unknown_device, replay_conflict, unhandled) with the same codes, so
that every rejection a terminal sees in an ack comes from one list: `Reason`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from protocol import limits

__all__ = ["MEANING", "AuthError", "DecodeError", "ProtocolError", "Reason"]


class Reason(StrEnum):
    """Reason codes, as they appear in acks and in the hub's rejects table."""

    MALFORMED = "malformed"
    OVERSIZE = "oversize"
    UNKNOWN_VERSION = "unknown_version"
    WRONG_TYPE = "wrong_type"
    BAD_FIELD = "bad_field"
    NOT_CANONICAL = "not_canonical"
    TOO_MANY_RECORDS = "too_many_records"
    BAD_TOPIC = "bad_topic"
    TOPIC_MISMATCH = "topic_mismatch"
    BAD_SIGNATURE = "bad_signature"
    BROKEN_CHAIN = "broken_chain"
    UNKNOWN_DEVICE = "unknown_device"
    REPLAY_CONFLICT = "replay_conflict"
    UNHANDLED = "unhandled"
    REPLAYED = "replayed"
    ROLLBACK = "rollback"
    STALE = "stale"
    NOT_PAIRED = "not_paired"
    REVOKED = "revoked"
    FORK = "fork"

    @property
    def meaning(self) -> str:
        return MEANING[self]


# What each code means, for a third party reading an ack: the spec's table is rendered from this.
MEANING: Final[dict[Reason, str]] = {
    Reason.MALFORMED: (
        "not UTF-8, not JSON, a float, NaN, a duplicate key, nested too deeply, an integer of more than "
        f"{limits.MAX_INT_DIGITS} digits, a string with a lone surrogate (`\\ud800`), or the wrong JSON shape"
    ),
    Reason.OVERSIZE: f"message over {limits.MAX_MESSAGE_BYTES} bytes",
    Reason.UNKNOWN_VERSION: (
        f"`v` is not the message type's version ({limits.VERSION} for records and batches, "
        f"{limits.CONTROL_VERSION} for signed control messages)"
    ),
    Reason.WRONG_TYPE: "a message of another `type` on this topic",
    Reason.BAD_FIELD: (
        "a field missing, unknown, of the wrong type, out of range, or breaking a rule of its kind; "
        "records not consecutive or not of the head's device"
    ),
    Reason.NOT_CANONICAL: "valid values, but not the canonical bytes",
    Reason.TOO_MANY_RECORDS: f"a batch outside 1..{limits.MAX_BATCH_RECORDS} records",
    Reason.BAD_TOPIC: "topic not of the form `pingjia/v1/<device>/<channel>` (or `pingjia/hub/<client-id>/status`)",
    Reason.TOPIC_MISMATCH: "the payload's device is not the topic's",
    Reason.BAD_SIGNATURE: (
        "the signature does not verify with the key it must carry: a batch head or a terminal's message "
        "with the terminal's registered key, a hub message with the hub key the terminal pinned at pairing"
    ),
    Reason.BROKEN_CHAIN: (
        "a `prev` is not the hash of the record before it (inside the batch, or against what the hub "
        "stores on either side), or seq 1 does not start at genesis"
    ),
    Reason.UNKNOWN_DEVICE: "the hub has no key registered for this device",
    Reason.REPLAY_CONFLICT: "a seq the hub holds, sent again with other content",
    Reason.UNHANDLED: (
        "the receiver failed on this message for a reason nobody foresaw (a fault of the receiver's): "
        "it is recorded and dropped, and what is around it keeps flowing"
    ),
    Reason.REPLAYED: (
        "a signed message taken before, or an older one: a command whose counter `n` is not above the last "
        "one taken, a hub status of an older session, an ack below the watermark made before the ack that "
        "moved it"
    ),
    Reason.ROLLBACK: (
        "a configuration document older than the one the terminal runs, or a clerk's card older than the newest it took"
    ),
    Reason.STALE: (
        "too old to act on: a command past its age limit, or a clock report outside plausible bounds "
        "(the hub does not re-date records by it)"
    ),
    Reason.NOT_PAIRED: "the terminal holds no hub key yet (not paired): it takes no control message",
    Reason.REVOKED: "signed with a key the hub revoked (replaced, unpaired or stolen), after its revocation",
    Reason.FORK: (
        "another validly signed record at a seq the hub holds: the terminal's key is cloned or stolen; "
        "the hub keeps both as evidence until an operator settles it"
    ),
}


class ProtocolError(Exception):
    """Base of every protocol error.

    `reason` is the machine-readable code; `detail` says in words what was wrong and where.
    `device` and `seq` are filled in when they are known at the point of failure.
    """

    reason: Reason = Reason.MALFORMED

    def __init__(
        self,
        detail: str,
        *,
        reason: Reason | None = None,
        device: str | None = None,
        seq: int | None = None,
    ) -> None:
        super().__init__(detail)
        if reason is not None:
            self.reason = reason
        self.detail = detail
        self.device = device
        self.seq = seq

    def __reduce__(self) -> tuple[object, ...]:
        # Errors cross process boundaries (the hub decodes in worker processes): keep every field.
        return (_rebuild, (type(self), self.detail, self.reason, self.device, self.seq))

    def __str__(self) -> str:
        where = ""
        if self.device is not None:
            where += f" device={self.device}"
        if self.seq is not None:
            where += f" seq={self.seq}"
        return f"{self.reason.value}:{where} {self.detail}" if where else f"{self.reason.value}: {self.detail}"


class DecodeError(ProtocolError):
    """The bytes are not a valid message of the expected type (and version)."""


class AuthError(ProtocolError):
    """The message is well formed but its signature or hash chain does not hold."""

    reason = Reason.BAD_SIGNATURE


def _rebuild(
    cls: type[ProtocolError], detail: str, reason: Reason, device: str | None, seq: int | None
) -> ProtocolError:
    return cls(detail, reason=reason, device=device, seq=seq)
