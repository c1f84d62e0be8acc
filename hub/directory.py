"""The directory with its history: units, staff, counters, and who belonged where on which day.

A rating belongs to the clerk in its signed record; to the unit that clerk belonged to on the day
of the press (a membership); and to the counter its terminal stood at that day (a placement).
Histories are periods of the site's dates, `first_day` to `last_day` both included (None: still).
Writing a period over a history keeps what lies outside it and replaces what lies inside, so HR
can back-date a move, end one, or correct a mistake with one call.

Every change of a history re-attributes exactly the stored ratings it touches (the clerk's, or the
terminal's, on the days of the change) and moves their counts in every roll-up (hub.rollups), in
the same transaction. A clerk the directory does not know on a day is counted for no unit; once a
membership covers that day, the ratings follow. Under PostgreSQL a change holds the directory's
lock exclusively, so no ingest group attributes ratings with the history being changed
(hub.store.Store.attribution holds it shared).

Write functions of the writer's connection (`Writer.write`), as hub.registry's.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub import rollups
from hub.db import Database
from hub.errors import RegistryError
from hub.rows import Bucket
from hub.store import DIRECTORY_LOCK

__all__ = [
    "BEGINNING",
    "STATUSES",
    "Period",
    "check_day",
    "check_id",
    "history",
    "lock",
    "replace_history",
    "set_counter",
    "set_membership",
    "set_placement",
    "set_staff",
    "set_unit",
    "today",
]

BEGINNING = "0001-01-01"  # a period from before any rating
_END = "9999-12-31"
STATUSES = ("active", "left")


@dataclass(frozen=True, slots=True)
class Period:
    """A value (a unit, a counter) over days first_day..last_day (None: still)."""

    first_day: str
    last_day: str | None
    value: str

    def holds(self, day: str) -> bool:
        return self.first_day <= day and (self.last_day is None or day <= self.last_day)


def today(timezone: str = "UTC") -> str:
    """Today's date in `timezone` (ISO): when a change given without a day takes effect."""
    return datetime.now(ZoneInfo(timezone)).date().isoformat()


def check_id(what: str, value: str) -> None:
    if not value or len(value) > 64 or not value.isprintable() or value != value.strip():
        raise RegistryError(f"{what} {value!r} must be 1..64 printable characters, no spaces around")


def check_day(what: str, value: str) -> None:
    try:
        if len(value) != 10 or not BEGINNING <= value <= "9998-12-31":
            raise ValueError
        date.fromisoformat(value)
    except ValueError:
        raise RegistryError(f"{what} {value!r} is not a date YYYY-MM-DD (0001..9998)") from None


def check_timezone(value: str) -> None:
    if value:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise RegistryError(f"time zone {value!r} is not an IANA time zone this machine knows") from None


def lock(db: Database) -> None:
    """Take the directory's lock for this transaction (PostgreSQL; SQLite has one writer), and say
    that the directory changes (writers that remember its history read it again)."""
    db.require_transaction("directory writes")
    if db.kind == "postgresql":
        db.execute("SELECT pg_advisory_xact_lock(?)", (DIRECTORY_LOCK,))
    db.execute("UPDATE directory_version SET version = version + 1")


# -- the tree, staff and counters --------------------------------------------------------------------


def set_unit(
    db: Database,
    unit: str,
    *,
    parent: str | None,
    kind: str,
    name: str = "",
    timezone: str = "",
    opening: str = "",
) -> None:
    """Add a unit of the organisation or change it. RegistryError for an unknown parent or a cycle."""
    check_id("unit", unit)
    check_id("unit kind", kind)
    check_timezone(timezone)
    lock(db)
    if parent is not None:
        check_id("parent unit", parent)
        ancestor: str | None = parent
        while ancestor is not None:
            if ancestor == unit:
                raise RegistryError(f"unit {unit}: parent {parent} is inside it (a cycle)")
            row = db.execute("SELECT parent FROM units WHERE id = ?", (ancestor,)).fetchone()
            if row is None:
                raise RegistryError(f"unit {unit}: parent {ancestor} is not in the directory")
            ancestor = row[0]
    db.execute(
        "INSERT INTO units (id, parent, kind, name, timezone, opening, added_ms) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET parent = excluded.parent, kind = excluded.kind, name = excluded.name, "
        "timezone = excluded.timezone, opening = excluded.opening",
        (unit, parent, kind, name, timezone, opening, _now_ms()),
    )


def set_staff(db: Database, staff: str, *, name: str, status: str = "active", photo: str = "") -> None:
    """Add a staff member or change their name, status (active, left) or photo. A leaver keeps their
    history; their figures stay where they were."""
    check_id("staff id", staff)
    if status not in STATUSES:
        raise RegistryError(f"staff {staff}: status must be one of {STATUSES}, got {status!r}")
    lock(db)
    current = db.execute("SELECT unit FROM memberships WHERE staff = ? ORDER BY first_day DESC", (staff,)).fetchone()
    db.execute(
        "INSERT INTO staff (id, name, department, added_ms, status, photo) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET name = excluded.name, status = excluded.status, photo = excluded.photo",
        (staff, name, "" if current is None else current[0], _now_ms(), status, photo),
    )


def set_counter(db: Database, counter: str, *, unit: str = "", name: str = "") -> None:
    check_id("counter", counter)
    lock(db)
    db.execute(
        "INSERT INTO counters (id, unit, name) VALUES (?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET unit = excluded.unit, name = excluded.name",
        (counter, unit, name),
    )


# -- histories ---------------------------------------------------------------------------------------


def history(db: Database, table: str, key: str) -> list[Period]:
    """The periods of a clerk (`memberships`) or a terminal (`placements`), in date order."""
    column, value = _HISTORIES[table]
    rows = db.execute(
        f"SELECT first_day, last_day, {value} FROM {table} WHERE {column} = ? ORDER BY first_day",  # noqa: S608
        (key,),
    ).fetchall()
    return [Period(str(first), None if last is None else str(last), str(v)) for first, last, v in rows]


_HISTORIES = {"memberships": ("staff", "unit"), "placements": ("device", "counter")}


def on_day(db: Database, table: str, key: str, day: str) -> str:
    """The unit a clerk belonged to (`memberships`) or the counter a terminal stood at
    (`placements`) on `day` (ISO); '' for none."""
    return _on(history(db, table, key), day)


def overwrite(periods: list[Period], new: Period | None, first_day: str, last_day: str | None) -> list[Period]:
    """`periods` with days first_day..last_day given to `new` (None: to nothing), the rest kept;
    neighbouring periods with the same value joined."""
    kept: list[Period] = []
    for period in periods:
        if (last_day is not None and period.first_day > last_day) or (
            period.last_day is not None and period.last_day < first_day
        ):
            kept.append(period)
            continue
        if period.first_day < first_day:
            kept.append(Period(period.first_day, _day_before(first_day), period.value))
        if last_day is not None and (period.last_day is None or period.last_day > last_day):
            kept.append(Period(_day_after(last_day), period.last_day, period.value))
    if new is not None:
        kept.append(new)
    kept.sort(key=lambda p: p.first_day)
    joined: list[Period] = []
    for period in kept:
        if (
            joined
            and joined[-1].value == period.value
            and joined[-1].last_day is not None
            and _day_after(joined[-1].last_day) == period.first_day
        ):
            joined[-1] = Period(joined[-1].first_day, period.last_day, period.value)
        else:
            joined.append(period)
    return joined


def set_membership(
    db: Database, staff: str, unit: str | None, *, first_day: str = BEGINNING, last_day: str | None = None
) -> int:
    """The clerk belongs to `unit` (None: to no unit) from first_day to last_day; the rest of their
    history is kept. Their ratings of those days move with it. Returns how many ratings moved.

    RegistryError for a bad id or day, a unit not in the directory, or last_day before first_day.
    """
    check_id("staff id", staff)
    _check_days(first_day, last_day)
    lock(db)
    if unit is not None:
        check_id("unit", unit)
        if db.execute("SELECT 1 FROM units WHERE id = ?", (unit,)).fetchone() is None:
            raise RegistryError(f"staff {staff}: unit {unit} is not in the directory")
    return _set_period(db, "memberships", staff, unit, first_day=first_day, last_day=last_day)


def set_placement(
    db: Database, device: str, counter: str | None, *, first_day: str = BEGINNING, last_day: str | None = None
) -> int:
    """The terminal stands at `counter` (None: at none) from first_day to last_day; its ratings of
    those days move with it. Returns how many ratings moved."""
    check_id("device", device)
    _check_days(first_day, last_day)
    lock(db)
    if counter is not None:
        check_id("counter", counter)
    return _set_period(db, "placements", device, counter, first_day=first_day, last_day=last_day)


def replace_history(db: Database, table: str, key: str, periods: list[Period]) -> int:
    """Replace a clerk's (`memberships`) or a terminal's (`placements`) whole history with `periods`
    (checked: valid days, no overlaps); the ratings of every day whose value changes move with it.
    Returns how many ratings moved."""
    check_id("staff id" if table == "memberships" else "device", key)
    ordered = sorted(periods, key=lambda p: p.first_day)
    for period in ordered:
        _check_days(period.first_day, period.last_day)
        check_id("unit" if table == "memberships" else "counter", period.value)
    for before, after in itertools.pairwise(ordered):
        if before.last_day is None or before.last_day >= after.first_day:
            raise RegistryError(f"{key}: the period from {before.first_day} overlaps the one from {after.first_day}")
    lock(db)
    if table == "memberships":
        for period in ordered:
            if db.execute("SELECT 1 FROM units WHERE id = ?", (period.value,)).fetchone() is None:
                raise RegistryError(f"staff {key}: unit {period.value} is not in the directory")
    current = history(db, table, key)
    if current == ordered:
        return 0
    return _store(db, table, key, ordered, first_day=min(p.first_day for p in [*current, *ordered]), last_day=None)


def _set_period(db: Database, table: str, key: str, value: str | None, *, first_day: str, last_day: str | None) -> int:
    new = None if value is None else Period(first_day, last_day, value)
    periods = overwrite(history(db, table, key), new, first_day, last_day)
    return _store(db, table, key, periods, first_day=first_day, last_day=last_day)


def _store(db: Database, table: str, key: str, periods: list[Period], *, first_day: str, last_day: str | None) -> int:
    """Write a history, keep the current value on the staff's (devices') row, and re-attribute the
    ratings of days first_day..last_day; how many moved."""
    _write(db, table, key, periods)
    now = periods[-1].value if periods and periods[-1].last_day is None else ""
    if table == "memberships":
        db.execute("UPDATE staff SET department = ? WHERE id = ?", (now, key))
        return _reattribute_staff(db, key, periods, first_day, last_day)
    db.execute("UPDATE devices SET counter = ? WHERE id = ?", (now, key))
    return _reattribute_device(db, key, periods, first_day, last_day)


def _check_days(first_day: str, last_day: str | None) -> None:
    check_day("first day", first_day)
    if last_day is not None:
        check_day("last day", last_day)
        if last_day < first_day:
            raise RegistryError(f"the period ends ({last_day}) before it starts ({first_day})")


def _write(db: Database, table: str, key: str, periods: list[Period]) -> None:
    column, value = _HISTORIES[table]
    db.execute(f"DELETE FROM {table} WHERE {column} = ?", (key,))  # noqa: S608 (constant names)
    db.executemany(
        f"INSERT INTO {table} ({column}, first_day, last_day, {value}) VALUES (?, ?, ?, ?)",  # noqa: S608
        [(key, p.first_day, p.last_day, p.value) for p in periods],
    )


def _on(periods: list[Period], day: str) -> str:
    for period in periods:
        if period.holds(day):
            return period.value
    return ""


_ROW = "seq, day, staff, department, counter, kind, score, flags, superseded_by, invalidated"


def _reattribute_staff(db: Database, staff: str, periods: list[Period], first_day: str, last_day: str | None) -> int:
    """Give the clerk's ratings of first_day..last_day the unit `periods` says; move their counts."""
    spans = db.execute(
        "SELECT device, day, first_seq, last_seq FROM device_days WHERE staff = ? AND day BETWEEN ? AND ?",
        (staff, first_day, last_day or _END),
    ).fetchall()
    moves: list[tuple[str, str, int]] = []
    deltas: Counter[Bucket] = Counter()
    for device, day, first_seq, last_seq in spans:
        rows = db.execute(
            f"SELECT {_ROW} FROM ratings WHERE device = ? AND seq BETWEEN ? AND ? AND staff = ? AND day = ?",  # noqa: S608
            (device, first_seq, last_seq, staff, day),
        ).fetchall()
        unit = _on(periods, day)
        for row in rows:
            if row[3] != unit:
                moves.append((unit, device, int(row[0])))
                _move(deltas, row, unit=unit)
    return _apply(db, "department", moves, deltas)


def _reattribute_device(db: Database, device: str, periods: list[Period], first_day: str, last_day: str | None) -> int:
    rows = db.execute(
        f"SELECT {_ROW} FROM ratings WHERE device = ? AND day BETWEEN ? AND ?",  # noqa: S608
        (device, first_day, last_day or _END),
    ).fetchall()
    moves: list[tuple[str, str, int]] = []
    deltas: Counter[Bucket] = Counter()
    for row in rows:
        counter = _on(periods, row[1])
        if row[4] != counter:
            moves.append((counter, device, int(row[0])))
            _move(deltas, row, counter=counter)
    return _apply(db, "counter", moves, deltas)


def _move(
    deltas: Counter[Bucket], row: tuple[object, ...], *, unit: str | None = None, counter: str | None = None
) -> None:
    _seq, day, staff, department, at_counter, kind, score, flags, superseded, invalidated = row
    if staff is None:
        return  # counted for no one: only the column changes
    cell = rollups.cell_flags(str(flags), superseded=superseded is not None, invalidated=invalidated is not None)
    level = int(score or 0)  # type: ignore[call-overload]
    deltas[(str(day), str(staff), str(department), str(at_counter), str(kind), level, cell)] -= 1
    new_unit = str(department) if unit is None else unit
    new_counter = str(at_counter) if counter is None else counter
    deltas[(str(day), str(staff), new_unit, new_counter, str(kind), level, cell)] += 1


def _apply(db: Database, column: str, moves: list[tuple[str, str, int]], deltas: Counter[Bucket]) -> int:
    if moves:
        db.executemany(f"UPDATE ratings SET {column} = ? WHERE device = ? AND seq = ?", moves)  # noqa: S608
        rollups.apply(db, deltas)
    return len(moves)


def _day_before(day: str) -> str:
    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()


def _day_after(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
