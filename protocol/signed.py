"""Signed control messages (protocol v2): one rule for every message that is not a batch.

A signed message is the canonical JSON object of its fields plus `sig`: the Ed25519 signature,
as 128 hex digits, over a context string (`pingjia/v2/<purpose>` and a NUL byte) followed by the
canonical bytes of the same object without `sig`. The purpose keeps a signature made for one
message type from being taken as another (a terminal's status from being taken as a hub's).

Who signs what: the hub signs acks, commands, configuration documents, clerks' cards, its status,
technician credentials and pairing answers; a terminal signs its status, health and events (its ratings are
signed by their batch head and hash chain, as in v1).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final

from protocol import canonical, limits
from protocol.errors import AuthError, Reason
from protocol.fields import HEX128, Field, matching
from protocol.keys import SigningKey, VerifyKey

__all__ = ["SIG_FIELD", "Purpose", "body", "context", "sign", "signed_fields", "verify"]


class Purpose(StrEnum):
    ACK = "ack"
    CMD = "cmd"
    CONFIG = "config"
    STATUS = "status"  # a terminal's
    HUB_STATUS = "hub-status"
    HEALTH = "health"
    EVENT = "event"
    TECH = "tech"  # a technician's credential
    CLAIM = "claim"  # the hub's answer to a terminal claiming its registration
    CARD = "card"  # the card of the clerk logged in at a terminal


SIG_FIELD: Final = matching(HEX128, doc="Ed25519 signature of the message without `sig` (see Signatures)")


def context(purpose: Purpose) -> bytes:
    return f"pingjia/v2/{purpose.value}".encode() + b"\x00"


def body(kind: str, fields: Mapping[str, Any]) -> bytes:
    """The signed bytes: the canonical message of `type` `kind` (v2) without `sig` and without
    fields that are None (absent)."""
    wire = {name: value for name, value in fields.items() if name != "sig" and value is not None}
    return canonical.encode({**wire, "v": limits.CONTROL_VERSION, "type": kind})


def sign(key: SigningKey, purpose: Purpose, kind: str, fields: Mapping[str, Any]) -> bytes:
    """The wire bytes of a message of `type` `kind` with these fields, signed for `purpose`."""
    signed = body(kind, fields)
    sig = key.sign(context(purpose), signed).hex()
    wire = {name: value for name, value in fields.items() if name != "sig" and value is not None}
    return canonical.encode({**wire, "v": limits.CONTROL_VERSION, "type": kind, "sig": sig})


def verify(
    key: VerifyKey,
    purpose: Purpose,
    kind: str,
    fields: Mapping[str, Any],
    *,
    device: str | None = None,
    who: str = "the expected key",
) -> None:
    """AuthError(bad_signature) unless `fields["sig"]` signs the message with `key` for `purpose`."""
    sig = fields.get("sig")
    if not isinstance(sig, str) or HEX128.fullmatch(sig) is None:
        raise AuthError(f"{kind} is not signed", reason=Reason.BAD_SIGNATURE, device=device)
    if not key.verify(bytes.fromhex(sig), context(purpose), body(kind, fields)):
        raise AuthError(f"{kind} signature does not verify with {who}", reason=Reason.BAD_SIGNATURE, device=device)


def signed_fields(fields: Mapping[str, Field]) -> dict[str, Field]:
    """A field table with `sig` added (required)."""
    return {**fields, "sig": SIG_FIELD}
