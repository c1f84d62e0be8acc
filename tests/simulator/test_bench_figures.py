"""The issue-11 benchmark steps at a tiny size, on SQLite: every key there, and as much explained as filled."""

from __future__ import annotations

from pathlib import Path

from hub import rollups
from hub.queries import Reader
from simulator.bench_figures import Province, explain_first_row, province

TINY = Province(sites=1, halls=2, departments=10, clerks=10)  # 200 staff in 20 departments

REPORT_KEYS = (
    "report_province_department_ms",
    "report_province_staff_ranked_ms",
    "report_clerk_year_ms",
    "report_province_scan_ms",
    "report_province_note",
    "seconds_province_fill_sqlite",
)


def test_province_reports_have_every_key_and_roll_ups_that_agree(tmp_path: Path) -> None:
    result = province(tmp_path / "work", quick=True, shape=TINY, postgres=False, cache=tmp_path)
    for key in REPORT_KEYS:
        assert key in result, key
    assert result["report_province_staff"] == 200
    assert result["report_province_departments"] == 20
    assert result["report_province_month_ratings"] == 200 * 120 * 30
    assert result["report_province_sqlite_cached"] is False
    (path,) = tmp_path.glob("province-*.sqlite3")
    with Reader.open(f"sqlite:///{path}") as reader:
        daily = dict(reader.counts())
        assert reader.rollup_tables() == {
            table: sorted((cell, n) for cell, n in cells.items() if n)
            for table, cells in rollups.coarser(daily).items()
        }
    again = province(tmp_path / "work", quick=True, shape=TINY, postgres=False, cache=tmp_path)
    assert again["report_province_sqlite_cached"] is True


def test_explain_streams_every_rating_filled(tmp_path: Path) -> None:
    result = explain_first_row(tmp_path / "work", quick=True, ratings=1_000, postgres=False, cache=tmp_path)
    for key in ("explain_first_row_ms", "explain_all_rows_ms", "explain_staff_first_row_ms", "explain_note"):
        assert key in result, key
    assert result["explain_rows"] == result["explain_rows_filled"] == 1_000
    assert result["explain_staff_rows"] == result["explain_staff_rows_filled"] == 280
