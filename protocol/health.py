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
from typing import Any, Final

from protocol import canonical, limits
from protocol.fields import BOOT, DEVICE_ID, Field, decode_fields, envelope, integer, matching, one_of, text

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


HEALTH_FIELDS: Final[dict[str, Field]] = {
    **envelope("health"),
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
}


def _wire(value: Any, kind: str) -> dict[str, Any]:
    wire = {key: item for key, item in asdict(value).items() if item is not None}
    return {"v": limits.VERSION, "type": kind, **wire}


def encode_health(health: Health) -> bytes:
    return canonical.encode(_wire(health, "health"))


def decode_health(raw: bytes) -> Health:
    obj = decode_fields(raw, "health", HEALTH_FIELDS)
    obj["panel"] = PanelState(obj["panel"])
    return Health(**obj)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceEvent:
    device: str
    t: int
    boot: str
    mono: int
    kind: EventKind
    detail: str | None = None


EVENT_FIELDS: Final[dict[str, Field]] = {
    **envelope("event"),
    **_COMMON,
    "kind": one_of((k.value for k in EventKind), doc="what happened (below)"),
    "detail": text(limits.MAX_DETAIL_CHARS, required=False, doc="more about it, in words"),
}


def encode_event(event: DeviceEvent) -> bytes:
    return canonical.encode(_wire(event, "event"))


def decode_event(raw: bytes) -> DeviceEvent:
    obj = decode_fields(raw, "event", EVENT_FIELDS)
    obj["kind"] = EventKind(obj["kind"])
    return DeviceEvent(**obj)
