"""What the terminal says about itself: its health every heartbeat, events as they happen, the last
error, and a watch on its wall clock.

Health (retained) lets the hub and a technician see a terminal at a glance, and carries its two
clocks (`t` and `mono`, read together) and the hub's offset from the latest ack, so the hub can
place records in time when the wall clock is wrong. Events (a burst of presses, the panel
unplugged, out of service, an unknown card, a clock jump) are signals, sent at most once: unlike
ratings they are not kept in the outbox.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from device import __version__
from device.clock import Clock
from device.events import ClockJumped, Error, HealthReported, Misuse, Report
from device.io import IoStatus
from device.outbox import Outbox
from protocol import Channel, DeviceEvent, EventKind, Health, SigningKey, encode_event, encode_health
from protocol.canonical import printable
from protocol.limits import MAX_DETAIL_CHARS
from runtime.logs import LogLimiter

__all__ = ["Errors", "Telemetry"]

log = logging.getLogger("pingjia.device")

_CLOCK_JUMP_MS = 2_000


class Errors:
    """Says what went wrong: as the health's `last_error`, as an event, and in the log (a few lines
    a minute of each kind at most: anyone on the broker could otherwise provoke them at will)."""

    def __init__(self, device: str, report: Report) -> None:
        self.device = device
        self.last: str | None = None
        self._report = report
        self._limited = LogLimiter(log)

    def __call__(self, detail: str, kind: str = "error") -> None:
        detail = printable(detail, 1000)
        self.last = detail[:MAX_DETAIL_CHARS]
        self._limited.log(logging.ERROR, kind, "%s: %s", self.device, detail)
        self._report(Error(detail))


class Telemetry:
    def __init__(
        self,
        *,
        device: str,
        clock: Clock,
        heartbeat_s: float,
        data_dir: Path,
        report: Report,
        errors: Errors,
        publish: Callable[[Channel, bytes], bool],
        key: SigningKey,
    ) -> None:
        """`publish(channel, payload)` sends on the terminal's own topic; False when offline. `key`
        signs health and events (the terminal's own key)."""
        self.device = device
        self._key = key
        self.clock = clock
        self.heartbeat_ms = int(heartbeat_s * 1000)
        self.data_dir = data_dir
        self.misuse_alarms = 0
        self._report = report
        self._errors = errors
        self._publish = publish
        now = clock.mono_ms()
        self._started_ms = now
        self.next_health_ms = now
        self._epoch_ms = clock.wall_ms() - now  # wall minus mono: moves only when the wall clock jumps

    def health(
        self,
        now: int,
        *,
        state: str,
        staff: str | None,
        outbox: Outbox,
        io: IoStatus,
        session: int,
        rejected: int,
        unreadable: int,
        hub_epoch_ms: int | None,
        refused: int = 0,
        refused_last: str | None = None,
        config_version: int = 0,
        hub_key: str | None = None,
    ) -> Health:
        oldest = outbox.oldest_unacked_ms()
        wall = self.clock.wall_ms()
        try:
            free = shutil.disk_usage(self.data_dir).free
        except OSError:
            free = 0
        return Health(
            device=self.device,
            t=wall,
            boot=self.clock.boot,
            mono=now,
            fw=__version__,
            uptime_s=(now - self._started_ms) // 1000,
            state=state,
            panel=io.panel,
            outbox_depth=outbox.depth,
            free_disk_bytes=free,
            misuse_alarms=self.misuse_alarms,
            rejected=rejected,
            session=session,
            staff=staff,
            panel_fw=io.fw,
            oldest_unacked_s=None if oldest is None else max(0, (wall - oldest) // 1000),
            hub_offset_ms=None if hub_epoch_ms is None else hub_epoch_ms - (wall - now),
            last_error=self._errors.last,
            panel_dropped=io.dropped,
            unreadable=unreadable,
            refused=refused,
            refused_last=refused_last,
            config_version=config_version or None,
            hub_key=None if hub_key is None else hub_key[:16],
        )

    def publish_health(self, now: int, health: Health) -> None:
        """Report and publish (retained) a health message; the next is due a heartbeat later."""
        self.next_health_ms = now + self.heartbeat_ms
        raw = encode_health(health, self._key)
        self._report(HealthReported(json.loads(raw)))
        self._publish(Channel.HEALTH, raw)

    def event(self, kind: EventKind, now: int, detail: str | None = None) -> None:
        message = DeviceEvent(
            device=self.device,
            t=self.clock.wall_ms(),
            boot=self.clock.boot,
            mono=now,
            kind=kind,
            detail=None if detail is None else detail[:MAX_DETAIL_CHARS],
        )
        self._publish(Channel.EVENT, encode_event(message, self._key))

    def misuse(self, presses: int, window_ms: int, now: int) -> None:
        self.misuse_alarms += 1
        detail = f"{presses} presses within {window_ms // 1000} s"
        self._report(Misuse(detail))
        self.event(EventKind.MISUSE_BURST, now, detail)

    def clock_jumped(self, now: int) -> bool:
        """Whether the wall clock moved against the monotonic one since last looked (said if so)."""
        epoch = self.clock.wall_ms() - now
        jump = epoch - self._epoch_ms
        if abs(jump) < _CLOCK_JUMP_MS:
            return False
        self._epoch_ms = epoch
        detail = f"wall clock moved {jump:+d} ms"
        log.warning("%s: %s", self.device, detail)
        self._report(ClockJumped(jump))
        self.event(EventKind.CLOCK_JUMP, now, detail)
        return True
