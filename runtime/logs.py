"""Log lines that anyone on the broker can provoke, rate-limited.

A flood of bad messages must not become a flood of log lines (filling a terminal's disk or
drowning the one line that matters), and the first few of each kind must still be seen. So each
kind (a reason code, say) gets `burst` lines per `window_s`; what is held back is counted, and said
in one line with the first of its kind after the window.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["LogLimiter"]


@dataclass(slots=True)
class _Window:
    start: float
    said: int = 0
    held: int = 0


class LogLimiter:
    def __init__(
        self,
        logger: logging.Logger,
        *,
        burst: int = 10,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.burst = burst
        self.window_s = window_s
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def log(self, level: int, kind: str, message: str, *args: object) -> bool:
        """Log `message % args` unless `kind` has had its `burst` lines in this window; True if logged."""
        now = self._clock()
        window = self._windows.get(kind)
        if window is None or now - window.start >= self.window_s:
            if window is not None and window.held:
                self.logger.log(level, "%d more like the above (%s) in %.0f s", window.held, kind, self.window_s)
            if len(self._windows) > 1000:  # kinds come from a fixed list; this only bounds a surprise
                self._windows.clear()
            window = self._windows[kind] = _Window(start=now)
        if window.said >= self.burst:
            window.held += 1
            return False
        window.said += 1
        self.logger.log(level, message, *args)
        return True
