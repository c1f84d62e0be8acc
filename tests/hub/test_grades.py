"""The period before, the change against it, and the grade flags with their evidence."""

from __future__ import annotations

import json

import pytest

from hub.grades import flags, months_ending
from hub.report import ReportError, parse_period
from tests.hub.test_report import ReportDb, fill, store  # noqa: F401 - the module's database fixture


@pytest.mark.parametrize(
    ("period", "before"),
    [
        ("2026-11-01", "2026-10-31"),
        ("2026-W01", "2025-W52"),
        ("2026-03", "2026-02"),
        ("2026-01", "2025-12"),
        ("2026-Q1", "2025-Q4"),
        ("2026-Q3", "2026-Q2"),
        ("2026", "2025"),
        ("2026-11-11..2026-11-20", "2026-11-01..2026-11-10"),
    ],
)
def test_the_period_before(period: str, before: str) -> None:
    assert parse_period(period).previous().label == before


def test_flags_are_judged_per_month() -> None:
    assert [m.label for m in months_ending(parse_period("2026-01"), 3)] == ["2025-11", "2025-12", "2026-01"]
    with pytest.raises(ReportError, match="per month"):
        months_ending(parse_period("2026-W48"), 2)


def rows_for(staff: str, month: str, levels: dict[int, int]) -> list[tuple]:
    return [(staff, "press", level, "", f"{month}-05", False) for level, n in levels.items() for _ in range(n)]


def test_very_dissatisfied_two_months_running_is_flagged_with_its_evidence(store: ReportDb) -> None:  # noqa: F811
    fill(
        store,
        rows_for("E1", "2026-10", {5: 30, 1: 2})
        + rows_for("E1", "2026-11", {5: 30, 1: 1})
        + rows_for("E2", "2026-10", {5: 30, 1: 1})  # only one of the two months
        + rows_for("E2", "2026-11", {5: 31})
        + rows_for("E3", "2026-10", {5: 20, 4: 5, 3: 8})
        + rows_for("E3", "2026-11", {5: 20, 4: 5, 3: 8}),
    )
    found = flags(store.reader, parse_period("2026-11"), months=2, share=0.2, minimum=30)
    by_rule = {(flag.rule, flag.key): flag.evidence for flag in found}
    assert by_rule[("very_dissatisfied", "E1")] == [{"month": "2026-10", "n1": 2}, {"month": "2026-11", "n1": 1}]
    assert ("very_dissatisfied", "E2") not in by_rule
    near = by_rule[("near_bottom", "E3")]  # 75.8 % satisfied, the lowest of three two months running
    assert [(e["month"], e["rank"], e["of"]) for e in near] == [("2026-10", 3, 3), ("2026-11", 3, 3)]
    assert {key for rule, key in by_rule if rule == "near_bottom"} == {"E3"}


def test_the_report_command_compares_and_flags(store: ReportDb, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    from pingjia.cli import main

    fill(store, rows_for("E1", "2026-10", {5: 10, 1: 10}) + rows_for("E1", "2026-11", {5: 15, 1: 5}))
    argv = ["report", "--db", str(store.path), "--period", "2026-11", "--compare", "--flags", "--format", "json"]
    assert main(argv) == 0
    document = json.loads(capsys.readouterr().out)
    [row] = document["rows"]
    assert (row["satisfaction"], row["satisfaction_change"]) == ("75.0", "+25.0")
    assert row["index_change"] == "+25.0"
    assert document["compared_with"] == "2026-10"
    assert [(flag["rule"], flag["key"]) for flag in document["flags"]] == [("very_dissatisfied", "E1")]
    assert main(["report", "--db", str(store.path), "--period", "2026-11", "--flags"]) == 0
    assert "flag very_dissatisfied: E1 (month 2026-10, n1 10; month 2026-11, n1 5)" in capsys.readouterr().out
    assert main(["report", "--db", str(store.path), "--period", "2026-W45", "--flags"]) == 2
    assert "per month" in capsys.readouterr().err
