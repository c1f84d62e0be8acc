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
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction
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


@dataclass
class Figures:
    """The figures of one row: a staff member, counter or unit, over a period.

    `levels` are the presses counted per level; `as_timeout` the unanswered invitations the policy
    counted as a level; `unanswered` every unanswered invitation, counted or not; `excluded` how
    many records each exclusion left out; `points` the policy's points of everything counted.
    """

    key: str
    name: str = ""
    department: str = ""
    levels: dict[int, int] = field(default_factory=lambda: dict.fromkeys(range(5, 0, -1), 0))
    as_timeout: dict[int, int] = field(default_factory=lambda: dict.fromkeys(range(5, 0, -1), 0))
    unanswered: int = 0
    excluded: dict[str, int] = field(default_factory=lambda: dict.fromkeys(EXCLUSIONS, 0))
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
        for level in self.levels:
            self.levels[level] += other.levels[level]
            self.as_timeout[level] += other.as_timeout[level]
        for reason in self.excluded:
            self.excluded[reason] += other.excluded[reason]
        self.unanswered += other.unanswered
        self.points += other.points

    def tally(self, levels: list[int], unanswered: int, excluded: list[int], policy: Policy) -> None:
        """Add what `policy` made of some cells (hub.queries.Reader.tallies): presses counted per
        level 1..5, unanswered invitations kept, records left out per EXCLUSIONS."""
        for level, n in enumerate(levels, start=1):
            if n:
                self.levels[level] += n
                self.points += policy.points[level] * n
        if unanswered:
            self.unanswered += unanswered
            if policy.timeout:
                self.as_timeout[policy.timeout] += unanswered
                self.points += policy.points[policy.timeout] * unanswered
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
    seen: dict[str, set[str]] = {}
    for first, last, policy in stretches:
        for row_key, unit, levels, unanswered, excluded in reader.tallies(by, first, last, policy, key=key):
            row_keys = _targets(tree, rolled, level, row_key, unit) if by == "unit" else [row_key]
            if not row_keys:
                unattributed.tally(levels, unanswered, excluded, policy)
                continue
            for each in row_keys:
                entry = rows.get(each)
                if entry is None:
                    entry = rows[each] = _row(each, level, names, tree)
                entry.tally(levels, unanswered, excluded, policy)
            if level == "staff" and unit:
                seen.setdefault(row_key, set()).add(unit)
    for staff, units in seen.items():
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


def _row(key: str, level: str, names: dict[str, tuple[str, str]], tree: Tree) -> Figures:
    if level == "staff":
        known = key in names
        return Figures(key=key, name=names[key][0] if known else UNKNOWN_CLERK, known=known)
    if level == "counter":
        return Figures(key=key, name=key)
    return Figures(key=key, name=tree[key][2] if key in tree else key)


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
            counted = row.counted()
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
    level: str,
    standings: dict[str, Standing] | None = None,
    before: dict[str, Figures] | None = None,
    *,
    weight: float = 1.0,
) -> list[dict[str, Any]]:
    out = []
    share = Fraction(weight).limit_denominator(1000)
    for f in rows:
        record: dict[str, Any] = {level: f.key}
        if standings is not None:
            standing = standings.get(f.key)
            record["rank"] = standing.rank if standing is not None and standing.rank is not None else "-"
        record["name"] = f.name
        if level == "staff":
            record["department"] = f.department if f.known else f.where
        record.update({f"n{level}": f.levels[level] for level in range(5, 0, -1)})
        # Exact, in integers: the same digits as the Fractions of Figures give, rounded half to
        # even, at a fraction of their cost for a province's fifty thousand rows.
        counted = f.counted()
        total = sum(counted.values())
        score_sum = sum(level * n for level, n in counted.items())
        satisfied = counted[5] + counted[4]
        record.update(
            unanswered=f.unanswered,
            total=total,
            mean=_ratio(score_sum, total, 2),
            index=_ratio((score_sum - total) * 25, total, 1),
            satisfaction=_ratio(satisfied * 100, total, 1),
            points=f.points,
            review=_ratio((score_sum - total) * 25 * share.numerator, total * share.denominator, 1),
            left_out=sum(f.excluded.values()),
        )
        record.update({f"left_out_{reason}": n for reason, n in f.excluded.items()})
        if standings is not None:
            standing = standings.get(f.key)
            record["satisfaction_low"] = _percent(standing.low if standing else None)
            record["satisfaction_high"] = _percent(standing.high if standing else None)
        if before is not None:
            earlier = before.get(f.key)
            satisfaction = f.satisfaction()
            record["satisfaction_change"] = _change(satisfaction, earlier.satisfaction() if earlier else None, 100)
            record["index_change"] = _change(f.index(), earlier.index() if earlier else None, 1)
        out.append(record)
    return out


def _ratio(numerator: int, denominator: int, places: int) -> str:
    """numerator / denominator with `places` decimals, rounded half to even; "-" for 0 / 0."""
    if not denominator:
        return "-"
    scaled = numerator * 10**places
    whole, rest = divmod(abs(scaled), denominator)
    if 2 * rest > denominator or (2 * rest == denominator and whole % 2):
        whole += 1
    sign = "-" if scaled < 0 and whole else ""
    integer, part = divmod(whole, 10**places)
    return f"{sign}{integer}.{part:0{places}d}" if places else f"{sign}{integer}"


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
    total = Figures(key="total", name="")
    for row in rows:
        total.add(row)
    standings = extras.standings
    if standings is not None:
        rows = sorted(rows, key=lambda f: _rank_order(standings.get(f.key), f.key))
    earlier = None if extras.before is None else {row.key: row for row in extras.before}
    weight = report.policies[-1][2].review_weight if report.policies else 1.0
    records = _records(rows, level, standings, earlier, weight=weight)
    total_record = _records([total], level, weight=weight)[0]
    if fmt == "json":
        return _json(records, total_record, report=report, period=period, labels=labels, extras=extras)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(records[0] if records else total_record), lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        return buffer.getvalue()
    return _table(records, total_record, report=report, period=period, labels=labels, extras=extras)


def _policy_notes(report: Report) -> list[dict[str, Any]]:
    return [{"first_day": a, "last_day": b, **p.as_json()} for a, b, p in report.policies]


def _json(
    records: list[dict[str, Any]],
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
        "rows": records,
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
    # Rows one per line, each encoded compactly (json's fast path): a province's staff report is
    # fifty thousand rows, and an indented document takes seconds to encode.
    rows = document.pop("rows")
    head = json.dumps(document, ensure_ascii=False, indent=2)
    lines = ",\n    ".join(json.dumps(row, ensure_ascii=False) for row in rows)
    return head[:-2] + ',\n  "rows": [' + (f"\n    {lines}\n  " if rows else "") + "]\n}"


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


def _rank_order(standing: Standing | None, key: str) -> tuple[int, int, str]:
    if standing is None or standing.rank is None:
        return (1, 0, key)
    return (0, standing.rank, key)
