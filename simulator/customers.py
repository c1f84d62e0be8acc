"""Simulated staff and customers: who works where, and how their customers rate them.

Each staff member has a rating distribution (most are liked, a few less so), so that reports show
differences worth looking at. Arrivals per counter are a Poisson process.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["DEPARTMENTS", "StaffProfile", "make_staff"]

DEPARTMENTS = ("综合受理", "社保医保", "不动产登记", "税务窗口")
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = (
    "芳",
    "强",
    "敏",
    "静",
    "磊",
    "洋",
    "艳",
    "勇",
    "军",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀英",
    "华",
    "丽",
    "平",
)

# Weights for levels 5, 4, 3, 2, 1.
_PROFILES = (
    (0.70, 0.20, 0.06, 0.03, 0.01),
    (0.55, 0.30, 0.10, 0.03, 0.02),
    (0.40, 0.30, 0.18, 0.08, 0.04),
    (0.25, 0.30, 0.25, 0.12, 0.08),
)


@dataclass(frozen=True)
class StaffProfile:
    staff: str
    name: str
    department: str
    weights: tuple[float, ...]  # levels 5..1

    def rate(self, rng: random.Random) -> int:
        return rng.choices((5, 4, 3, 2, 1), weights=self.weights)[0]


def make_staff(count: int, departments: int, rng: random.Random) -> list[StaffProfile]:
    """`count` staff members spread over `departments` departments, with varied distributions."""
    names = DEPARTMENTS[: max(1, min(departments, len(DEPARTMENTS)))]
    staff = []
    for index in range(count):
        name = rng.choice(_SURNAMES) + rng.choice(_GIVEN)
        profile = _PROFILES[0] if index % 4 == 0 else rng.choice(_PROFILES)
        staff.append(StaffProfile(f"S{index + 1:03d}", name, names[index % len(names)], profile))
    return staff
