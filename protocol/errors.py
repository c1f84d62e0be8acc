"""The one exception tree of the wire protocol, with a reason code per error.

    ProtocolError                 every error below; carries reason, detail, device, seq
    ├── DecodeError               the bytes are not a valid v1 message
    │     reasons: malformed, oversize, unknown_version, wrong_type, bad_field,
    │              not_canonical, too_many_records, bad_topic, topic_mismatch
    └── AuthError                 the message is well formed but not authentic
          reasons: bad_signature, broken_chain

The hub adds its own refusals (unknown_device, replay_conflict, unhandled) with the same codes, so
that every rejection a terminal sees in an ack comes from one list: `Reason`.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["AuthError", "DecodeError", "ProtocolError", "Reason"]


class Reason(StrEnum):
    """Reason codes, as they appear in acks and in the hub's rejects table."""

    MALFORMED = "malformed"  # not UTF-8 JSON, or JSON of the wrong shape
    OVERSIZE = "oversize"  # message larger than MAX_MESSAGE_BYTES
    UNKNOWN_VERSION = "unknown_version"  # "v" is not a version this code speaks
    WRONG_TYPE = "wrong_type"  # a message of another type on this topic
    BAD_FIELD = "bad_field"  # a field is missing, unknown, of the wrong type or out of range
    NOT_CANONICAL = "not_canonical"  # valid values, but not in the one canonical encoding
    TOO_MANY_RECORDS = "too_many_records"  # batch outside 1..MAX_BATCH_RECORDS
    BAD_TOPIC = "bad_topic"  # topic not of the form pingjia/v1/<device>/<channel>
    TOPIC_MISMATCH = "topic_mismatch"  # payload device differs from the topic's device
    BAD_SIGNATURE = "bad_signature"  # Ed25519 check failed
    BROKEN_CHAIN = "broken_chain"  # a prev hash does not match the record before it
    UNKNOWN_DEVICE = "unknown_device"  # the hub has no key for this device
    REPLAY_CONFLICT = "replay_conflict"  # a seq the hub holds, sent again with other content
    UNHANDLED = "unhandled"  # the receiver failed on this message for a reason nobody foresaw; recorded, dropped


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
    """The bytes are not a valid v1 message of the expected type."""


class AuthError(ProtocolError):
    """The message is well formed but its signature or hash chain does not hold."""

    reason = Reason.BAD_SIGNATURE


def _rebuild(
    cls: type[ProtocolError], detail: str, reason: Reason, device: str | None, seq: int | None
) -> ProtocolError:
    return cls(detail, reason=reason, device=device, seq=seq)
