"""The roll-ups reports read, kept in the transaction that stores what they count.

`daily_counts` counts ratings per day, clerk, unit, counter, kind, level and flags: every rating
with a clerk is in exactly one of its cells. The coarser tables (`LEVEL_TABLES`) hold the same
counts with the levels side by side (n0: unanswered invitations, n1..n5: presses per level), one
row per key and flags value: a month per clerk, a month per counter, a day per unit and a month
per unit. A month of a clerk is then a handful of rows instead of a few dozen cells, and a write
touches a few rows per table. For comparing, they are spelled out as cells (*key, level) -> n.

A cell's flags are the record's own, plus what happened to it since: `superseded` (an amend
replaced it) and `invalidated` (a decision left it out). Whether such a rating counts is the
scoring policy's business (hub.policy), not the roll-ups'.

Writers hand `apply` the changes of daily cells; the coarser tables follow from them. `rebuild`
recounts everything from the ratings (a repair; `pingjia hub verify` compares the two).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from hub.db import Database
from hub.rows import Bucket

__all__ = [
    "DERIVE_LEVELS",
    "INVALIDATED",
    "LEVEL_TABLES",
    "RECOUNT",
    "SUPERSEDED",
    "apply",
    "cell_flags",
    "coarser",
    "rebuild",
    "spans",
]

SUPERSEDED = "superseded"
INVALIDATED = "invalidated"


def cell_flags(flags: str, *, superseded: bool = False, invalidated: bool = False) -> str:
    """The flags of a rating's cell: its own, then `superseded`, then `invalidated`."""
    parts = [flags] if flags else []
    if superseded:
        parts.append(SUPERSEDED)
    if invalidated:
        parts.append(INVALIDATED)
    return ",".join(parts)


_MARKS = (
    "(CASE WHEN superseded_by IS NULL THEN '' ELSE ',superseded' END"
    " || CASE WHEN invalidated IS NULL THEN '' ELSE ',invalidated' END)"
)
_CELL_FLAGS = f"(CASE WHEN flags = '' THEN substr({_MARKS}, 2) ELSE flags || {_MARKS} END)"
# The daily cells as the ratings say they are: (day, staff, department, counter, kind, score, flags, n).
RECOUNT = (
    f"SELECT day, staff, department, counter, kind, coalesce(score, 0), {_CELL_FLAGS}, count(*) "  # noqa: S608
    f"FROM ratings WHERE staff IS NOT NULL GROUP BY day, staff, department, counter, kind, coalesce(score, 0), "
    f"{_CELL_FLAGS}"
)

KEYS = {"daily_counts": "day, staff, department, counter, kind, score, flags"}
_UPSERT = (
    "INSERT INTO daily_counts (day, staff, department, counter, kind, score, flags, n) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (day, staff, department, counter, kind, score, flags) "
    "DO UPDATE SET n = daily_counts.n + excluded.n"
)
# The tables with levels side by side: {table: key columns}; the counts are n0 (score 0: unanswered
# invitations) and n1..n5. As cells, (*key, score) -> n.
LEVEL_TABLES = {
    "staff_month_levels": "month, staff, department, flags",
    "counter_month_levels": "month, counter, department, flags",
    "unit_day_levels": "day, department, flags",
    "unit_month_levels": "month, department, flags",
}
_LEVELS = ", ".join(f"n{score}" for score in range(6))
_LEVEL_UPSERT = {
    table: (
        f"INSERT INTO {table} ({keys}, {_LEVELS}) VALUES ({', '.join('?' * (keys.count(',') + 7))}) "  # noqa: S608
        f"ON CONFLICT ({keys}) DO UPDATE SET "
        + ", ".join(f"n{score} = {table}.n{score} + excluded.n{score}" for score in range(6))
    )
    for table, keys in LEVEL_TABLES.items()
}
_SPAN = (
    "INSERT INTO device_days (device, day, staff, first_seq, last_seq, first_ms, last_ms) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device, day, staff) DO UPDATE SET "
    + ", ".join(
        f"{column} = CASE WHEN excluded.{column} {op} device_days.{column} "
        f"THEN excluded.{column} ELSE device_days.{column} END"
        for column, op in (("first_seq", "<"), ("last_seq", ">"), ("first_ms", "<"), ("last_ms", ">"))
    )
)

# A clerk's span on a terminal's day: (device, day, staff) -> [first_seq, last_seq, first_ms, last_ms].
Span = tuple[str, str, str]


def coarser(daily: Mapping[Bucket, int]) -> dict[str, Counter[tuple[str | int, ...]]]:
    """The cells of the coarser roll-ups that daily cells (or their changes) add up to."""
    found: dict[str, Counter[tuple[str | int, ...]]] = {table: Counter() for table in LEVEL_TABLES}
    staff_months, counter_months = found["staff_month_levels"], found["counter_month_levels"]
    unit_days, unit_months = found["unit_day_levels"], found["unit_month_levels"]
    for (day, staff, department, counter, _kind, score, flags), n in daily.items():
        if n:
            month = day[:7]
            staff_months[(month, staff, department, flags, score)] += n
            counter_months[(month, counter, department, flags, score)] += n
            unit_days[(day, department, flags, score)] += n
            unit_months[(month, department, flags, score)] += n
    return found


def apply(db: Database, deltas: Mapping[Bucket, int]) -> None:
    """Add the changes of daily cells to every roll-up (inside the writer's transaction)."""
    daily = [(*bucket, n) for bucket, n in deltas.items() if n]
    if not daily:
        return
    db.executemany(_UPSERT, daily)
    for table, cells in coarser(deltas).items():
        rows = _side_by_side(cells)
        if rows:
            db.executemany(_LEVEL_UPSERT[table], rows)


def _side_by_side(cells: Mapping[tuple[str | int, ...], int]) -> list[tuple[str | int, ...]]:
    """Cells (*key, score) -> n as rows (*key, n0, .., n5), leaving out keys whose changes are all 0."""
    rows: dict[tuple[str | int, ...], list[int]] = {}
    for cell, n in cells.items():
        if n:
            rows.setdefault(cell[:-1], [0] * 6)[int(cell[-1])] += n
    return [(*key, *levels) for key, levels in rows.items()]


def spans(db: Database, found: Mapping[Span, list[int]]) -> None:
    """Widen the clerks' spans on terminals' days to take in the seqs and times in `found`."""
    if found:
        db.executemany(_SPAN, [(*key, *value) for key, value in found.items()])


def rebuild(db: Database) -> None:
    """Recount every roll-up and span from the ratings (a repair, and for rows put in directly;
    ingest keeps them right). A write function: `writer.write(rebuild)`."""
    db.require_transaction("rebuilding the roll-ups")
    for table in (*KEYS, *LEVEL_TABLES, "device_days"):
        db.execute(f"DELETE FROM {table}")  # noqa: S608 (constant names)
    db.execute(f"INSERT INTO daily_counts ({KEYS['daily_counts']}, n) {RECOUNT}")
    for statement in DERIVE_LEVELS:
        db.execute(statement)
    db.execute(
        "INSERT INTO device_days (device, day, staff, first_seq, last_seq, first_ms, last_ms) "
        "SELECT device, day, staff, min(seq), max(seq), min(at_ms), max(at_ms) FROM ratings "
        "WHERE staff IS NOT NULL GROUP BY device, day, staff"
    )


_BY_LEVEL = ", ".join(f"sum(CASE WHEN score = {score} THEN n ELSE 0 END)" for score in range(6))
_SUMS = ", ".join(f"sum(n{score})" for score in range(6))
# The tables with levels side by side, from daily_counts (rebuild, and the benchmark's prefill).
DERIVE_LEVELS = (
    f"INSERT INTO unit_day_levels ({LEVEL_TABLES['unit_day_levels']}, {_LEVELS}) "  # noqa: S608
    f"SELECT day, department, flags, {_BY_LEVEL} FROM daily_counts GROUP BY day, department, flags",
    f"INSERT INTO staff_month_levels ({LEVEL_TABLES['staff_month_levels']}, {_LEVELS}) "  # noqa: S608
    f"SELECT substr(day, 1, 7), staff, department, flags, {_BY_LEVEL} FROM daily_counts "
    "GROUP BY substr(day, 1, 7), staff, department, flags",
    f"INSERT INTO counter_month_levels ({LEVEL_TABLES['counter_month_levels']}, {_LEVELS}) "  # noqa: S608
    f"SELECT substr(day, 1, 7), counter, department, flags, {_BY_LEVEL} FROM daily_counts "
    "GROUP BY substr(day, 1, 7), counter, department, flags",
    f"INSERT INTO unit_month_levels ({LEVEL_TABLES['unit_month_levels']}, {_LEVELS}) "  # noqa: S608
    f"SELECT substr(day, 1, 7), department, flags, {_SUMS} FROM unit_day_levels "
    "GROUP BY substr(day, 1, 7), department, flags",
)
