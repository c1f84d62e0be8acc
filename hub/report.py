"""Figures per staff member, counter, department, site or unit for a period: counts per level,
mean, a 0..100 index, satisfaction, points, and a fair ranking.

Every figure is computed from the roll-ups (hub.rollups; exact fractions, rounded only when shown),
each stretch of days judged by the scoring policy that applies to it (hub.policy): which records are
left out and how many each exclusion removed, how an unanswered invitation counts (always also
shown in its own column, so that the number can be traced), and the points. A rating counts for
the unit its clerk belonged to on its day; a department's figures take in its sections', a site's
the whole tree's. A clerk the directory does not know is shown as an unknown clerk with their
terminals, and counted for no unit.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from calendar import monthrange
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction
from operator import attrgetter, itemgetter
from typing import Any

from hub.errors import ReportError
from hub.policy import EXCLUSIONS, Policy, policies, segments
from hub.queries import Reader
from hub.ranking import Standing, rank

__all__ = [
    "DEFAULT_LABELS",
    "LEVELS",
    "UNKNOWN_CLERK",
    "Extras",
    "Figures",
    "Period",
    "Report",
    "ReportError",
    "aggregate",
    "book",
    "parse_period",
    "ranked",
    "render",
    "roll_up",
]

DEFAULT_LABELS = ("非常满意", "满意", "一般", "不满意", "非常不满意")  # levels 5..1
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


LEVELS = ("staff", "counter", "department", "site", "unit")
UNKNOWN_CLERK = "unknown clerk"


def _no_exclusions() -> dict[str, int]:
    return dict.fromkeys(EXCLUSIONS, 0)


@dataclass(slots=True)
class Figures:
    """The figures of one row: a staff member, counter or unit, over a period.

    `levels` are the presses counted per level; `as_timeout` the unanswered invitations the policy
    counted as a level; `unanswered` every unanswered invitation, counted or not; `excluded` how
    many records each exclusion left out; `points` the policy's points of everything counted.
    """

    key: str
    name: str = ""
    department: str = ""
    levels: dict[int, int] = field(default_factory=lambda: {5: 0, 4: 0, 3: 0, 2: 0, 1: 0})
    as_timeout: dict[int, int] = field(default_factory=lambda: {5: 0, 4: 0, 3: 0, 2: 0, 1: 0})
    unanswered: int = 0
    excluded: dict[str, int] = field(default_factory=_no_exclusions)
    points: int = 0
    known: bool = True
    where: str = ""  # an unknown clerk's terminals and counters

    def counted(self) -> dict[int, int]:
        return {level: n + self.as_timeout[level] for level, n in self.levels.items()}

    def total(self) -> int:
        return sum(self.counted().values())

    def mean(self) -> Fraction | None:
        counts = self.counted()
        total = sum(counts.values())
        return Fraction(sum(level * n for level, n in counts.items()), total) if total else None

    def satisfaction(self) -> Fraction | None:
        """Share of levels 5 and 4 among everything counted."""
        counts = self.counted()
        total = sum(counts.values())
        return Fraction(counts[5] + counts[4], total) if total else None

    def index(self) -> Fraction | None:
        """A 0..100 index: the levels count 100, 75, 50, 25 and 0 (as HappyOrNot's index is made)."""
        mean = self.mean()
        return None if mean is None else (mean - 1) * 25

    def add(self, other: Figures) -> None:
        levels, as_timeout, excluded = self.levels, self.as_timeout, self.excluded
        for level, n in other.levels.items():
            levels[level] += n
        for level, n in other.as_timeout.items():
            as_timeout[level] += n
        for reason, n in other.excluded.items():
            excluded[reason] += n
        self.unanswered += other.unanswered
        self.points += other.points

    @classmethod
    def judged(
        cls,
        key: str,
        name: str,
        tallied: tuple[Sequence[int], int, Sequence[int]],
        policy: Policy,
        *,
        known: bool = True,
        department: str = "",
    ) -> Figures:
        """A row made of one tally (see `tally`) at once: what most rows of a report are."""
        (n1, n2, n3, n4, n5), unanswered, excluded = tallied
        points = policy.points
        as_timeout = {5: 0, 4: 0, 3: 0, 2: 0, 1: 0}
        earned = points[1] * n1 + points[2] * n2 + points[3] * n3 + points[4] * n4 + points[5] * n5
        if unanswered and policy.timeout:
            as_timeout[policy.timeout] = unanswered
            earned += points[policy.timeout] * unanswered
        return cls(
            key=key,
            name=name,
            department=department,
            levels={5: n5, 4: n4, 3: n3, 2: n2, 1: n1},
            as_timeout=as_timeout,
            unanswered=unanswered,
            excluded=dict(zip(EXCLUSIONS, excluded, strict=True)),
            points=earned,
            known=known,
        )

    def tally(self, levels: Sequence[int], unanswered: int, excluded: Sequence[int], policy: Policy) -> None:
        """Add what `policy` made of some cells (hub.queries.Reader.tallies): presses counted per
        level 1..5, unanswered invitations kept, records left out per EXCLUSIONS."""
        # Unrolled: a province's staff report adds fifty thousand of these.
        mine, points = self.levels, policy.points
        n1, n2, n3, n4, n5 = levels
        mine[1] += n1
        mine[2] += n2
        mine[3] += n3
        mine[4] += n4
        mine[5] += n5
        self.points += points[1] * n1 + points[2] * n2 + points[3] * n3 + points[4] * n4 + points[5] * n5
        if unanswered:
            self.unanswered += unanswered
            if policy.timeout:
                self.as_timeout[policy.timeout] += unanswered
                self.points += points[policy.timeout] * unanswered
        if any(excluded):
            for reason, n in zip(EXCLUSIONS, excluded, strict=True):
                self.excluded[reason] += n


@dataclass
class Report:
    """A report's rows and what it rests on: the policies applied, per stretch of days, and the
    records counted for no row (clerks the directory did not know on their day, at unit levels)."""

    rows: list[Figures]
    level: str
    policies: list[tuple[str, str, Policy]]  # (first day, last day, policy); the last one's review_weight
    # makes the `review` column: the index times the rating part's share of a review
    unattributed: Figures = field(default_factory=lambda: Figures(key=""))


def book(reader: Reader, fallback: Policy) -> list[Policy]:
    """The scoring policies stored at the hub, after `fallback` (the hub's settings)."""
    try:
        return policies(reader.policy_rows(), fallback)
    except ReportError as exc:
        raise ReportError(f"a stored policy is unreadable: {exc}") from None


def aggregate(
    reader: Reader, period: Period, level: str = "staff", *, rules: list[Policy] | None = None, key: str | None = None
) -> Report:
    """Figures per row of `level` for `period`, from the roll-ups, each stretch of days judged by
    the policy that applies to it (`rules`: the policy book; default: the built-in policy).

    `key`: one staff member's (or unit's, at unit levels: its own roll-up only) figures."""
    if level not in LEVELS:
        raise ReportError(f"--level must be one of {LEVELS}, got {level!r}")
    rules = rules or [Policy()]
    stretches = segments(rules, period.first, period.last)
    by = level if level in ("staff", "counter") else "unit"
    names = reader.staff_names(key) if level == "staff" else {}
    tree = reader.units() if by == "unit" else {}
    rolled: dict[str, list[str]] = {}  # unit -> the rows it counts in (the tree walked once per unit)
    rows: dict[str, Figures] = {}
    unattributed = Figures(key="")
    moved: dict[str, set[str]] = {}  # staff -> the units they counted for, when more than one
    for first, last, policy in stretches:
        for row_key, unit, levels, unanswered, excluded in reader.tallies(by, first, last, policy, key=key):
            if by != "unit":
                entry = rows.get(row_key)
                if entry is None:
                    tallied = (levels, unanswered, excluded)
                    rows[row_key] = _row(row_key, level, names, tree, tallied=tallied, policy=policy, unit=unit)
                    continue
                entry.tally(levels, unanswered, excluded, policy)
                if level == "staff" and unit and unit != entry.department:
                    moved.setdefault(row_key, {entry.department} - {""}).add(unit)
                continue
            targets = _targets(tree, rolled, level, row_key, unit)
            tallied = (levels, unanswered, excluded)
            _count_in(rows, targets or [unattributed], level, tree=tree, tallied=tallied, policy=policy)
    for staff, units in moved.items():
        rows[staff].department = ",".join(sorted(units))
    for entry in rows.values():
        if not entry.known:
            entry.where = ", ".join(reader.terminals_of(entry.key, period.first, period.last))
    return Report(
        rows=[rows[k] for k in sorted(rows)],
        level=level,
        policies=[(a.isoformat(), b.isoformat(), p) for a, b, p in stretches],
        unattributed=unattributed,
    )


Tree = dict[str, tuple[str | None, str, str]]  # {unit: (parent, kind, name)}


def _targets(tree: Tree, rolled: dict[str, list[str]], level: str, _key: str, unit: str) -> list[str]:
    """The rows a unit's cells count in at a unit level (none for an unknown clerk's: unit ''),
    the tree walked once per unit (`rolled` remembers)."""
    found = rolled.get(unit)
    if found is None:
        found = rolled[unit] = roll_up(tree, unit, level) if unit else []
    return found


def _count_in(
    rows: dict[str, Figures],
    targets: list[str] | list[Figures],
    level: str,
    *,
    tree: Tree,
    tallied: tuple[Sequence[int], int, Sequence[int]],
    policy: Policy,
) -> None:
    """Count a unit's tally in every row it rolls up to (or in the unattributed figures)."""
    for target in targets:
        entry = target if isinstance(target, Figures) else rows.get(target)
        if entry is None:
            rows[str(target)] = _row(str(target), level, {}, tree, tallied=tallied, policy=policy)
        else:
            entry.tally(*tallied, policy)


def _row(
    key: str,
    level: str,
    names: dict[str, tuple[str, str]],
    tree: Tree,
    *,
    tallied: tuple[Sequence[int], int, Sequence[int]],
    policy: Policy,
    unit: str = "",
) -> Figures:
    """A report's row, first seen with `tallied` (of `unit`, at the staff level: its department)."""
    if level == "staff":
        known = key in names
        name = names[key][0] if known else UNKNOWN_CLERK
        return Figures.judged(key, name, tallied, policy, known=known, department=unit)
    if level == "counter":
        return Figures.judged(key, key, tallied, policy)
    return Figures.judged(key, tree[key][2] if key in tree else key, tallied, policy)


def roll_up(tree: dict[str, tuple[str | None, str, str]], unit: str, level: str) -> list[str]:
    """The rows a unit's cells count in: its department (the nearest unit of kind department
    above or at it, else itself), its site (the top of its tree), or every unit up the tree."""
    chain = [unit]
    while chain[-1] in tree and tree[chain[-1]][0] is not None and len(chain) < 100:
        chain.append(str(tree[chain[-1]][0]))
    if level == "unit":
        return chain
    if level == "site":
        return [chain[-1]]
    return next(([u] for u in chain if u in tree and tree[u][1] == "department"), [unit])


def ranked(rows: list[Figures], *, minimum: int) -> dict[str, Standing]:
    """Each row's standing by the lower bound of the 95 % Wilson interval of its satisfaction rate
    (hub.ranking); rows with fewer than `minimum` counted ratings are not ranked. Unknown clerks
    are never ranked."""
    counts = []
    for row in rows:
        if row.known:
            levels, as_timeout = row.levels, row.as_timeout
            satisfied = levels[5] + levels[4] + as_timeout[5] + as_timeout[4]
            counts.append((row.key, satisfied, sum(levels.values()) + sum(as_timeout.values())))
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


_STRING = json.encoder.encode_basestring  # a JSON string, non-ASCII kept (as ensure_ascii=False)
_LEVEL_NAMES = tuple((level, f"n{level}") for level in range(5, 0, -1))
_LEFT_OUT_NAMES = tuple((reason, f"left_out_{reason}") for reason in EXCLUSIONS)


def _records(
    rows: Iterable[Figures],
    level: str,
    standings: dict[str, Standing] | None = None,
    before: dict[str, Figures] | None = None,
    *,
    weight: float = 1.0,
) -> list[dict[str, Any]]:
    out = []
    share = Fraction(weight).limit_denominator(1000)
    numerator, denominator = share.numerator, share.denominator
    for f in rows:
        record: dict[str, Any] = {level: f.key}
        standing = standings.get(f.key) if standings is not None else None
        if standings is not None:
            record["rank"] = standing.rank if standing is not None and standing.rank is not None else "-"
        record["name"] = f.name
        if level == "staff":
            record["department"] = f.department if f.known else f.where
        levels, as_timeout = f.levels, f.as_timeout
        for key, name in _LEVEL_NAMES:
            record[name] = levels[key]
        # Exact, in integers: the same digits as the Fractions of Figures give, rounded half to
        # even, at a fraction of their cost for a province's fifty thousand rows.
        c5, c4, c3, c2, c1 = (levels[key] + as_timeout[key] for key in (5, 4, 3, 2, 1))
        total = c5 + c4 + c3 + c2 + c1
        score_sum = 5 * c5 + 4 * c4 + 3 * c3 + 2 * c2 + c1
        excluded = f.excluded
        record["unanswered"] = f.unanswered
        record["total"] = total
        record["mean"] = _ratio(score_sum, total, 2)
        record["index"] = _ratio((score_sum - total) * 25, total, 1)
        record["satisfaction"] = _ratio((c5 + c4) * 100, total, 1)
        record["points"] = f.points
        record["review"] = (
            record["index"]
            if numerator == denominator
            else _ratio((score_sum - total) * 25 * numerator, total * denominator, 1)
        )
        record["left_out"] = sum(excluded.values())
        for reason, name in _LEFT_OUT_NAMES:
            record[name] = excluded[reason]
        if standings is not None:
            record["satisfaction_low"] = _percent(standing.low if standing else None)
            record["satisfaction_high"] = _percent(standing.high if standing else None)
        if before is not None:
            earlier = before.get(f.key)
            satisfaction = f.satisfaction()
            record["satisfaction_change"] = _change(satisfaction, earlier.satisfaction() if earlier else None, 100)
            record["index_change"] = _change(f.index(), earlier.index() if earlier else None, 1)
        out.append(record)
    return out


def _json_rows(
    rows: Iterable[Figures],
    level: str,
    standings: dict[str, Standing] | None = None,
    before: dict[str, Figures] | None = None,
    *,
    weight: float = 1.0,
) -> list[str]:
    """Each row's record (see `_records`) as `json.dumps(record, ensure_ascii=False)` writes it, made
    from a template: the same text at a third of the cost, which a province's fifty thousand rows
    notice. Figures shown as decimals ("-" when missing) need no escaping and are quoted by the
    template. tests/hub/test_report.py holds the two to the same bytes."""
    text = _STRING
    head = f"{{{text(level)}: %s, "
    if standings is not None:
        head += '"rank": %s, '
    head += '"name": %s, '
    if level == "staff":
        head += '"department": %s, '
    body = (
        '"n5": %d, "n4": %d, "n3": %d, "n2": %d, "n1": %d, "unanswered": %d, "total": %d, "mean": "%s", '
        '"index": "%s", "satisfaction": "%s", "points": %d, "review": "%s", "left_out": %d, '
        + ", ".join(f'"left_out_{reason}": %d' for reason in EXCLUSIONS)
    )
    tail = ', "satisfaction_low": "%s", "satisfaction_high": "%s"' if standings is not None else ""
    if before is not None:
        tail += ', "satisfaction_change": "%s", "index_change": "%s"'
    template = head + body + tail + "}"
    share = Fraction(weight).limit_denominator(1000)
    numerator, denominator = share.numerator, share.denominator
    left_out = itemgetter(*EXCLUSIONS)
    ratio, percent = _ratio, _percent
    lines = []
    for f in rows:
        key = f.key
        values: list[Any] = [text(key)]
        standing = standings.get(key) if standings is not None else None
        if standings is not None:
            values.append(standing.rank if standing is not None and standing.rank is not None else '"-"')
        values.append(text(f.name))
        if level == "staff":
            values.append(text(f.department if f.known else f.where))
        levels, as_timeout, excluded = f.levels, f.as_timeout, f.excluded
        n5, n4, n3, n2, n1 = levels[5], levels[4], levels[3], levels[2], levels[1]
        c5, c4, c3, c2, c1 = (
            n5 + as_timeout[5],
            n4 + as_timeout[4],
            n3 + as_timeout[3],
            n2 + as_timeout[2],
            n1 + as_timeout[1],
        )
        total = c5 + c4 + c3 + c2 + c1
        score_sum = 5 * c5 + 4 * c4 + 3 * c3 + 2 * c2 + c1
        index = ratio((score_sum - total) * 25, total, 1)
        review = (
            index if numerator == denominator else ratio((score_sum - total) * 25 * numerator, total * denominator, 1)
        )
        dropped = left_out(excluded)
        values += (n5, n4, n3, n2, n1, f.unanswered, total, ratio(score_sum, total, 2), index)
        values += (ratio((c5 + c4) * 100, total, 1), f.points, review, sum(dropped), *dropped)
        if standing is not None:
            values += (percent(standing.low), percent(standing.high))
        elif standings is not None:
            values += ("-", "-")
        if before is not None:
            earlier = before.get(key)
            values.append(_change(f.satisfaction(), earlier.satisfaction() if earlier else None, 100))
            values.append(_change(f.index(), earlier.index() if earlier else None, 1))
        lines.append(template % tuple(values))
    return lines


def _ratio(numerator: int, denominator: int, places: int) -> str:
    """numerator / denominator with `places` (1 or 2) decimals, rounded half to even; "-" for 0 / 0."""
    if not denominator:
        return "-"
    scale = 100 if places == 2 else 10
    scaled = numerator * scale
    whole, rest = divmod(scaled if scaled >= 0 else -scaled, denominator)
    if 2 * rest > denominator or (2 * rest == denominator and whole & 1):
        whole += 1
    integer, part = divmod(whole, scale)
    sign = "-" if scaled < 0 and whole else ""
    return f"{sign}{integer}.{part:02d}" if places == 2 else f"{sign}{integer}.{part}"


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
    report: Report,
    *,
    period: Period,
    fmt: str,
    labels: tuple[str, ...] = DEFAULT_LABELS,
    extras: Extras | None = None,
) -> str:
    """The figures as an aligned table (with a total line), CSV, or JSON; with a ranking, ranked rows
    first in rank order, each with its rank and 95 % interval; with the period before, the changes.
    Each says the policies it applied and how many records each exclusion left out."""
    if fmt not in FORMATS:
        raise ReportError(f"--format must be one of {FORMATS}, got {fmt!r}")
    extras = extras or Extras()
    level, rows = report.level, report.rows
    total = _total(rows)
    standings = extras.standings
    if standings is not None:
        rows = _in_rank_order(rows, standings)
    earlier = None if extras.before is None else {row.key: row for row in extras.before}
    weight = report.policies[-1][2].review_weight if report.policies else 1.0
    total_record = _records([total], level, weight=weight)[0]
    if fmt == "json":
        lines = _json_rows(rows, level, standings, earlier, weight=weight)
        return _json(lines, total_record, report=report, period=period, labels=labels, extras=extras)
    records = _records(rows, level, standings, earlier, weight=weight)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(records[0] if records else total_record), lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        return buffer.getvalue()
    return _table(records, total_record, report=report, period=period, labels=labels, extras=extras)


def _total(rows: list[Figures]) -> Figures:
    """The sum of `rows`, column by column (one pass, in locals: a province has fifty thousand rows)."""
    total = Figures(key="total", name="")
    t5 = t4 = t3 = t2 = t1 = a5 = a4 = a3 = a2 = a1 = unanswered = points = 0
    excluded = [0] * len(EXCLUSIONS)
    left_out = itemgetter(*EXCLUSIONS)
    for row in rows:
        levels, as_timeout = row.levels, row.as_timeout
        t5 += levels[5]
        t4 += levels[4]
        t3 += levels[3]
        t2 += levels[2]
        t1 += levels[1]
        unanswered += row.unanswered
        a5 += as_timeout[5]
        a4 += as_timeout[4]
        a3 += as_timeout[3]
        a2 += as_timeout[2]
        a1 += as_timeout[1]
        points += row.points
        if any(dropped := left_out(row.excluded)):
            excluded = [a + b for a, b in zip(excluded, dropped, strict=True)]
    total.levels.update({5: t5, 4: t4, 3: t3, 2: t2, 1: t1})
    total.as_timeout.update({5: a5, 4: a4, 3: a3, 2: a2, 1: a1})
    total.excluded.update(zip(EXCLUSIONS, excluded, strict=True))
    total.unanswered, total.points = unanswered, points
    return total


def _policy_notes(report: Report) -> list[dict[str, Any]]:
    return [{"first_day": a, "last_day": b, **p.as_json()} for a, b, p in report.policies]


def _json(
    lines: list[str],
    total: dict[str, Any],
    *,
    report: Report,
    period: Period,
    labels: tuple[str, ...],
    extras: Extras,
) -> str:
    document: dict[str, Any] = {
        "period": period.label,
        "level": report.level,
        "policies": _policy_notes(report),
        "labels": dict(zip(["n5", "n4", "n3", "n2", "n1"], labels, strict=True)),
        "rows": [],
        "total": total,
    }
    if report.level not in ("staff", "counter"):
        document["unattributed"] = _records([report.unattributed], report.level)[0] | {report.level: None}
    if extras.before is not None:
        document["compared_with"] = period.previous().label
    if extras.flags is not None:
        document["flags"] = extras.flags
    if extras.standings is not None:
        document["ranking"] = {
            "by": "lower bound of the 95 % Wilson interval of the satisfaction rate",
            "minimum_counted": extras.minimum,
        }
    # Rows one per line, each as compact as json.dumps makes it (see _json_rows): a province's staff
    # report is fifty thousand rows, and an indented document takes seconds to encode.
    document.pop("rows")
    head = json.dumps(document, ensure_ascii=False, indent=2)
    joined = ",\n    ".join(lines)
    return head[:-2] + ',\n  "rows": [' + (f"\n    {joined}\n  " if lines else "") + "]\n}"


def _table(
    records: list[dict[str, Any]],
    total: dict[str, Any],
    *,
    report: Report,
    period: Period,
    labels: tuple[str, ...],
    extras: Extras,
) -> str:
    level = report.level
    headers = {level: level, "name": "name"}
    if level == "staff":
        headers["department"] = "department"
    headers.update({f"n{n}": label for n, label in zip(range(5, 0, -1), labels, strict=True)})
    headers.update(
        unanswered="未评价", total="total", mean="mean", index="index", satisfaction="满意率%", points="points"
    )
    if report.policies and report.policies[-1][2].review_weight != 1:
        headers["review"] = "review"
    headers["left_out"] = "left out"
    if extras.standings is not None:
        headers = {"rank": "rank", **headers, "satisfaction_low": "95% low", "satisfaction_high": "high"}
    if extras.before is not None:
        headers.update(satisfaction_change="Δ满意率", index_change="Δindex")
    table = [headers, *records, total]
    columns = list(headers)
    widths = {c: max(_width(str(r.get(c, ""))) for r in table) for c in columns}
    numeric = {c for c in columns if c not in (level, "name", "department")}
    lines = []
    for index, record in enumerate(table):
        if index == len(table) - 1:
            lines.append("  ".join("-" * widths[c] for c in columns))
        lines.append("  ".join(_pad(str(record.get(c, "")), widths[c], c in numeric) for c in columns).rstrip())
    notes = [f"period {period.label}"]
    for first, last, policy in report.policies:
        timeout = (
            f"an unanswered invitation counts as level {policy.timeout}"
            if policy.timeout
            else "unanswered invitations are not counted"
        )
        notes.append(
            f"policy v{policy.version} ({policy.name}) for {first}..{last}: {timeout}; leaves out "
            + ", ".join(
                r for r in EXCLUSIONS if r in policy.exclude or (r == "uninvited" and not policy.count_uninvited)
            )
        )
    left = {reason: n for reason, n in total_excluded(report).items() if n}
    notes.append("records left out: " + (", ".join(f"{reason} {n}" for reason, n in left.items()) if left else "none"))
    if level not in ("staff", "counter") and report.unattributed.total() + sum(report.unattributed.excluded.values()):
        notes.append(
            f"{report.unattributed.total()} counted ratings of clerks the directory did not know on their day "
            "are in no row (see --level staff)"
        )
    if extras.before is not None:
        notes.append(f"Δ against {period.previous().label}")
    if extras.standings is not None:
        notes.append(
            f"ranked by the lower bound of the 95 % Wilson interval of 满意率; fewer than {extras.minimum} "
            "counted ratings: not ranked (-)"
        )
    return "\n".join([*lines, "; ".join(notes), *_flag_lines(extras.flags or [])])


def total_excluded(report: Report) -> dict[str, int]:
    found = dict.fromkeys(EXCLUSIONS, 0)
    for row in [*report.rows, report.unattributed]:
        for reason, n in row.excluded.items():
            found[reason] += n
    return found


def _flag_lines(flags: list[dict[str, Any]]) -> list[str]:
    lines = []
    for flag in flags:
        evidence = "; ".join(
            ", ".join(f"{name} {value}" for name, value in entry.items()) for entry in flag["evidence"]
        )
        lines.append(f"flag {flag['rule']}: {flag['key']} ({evidence})")
    return lines


def _in_rank_order(rows: list[Figures], standings: dict[str, Standing]) -> list[Figures]:
    """Ranked rows by rank (then key), then the others by key."""
    places = {key: (standing.rank, key) for key, standing in standings.items() if standing.rank is not None}
    first = sorted((row for row in rows if row.key in places), key=lambda row: places[row.key])
    return first + sorted((row for row in rows if row.key not in places), key=attrgetter("key"))
