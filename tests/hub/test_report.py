from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub import registry
from hub.db import Database
from hub.errors import HubError
from hub.policy import EXCLUSIONS, Policy
from hub.queries import Reader
from hub.report import Figures, ReportError, aggregate, parse_period, render
from hub.rows import RatingRow
from hub.store import Store, rebuild_counts
from hub.writer import Writer

STAFF = {"E1": "A", "E2": "A", "E3": "B"}

rows_strategy = st.lists(
    st.tuples(
        st.sampled_from([*STAFF, None]),  # staff (None: closed terminal)
        st.sampled_from(["press", "timeout", "amend"]),
        st.integers(1, 5),
        st.sampled_from(["", "misuse", "uninvited", "misuse,uninvited"]),
        st.sampled_from(["2026-10-31", "2026-11-01", "2026-11-30", "2026-12-01"]),
        st.booleans(),  # superseded
    ),
    max_size=60,
)


@dataclass
class ReportDb:
    path: Path
    writer: Writer
    reader: Reader


def _fill(db: Database, rows: list[tuple]) -> None:
    db.execute("DELETE FROM ratings")
    records = []
    for seq, (staff, kind, score, flags, day, _superseded) in enumerate(rows, start=1):
        records.append(
            RatingRow(
                device="d1",
                seq=seq,
                kind=kind,
                staff=staff if kind == "press" or staff else "E1",
                score=None if kind == "timeout" else score,
                amends=None,
                flags=flags,
                department=STAFF.get(staff or "E1", ""),
                counter="",
                t_device=0,
                at_ms=0,
                day=day,
                stored_ms=0,
                prev="0" * 64,
                hash=str(seq),
                record="{}",
            )
        )
    store = Store(db)
    store.add_ratings(records)
    store.end_group()
    for seq, row in enumerate(rows, start=1):
        if row[5]:
            db.execute("UPDATE ratings SET superseded_by = ? WHERE seq = ?", (seq + 1000, seq))
    rebuild_counts(db)  # rows put in directly, not through ingest: count them as ingest would have


def fill(store: ReportDb, rows: list[tuple]) -> None:
    store.writer.write(_fill, rows)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReportDb]:
    path = tmp_path_factory.mktemp("report") / "hub.sqlite3"
    writer = Writer.open(str(path))
    for staff, department in STAFF.items():
        writer.write(registry.add_staff, staff, name=f"name-{staff}", department=department)
    reader = Reader.open(str(path))
    yield ReportDb(path, writer, reader)
    reader.close()
    writer.close()


PERIODS = ["2026-11", "2026-10-31..2026-11-30", "2026-11-30..2026-12-01", "2026-Q4"]


@settings(max_examples=60)
@given(
    rows_strategy, st.sampled_from(["staff", "department"]), st.integers(0, 5), st.sampled_from(PERIODS), st.booleans()
)
def test_figures_match_a_count_done_by_hand(  # noqa: PLR0917
    store: ReportDb, rows: list[tuple], by: str, timeout_score: int, label: str, uninvited_count: bool
) -> None:
    fill(store, rows)
    period = parse_period(label)
    policy = Policy(timeout=timeout_score, count_uninvited=uninvited_count)
    report = aggregate(store.reader, period, by, rules=[policy])
    figures = {f.key: f for f in report.rows}
    expected: dict[str, dict[int, int]] = {}
    unanswered: dict[str, int] = {}
    left_out: dict[str, Counter[str]] = {}
    for given_staff, kind, score, flags, day, superseded in rows:
        staff = given_staff if kind == "press" or given_staff else "E1"
        if staff is None or not str(period.first) <= day <= str(period.last):
            continue
        key = staff if by == "staff" else STAFF[staff]
        counts = expected.setdefault(key, dict.fromkeys(range(1, 6), 0))
        reasons = left_out.setdefault(key, Counter())
        if superseded:
            reasons["superseded"] += 1
        elif "misuse" in flags:
            reasons["misuse"] += 1
        elif "uninvited" in flags and not uninvited_count:
            reasons["uninvited"] += 1
        elif kind == "timeout":
            unanswered[key] = unanswered.get(key, 0) + 1
        else:
            counts[score] += 1
    assert set(figures) == set(expected)
    for key, counts in expected.items():
        got = figures[key]
        assert got.levels == counts
        assert got.unanswered == unanswered.get(key, 0)
        assert {r: n for r, n in got.excluded.items() if n} == dict(left_out[key])
        counted = dict(counts)
        if timeout_score:
            counted[timeout_score] += unanswered.get(key, 0)
        total = sum(counted.values())
        assert got.total() == total
        assert got.points == sum(level * n for level, n in counted.items())  # default points: the level
        if total:
            assert got.mean() == Fraction(sum(k * v for k, v in counted.items()), total)
            assert got.satisfaction() == Fraction(counted[5] + counted[4], total)


def test_formats_agree(store: ReportDb) -> None:
    fill(
        store,
        [
            ("E1", "press", 5, "", "2026-11-02", False),
            ("E1", "press", 4, "", "2026-11-02", False),
            ("E3", "press", 1, "", "2026-11-02", False),
            ("E3", "timeout", 1, "", "2026-11-02", False),
        ],
    )
    period = parse_period("2026-11")
    report = aggregate(store.reader, period, "staff", rules=[Policy(timeout=3)])
    as_json = json.loads(render(report, period=period, fmt="json"))
    as_csv = list(csv.DictReader(io.StringIO(render(report, period=period, fmt="csv"))))
    table = render(report, period=period, fmt="table")
    assert [r["staff"] for r in as_json["rows"]] == [r["staff"] for r in as_csv] == ["E1", "E3"]
    assert as_json["rows"][1] == {
        "staff": "E3",
        "name": "name-E3",
        "department": "B",
        "n5": 0,
        "n4": 0,
        "n3": 0,
        "n2": 0,
        "n1": 1,
        "unanswered": 1,
        "total": 2,
        "mean": "2.00",
        "index": "25.0",  # a 1 and an unanswered (3): 0 and 50 of 100
        "satisfaction": "0.0",
        "points": 4,
        "review": "25.0",
        "left_out": 0,
        "left_out_superseded": 0,
        "left_out_invalidated": 0,
        "left_out_misuse": 0,
        "left_out_uninvited": 0,
        "left_out_noreason": 0,
    }
    assert as_json["policies"][0]["version"] == 0
    assert as_csv[0]["satisfaction"] == "100.0"
    assert as_json["total"]["total"] == 4
    assert "非常满意" in table
    assert "name-E1" in table
    assert (
        "policy v0 (the hub's settings) for 2026-11-01..2026-11-30: an unanswered invitation counts as level 3"
        in (table.splitlines()[-1])
    )


def test_table_columns_line_up_with_chinese_text(store: ReportDb) -> None:
    store.writer.write(registry.add_staff, "E9", name="欧阳娜娜", department="不动产登记")
    fill(store, [("E9", "press", 5, "", "2026-11-02", False), ("E1", "press", 5, "", "2026-11-02", False)])
    period = parse_period("2026-11-02")
    lines = render(aggregate(store.reader, period, "staff"), period=period, fmt="table")
    widths = {len(line.encode("gbk", "replace")) for line in lines.splitlines()[:3]}
    assert len(widths) == 1, lines


@pytest.mark.parametrize(
    "text",
    [
        "2026-13",
        "2026-02-30",
        "26-01",
        "2026-1-01",
        "yesterday",
        "2026-W54",
        "2026-Q5",
        "2026-11-30..2026-11-01",
        "2000-01-01..2026-01-01",
        "2026-11-01..",
    ],
)
def test_bad_periods(text: str) -> None:
    with pytest.raises(ReportError, match="period"):
        parse_period(text)


def test_a_report_error_is_a_hub_error() -> None:
    assert issubclass(ReportError, HubError)


def test_periods() -> None:
    def days(text: str) -> tuple[str, str]:
        period = parse_period(text)
        return str(period.first), str(period.last)

    assert days("2024-02") == ("2024-02-01", "2024-02-29")
    assert days("2026-11-22") == ("2026-11-22", "2026-11-22")
    assert days("2026-W48") == ("2026-11-23", "2026-11-29")  # ISO weeks start on Monday
    assert days("2027-W01") == ("2027-01-04", "2027-01-10")  # the week of the year's first Thursday
    assert days("2026-Q4") == ("2026-10-01", "2026-12-31")
    assert days("2024-Q1") == ("2024-01-01", "2024-03-31")
    assert days("2026") == ("2026-01-01", "2026-12-31")
    assert days("2026-11-01..2026-11-15") == ("2026-11-01", "2026-11-15")


def test_the_index_runs_from_0_to_100() -> None:
    everyone = Figures(key="x", levels={5: 1, 4: 1, 3: 1, 2: 1, 1: 1})
    assert everyone.index() == 50
    assert Figures(key="y", levels={5: 3, 4: 0, 3: 0, 2: 0, 1: 0}).index() == 100
    as_timeout = {5: 0, 4: 0, 3: 2, 2: 0, 1: 0}
    assert Figures(key="z", levels={5: 0, 4: 0, 3: 0, 2: 0, 1: 2}, unanswered=2, as_timeout=as_timeout).index() == 25
    assert Figures(key="e").index() is None


def test_an_empty_group_has_no_mean() -> None:
    assert Figures(key="x").mean() is None
    assert Figures(key="x").satisfaction() is None


def test_the_report_command_prints_each_format(
    store: ReportDb, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pingjia.cli import main

    fill(store, [("E1", "press", 5, "", "2026-11-02", False)])
    for fmt in ("table", "csv", "json"):
        assert (
            main(["report", "--db", str(store.path), "--period", "2026-11", "--by", "department", "--format", fmt]) == 0
        )
    out = capsys.readouterr().out
    assert '"department": "A"' in out
    assert main(["report", "--db", str(tmp_path / "none.db"), "--period", "2026-11"]) == 2
    assert main(["report", "--db", str(store.path), "--period", "2026-13"]) == 2
    err = capsys.readouterr().err
    assert "no hub database at" in err
    assert "month must be in 1..12" in err


def test_uninvited_presses_are_left_out_unless_counted(store: ReportDb) -> None:
    fill(store, [("E1", "press", 5, "uninvited", "2026-11-02", False), ("E1", "press", 3, "", "2026-11-02", False)])
    period = parse_period("2026-11")
    [default] = aggregate(store.reader, period, "staff").rows
    assert default.total() == 1
    assert default.excluded["uninvited"] == 1
    [counted] = aggregate(store.reader, period, "staff", rules=[Policy(count_uninvited=True)]).rows
    assert counted.total() == 2


_counts = st.integers(min_value=0, max_value=10**6)


@st.composite
def _figures(draw: st.DrawFn) -> Figures:
    row = Figures(
        key=draw(st.text(min_size=1, max_size=8)),
        name=draw(st.text(max_size=8)),
        department=draw(st.text(max_size=8)),
        known=draw(st.booleans()),
        where=draw(st.text(max_size=8)),
        unanswered=draw(_counts),
        points=draw(_counts),
    )
    for level in range(1, 6):
        row.levels[level] = draw(_counts)
        row.as_timeout[level] = draw(st.sampled_from([0, 0, draw(_counts)]))
    for reason in row.excluded:
        row.excluded[reason] = draw(st.sampled_from([0, draw(_counts)]))
    return row


@given(
    rows=st.lists(_figures(), max_size=6, unique_by=lambda f: f.key),
    level=st.sampled_from(["staff", "counter", "department"]),
    ranked_too=st.booleans(),
    compared=st.booleans(),
    weight=st.sampled_from([1.0, 0.4, 0.75]),
)
@settings(max_examples=150, deadline=None)
def test_json_rows_are_the_records_as_json_dumps_writes_them(rows, level, ranked_too, compared, weight):
    """The JSON report writes its rows from a template (fast for a province): the same bytes as
    json.dumps of the records the table and CSV show, quotes, Chinese and missing values included."""
    from hub.report import _json_rows, _records, ranked

    standings = ranked(rows, minimum=2) if ranked_too else None
    before = {row.key: row for row in rows[::2]} if compared else None
    expected = [json.dumps(r, ensure_ascii=False) for r in _records(rows, level, standings, before, weight=weight)]
    assert _json_rows(rows, level, standings, before, weight=weight) == expected


_marks = st.lists(st.sampled_from(EXCLUSIONS), unique=True).map(",".join)


@given(
    cells=st.lists(
        st.tuples(st.sampled_from(["E1", "E2"]), _marks, st.lists(st.integers(0, 50), min_size=6, max_size=6)),
        max_size=12,
    ),
    exclude=st.lists(st.sampled_from(["superseded", "invalidated", "misuse"]), unique=True),
    count_uninvited=st.booleans(),
    bad_needs_reason=st.booleans(),
    seen=st.sampled_from(["all", "none", "some"]),
)
@settings(max_examples=150, deadline=None)
def test_levels_are_judged_in_sql_as_the_policy_judges_each_flags_value(
    cells, exclude, count_uninvited, bad_needs_reason, seen
):
    """The SQL that sums a month's levels judges every flags value as Policy.excluded_by does,
    whether the flags values were looked up first (matched by equality) or not (by their marks)."""
    import sqlite3

    from hub.queries import _judged_levels

    policy = Policy(exclude=tuple(exclude), count_uninvited=count_uninvited, bad_needs_reason=bad_needs_reason)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE levels (staff TEXT, flags TEXT, n0 INT, n1 INT, n2 INT, n3 INT, n4 INT, n5 INT)")
    db.executemany("INSERT INTO levels VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [(s, f, *n) for s, f, n in cells])
    values = sorted({flags for _staff, flags, _n in cells})
    looked_up = {"all": values, "none": [], "some": values[::2]}[seen]
    columns, params = _judged_levels(policy, looked_up)
    found = {row[0]: list(row[1:]) for row in db.execute(f"SELECT staff, {columns} FROM levels GROUP BY staff", params)}
    expected: dict[str, list[int]] = {}
    for staff, flags, n in cells:
        sums = expected.setdefault(staff, [0] * (6 + len(EXCLUSIONS)))
        reason = policy.excluded_by(flags)
        if reason is None:
            for index, score in enumerate((1, 2, 3, 4, 5, 0)):
                sums[index] += n[score]
        else:
            sums[6 + EXCLUSIONS.index(reason)] += sum(n)
    assert found == expected
