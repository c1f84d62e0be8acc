"""The roll-ups reports read, kept in the transaction that stores what they count.

Four tables count the same thing at different grains: `daily_counts` per day, clerk, unit,
counter, kind, level and flags; `monthly_counts` per month; `unit_days` and `unit_months` per unit
only (a department's month reads a few hundred rows instead of every clerk's). Every rating with a
clerk is in exactly one cell of each. A cell's flags are the record's own, plus what happened to it
since: `superseded` (an amend replaced it) and `invalidated` (a decision left it out). Whether
such a rating counts is the scoring policy's business (hub.policy), not the roll-ups'.

Writers hand `apply` the changes of daily cells; the coarser tables follow from them. `rebuild`
recounts everything from the ratings (a repair; `pingjia hub verify` compares the two).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from hub.db import Database
from hub.rows import Bucket

__all__ = ["INVALIDATED", "RECOUNT", "SUPERSEDED", "apply", "cell_flags", "coarser", "rebuild", "spans"]

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

KEYS = {
    "daily_counts": "day, staff, department, counter, kind, score, flags",
    "monthly_counts": "month, staff, department, counter, kind, score, flags",
    "unit_days": "day, department, kind, score, flags",
    "unit_months": "month, department, kind, score, flags",
}
_UPSERT = {
    table: (
        f"INSERT INTO {table} ({keys}, n) VALUES ({', '.join('?' * (keys.count(',') + 2))}) "  # noqa: S608
        f"ON CONFLICT ({keys}) DO UPDATE SET n = {table}.n + excluded.n"
    )
    for table, keys in KEYS.items()
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
    found: dict[str, Counter[tuple[str | int, ...]]] = {table: Counter() for table in KEYS if table != "daily_counts"}
    months, unit_days, unit_months = found["monthly_counts"], found["unit_days"], found["unit_months"]
    for (day, staff, department, counter, kind, score, flags), n in daily.items():
        if n:
            month = day[:7]
            months[(month, staff, department, counter, kind, score, flags)] += n
            unit_days[(day, department, kind, score, flags)] += n
            unit_months[(month, department, kind, score, flags)] += n
    return found


def apply(db: Database, deltas: Mapping[Bucket, int]) -> None:
    """Add the changes of daily cells to every roll-up (inside the writer's transaction)."""
    daily = [(*bucket, n) for bucket, n in deltas.items() if n]
    if not daily:
        return
    db.executemany(_UPSERT["daily_counts"], daily)
    for table, cells in coarser(deltas).items():
        rows = [(*cell, n) for cell, n in cells.items() if n]
        if rows:
            db.executemany(_UPSERT[table], rows)


def spans(db: Database, found: Mapping[Span, list[int]]) -> None:
    """Widen the clerks' spans on terminals' days to take in the seqs and times in `found`."""
    if found:
        db.executemany(_SPAN, [(*key, *value) for key, value in found.items()])


def rebuild(db: Database) -> None:
    """Recount every roll-up and span from the ratings (a repair, and for rows put in directly;
    ingest keeps them right). A write function: `writer.write(rebuild)`."""
    db.require_transaction("rebuilding the roll-ups")
    for table in (*KEYS, "device_days"):
        db.execute(f"DELETE FROM {table}")  # noqa: S608 (constant names)
    db.execute(f"INSERT INTO daily_counts ({KEYS['daily_counts']}, n) {RECOUNT}")
    db.execute(
        f"INSERT INTO monthly_counts ({KEYS['monthly_counts']}, n) "  # noqa: S608
        "SELECT substr(day, 1, 7), staff, department, counter, kind, score, flags, sum(n) FROM daily_counts "
        "GROUP BY substr(day, 1, 7), staff, department, counter, kind, score, flags"
    )
    db.execute(
        f"INSERT INTO unit_days ({KEYS['unit_days']}, n) "  # noqa: S608
        "SELECT day, department, kind, score, flags, sum(n) FROM daily_counts "
        "GROUP BY day, department, kind, score, flags"
    )
    db.execute(
        f"INSERT INTO unit_months ({KEYS['unit_months']}, n) "  # noqa: S608
        "SELECT substr(day, 1, 7), department, kind, score, flags, sum(n) FROM daily_counts "
        "GROUP BY substr(day, 1, 7), department, kind, score, flags"
    )
    db.execute(
        "INSERT INTO device_days (device, day, staff, first_seq, last_seq, first_ms, last_ms) "
        "SELECT device, day, staff, min(seq), max(seq), min(at_ms), max(at_ms) FROM ratings "
        "WHERE staff IS NOT NULL GROUP BY device, day, staff"
    )
