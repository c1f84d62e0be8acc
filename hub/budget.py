"""How much a refusal may cost the hub: a budget per source, so that rejects cost an attacker more
than the hub.

Every refused message used to be a reject row, a log line and an ack to the terminal whose topic
was used. Under a flood that is disk, log and broker traffic at the attacker's command. Each source
(the terminal a topic names, or one shared source for topics that name none) has a token bucket:
`burst` refusals at once, then `per_minute`; past it a refusal is only counted (`rejects_unrecorded`)
— no row, no log line, no answer. The rejects table is also kept to `max_rows`, oldest out first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["RejectBudget"]

_ANONYMOUS: Final = "\x00no-device"
_MAX_SOURCES: Final = 100_000  # buckets remembered; past it the idle ones are dropped


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at_ms: int


class RejectBudget:
    def __init__(self, *, per_minute: int = 60, burst: int = 120) -> None:
        self.per_ms = per_minute / 60_000
        self.burst = burst
        self._buckets: dict[str, _Bucket] = {}

    def take(self, source: str | None, now_ms: int) -> bool:
        """Whether a refusal from `source` (a device id; None: a topic that names none) may be
        recorded, logged and answered now."""
        key = source if source is not None else _ANONYMOUS
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= _MAX_SOURCES:
                self._forget_idle(now_ms)
            bucket = self._buckets[key] = _Bucket(tokens=float(self.burst), at_ms=now_ms)
        else:
            elapsed = max(0, now_ms - bucket.at_ms)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.per_ms)
            bucket.at_ms = now_ms
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    def _forget_idle(self, now_ms: int) -> None:
        full_after_ms = self.burst / self.per_ms if self.per_ms else 0
        self._buckets = {key: bucket for key, bucket in self._buckets.items() if now_ms - bucket.at_ms < full_after_ms}
        if len(self._buckets) >= _MAX_SOURCES:
            self._buckets.clear()
