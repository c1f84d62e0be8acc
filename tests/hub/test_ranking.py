"""Fair rankings (hub.ranking): the Wilson interval against published values, and a rank that a
handful of ratings cannot win."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.ranking import rank, wilson
from tests.hub.test_report import ReportDb, fill, store  # noqa: F401 - the module's database fixture

# Published 95 % Wilson intervals (e.g. Newcombe 1998, and the textbook 5 of 10 / 50 of 100 cases).
PUBLISHED = [
    ((5, 10), (0.2366, 0.7634)),
    ((0, 10), (0.0, 0.2775)),
    ((10, 10), (0.7225, 1.0)),
    ((50, 100), (0.4038, 0.5962)),
    ((81, 263), (0.2553, 0.3662)),
    ((1, 1), (0.2065, 1.0)),
]


@pytest.mark.parametrize(("counts", "interval"), PUBLISHED)
def test_the_wilson_interval_is_the_published_one(counts: tuple[int, int], interval: tuple[float, float]) -> None:
    low, high = wilson(*counts)
    assert (round(low, 4), round(high, 4)) == interval


@given(st.integers(1, 10_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_the_interval_holds_the_rate_and_narrows_with_more_ratings(counts: tuple[int, int]) -> None:
    successes, total = counts
    low, high = wilson(successes, total)
    assert 0 <= low <= successes / total <= high <= 1
    more_low, more_high = wilson(successes * 4, total * 4)
    assert more_high - more_low <= high - low + 1e-12


def test_counts_that_are_no_proportion_are_refused() -> None:
    for successes, total in ((1, 0), (-1, 5), (6, 5)):
        with pytest.raises(ValueError, match="proportion"):
            wilson(successes, total)


def test_three_perfect_ratings_do_not_outrank_ninety_five_of_a_hundred() -> None:
    standings = rank([("few", 3, 3), ("many", 95, 100), ("half", 50, 100), ("more", 60, 100)], minimum=3)
    assert [key for key, s in sorted(standings.items(), key=lambda kv: kv[1].rank or 99)] == [
        "many",
        "more",
        "few",  # 3 of 3: at least 43.9 %, above 50 of 100 (at least 40.4 %), below 60 of 100
        "half",
    ]
    assert math.isclose(standings["few"].low or 0, 0.4385, abs_tol=1e-4)


def test_below_the_minimum_there_is_no_rank_and_equal_bounds_share_one() -> None:
    standings = rank([("a", 40, 50), ("b", 40, 50), ("c", 30, 50), ("d", 29, 29)], minimum=30)
    assert (standings["a"].rank, standings["b"].rank, standings["c"].rank) == (1, 1, 3)
    assert standings["d"].rank is None
    assert not standings["d"].enough
    assert standings["d"].low is not None  # its interval is still shown


def test_the_report_ranks_with_the_interval_and_says_who_has_not_enough(
    store: ReportDb,  # noqa: F811 - the fixture
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pingjia.cli import main

    rows = [("E1", "press", 5, "", "2026-11-02", False)] * 3
    rows += [("E2", "press", 5, "", "2026-11-03", False)] * 38 + [("E2", "press", 2, "", "2026-11-03", False)] * 2
    fill(store, rows)
    assert main(["report", "--db", str(store.path), "--period", "2026-11", "--rank", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    ranked = {row["staff"]: row for row in document["rows"]}
    assert ranked["E2"]["rank"] == 1
    assert ranked["E1"]["rank"] == "-"  # 3 ratings, all 非常满意: not enough to rank
    assert (ranked["E1"]["satisfaction"], ranked["E1"]["satisfaction_low"]) == ("100.0", "43.9")
    assert document["rows"][0]["staff"] == "E2"
    assert document["ranking"]["minimum_counted"] == 30
    assert main(["report", "--db", str(store.path), "--period", "2026-11", "--rank", "--min-ratings", "3"]) == 0
    table = capsys.readouterr().out
    assert "95% low" in table
    assert "Wilson" in table
    assert main(["report", "--db", str(store.path), "--period", "2026-11", "--rank", "--min-ratings", "0"]) == 2
    assert "--min-ratings must be at least 1" in capsys.readouterr().err
