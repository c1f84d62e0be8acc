"""Placing records in time: the hub's clock for each terminal boot, and the site's days.

A terminal's wall clock may be wrong (no RTC, NTP not synced yet); its monotonic clock is not. A
heartbeat carrying the hub offset the terminal measured from an ack anchors a boot: hub time =
anchor + mono, however wrong the wall clock and however late the message. Records are placed by
their own wall clock when it agrees with the anchor within `clock_tolerance_s`, else by the
anchor; without an anchor, a wall clock before 2020 or too far ahead is replaced by the time of
receipt. A new anchor places the boot's records stored before it again (`heartbeat`). A heartbeat
anchors only within plausible bounds: the hub time it implies for its own sending must be the time
of receipt (within seconds), or at most ten minutes before it; so no heartbeat, however signed, can move a boot's
records to another time than the one the hub itself measured.

A rating's day is its site's: the date in the time zone of the site its terminal stood at (the
nearest unit with a time zone, from the counter's unit up; the hub's `timezone` where none is
set), the site found by the placement of the day in the hub's time zone. Days are computed once per
15-minute bucket and zone: storage stays UTC. A site's zone, or a terminal's placement at a site
in another zone, applies to the records stored after it is set: the days of records already stored
are not cut again.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from hub.config import HubConfig
from hub.store import Store
from protocol import Health, Rating

__all__ = ["DAY_BUCKET_MS", "Clock"]

_EARLIEST_MS = 1_577_836_800_000  # 2020-01-01T00:00Z: a terminal clock before this has not been set
DAY_BUCKET_MS = 900_000  # every real UTC offset is a multiple of 15 minutes
_ANCHOR_SLACK_MS = 250  # a new anchor within this of the stored one changes nothing worth a rewrite
_REPORT_MAX_AGE_MS = 600_000  # a heartbeat that says it was sent longer ago than this anchors nothing
_REPORT_AHEAD_MS = 5_000  # ... or later than its receipt by more than this (clock error, rounding)


class Clock:
    def __init__(self, store: Store, config: HubConfig) -> None:
        self._store = store
        self._tolerance_ms = config.clock_tolerance_s * 1000
        self._skew_ms = config.clock_skew_s * 1000
        self._tz = ZoneInfo(config.timezone)
        self._days: dict[int, str] = {}
        self._zoned: dict[tuple[str, int], str] = {}  # (zone, bucket) -> day, for sites with a zone
        self._zones: dict[str, ZoneInfo] = {}
        self._anchors: dict[tuple[str, str], int | None] = {}  # (device, boot) -> hub epoch ms
        self.implausible = 0  # heartbeats whose clock report was out of bounds, not used

    def forget(self) -> None:
        """After a failed transaction: anchors read or set since its start may not be stored."""
        self._anchors.clear()

    def place(self, record: Rating, now_ms: int) -> tuple[int, str]:
        """When a record happened by the hub's clock (UTC ms), and how that was decided:
        "device" (its own clock), "anchor" (its boot's anchor) or "received" (the hub's receipt)."""
        epoch = self._anchor(record.device, record.boot)
        if epoch is not None:
            if abs(record.t - record.mono - epoch) <= self._tolerance_ms:
                return record.t, "device"
            return epoch + record.mono, "anchor"
        if _EARLIEST_MS <= record.t <= now_ms + self._skew_ms:
            return record.t, "device"
        return now_ms, "received"

    def day(self, at_ms: int) -> str:
        """The site's date (YYYY-MM-DD) of a UTC time in ms."""
        bucket = at_ms // DAY_BUCKET_MS
        day = self._days.get(bucket)
        if day is None:
            day = datetime.fromtimestamp(bucket * DAY_BUCKET_MS / 1000, self._tz).date().isoformat()
            if len(self._days) > 10_000:
                self._days.clear()
            self._days[bucket] = day
        return day

    def site_day(self, device: str, at_ms: int) -> str:
        """The date (YYYY-MM-DD) of a UTC time in ms at the site where `device` stood then."""
        day = self.day(at_ms)
        zone = self._store.zone(device, day)
        if not zone:
            return day
        bucket = at_ms // DAY_BUCKET_MS
        found = self._zoned.get((zone, bucket))
        if found is None:
            tz = self._zones.get(zone)
            if tz is None:
                tz = self._zones[zone] = ZoneInfo(zone)
            found = datetime.fromtimestamp(bucket * DAY_BUCKET_MS / 1000, tz).date().isoformat()
            if len(self._zoned) > 10_000:
                self._zoned.clear()
            self._zoned[(zone, bucket)] = found
        return found

    def heartbeat(self, device: str, health: Health, now_ms: int) -> int:
        """Anchor the heartbeat's boot, if it carries a hub offset; return how many records moved."""
        if health.hub_offset_ms is None:
            return 0  # no ack yet in this boot: nothing to anchor its clock to
        # The terminal measured hub time minus its monotonic clock from an ack; that holds for the
        # whole boot, however wrong its wall clock is and however late this message arrives.
        epoch = health.t - health.mono + health.hub_offset_ms
        # The anchor says when, by the hub's clock, the heartbeat was sent: epoch + mono. That must
        # be now (give or take the skew) or a little before (a late delivery); anything else is not a
        # clock report to re-date records by, whoever signed it.
        sent_ms = epoch + health.mono
        if not now_ms - _REPORT_MAX_AGE_MS <= sent_ms <= now_ms + _REPORT_AHEAD_MS:
            self.implausible += 1
            return 0
        current = self._anchor(device, health.boot)
        if current is not None and abs(current - epoch) <= _ANCHOR_SLACK_MS:
            return 0
        self._store.set_anchor(device, health.boot, epoch, health.t - health.mono, now_ms)
        self._anchors[(device, health.boot)] = epoch
        return self._retime(device, health.boot, epoch)

    def _anchor(self, device: str, boot: str) -> int | None:
        key = (device, boot)
        if key not in self._anchors:
            found = self._store.anchor(device, boot)
            self._anchors[key] = None if found is None else found[0]
        return self._anchors[key]

    def _retime(self, device: str, boot: str, epoch: int) -> int:
        """Place again the records of a boot whose time was decided without this anchor."""
        changes = []
        for seq, t_device, mono, source, counted in self._store.boot_times(device, boot):
            if abs(t_device - mono - epoch) <= self._tolerance_ms:
                at_ms, new_source = t_device, "device"
            else:
                at_ms, new_source = epoch + mono, "anchor"
            if new_source != source or new_source == "anchor":
                changes.append((seq, at_ms, self.site_day(device, at_ms), new_source, counted))
        if changes:
            self._store.retime(device, changes)
        return len(changes)
