"""Time on the terminal: a wall clock that may lie, and a monotonic clock that does not.

Records carry both: `t` (wall, UTC ms; wrong before NTP syncs on a board without an RTC) and
`boot` + `mono` (ms since that boot), which the hub can place in time from a heartbeat's offset.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Protocol

__all__ = ["Clock", "OffsetClock", "SystemClock"]

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


class Clock(Protocol):
    boot: str

    def wall_ms(self) -> int: ...

    def mono_ms(self) -> int: ...


class SystemClock:
    """Linux: the kernel's boot id and CLOCK_MONOTONIC (which counts from that boot)."""

    def __init__(self) -> None:
        try:
            self.boot = _BOOT_ID.read_text().strip()
        except OSError:
            self.boot = uuid.uuid4().hex  # no kernel boot id: this process's start stands in

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def mono_ms(self) -> int:
        return time.monotonic_ns() // 1_000_000


class OffsetClock(SystemClock):
    """The system clock with a wall-clock offset read from a file (ms, may be negative).

    The simulator's backend of the clock: a test or a fault scenario writes the file to make the
    terminal's wall clock jump, as an RTC-less board's does when NTP first syncs. The monotonic
    clock is untouched, as on a real board.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._stamp: float | None = None
        self._offset_ms = 0

    def wall_ms(self) -> int:
        try:
            stamp = self.path.stat().st_mtime_ns
            if stamp != self._stamp:
                self._offset_ms = int(self.path.read_text(encoding="utf-8").strip() or 0)
                self._stamp = stamp
        except (OSError, ValueError):
            self._offset_ms = 0
        return super().wall_ms() + self._offset_ms
