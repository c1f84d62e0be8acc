"""Hub settings, declared once as data (runtime.settings is the mechanism)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar
from zoneinfo import ZoneInfo

from runtime.settings import setting

__all__ = ["HubConfig"]


def _is_time_zone(name: str) -> bool:
    """Whether `name` is a time zone this machine knows (an IANA name such as Asia/Shanghai)."""
    try:
        ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # unknown (ZoneInfoNotFoundError), malformed, or a folder
        return False
    return True


@dataclass(frozen=True, kw_only=True)
class HubConfig:
    REMOVED: ClassVar[Mapping[str, str]] = {}

    timezone: str = setting(
        "Asia/Shanghai",
        "the time zone of sites with none of their own in the directory: their ratings are grouped "
        "into days and months in it (storage stays UTC)",
        rule="an IANA time zone name, such as Asia/Shanghai",
        check=_is_time_zone,
    )
    timeout_score: int = setting(
        3,
        "how an invitation with no press counts in figures: as this level (3 = 一般, per the source rules), "
        "or 0 = not counted",
        low=0,
        high=5,
    )
    clock_skew_s: int = setting(
        86_400,
        "a record whose terminal time is further than this in the future (or before 2020) is placed at the "
        "hub's receive time instead",
        unit="s",
        low=1,
        high=31_536_000,
    )
    clock_tolerance_s: float = setting(
        2.0,
        "a terminal wall clock within this of the hub's (as the terminal measures from acks) is taken as it is; "
        "records of a terminal further off are placed by its monotonic clock",
        unit="s",
        low=0.1,
        high=3600,
    )
    rank_min_ratings: int = setting(
        30,
        "a staff member or department needs this many counted ratings in the period to be ranked (`report --rank`)",
        low=1,
        high=1_000_000,
    )
    count_uninvited: bool = setting(
        False, "count presses made without an invitation (invited mode) in figures; they are always kept"
    )
    group_max: int = setting(
        500, "messages stored in one transaction (one fsync) before their acks go out", low=1, high=10_000
    )
    group_max_bytes: int = setting(
        1_000_000,
        "payload bytes stored in one transaction at most: backlog batches are big, and smaller groups keep "
        "preparing, storing and acking flowing side by side",
        unit="bytes",
        low=10_000,
        high=1_000_000_000,
    )
    receive_maximum: int = setting(
        1000,
        "MQTT 5 receive maximum: messages the broker may have in flight to this hub",
        low=10,
        high=65_535,
    )
    session_expiry_s: int = setting(
        604_800,
        "the broker keeps this hub's subscriptions and queued messages this long while it is away (not across "
        "a broker restart for a shared subscription's messages: terminals send those again)",
        unit="s",
        low=0,
        high=4_294_967_295,
    )
    rejects_per_minute: int = setting(
        60,
        "refusals recorded, logged and answered per terminal (or for all topics naming none) per minute, after "
        "a burst of rejects_burst; past it they are only counted (rejects_unrecorded)",
        low=1,
        high=1_000_000,
    )
    rejects_burst: int = setting(120, "see rejects_per_minute", low=1, high=1_000_000)
    rejects_max_rows: int = setting(100_000, "the rejects table keeps this many newest rows", low=100, high=100_000_000)
    stats_every_s: float = setting(10.0, "interval of the hub's progress line in its log", unit="s", low=0.5, high=3600)
    mqtt_protocol: str = setting("auto", "MQTT version: 5, 3.1.1, or auto", choices=("auto", "5", "3.1.1"))
    reconnect_min_s: float = setting(
        0.1, "first reconnect delay; doubles per failure, with full jitter", unit="s", low=0.05, high=60
    )
    reconnect_max_s: float = setting(
        1.0,
        "longest reconnect delay: however long the broker was away, the hub tries again at least this often, "
        "so it is back within about this long of the broker (terminals wait longer, to spread a hall's load)",
        unit="s",
        low=0.1,
        high=3600,
    )
