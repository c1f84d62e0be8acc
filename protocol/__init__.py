"""pingjia wire protocol v2: pure values <-> bytes, signatures and hash chains.

No sockets, files, threads or clocks live here: callers pass bytes and times in. The format is
written down in protocol/README.md.
"""

from protocol.canonical import decode, encode
from protocol.commands import Command, CommandName, decode_command, encode_command, verify_command
from protocol.config import ConfigDoc, decode_config, encode_config, verify_config
from protocol.errors import AuthError, DecodeError, ProtocolError, Reason
from protocol.fields import valid_device_id
from protocol.health import (
    DeviceEvent,
    EventKind,
    Health,
    PanelState,
    decode_event,
    decode_health,
    encode_event,
    encode_health,
    verify_event,
    verify_health,
)
from protocol.keys import GENESIS, SigningKey, VerifyKey, leaf_hash
from protocol.messages import (
    Ack,
    Batch,
    Head,
    Rejection,
    Status,
    StatusState,
    decode_ack,
    decode_batch,
    decode_status,
    encode_ack,
    encode_status,
    newer_status,
    seal_batch,
    verify_ack,
    verify_batch,
    verify_batches,
    verify_status,
)
from protocol.record import Flag, Kind, Rating, rating_from_wire
from protocol.sealed import SealKey, open_sealed, seal
from protocol.session import hub_session, hub_started_ms, terminal_session
from protocol.signed import Purpose
from protocol.topics import (
    HUB_STATUS_FILTER,
    Channel,
    hub_filters,
    hub_status_client,
    hub_status_topic,
    parse,
    terminal_filters,
    topic,
)

__all__ = [
    "GENESIS",
    "HUB_STATUS_FILTER",
    "Ack",
    "AuthError",
    "Batch",
    "Channel",
    "Command",
    "CommandName",
    "ConfigDoc",
    "DecodeError",
    "DeviceEvent",
    "EventKind",
    "Flag",
    "Head",
    "Health",
    "Kind",
    "PanelState",
    "ProtocolError",
    "Purpose",
    "Rating",
    "Reason",
    "Rejection",
    "SealKey",
    "SigningKey",
    "Status",
    "StatusState",
    "VerifyKey",
    "decode",
    "decode_ack",
    "decode_batch",
    "decode_command",
    "decode_config",
    "decode_event",
    "decode_health",
    "decode_status",
    "encode",
    "encode_ack",
    "encode_command",
    "encode_config",
    "encode_event",
    "encode_health",
    "encode_status",
    "hub_filters",
    "hub_session",
    "hub_started_ms",
    "hub_status_client",
    "hub_status_topic",
    "leaf_hash",
    "newer_status",
    "open_sealed",
    "parse",
    "rating_from_wire",
    "seal",
    "seal_batch",
    "terminal_filters",
    "terminal_session",
    "topic",
    "valid_device_id",
    "verify_ack",
    "verify_batch",
    "verify_batches",
    "verify_command",
    "verify_config",
    "verify_event",
    "verify_health",
    "verify_status",
]
