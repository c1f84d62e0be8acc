"""Fair rankings: by the lower bound of a 95 % Wilson interval of the satisfaction rate.

A clerk with 3 ratings, all 非常满意, has a satisfaction rate of 100 %; one with 95 of 100 has 95 %.
Ranking by the rate puts the first on top on the strength of three customers. The Wilson score
interval says what the rate could be, given how many ratings it rests on; ranking by its lower
bound puts the clerk whose good figure is best established on top (3/3: at least 43.9 %; 95/100:
at least 88.8 %). Below a minimum number of counted ratings (default 30) there is no rank at all,
only "not enough ratings", and the interval is shown so that a reader sees why.

Pure computation on counts; the report (hub.report) decides what is counted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Final, NamedTuple

__all__ = ["MIN_RATINGS", "Z95", "Standing", "rank", "wilson"]

Z95: Final = 1.959963984540054  # the two-sided 95 % quantile of the normal distribution
MIN_RATINGS: Final = 30
_TIE: Final = 1e-12


def wilson(successes: int, total: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval (low, high) of a proportion `successes` / `total`; ValueError for
    counts that are not 0 <= successes <= total, total > 0."""
    if total <= 0 or not 0 <= successes <= total:
        raise ValueError(f"a proportion needs 0 <= successes <= total and total > 0, got {successes}/{total}")
    share = successes / total
    z2 = z * z
    centre = (share + z2 / (2 * total)) / (1 + z2 / total)
    half = z * math.sqrt(share * (1 - share) / total + z2 / (4 * total * total)) / (1 + z2 / total)
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == total else min(1.0, centre + half)
    return low, high


class Standing(NamedTuple):
    """Where one row stands: its rank (None: not enough ratings), and the interval behind it.
    (A named tuple: a province makes fifty thousand of them.)"""

    rank: int | None
    counted: int
    low: float | None
    high: float | None

    @property
    def enough(self) -> bool:
        return self.rank is not None


def rank(rows: Iterable[tuple[str, int, int]], *, minimum: int = MIN_RATINGS) -> dict[str, Standing]:
    """{key: Standing} of rows given as (key, satisfied, counted). Rows with at least `minimum`
    counted ratings are ranked by the interval's lower bound, highest first (equal bounds share a
    rank, the next rank skipping as in 1, 2, 2, 4); the others get no rank."""
    bounds: dict[str, tuple[int, float | None, float | None]] = {}
    ranked: list[tuple[float, int, str]] = []  # (-low, -counted, key): sorted as they are, no key function
    floor = max(1, minimum)
    for key, satisfied, counted in rows:
        low, high = wilson(satisfied, counted) if counted else (None, None)
        bounds[key] = (counted, low, high)
        if counted >= floor and low is not None:
            ranked.append((-low, -counted, key))
    ranked.sort()
    places: dict[str, int] = {}
    previous: float | None = None
    place = 0
    for position, (negative_low, _counted, key) in enumerate(ranked, start=1):
        if previous is None or negative_low - previous > _TIE:
            place = position
        previous = negative_low
        places[key] = place
    # Each Standing made once: a province ranks fifty thousand clerks.
    return {key: Standing(places.get(key), counted, low, high) for key, (counted, low, high) in bounds.items()}
