"""The hub's tables as Python values: a terminal's registry row, a rating row, a daily-counts cell.

Shared by the one writer (hub.store) and the readers (hub.queries), which both need them; neither
side's SQL lives here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

from protocol import VerifyKey

__all__ = ["DEVICE_COLUMNS", "Bucket", "DeviceEntry", "RatingRow"]

# A cell of daily_counts: (day, staff, department, counter, kind, score or 0, flags), see hub.rollups.
Bucket = tuple[str, str, str, str, str, int, str]


@dataclass(frozen=True, slots=True)
class DeviceEntry:
    """A registered terminal: its key, where it stands, and how far its records are stored."""

    id: str
    pubkey: str  # hex
    department: str
    counter: str
    upto: int
    status_state: str | None
    status_session: int | None
    max_seq: int = 0
    revoked_ms: int | None = None  # its key was revoked: records placed after this are refused

    @property
    def key(self) -> VerifyKey:
        return _verify_key(self.pubkey)


# The columns a DeviceEntry is read from, in its field order.
DEVICE_COLUMNS = "id, pubkey, department, counter, upto, status_state, status_session, max_seq, revoked_ms"


@functools.lru_cache(maxsize=100_000)
def _verify_key(pubkey: str) -> VerifyKey:
    return VerifyKey.from_hex(pubkey)


class RatingRow(NamedTuple):
    """One row of the ratings table, in its column order (a tuple: inserted as it is)."""

    device: str
    seq: int
    kind: str
    staff: str | None
    score: int | None
    amends: int | None
    flags: str
    department: str
    counter: str
    t_device: int
    at_ms: int
    day: str
    stored_ms: int
    prev: str
    hash: str
    record: str
    boot: str | None = None
    mono: int | None = None
    time_source: str = "device"
