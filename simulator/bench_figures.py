"""The report figures of issue 11 for `pingjia bench`: a province's month, and an explained cell.

`province` fills the roll-ups of a province (50,000 clerks in 5,000 departments, 6,000,000 ratings
a day for 30 days) directly, not its ratings: reports read only the roll-ups (hub.rollups), and 180
million ratings would take hours to store for nothing a report reads. The daily cells are the ones
ingest keeps for such ratings: per clerk and day, counts per level, timeouts, a few amends and the
presses they replaced, a few misuse and uninvited presses; the coarser tables are derived from them
with the GROUP BYs of hub.rollups.rebuild. The reports are then made by the product's own code
through a read-only Reader, on SQLite (built once, cached under var/bench/) and on PostgreSQL (a
fresh schema per run, dropped afterwards).

`explain_first_row` stores real rating rows (not signed: only their reading is timed) and lets
hub.rollups.rebuild make the spans that hub.explain walks. Every time is the median of five runs
after one warm-up, in ms.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from hub.rollups import DERIVE_LEVELS, KEYS, LEVEL_TABLES

__all__ = ["EXPLAIN_FULL", "EXPLAIN_QUICK", "FULL", "QUICK", "Province", "explain_first_row", "province"]

Result = dict[str, Any]
Row = tuple[Any, ...]

MONTH = "2026-11"
YEAR = "2026"
GOALS_MS = {
    "report_province_department_ms": 500,
    "report_province_staff_ranked_ms": 3_000,
    "report_clerk_year_ms": 50,
    "explain_first_row_ms": 200,
}
_RUNS = 5
_CHUNK = 100_000
_FILL_VERSION = 3  # bump when what is filled changes: cached files of another version are not read


@dataclass(frozen=True)
class Province:
    """An organisation's shape: sites, halls per site, departments per hall, clerks per department.
    Every fifth department has two sections, where six of its clerks work."""

    sites: int
    halls: int
    departments: int
    clerks: int
    per_clerk_day: int = 120  # ratings a clerk gets on an average day

    @property
    def department_count(self) -> int:
        return self.sites * self.halls * self.departments

    @property
    def staff(self) -> int:
        return self.department_count * self.clerks

    @property
    def label(self) -> str:
        return f"{self.staff}x{self.department_count}"

    def describe(self) -> str:
        return (
            f"{self.staff:,} staff in {self.department_count:,} departments ({self.sites} sites, "
            f"{self.sites * self.halls} halls, {self.department_count // 5:,} departments with two sections), "
            f"{self.staff * self.per_clerk_day:,} ratings a day for 30 days ({MONTH})"
        )


FULL = Province(sites=50, halls=4, departments=25, clerks=10)
QUICK = Province(sites=5, halls=4, departments=25, clerks=10)
EXPLAIN_FULL = 100_000
EXPLAIN_QUICK = 20_000


# -- where the rows go: one raw connection per backend, bulk paths only ----------------------------


class _Sink(Protocol):
    def load(self, table: str, columns: Sequence[str], chunks: Iterable[Sequence[Row]]) -> None: ...

    def execute(self, sql: str) -> None: ...


class _SQLiteSink:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def load(self, table: str, columns: Sequence[str], chunks: Iterable[Sequence[Row]]) -> None:
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"  # noqa: S608
        for chunk in chunks:
            self.db.executemany(sql, chunk)

    def execute(self, sql: str) -> None:
        self.db.execute(sql)


class _PostgresSink:
    def __init__(self, db: Any) -> None:
        self.db = db

    def load(self, table: str, columns: Sequence[str], chunks: Iterable[Sequence[Row]]) -> None:
        with self.db.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for chunk in chunks:
                for row in chunk:
                    copy.write_row(row)

    def execute(self, sql: str) -> None:
        self.db.execute(sql)


def _median_ms(action: Callable[[], object]) -> float:
    action()  # warm-up: caches, the first plan
    samples = []
    for _ in range(_RUNS):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), 1)


class _Unreachable(Exception):
    pass


@contextmanager
def _pg_schema() -> Iterator[str]:
    """A PostgreSQL URL ($PINGJIA_BENCH_PG) whose search_path is a fresh schema, dropped afterwards;
    _Unreachable saying why if there is no server to use."""
    pg = os.environ.get("PINGJIA_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        import psycopg

        admin = psycopg.connect(pg, autocommit=True, connect_timeout=5)
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server means the same here
        raise _Unreachable(f"PostgreSQL not reachable: {exc}") from None
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{pg}{'&' if '?' in pg else '?'}options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()


def _pg_fill(url: str, fill: Callable[[_Sink], None], tables: Sequence[str]) -> None:
    """Create the hub schema at `url` and run `fill` in one transaction, the secondary indexes of
    `tables` dropped before and made again after it, as a bulk load does."""
    import psycopg

    from hub.writer import Writer

    Writer.open(url, migrate=True).close()
    with psycopg.connect(url) as db:
        db.execute("SET work_mem = '256MB'")
        db.execute("SET maintenance_work_mem = '512MB'")
        indexes = db.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = ANY(%s) AND indexname NOT LIKE '%%pkey'",
            (list(tables),),
        ).fetchall()
        for name, _sql in indexes:
            db.execute(f'DROP INDEX "{name}"')
        fill(_PostgresSink(db))
        for _name, sql in indexes:
            db.execute(sql)  # the migration's own definitions, read back above


def _pg_settle(url: str, tables: Sequence[str]) -> None:
    """VACUUM ANALYZE `tables`: the state autovacuum leaves a settled database in (statistics for
    the planner, a visibility map for index-only scans)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        for table in tables:
            db.execute(f"VACUUM ANALYZE {table}")


def _sqlite_build(path: Path, fill: Callable[[_Sink], None]) -> None:
    """Create the hub schema in `path` and run `fill` in one transaction without a journal or
    fsync (a half-built file is thrown away), secondary indexes made after the rows; WAL after."""
    from hub.writer import Writer

    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    Writer.open(f"sqlite:///{path}").close()
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-400000")
        db.execute("BEGIN")
        indexes = db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            "AND tbl_name IN ('daily_counts', 'device_days', 'staff_month_levels', 'counter_month_levels', "
            "'unit_day_levels', 'unit_month_levels')"
        ).fetchall()
        for name, _sql in indexes:
            db.execute(f'DROP INDEX "{name}"')
        fill(_SQLiteSink(db))
        for _name, sql in indexes:
            db.execute(sql)
        db.execute("COMMIT")
        db.execute("PRAGMA journal_mode=WAL")
    finally:
        db.close()


# -- a province's directory and its month of cells ---------------------------------------------


Clerk = tuple[str, str, str]  # (staff, unit, counter)


def _directory(shape: Province) -> tuple[list[Row], list[Row], list[Row], list[Row], list[Clerk]]:
    """(units, staff, memberships, counters, clerks) of a province, clerks in staff id order."""
    units: list[Row] = []
    clerks: list[Clerk] = []
    for s in range(shape.sites):
        site = f"S{s:02d}"
        units.append((site, None, "site", f"第{s + 1}市", "Asia/Shanghai", "Mon-Fri 08:30-17:30", 0))
        for h in range(shape.halls):
            hall = f"{site}-H{h}"
            units.append((hall, site, "hall", f"第{h + 1}服务大厅", "", "", 0))
            for d in range(shape.departments):
                department = f"{hall}-D{d:02d}"
                units.append((department, hall, "department", f"第{d + 1}窗口区", "", "", 0))
                homes = [department] * shape.clerks
                if (s * shape.halls * shape.departments + h * shape.departments + d) % 5 == 0:
                    for k in (1, 2):
                        units.append((f"{department}-K{k}", department, "section", f"第{k}组", "", "", 0))
                    homes = [
                        department if i < shape.clerks - 6 else f"{department}-K{1 + (i - shape.clerks + 6) // 3}"
                        for i in range(shape.clerks)
                    ]
                for i, home in enumerate(homes):
                    clerks.append((f"P{len(clerks):06d}", home, f"{department}-W{i + 1:02d}"))
    staff = [(person, f"职员{person[1:]}", home, 0) for person, home, _ in clerks]
    memberships = [(person, "0001-01-01", None, home) for person, home, _ in clerks]
    counters = [(counter, home.split("-K")[0], f"{counter[-2:]}号窗口") for _, home, counter in clerks]
    return units, staff, memberships, counters, clerks


# Satisfaction profiles (weights of levels 5..1): clerks differ, so that a ranking means something.
_PROFILES = ((62, 22, 9, 4, 3), (50, 25, 12, 8, 5), (40, 28, 16, 9, 7), (30, 25, 20, 13, 12))
_VARIANTS = 6
_SPREAD = 80  # a clerk-day has per_clerk_day +- this many ratings
Cell = tuple[str, int, str, int]  # (kind, score, flags, n)


def _outcomes(profile: tuple[int, ...]) -> tuple[list[tuple[str, int, str]], list[float]]:
    """What one record may end up as in the roll-ups, and how likely (per 10,000 records)."""
    outcomes: list[tuple[str, int, str]] = [("timeout", 0, "")]
    weights = [400.0]
    total = sum(profile)
    for level, weight in zip((5, 4, 3, 2, 1), profile, strict=True):
        share = weight / total
        for kind, flags, per in (
            ("press", "", 9_505.0),
            ("press", "misuse", 25.0),
            ("press", "uninvited", 10.0),
            ("press", "superseded", 30.0),  # a press an amend replaced ...
            ("amend", "", 30.0),  # ... and the amend
        ):
            outcomes.append((kind, level, flags))
            weights.append(per * share)
    return outcomes, weights


def _splits(rng: random.Random, shape: Province) -> dict[tuple[int, int], list[list[Cell]]]:
    """{(records, profile): [the cells of a clerk-day with that many records]}, a few variants each."""
    found: dict[tuple[int, int], list[list[Cell]]] = {}
    low, high = max(1, shape.per_clerk_day - _SPREAD), shape.per_clerk_day + _SPREAD
    for profile, weights in enumerate(_PROFILES):
        outcomes, chances = _outcomes(weights)
        for count in range(low, high + 1):
            found[(count, profile)] = [
                [(*outcome, n) for outcome, n in sorted(Counter(rng.choices(outcomes, chances, k=count)).items())]
                for _ in range(_VARIANTS)
            ]
    return found


def _days(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def _daily_cells(shape: Province, clerks: list[Clerk]) -> Iterator[list[Row]]:
    """daily_counts rows in primary-key order, in chunks: every clerk every day of the month, and
    the first clerk every day of the year. Clerks go in pairs whose day counts add up to twice the
    average, so that each day of the month has exactly staff x per_clerk_day ratings."""
    rng = random.Random(11)
    splits = _splits(rng, shape)
    profiles = [rng.randrange(len(_PROFILES)) for _ in clerks]
    bias = [rng.randint(-50, 50) for _ in range(len(clerks) // 2)]
    base = shape.per_clerk_day
    chunk: list[Row] = []
    for day in _days(date(2026, 1, 1), date(2026, 12, 31)):
        working = clerks if day.startswith(MONTH) else clerks[:1]
        counts = [base] * len(working)
        for pair in range(len(working) // 2):
            shift = max(-_SPREAD, min(_SPREAD, bias[pair] + rng.randint(-30, 30)))
            counts[2 * pair], counts[2 * pair + 1] = base + shift, base - shift
        for index, clerk in enumerate(working):
            head = (day, *clerk)
            chunk.extend([head + cell for cell in splits[(counts[index], profiles[index])][rng.randrange(_VARIANTS)]])
            if len(chunk) >= _CHUNK:
                yield chunk
                chunk = []
    yield chunk


def _derive(sink: _Sink) -> None:
    """The coarser roll-ups from daily_counts, as hub.rollups.rebuild makes them."""
    for statement in DERIVE_LEVELS:
        sink.execute(statement)


_UNIT_COLUMNS = ("id", "parent", "kind", "name", "timezone", "opening", "added_ms")
_ROLLUPS = ("daily_counts", *LEVEL_TABLES)


def _province_fill(shape: Province) -> Callable[[_Sink], None]:
    def fill(sink: _Sink) -> None:
        units, staff, memberships, counters, clerks = _directory(shape)
        sink.load("units", _UNIT_COLUMNS, [units])
        sink.load("staff", ("id", "name", "department", "added_ms"), [staff])
        sink.load("memberships", ("staff", "first_day", "last_day", "unit"), [memberships])
        sink.load("counters", ("id", "unit", "name"), [counters])
        sink.load("daily_counts", [*KEYS["daily_counts"].split(", "), "n"], _daily_cells(shape, clerks))
        _derive(sink)

    return fill


def _report_figures(url: str, shape: Province, suffix: str) -> Result:
    from hub.policy import Policy
    from hub.queries import Reader
    from hub.report import Extras, aggregate, book, parse_period, ranked, render

    month, year = parse_period(MONTH), parse_period(YEAR)
    clerk = "P000000"
    with Reader.open(url) as reader:

        def department() -> None:
            report = aggregate(reader, month, "department", rules=book(reader, Policy()))
            if len(report.rows) != shape.department_count:
                raise RuntimeError(f"{len(report.rows)} departments in the report, {shape.department_count} filled")
            render(report, period=month, fmt="json")

        def staff_ranked() -> None:
            report = aggregate(reader, month, "staff", rules=book(reader, Policy()))
            if len(report.rows) != shape.staff:
                raise RuntimeError(f"{len(report.rows)} staff in the report, {shape.staff} filled")
            standings = ranked(report.rows, minimum=30)
            render(report, period=month, fmt="json", extras=Extras(standings=standings, minimum=30))

        def clerk_year() -> None:
            report = aggregate(reader, year, "staff", rules=book(reader, Policy()), key=clerk)
            render(report, period=year, fmt="json")

        levels = "n0 + n1 + n2 + n3 + n4 + n5"

        def scan(table: str) -> Callable[[], object]:
            sql = f"SELECT count(*), sum({levels}) FROM {table} WHERE month = ?"  # noqa: S608 - constant names
            return lambda: reader.execute(sql, (MONTH,)).fetchone()

        cells = reader.execute(
            "SELECT count(*), sum(n) FROM daily_counts WHERE day BETWEEN ? AND ?", (f"{MONTH}-01", f"{MONTH}-31")
        ).fetchone()[0]
        rows, ratings = reader.execute(
            f"SELECT count(*), sum({levels}) FROM staff_month_levels WHERE month = ?",  # noqa: S608 - a constant
            (MONTH,),
        ).fetchone()
        return {
            f"report_province_department_ms{suffix}": _median_ms(department),
            f"report_province_staff_ranked_ms{suffix}": _median_ms(staff_ranked),
            f"report_clerk_year_ms{suffix}": _median_ms(clerk_year),
            f"report_province_scan_ms{suffix}": _median_ms(scan("staff_month_levels")),
            f"report_province_unit_scan_ms{suffix}": _median_ms(scan("unit_month_levels")),
            f"report_province_month_cells{suffix}": int(cells),
            f"report_province_month_rows{suffix}": int(rows),
            f"report_province_month_ratings{suffix}": int(ratings),
        }


def province(
    workdir: Path, *, quick: bool, shape: Province | None = None, postgres: bool = True, cache: Path | None = None
) -> Result:
    """A province's month of roll-ups (prefilled, not ratings; see the module's docstring): the
    department report, every clerk ranked, one clerk's year; SQLite keys bare, PostgreSQL's with
    `_pg`. The SQLite file is cached under `cache` (var/bench/) by size; PostgreSQL is filled into a
    fresh schema each run (`seconds_province_fill_pg`), skipped with a note if unreachable."""
    del workdir  # the SQLite file is cached, the PostgreSQL schema dropped: nothing to leave here
    shape = shape or (QUICK if quick else FULL)
    cache = cache or Path("var/bench")
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"province-{shape.label}-v{_FILL_VERSION}.sqlite3"
    result: Result = {
        "report_province_note": (
            f"roll-ups prefilled directly (daily_counts; the coarser tables derived from it "
            f"with GROUP BY), not ratings: reports read only roll-ups. {shape.describe()}; one clerk (P000000) "
            f"with cells every day of {YEAR}" + ("; quick mode: a smaller province" if shape != FULL else "")
        ),
        "report_province_staff": shape.staff,
        "report_province_departments": shape.department_count,
        "report_province_goals_ms": {k: v for k, v in GOALS_MS.items() if k.startswith("report_")},
    }
    started = time.monotonic()
    if path.exists():
        from hub.writer import Writer

        Writer.open(f"sqlite:///{path}", migrate=True).close()  # a cache an older pingjia built
        result["report_province_sqlite_cached"] = True
    else:
        building = path.with_name(path.name + ".building")
        _sqlite_build(building, _province_fill(shape))
        building.rename(path)
        result["report_province_sqlite_cached"] = False
    result["seconds_province_fill_sqlite"] = round(time.monotonic() - started, 1)
    result.update(_report_figures(f"sqlite:///{path}", shape, ""))
    if not postgres:
        return result
    try:
        with _pg_schema() as url:
            started = time.monotonic()
            tables = ("units", "staff", "memberships", "counters", *_ROLLUPS)
            _pg_fill(url, _province_fill(shape), tables)
            _pg_settle(url, tables)
            result["seconds_province_fill_pg"] = round(time.monotonic() - started, 1)
            result.update(_report_figures(url, shape, "_pg"))
    except _Unreachable as exc:
        result["report_province_pg_note"] = str(exc)
    return result


# -- an explained cell: real rating rows ----------------------------------------------------------

_RATING_COLUMNS = (
    "device",
    "seq",
    "kind",
    "staff",
    "score",
    "amends",
    "flags",
    "department",
    "counter",
    "t_device",
    "at_ms",
    "day",
    "stored_ms",
    "prev",
    "hash",
    "record",
    "boot",
    "mono",
    "time_source",
)
EXPLAINED_DEPARTMENT = "XD1"
BUSY_CLERK = "X00"


def _explain_people(ratings: int) -> list[tuple[str, str, int, int]]:
    """(staff, unit, ratings in the month, ratings in the month before) of the explained department
    (ten clerks, one with 28 % of them; four in a section) and of a neighbouring one."""
    busy = ratings * 28 // 100
    rest, extra = divmod(ratings - busy, 9)
    counts = [busy] + [rest + (1 if i < extra else 0) for i in range(9)]
    people = [(f"X{i:02d}", EXPLAINED_DEPARTMENT if i < 6 else "XD1-K1", n, n // 10) for i, n in enumerate(counts)]
    return people + [(f"Y{i:02d}", "XD2", ratings // 15, ratings // 50) for i in range(3)]


def _explain_ratings(ratings: int) -> Iterator[list[Row]]:
    """Rating rows: each clerk at a terminal of their own, their month's ratings spread over its
    days from 08:30 local (UTC+8), after some of the month before; timeouts, misuse now and then."""
    rng = random.Random(12)
    chunk: list[Row] = []
    for number, (staff, unit, count, before) in enumerate(_explain_people(ratings)):
        device, seq, prev = f"t{number:03d}", 0, "0" * 64
        counter = f"{unit.split('-')[0]}-W{number:02d}"
        for first, days, n in ((date(2026, 10, 1), 31, before), (date(2026, 11, 1), 30, count)):
            for d in range(days):
                day = first + timedelta(days=d)
                opening = int(datetime(day.year, day.month, day.day, 0, 30, tzinfo=UTC).timestamp() * 1000)
                today = n // days + (1 if d < n % days else 0)
                for i in range(today):
                    seq += 1
                    at_ms = opening + i * (8 * 3600_000 // max(1, today))
                    timeout = rng.random() < 0.04
                    score = None if timeout else rng.choices((5, 4, 3, 2, 1), (50, 25, 12, 8, 5))[0]
                    flags = "misuse" if rng.random() < 0.003 else ""
                    record = json.dumps(
                        {"v": 1, "device": device, "seq": seq, "kind": "timeout" if timeout else "press", "t": at_ms,
                         "boot": "b1", "mono": at_ms - opening, "fw": "0.1.0", "prev": prev, "staff": staff,
                         "score": score, "sig": "0" * 128},
                        separators=(",", ":"),
                    )  # fmt: skip
                    digest = hashlib.sha256(record.encode()).hexdigest()
                    chunk.append(
                        (device, seq, "timeout" if timeout else "press", staff, score, None, flags, unit, counter,
                         at_ms, at_ms, day.isoformat(), at_ms + 400, prev, digest, record, "b1", at_ms - opening,
                         "device")
                    )  # fmt: skip
                    prev = digest
                    if len(chunk) >= _CHUNK:
                        yield chunk
                        chunk = []
    yield chunk


def _explain_fill(ratings: int, shape: Province) -> Callable[[_Sink], None]:
    """The explained department and its neighbour in a site of their own, beside a province's
    directory (whose size the first row pays for: the tree, the members of a unit)."""

    def fill(sink: _Sink) -> None:
        province_units, staff, memberships, counters, _clerks = _directory(shape)
        people = _explain_people(ratings)
        units = [
            *province_units,
            ("X", None, "site", "示例市", "Asia/Shanghai", "", 0),
            ("XH", "X", "hall", "服务大厅", "", "", 0),
            ("XD1", "XH", "department", "综合受理", "", "", 0),
            ("XD1-K1", "XD1", "section", "一组", "", "", 0),
            ("XD2", "XH", "department", "税务", "", "", 0),
        ]
        sink.load("units", _UNIT_COLUMNS, [units])
        sink.load("staff", ("id", "name", "department", "added_ms"), [staff + [(p, p, u, 0) for p, u, _, _ in people]])
        sink.load(
            "memberships",
            ("staff", "first_day", "last_day", "unit"),
            [memberships + [(p, "0001-01-01", None, u) for p, u, _, _ in people]],
        )
        sink.load("counters", ("id", "unit", "name"), [counters])
        sink.load("ratings", _RATING_COLUMNS, _explain_ratings(ratings))

    return fill


def _explain_figures(url: str, suffix: str) -> Result:
    from hub.explain import explain
    from hub.policy import Policy
    from hub.queries import Reader
    from hub.report import book, parse_period

    period = parse_period(MONTH)
    result: Result = {}
    with Reader.open(url) as reader:
        rules = book(reader, Policy())
        for name, level, cell in (
            ("explain", "department", EXPLAINED_DEPARTMENT),
            ("explain_staff", "staff", BUSY_CLERK),
        ):
            firsts: list[float] = []
            alls: list[float] = []
            counts: list[int] = []
            for _ in range(_RUNS + 1):
                started = time.perf_counter()
                items = explain(reader, period, level, cell, rules)
                first = next(items, None)
                firsts.append((time.perf_counter() - started) * 1000)
                counts.append((first is not None) + sum(1 for _ in items))
                alls.append((time.perf_counter() - started) * 1000)
            result[f"{name}_first_row_ms{suffix}"] = round(statistics.median(firsts[1:]), 1)
            result[f"{name}_all_rows_ms{suffix}"] = round(statistics.median(alls[1:]), 1)
            result[f"{name}_rows{suffix}"] = counts[-1]
    return result


def explain_first_row(
    workdir: Path,
    *,
    quick: bool,
    ratings: int | None = None,
    shape: Province | None = None,
    postgres: bool = True,
    cache: Path | None = None,
) -> Result:
    """Explaining a department's month with `ratings` ratings behind it (100,000; 20,000 quick) in
    a hub with a province's directory (`shape`): ms from calling hub.explain.explain to its first
    row, and to its last; the same for the staff level of its busiest clerk (28 % of them). SQLite
    cached under `cache` (var/bench/); PostgreSQL in a fresh schema, `_pg` keys, skipped with a note
    if unreachable."""
    from hub.rollups import rebuild
    from hub.writer import Writer

    del workdir
    ratings = ratings or (EXPLAIN_QUICK if quick else EXPLAIN_FULL)
    shape = shape or (QUICK if quick else FULL)
    cache = cache or Path("var/bench")
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"explain-{ratings}-{shape.label}-v{_FILL_VERSION}.sqlite3"
    result: Result = {
        "explain_note": (
            f"a department ({EXPLAINED_DEPARTMENT}, ten clerks, four of them in a section) with {ratings:,} "
            f"ratings in {MONTH} stored directly as rating rows (not signed: only reading them is timed), "
            "after a tenth as many the month before and beside a neighbouring department, in a directory of "
            f"{shape.staff:,} staff in {shape.department_count:,} departments; spans and roll-ups by "
            "hub.rollups.rebuild"
            + ("; quick mode: fewer ratings, a smaller directory" if ratings != EXPLAIN_FULL else "")
        ),
        "explain_rows_filled": ratings,
        "explain_staff_rows_filled": next(n for p, _, n, _ in _explain_people(ratings) if p == BUSY_CLERK),
        "explain_first_row_goal_ms": GOALS_MS["explain_first_row_ms"],
    }
    if not path.exists():
        building = path.with_name(path.name + ".building")
        _sqlite_build(building, _explain_fill(ratings, shape))
        with Writer.open(f"sqlite:///{building}") as writer:
            writer.write(rebuild)
        building.rename(path)
    else:
        Writer.open(f"sqlite:///{path}", migrate=True).close()
    result.update(_explain_figures(f"sqlite:///{path}", ""))
    if not postgres:
        return result
    try:
        with _pg_schema() as url:
            started = time.monotonic()
            _pg_fill(url, _explain_fill(ratings, shape), ("units", "staff", "memberships", "counters", "ratings"))
            with Writer.open(url) as writer:
                writer.write(rebuild)
            _pg_settle(url, ("units", "staff", "memberships", "counters", "ratings", "device_days", *_ROLLUPS))
            result["seconds_explain_fill_pg"] = round(time.monotonic() - started, 1)
            result.update(_explain_figures(url, "_pg"))
    except _Unreachable as exc:
        result["explain_pg_note"] = str(exc)
    return result
