"""Time on the terminal: a wall clock that may lie, and a monotonic clock that does not.

Records carry both: `t` (wall, UTC ms; wrong before NTP syncs on a board without an RTC) and
`boot` + `mono` (ms since that boot), which the hub can place in time from a heartbeat's offset.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock"]

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


class ManualClock:
    """A clock a test sets: both clocks move only when told to (`advance`), together, unless the
    wall clock is made to jump (`jump`). The public fake next to SystemClock."""

    def __init__(self, *, wall_ms: int = 1_764_000_000_000, mono_ms: int = 1_000, boot: str = "boot-test") -> None:
        self.boot = boot
        self._wall_ms = wall_ms
        self._mono_ms = mono_ms

    def wall_ms(self) -> int:
        return self._wall_ms

    def mono_ms(self) -> int:
        return self._mono_ms

    def advance(self, ms: int) -> None:
        self._wall_ms += ms
        self._mono_ms += ms

    def jump(self, ms: int) -> None:
        """The wall clock alone moves (NTP's first sync on a board without a real-time clock)."""
        self._wall_ms += ms
