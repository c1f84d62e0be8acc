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

import re
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Final

from protocol import canonical, limits
from protocol.fields import Field, decode_fields, integer, text
from protocol.record import DEVICE_ID

__all__ = [
    "DeviceEvent",
    "EventKind",
    "Health",
    "PanelState",
    "decode_event",
    "decode_health",
    "encode_event",
    "encode_health",
]

_BOOT: Final = re.compile(rf"[A-Za-z0-9-]{{1,{limits.MAX_BOOT_CHARS}}}")
_I64: Final = 2**63 - 1


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


_COMMON: Final[dict[str, Field]] = {
    "v": integer(1, 1),
    "type": text(16),
    "device": Field(str, pattern=DEVICE_ID),
    "t": integer(0, limits.MAX_MS),
    "boot": Field(str, pattern=_BOOT),
    "mono": integer(0, limits.MAX_MS),
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


_HEALTH: Final[dict[str, Field]] = {
    **_COMMON,
    "fw": text(limits.MAX_FW_CHARS),
    "uptime_s": integer(0, _I64),
    "state": text(32),
    "panel": text(16, choices=frozenset(p.value for p in PanelState)),
    "outbox_depth": integer(0, _I64),
    "free_disk_bytes": integer(0, _I64),
    "misuse_alarms": integer(0, _I64),
    "rejected": integer(0, _I64),
    "session": integer(0, limits.MAX_SESSION),
    "staff": text(limits.MAX_ID_CHARS, required=False),
    "panel_fw": text(limits.MAX_FW_CHARS, required=False),
    "oldest_unacked_s": integer(0, _I64, required=False),
    "hub_offset_ms": integer(-limits.MAX_MS, limits.MAX_MS, required=False),
    "last_error": text(limits.MAX_DETAIL_CHARS, required=False),
    "panel_dropped": integer(0, _I64, required=False),
    "unreadable": integer(0, _I64, required=False),
}


def _wire(value: Any, kind: str) -> dict[str, Any]:
    wire = {key: item for key, item in asdict(value).items() if item is not None}
    return {"v": limits.VERSION, "type": kind, **wire}


def encode_health(health: Health) -> bytes:
    return canonical.encode(_wire(health, "health"))


def decode_health(raw: bytes) -> Health:
    obj = decode_fields(raw, "health", _HEALTH)
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


_EVENT: Final[dict[str, Field]] = {
    **_COMMON,
    "kind": text(32, choices=frozenset(k.value for k in EventKind)),
    "detail": text(limits.MAX_DETAIL_CHARS, required=False),
}


def encode_event(event: DeviceEvent) -> bytes:
    return canonical.encode(_wire(event, "event"))


def decode_event(raw: bytes) -> DeviceEvent:
    obj = decode_fields(raw, "event", _EVENT)
    obj["kind"] = EventKind(obj["kind"])
    return DeviceEvent(**obj)
