"""Grade flags with their evidence, month by month, from the same figures as the reports.

Two rules of the source documents and provincial practice, each a flag with the months and counts
that raise it (a flag is a finding for a person to look at, never a change of any figure):

- `very_dissatisfied`: at least one 非常不满意 (level 1) in each of `months` consecutive months
  ("N consecutive months with 非常不满意 lowers the grade");
- `near_bottom`: in the bottom `share` of the fair ranking (hub.ranking: the lower bound of the 95 %
  Wilson interval of the satisfaction rate, among those with enough ratings) in each of `months`
  consecutive months ("near the bottom of the ranking two months running").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

from hub.errors import ReportError
from hub.policy import Policy
from hub.queries import Reader
from hub.report import Figures, Period, aggregate, parse_period, ranked

__all__ = ["GradeFlag", "flags", "months_ending"]


@dataclass(frozen=True)
class GradeFlag:
    rule: str
    key: str  # the staff member (or department)
    evidence: list[dict[str, object]] = field(default_factory=list)  # one entry per month


def months_ending(period: Period, count: int) -> list[Period]:
    """The `count` months ending with `period` (which must be a month), oldest first."""
    first = period.first
    if first.day != 1 or parse_period(first.strftime("%Y-%m")).last != period.last:
        raise ReportError(f"grade flags are judged per month: give --period YYYY-MM, not {period.label}")
    if count < 1:
        raise ReportError(f"the flags need at least one month, got {count}")
    months = []
    year, month = first.year, first.month
    for _ in range(count):
        months.append(parse_period(date(year, month, 1).strftime("%Y-%m")))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months[::-1]


def flags(
    reader: Reader,
    period: Period,
    *,
    level: str = "staff",
    months: int = 2,
    share: float = 0.1,
    minimum: int,
    rules: list[Policy] | None = None,
) -> list[GradeFlag]:
    """Every grade flag raised by the `months` months ending with `period`, with its evidence."""
    if not 0 < share < 1:
        raise ReportError(f"the bottom share must be between 0 and 1, got {share}")
    figures: list[dict[str, Figures]] = []
    standings = []
    for month in months_ending(period, months):
        rows = aggregate(reader, month, level, rules=rules).rows
        figures.append({row.key: row for row in rows if row.known})
        standings.append(ranked(rows, minimum=minimum))
    labels = [month.label for month in months_ending(period, months)]
    found: list[GradeFlag] = []
    keys = sorted(set().union(*figures))
    for key in keys:
        levels = [month.get(key) for month in figures]
        if all(row is not None and row.levels[1] > 0 for row in levels):
            evidence: list[dict[str, object]] = [
                {"month": label, "n1": row.levels[1]} for label, row in zip(labels, levels, strict=True) if row
            ]
            found.append(GradeFlag("very_dissatisfied", key, evidence))
    bottoms = []
    for standing in standings:
        places = sorted((s.rank, key) for key, s in standing.items() if s.rank is not None)
        cut = math.ceil(len(places) * share)
        bottom = {key for _rank, key in places[-cut:]} if cut else set()
        bottoms.append(bottom)
    for key in keys:
        if all(key in bottom for bottom in bottoms):
            evidence = []
            for label, standing in zip(labels, standings, strict=True):
                ranked_count = sum(1 for s in standing.values() if s.rank is not None)
                mine = standing[key]
                evidence.append(
                    {
                        "month": label,
                        "rank": mine.rank,
                        "of": ranked_count,
                        "satisfaction_low": None if mine.low is None else round(mine.low * 100, 1),
                    }
                )
            found.append(GradeFlag("near_bottom", key, evidence))
    return found
