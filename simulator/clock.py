"""The host backend of the terminal's clock: the system clock with a wall-clock offset read from a
file (ms, may be negative).

A test or the fault scenario writes the file to make a terminal's wall clock jump, as an RTC-less
board's does when NTP first syncs. The monotonic clock is untouched, as on a real board. The
terminal runs with it through `python -m simulator.terminal --clock-offset-file F device run ...`.
"""

from __future__ import annotations

from pathlib import Path

from device.clock import SystemClock

__all__ = ["OffsetClock"]


class OffsetClock(SystemClock):
    """The system clock, its wall clock moved by the milliseconds in `path` (re-read when it changes)."""

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
