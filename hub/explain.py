"""Explaining a report's cell: the exact signed records behind a number, each with its verdict.

`pingjia report --level L --period P --explain KEY[:COLUMN]` streams every stored record of row KEY
in the period (or only those behind COLUMN: n5..n1, unanswered, total, left_out, left_out_REASON),
each with why it counted or was left out under the policy of its day, and ends with the tally,
which equals the report's row. Records are found through the clerks' spans on terminals' days
(device_days) and read by their primary key, so the first one comes at once however many follow.
Each carries its hash and signed record: `pingjia hub verify --explained FILE` checks them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from hub import rollups
from hub.errors import ReportError
from hub.policy import EXCLUSIONS, Policy, segments
from hub.queries import Reader
from hub.report import LEVELS, Period, roll_up

__all__ = ["COLUMNS", "Explained", "distribution", "explain", "tally"]

COLUMNS = (
    "n5",
    "n4",
    "n3",
    "n2",
    "n1",
    "unanswered",
    "total",
    "left_out",
    *(f"left_out_{reason}" for reason in EXCLUSIONS),
)


@dataclass(frozen=True, slots=True)
class Explained:
    """One record behind a cell and its verdict."""

    device: str
    seq: int
    day: str
    at_ms: int
    kind: str
    staff: str
    score: int | None
    flags: str
    department: str
    counter: str
    verdict: str  # counted, left_out, not_counted
    level: int | None  # the level it counted as
    why: str
    policy: int
    hash: str
    record: str

    def columns(self) -> set[str]:
        """The report columns this record is in."""
        if self.verdict == "left_out":
            return {"left_out", f"left_out_{self.why.split(':')[0]}"}
        found = {"unanswered"} if self.kind == "timeout" else {f"n{self.level}"}
        return found | {"total"} if self.verdict == "counted" else found

    def as_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "seq": self.seq,
            "day": self.day,
            "at_ms": self.at_ms,
            "kind": self.kind,
            "staff": self.staff,
            "score": self.score,
            "flags": self.flags,
            "department": self.department,
            "counter": self.counter,
            "verdict": self.verdict,
            "level": self.level,
            "why": self.why,
            "policy": self.policy,
            "hash": self.hash,
            "record": self.record,
        }


def explain(
    reader: Reader, period: Period, level: str, cell: str, rules: list[Policy] | None = None
) -> Iterator[Explained]:
    """The records behind row `cell` ("KEY" or "KEY:COLUMN") of a `level` report for `period`.

    ReportError for an unknown level or column. Yields lazily: the caller may print each at once.
    """
    if level not in LEVELS:
        raise ReportError(f"--level must be one of {LEVELS}, got {level!r}")
    key, _, column = cell.partition(":")
    if not key:
        raise ReportError("--explain needs the row's key, e.g. --explain E1 or --explain E1:n1")
    if column and column not in COLUMNS:
        raise ReportError(f"--explain {cell}: no column {column!r}; one of {', '.join(COLUMNS)}")
    stretches = segments(rules or [Policy()], period.first, period.last)
    for row in _records(reader, period, level, key):
        day = row[2]
        policy = next(p for first, last, p in stretches if first.isoformat() <= day <= last.isoformat())
        explained = _verdict(row, policy)
        if not column or column in explained.columns():
            yield explained


def _records(reader: Reader, period: Period, level: str, key: str) -> Iterator[tuple[Any, ...]]:
    first, last = period.first.isoformat(), period.last.isoformat()

    def within(spans: list[tuple[str, str, int, int]], keep: Any) -> Iterator[tuple[Any, ...]]:
        for device, _day, lo, hi in spans:
            for row in reader.ratings_in(device, lo, hi):
                if row[5] is not None and first <= row[2] <= last and keep(row):
                    yield row

    if level == "staff":
        yield from within(reader.spans(key, period.first, period.last), lambda row: row[5] == key)
        return
    if level == "counter":
        for device in reader.placed(key, period.first, period.last):
            spans = _merged(reader.device_spans(device, period.first, period.last), device)
            yield from within(spans, lambda row: row[9] == key)
        return
    tree = reader.units()
    units = {unit for unit in tree if key in roll_up(tree, unit, level)}
    if key not in tree:
        raise ReportError(f"no unit {key!r} in the directory")
    for staff in reader.members(sorted(units), period.first, period.last):
        yield from within(
            reader.spans(staff, period.first, period.last), lambda row, s=staff: row[5] == s and row[8] in units
        )


def _merged(spans: list[tuple[str, str, int, int]], device: str) -> list[tuple[str, str, int, int]]:
    """A terminal's spans of one day joined (several clerks' spans of a day overlap)."""
    days: dict[str, list[int]] = {}
    for _staff, day, lo, hi in spans:
        span = days.setdefault(day, [lo, hi])
        span[0], span[1] = min(span[0], lo), max(span[1], hi)
    return [(device, day, lo, hi) for day, (lo, hi) in days.items()]


def _verdict(row: tuple[Any, ...], policy: Policy) -> Explained:
    device, seq, day, at_ms, kind, staff, score, flags, department, counter, by, invalidated, digest, record = row
    marks = rollups.cell_flags(str(flags), superseded=by is not None, invalidated=invalidated is not None)
    reason = policy.excluded_by(marks)
    level: int | None = None
    if reason is not None:
        verdict = "left_out"
        why = {
            "superseded": f"superseded: replaced by the amend at seq {by}",
            "invalidated": f"invalidated: {invalidated}",
            "misuse": "misuse: pressed again within the misuse interval",
            "uninvited": "uninvited: pressed without an invitation, and the policy counts only invited presses",
            "noreason": "noreason: a bad rating without a reason, and the policy needs one",
        }[reason]
    elif kind == "timeout":
        level = policy.timeout or None
        verdict = "counted" if level else "not_counted"
        why = (
            f"an unanswered invitation, counted as level {level} by policy v{policy.version}"
            if level
            else f"an unanswered invitation, not counted by policy v{policy.version}"
        )
    else:
        verdict, level = "counted", int(score)
        why = f"level {level}" + (f" ({kind})" if kind != "press" else "")
    return Explained(
        device=str(device),
        seq=int(seq),
        day=str(day),
        at_ms=int(at_ms),
        kind=str(kind),
        staff=str(staff),
        score=None if score is None else int(score),
        flags=str(flags),
        department=str(department),
        counter=str(counter),
        verdict=verdict,
        level=level,
        why=why,
        policy=policy.version,
        hash=str(digest),
        record=str(record),
    )


def tally(items: Iterator[Explained], found: Counter[str]) -> Iterator[Explained]:
    """Pass `items` on, adding each to `found`: the report row's columns as the records make them."""
    for item in items:
        found.update(item.columns())
        yield item


def distribution(items: Iterator[Explained], timezone: str) -> dict[str, Any]:
    """When a row's counted ratings were made: per hour of the day and per weekday (1 = Monday), in
    `timezone` (the site's), with the mean level of each (unanswered invitations counted as the
    policy says)."""
    zone = ZoneInfo(timezone)
    hours: dict[int, list[int]] = {}
    weekdays: dict[int, list[int]] = {}
    for item in items:
        if item.verdict != "counted" or item.level is None:
            continue
        at = datetime.fromtimestamp(item.at_ms / 1000, zone)
        for bucket, key in ((hours, at.hour), (weekdays, at.isoweekday())):
            count = bucket.setdefault(key, [0, 0])
            count[0] += 1
            count[1] += item.level

    def shown(bucket: dict[int, list[int]]) -> dict[str, dict[str, Any]]:
        return {str(k): {"n": n, "mean": round(total / n, 2)} for k, (n, total) in sorted(bucket.items())}

    return {"timezone": timezone, "hours": shown(hours), "weekdays": shown(weekdays)}
