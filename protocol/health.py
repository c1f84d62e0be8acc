"""What a terminal says about itself: health (retained, every heartbeat) and events (as they happen).

Health lets the hub and a technician see a terminal at a glance (firmware, uptime, panel, clerk,
outbox depth and age, free disk, last error) and carries the terminal's two clocks, so that the hub
can place records in time when the terminal's wall clock is wrong: `t` and `mono` are read at the
same moment, and the hub knows when it received them.

Events are discrete happenings worth a supervisor's attention (a burst of presses, the panel
unplugged, the outbox out of service). Unlike ratings they are not kept in the outbox: they are
signals, sent at most once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Final

from protocol import limits, signed
from protocol.fields import BOOT, DEVICE_ID, HEX16, Field, decode_fields, envelope, integer, matching, one_of, text
from protocol.keys import SigningKey, VerifyKey
from protocol.signed import Purpose

__all__ = [
    "EVENT_FIELDS",
    "HEALTH_FIELDS",
    "MEANING",
    "DeviceEvent",
    "EventKind",
    "Health",
    "PanelState",
    "decode_event",
    "decode_health",
    "encode_event",
    "encode_health",
    "verify_event",
    "verify_health",
]

_COUNT: Final = limits.MAX_COUNTER


class PanelState(StrEnum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    NONE = "none"  # this terminal has no key panel (keys from elsewhere)


class EventKind(StrEnum):
    MISUSE_BURST = "misuse_burst"
    PANEL_DOWN = "panel_down"
    PANEL_UP = "panel_up"
    OUT_OF_SERVICE = "out_of_service"
    RECOVERED = "recovered"
    CARD_UNKNOWN = "card_unknown"
    CLOCK_JUMP = "clock_jump"


# What each event means and what its `detail` holds: the spec's table is drawn from this.
MEANING: Final[dict[EventKind, str]] = {
    EventKind.MISUSE_BURST: "a burst of presses, more than the terminal's limit (`detail`: how many, in what time)",
    EventKind.PANEL_DOWN: "the key panel was lost (`detail`: `unplugged`, or `silent` when it stopped answering)",
    EventKind.PANEL_UP: "the key panel is connected (`detail`: its firmware and serial number)",
    EventKind.OUT_OF_SERVICE: "the outbox cannot store a record (`detail`: why): presses are refused, never thanked",
    EventKind.RECOVERED: "the outbox stores again, and the terminal takes presses again",
    EventKind.CARD_UNKNOWN: "a staff card the terminal does not know was read (`detail`: its uid)",
    EventKind.CLOCK_JUMP: "the wall clock moved against the monotonic one (`detail`: by how many ms)",
}

# Health and events carry both clocks, read at the same moment: the hub places a terminal's records
# in time from them when its wall clock is wrong.
_COMMON: Final[dict[str, Field]] = {
    "device": matching(DEVICE_ID, doc="the terminal: the topic's device"),
    "t": integer(0, limits.MAX_MS, doc="terminal wall clock, UTC ms (may be wrong), read together with `mono`"),
    "boot": matching(BOOT, doc="this boot of the terminal, as in its records"),
    "mono": integer(0, limits.MAX_MS, doc="ms since that boot"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Health:
    device: str
    t: int  # terminal wall clock, UTC ms, read together with `mono`
    boot: str
    mono: int
    fw: str
    uptime_s: int
    state: str  # the rating flow's state
    panel: PanelState
    outbox_depth: int  # records thanked but not yet acked by the hub
    free_disk_bytes: int
    misuse_alarms: int
    rejected: int  # records the hub refused since start
    session: int
    staff: str | None = None
    panel_fw: str | None = None
    oldest_unacked_s: int | None = None
    hub_offset_ms: int | None = None  # hub clock minus terminal clock, from the latest ack
    last_error: str | None = None
    panel_dropped: int | None = None  # key-panel frames dropped as damaged since start
    unreadable: int | None = None  # messages from the broker this terminal could not read, since start
    refused: int | None = None  # control messages refused as not authentic, replayed or stale, since start
    refused_last: str | None = None  # the latest of them, in words
    config_version: int | None = None  # the configuration document it runs (absent: none yet)
    hub_key: str | None = None  # the first 16 hex digits of the hub key it pinned (absent: not paired)
    sig: str = ""


HEALTH_FIELDS: Final[dict[str, Field]] = {
    **envelope("health", limits.CONTROL_VERSION),
    **_COMMON,
    "fw": text(limits.MAX_FW_CHARS, doc="the terminal's firmware version"),
    "uptime_s": integer(0, _COUNT, doc="seconds since the terminal software started"),
    "state": text(32, doc="the rating flow's state, e.g. `idle`, `invited`, `out_of_service`"),
    "panel": one_of(
        (p.value for p in PanelState),
        doc="the key panel's link; `none`: this terminal has none (keys come from elsewhere)",
    ),
    "outbox_depth": integer(0, _COUNT, doc="records thanked for but not yet acked by the hub"),
    "free_disk_bytes": integer(0, _COUNT, doc="free space where the outbox lives, bytes"),
    "misuse_alarms": integer(0, _COUNT, doc="misuse bursts since start"),
    "rejected": integer(0, _COUNT, doc="rejections the hub sent in acks since start"),
    "session": integer(0, limits.MAX_SESSION, doc="the session of the current connection, as in its status"),
    "staff": text(limits.MAX_ID_CHARS, required=False, doc="the clerk logged in; absent: nobody"),
    "panel_fw": text(limits.MAX_FW_CHARS, required=False, doc="the key panel's firmware, once it said hello"),
    "oldest_unacked_s": integer(0, _COUNT, required=False, doc="age of the oldest unacked record, s; absent: none"),
    "hub_offset_ms": integer(
        -limits.MAX_MS,
        limits.MAX_MS,
        required=False,
        doc="hub clock minus terminal wall clock, ms, from the latest ack; absent before the first ack of this boot",
    ),
    "last_error": text(limits.MAX_DETAIL_CHARS, required=False, doc="the latest error, in words"),
    "panel_dropped": integer(
        0, _COUNT, required=False, doc="key-panel frames dropped as damaged since start; absent: no panel"
    ),
    "unreadable": integer(
        0,
        _COUNT,
        required=False,
        doc="messages from the broker this terminal could not read, or failed on, since start (a retained one once)",
    ),
    "refused": integer(
        0,
        _COUNT,
        required=False,
        doc="control messages refused since start: unsigned, signed by another key, for another terminal, "
        "replayed, rolled back or stale",
    ),
    "refused_last": text(limits.MAX_DETAIL_CHARS, required=False, doc="the latest of them: what, and why"),
    "config_version": integer(
        1, limits.MAX_COUNTER, required=False, doc="the configuration document the terminal runs; absent: none"
    ),
    "hub_key": matching(HEX16, required=False, doc="the first 16 hex digits of the hub key pinned; absent: not paired"),
    "sig": signed.SIG_FIELD,
}


def encode_health(health: Health, key: SigningKey) -> bytes:
    """The health's wire bytes, signed with the terminal's key."""
    return signed.sign(key, Purpose.HEALTH, "health", asdict(health))


def decode_health(raw: bytes) -> Health:
    obj = decode_fields(raw, "health", HEALTH_FIELDS, limits.CONTROL_VERSION)
    obj["panel"] = PanelState(obj["panel"])
    return Health(**obj)


def verify_health(health: Health, key: VerifyKey) -> None:
    """AuthError(bad_signature) unless the terminal's key `key` signed this health."""
    signed.verify(key, Purpose.HEALTH, "health", asdict(health), device=health.device, who="the terminal's key")


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceEvent:
    device: str
    t: int
    boot: str
    mono: int
    kind: EventKind
    detail: str | None = None
    sig: str = ""


EVENT_FIELDS: Final[dict[str, Field]] = {
    **envelope("event", limits.CONTROL_VERSION),
    **_COMMON,
    "kind": one_of((k.value for k in EventKind), doc="what happened (below)"),
    "detail": text(limits.MAX_DETAIL_CHARS, required=False, doc="more about it, in words"),
    "sig": signed.SIG_FIELD,
}


def encode_event(event: DeviceEvent, key: SigningKey) -> bytes:
    """The event's wire bytes, signed with the terminal's key."""
    return signed.sign(key, Purpose.EVENT, "event", asdict(event))


def decode_event(raw: bytes) -> DeviceEvent:
    obj = decode_fields(raw, "event", EVENT_FIELDS, limits.CONTROL_VERSION)
    obj["kind"] = EventKind(obj["kind"])
    return DeviceEvent(**obj)


def verify_event(event: DeviceEvent, key: VerifyKey) -> None:
    """AuthError(bad_signature) unless the terminal's key `key` signed this event."""
    signed.verify(key, Purpose.EVENT, "event", asdict(event), device=event.device, who="the terminal's key")
