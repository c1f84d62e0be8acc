"""Figures per staff member or department for a period: counts per level, mean, a 0..100 index,
satisfaction, and a fair ranking.

Every figure is computed from counts (exact fractions, rounded only when shown). Counted: ratings of
a logged-in staff member, the latest version of each (an amend replaces what it amends), misuse left
out, and presses made without an invitation left out unless `count_uninvited` is set. An invitation
with no press counts as the level `timeout_score` says (0: not counted), and is always shown in its
own column so that the number can be traced.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from calendar import monthrange
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction
from typing import Any

from hub.errors import ReportError
from hub.queries import Reader
from hub.ranking import Standing, rank

__all__ = [
    "DEFAULT_LABELS",
    "Extras",
    "Figures",
    "Period",
    "ReportError",
    "aggregate",
    "parse_period",
    "ranked",
    "render",
]

DEFAULT_LABELS = ("非常满意", "满意", "一般", "不满意", "非常不满意")  # levels 5..1
GROUPINGS = ("staff", "department")
FORMATS = ("table", "csv", "json")


@dataclass(frozen=True)
class Period:
    first: date
    last: date
    label: str

    def previous(self) -> Period:
        """The period of the same kind just before: the day, ISO week, month, quarter or year before,
        or, for a range, as many days before."""
        kind = _kind(self.label)
        if kind == "month":
            before = self.first - timedelta(days=1)
            return _period(before.strftime("%Y-%m"))
        if kind == "quarter":
            before = self.first - timedelta(days=1)
            return _period(f"{before.year}-Q{(before.month - 1) // 3 + 1}")
        if kind == "year":
            return _period(str(self.first.year - 1))
        if kind == "week":
            year, week, _day = (self.first - timedelta(days=7)).isocalendar()
            return _period(f"{year}-W{week:02d}")
        days = (self.last - self.first).days + 1
        first, last = self.first - timedelta(days=days), self.first - timedelta(days=1)
        return Period(first, last, first.isoformat() if days == 1 else f"{first.isoformat()}..{last.isoformat()}")


_RANGE = re.compile(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})")
_MAX_RANGE_DAYS = 3660


def parse_period(text: str) -> Period:
    """A period in the site's time zone: `YYYY-MM-DD` (a day), `YYYY-Www` (an ISO week, Monday to
    Sunday), `YYYY-MM` (a month), `YYYY-Qn` (a quarter), `YYYY` (a year), or `FIRST..LAST` (days,
    both included, at most ten years). ReportError saying what is wrong."""
    text = text.strip()
    try:
        return _period(text)
    except ValueError as exc:
        raise ReportError(f"period {text!r}: {exc}") from None


def _kind(label: str) -> str:
    if _RANGE.fullmatch(label):
        return "range"
    if "-W" in label:
        return "week"
    if "-Q" in label:
        return "quarter"
    if re.fullmatch(r"\d{4}", label):
        return "year"
    return "month" if re.fullmatch(r"\d{4}-\d{2}", label) else "day"


def _period(text: str) -> Period:
    if (match := _RANGE.fullmatch(text)) is not None:
        first, last = date.fromisoformat(match[1]), date.fromisoformat(match[2])
        if last < first:
            raise ValueError("the range ends before it starts")
        if (last - first).days >= _MAX_RANGE_DAYS:
            raise ValueError(f"a range is at most {_MAX_RANGE_DAYS} days")
        return Period(first, last, text)
    if (match := re.fullmatch(r"(\d{4})-W(\d{2})", text)) is not None:
        monday = date.fromisocalendar(int(match[1]), int(match[2]), 1)
        return Period(monday, monday + timedelta(days=6), text)
    if (match := re.fullmatch(r"(\d{4})-Q([1-4])", text)) is not None:
        year, quarter = int(match[1]), int(match[2])
        last_month = quarter * 3
        return Period(date(year, last_month - 2, 1), date(year, last_month, monthrange(year, last_month)[1]), text)
    if (match := re.fullmatch(r"\d{4}", text)) is not None:
        year = int(text)
        return Period(date(year, 1, 1), date(year, 12, 31), text)
    match = re.fullmatch(r"(\d{4})-(\d{2})(?:-(\d{2}))?", text)
    if match is None:
        raise ValueError("not YYYY-MM-DD, YYYY-Www, YYYY-MM, YYYY-Qn, YYYY or FIRST..LAST")
    year, month = int(match[1]), int(match[2])
    if match[3] is None:
        if not 1 <= month <= 12:
            raise ValueError("month must be in 1..12")
        return Period(date(year, month, 1), date(year, month, monthrange(year, month)[1]), text)
    day = date(year, month, int(match[3]))
    return Period(day, day, text)


@dataclass
class Figures:
    key: str
    name: str = ""
    department: str = ""
    levels: dict[int, int] = field(default_factory=lambda: dict.fromkeys(range(5, 0, -1), 0))
    unanswered: int = 0

    def counted(self, timeout_score: int) -> dict[int, int]:
        counts = dict(self.levels)
        if timeout_score:
            counts[timeout_score] += self.unanswered
        return counts

    def total(self, timeout_score: int) -> int:
        return sum(self.counted(timeout_score).values())

    def mean(self, timeout_score: int) -> Fraction | None:
        counts = self.counted(timeout_score)
        total = sum(counts.values())
        return Fraction(sum(level * n for level, n in counts.items()), total) if total else None

    def satisfaction(self, timeout_score: int) -> Fraction | None:
        """Share of levels 5 and 4 among everything counted."""
        counts = self.counted(timeout_score)
        total = sum(counts.values())
        return Fraction(counts[5] + counts[4], total) if total else None

    def index(self, timeout_score: int) -> Fraction | None:
        """A 0..100 index: the levels count 100, 75, 50, 25 and 0 (as HappyOrNot's index is made)."""
        mean = self.mean(timeout_score)
        return None if mean is None else (mean - 1) * 25

    def add(self, other: Figures) -> None:
        for level, n in other.levels.items():
            self.levels[level] += n
        self.unanswered += other.unanswered


def aggregate(reader: Reader, period: Period, by: str, *, count_uninvited: bool = False) -> list[Figures]:
    """Figures per group, from the daily counts the hub keeps as it stores ratings."""
    if by not in GROUPINGS:
        raise ReportError(f"--by must be one of {GROUPINGS}, got {by!r}")
    left_out = ["misuse"] if count_uninvited else ["misuse", "uninvited"]
    rows = reader.counts_by(by, period.first, period.last, left_out=left_out)
    names = reader.staff_names()
    figures: dict[str, Figures] = {}
    for key, kind, score, count in rows:
        entry = figures.get(key)
        if entry is None:
            name, department = names.get(key, ("", "")) if by == "staff" else ("", key)
            entry = figures[key] = Figures(key=key, name=name, department=department)
        if kind == "timeout":
            entry.unanswered += count
        elif score:
            entry.levels[score] += count
    return [figures[key] for key in sorted(figures)]


def ranked(rows: list[Figures], *, timeout_score: int, minimum: int) -> dict[str, Standing]:
    """Each row's standing by the lower bound of the 95 % Wilson interval of its satisfaction rate
    (hub.ranking); rows with fewer than `minimum` counted ratings are not ranked."""
    counts = []
    for row in rows:
        counted = row.counted(timeout_score)
        counts.append((row.key, counted[5] + counted[4], sum(counted.values())))
    return rank(counts, minimum=minimum)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}"


def _fixed(value: Fraction | None, places: int) -> str:
    if value is None:
        return "-"
    scaled = round(value * 10**places)
    sign = "-" if scaled < 0 else ""
    whole, part = divmod(abs(scaled), 10**places)
    return f"{sign}{whole}.{part:0{places}d}" if places else f"{sign}{whole}"


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, right: bool) -> str:
    gap = " " * (width - _width(text))
    return gap + text if right else text + gap


def _records(
    rows: Iterable[Figures],
    by: str,
    timeout_score: int,
    standings: dict[str, Standing] | None = None,
    before: dict[str, Figures] | None = None,
) -> list[dict[str, Any]]:
    out = []
    for f in rows:
        record: dict[str, Any] = {by: f.key}
        if standings is not None:
            standing = standings.get(f.key)
            record["rank"] = standing.rank if standing is not None and standing.rank is not None else "-"
        if by == "staff":
            record["name"] = f.name
            record["department"] = f.department
        record.update({f"n{level}": f.levels[level] for level in range(5, 0, -1)})
        mean, satisfaction = f.mean(timeout_score), f.satisfaction(timeout_score)
        record.update(
            unanswered=f.unanswered,
            total=f.total(timeout_score),
            mean=_fixed(mean, 2),
            index=_fixed(f.index(timeout_score), 1),
            satisfaction=_fixed(satisfaction * 100 if satisfaction is not None else None, 1),
        )
        if standings is not None:
            standing = standings.get(f.key)
            record["satisfaction_low"] = _percent(standing.low if standing else None)
            record["satisfaction_high"] = _percent(standing.high if standing else None)
        if before is not None:
            earlier = before.get(f.key)
            record["satisfaction_change"] = _change(
                satisfaction, earlier.satisfaction(timeout_score) if earlier else None, 100
            )
            record["index_change"] = _change(
                f.index(timeout_score), earlier.index(timeout_score) if earlier else None, 1
            )
        out.append(record)
    return out


def _change(now: Fraction | None, then: Fraction | None, scale: int) -> str:
    """The change from `then` to `now` (times `scale`), signed, one decimal; "-" if either is missing."""
    if now is None or then is None:
        return "-"
    text = _fixed((now - then) * scale, 1)
    return text if text.startswith("-") else f"+{text}"


@dataclass(frozen=True)
class Extras:
    """What a report shows beside the figures: a fair ranking (`standings`, see `ranked`, with the
    `minimum` it used), the figures of the period before (`before`), and grade flags (`flags`)."""

    standings: dict[str, Standing] | None = None
    minimum: int = 0
    before: list[Figures] | None = None
    flags: list[dict[str, Any]] | None = None


def render(
    rows: list[Figures],
    *,
    by: str,
    period: Period,
    fmt: str,
    timeout_score: int,
    labels: tuple[str, ...] = DEFAULT_LABELS,
    extras: Extras | None = None,
) -> str:
    """The figures as an aligned table (with a total line), CSV, or JSON; with a ranking, ranked rows
    first in rank order, each with its rank and 95 % interval; with the period before, the changes."""
    if fmt not in FORMATS:
        raise ReportError(f"--format must be one of {FORMATS}, got {fmt!r}")
    extras = extras or Extras()
    total = Figures(key="total")
    for row in rows:
        total.add(row)
    standings = extras.standings
    if standings is not None:
        rows = sorted(rows, key=lambda f: _rank_order(standings.get(f.key), f.key))
    earlier = None if extras.before is None else {row.key: row for row in extras.before}
    records = _records(rows, by, timeout_score, standings, earlier)
    total_record = _records([total], by, timeout_score)[0]
    if fmt == "json":
        return _json(
            records, total_record, by=by, period=period, timeout_score=timeout_score, labels=labels, extras=extras
        )
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(records[0] if records else total_record), lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        return buffer.getvalue()
    return _table(
        records, total_record, by=by, period=period, timeout_score=timeout_score, labels=labels, extras=extras
    )


def _json(
    records: list[dict[str, Any]],
    total: dict[str, Any],
    *,
    by: str,
    period: Period,
    timeout_score: int,
    labels: tuple[str, ...],
    extras: Extras,
) -> str:
    document: dict[str, Any] = {
        "period": period.label,
        "by": by,
        "timeout_score": timeout_score,
        "labels": dict(zip(["n5", "n4", "n3", "n2", "n1"], labels, strict=True)),
        "rows": records,
        "total": total,
    }
    if extras.before is not None:
        document["compared_with"] = period.previous().label
    if extras.flags is not None:
        document["flags"] = extras.flags
    if extras.standings is not None:
        document["ranking"] = {
            "by": "lower bound of the 95 % Wilson interval of the satisfaction rate",
            "minimum_counted": extras.minimum,
        }
    return json.dumps(document, ensure_ascii=False, indent=2)


def _table(
    records: list[dict[str, Any]],
    total: dict[str, Any],
    *,
    by: str,
    period: Period,
    timeout_score: int,
    labels: tuple[str, ...],
    extras: Extras,
) -> str:
    headers = {by: by, "name": "name", "department": "department"} if by == "staff" else {by: by}
    headers.update({f"n{level}": label for level, label in zip(range(5, 0, -1), labels, strict=True)})
    headers.update(unanswered="未评价", total="total", mean="mean", index="index", satisfaction="满意率%")
    if extras.standings is not None:
        headers = {"rank": "rank", **headers, "satisfaction_low": "95% low", "satisfaction_high": "high"}
    if extras.before is not None:
        headers.update(satisfaction_change="Δ满意率", index_change="Δindex")
    table = [headers, *records, total]
    columns = list(headers)
    widths = {c: max(_width(str(r.get(c, ""))) for r in table) for c in columns}
    numeric = {c for c in columns if c not in (by, "name", "department")}
    lines = []
    for index, record in enumerate(table):
        if index == len(table) - 1:
            lines.append("  ".join("-" * widths[c] for c in columns))
        lines.append("  ".join(_pad(str(record.get(c, "")), widths[c], c in numeric) for c in columns).rstrip())
    note = (
        f"period {period.label}; an unanswered invitation counts as level {timeout_score}"
        if timeout_score
        else (f"period {period.label}; unanswered invitations are not counted")
    )
    if extras.before is not None:
        note += f"; Δ against {period.previous().label}"
    if extras.standings is not None:
        note += (
            f"; ranked by the lower bound of the 95 % Wilson interval of 满意率; fewer than {extras.minimum} "
            "counted ratings: not ranked (-)"
        )
    return "\n".join([*lines, note, *_flag_lines(extras.flags or [])])


def _flag_lines(flags: list[dict[str, Any]]) -> list[str]:
    lines = []
    for flag in flags:
        evidence = "; ".join(
            ", ".join(f"{name} {value}" for name, value in entry.items()) for entry in flag["evidence"]
        )
        lines.append(f"flag {flag['rule']}: {flag['key']} ({evidence})")
    return lines


def _rank_order(standing: Standing | None, key: str) -> tuple[int, int, str]:
    if standing is None or standing.rank is None:
        return (1, 0, key)
    return (0, standing.rank, key)
