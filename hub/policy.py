"""Scoring policies: how stored ratings become figures, as versioned data.

A policy says how many points each level is worth, how an invitation nobody answered counts
(`timeout`: as level 3, 一般, by default, as the source rules say; 0: not counted), whether presses
made without an invitation count, whether a bad rating (level 1 or 2) needs a reason to count
(`bad_needs_reason`), what share of a staff member's review the rating part makes
(`review_weight`), and which records are left out (`exclude`: misuse, superseded, invalidated).
Every figure says how many records each exclusion removed.

Policies are stored with a version and the first day they apply (`pingjia hub policy add`); each
applies until the next version's first day. Adding one never changes a stored rating nor an older
policy: a report over any period is computed again the same way, and names the versions it used.
Where no stored policy applies, the hub's settings (`timeout_score`, `count_uninvited`) make
version 0.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from hub.db import Database
from hub.errors import ReportError

__all__ = ["EXCLUSIONS", "Policy", "add", "check", "from_settings", "policies", "segments"]

# In the order a record is judged: superseded by an amend, invalidated by a decision, misuse,
# pressed without an invitation, a bad rating without a reason.
EXCLUSIONS = ("superseded", "invalidated", "misuse", "uninvited", "noreason")
_DEFAULT_POINTS = {5: 5, 4: 4, 3: 3, 2: 2, 1: 1}
_FIELDS = {"points", "timeout", "count_uninvited", "bad_needs_reason", "review_weight", "exclude", "name"}


@dataclass(frozen=True)
class Policy:
    version: int = 0
    first_day: str = "0001-01-01"
    name: str = "the hub's settings"
    points: dict[int, int] = field(default_factory=lambda: dict(_DEFAULT_POINTS))
    timeout: int = 3  # the level an unanswered invitation counts as; 0: not counted
    count_uninvited: bool = False
    bad_needs_reason: bool = False  # a level 1 or 2 without a reason is left out
    review_weight: float = 1.0  # the rating part's share of a review (0..1)
    exclude: tuple[str, ...] = ("superseded", "invalidated", "misuse")

    def excluded_by(self, flags: str) -> str | None:
        """Which exclusion leaves out a cell with `flags` (the first in EXCLUSIONS order), or None."""
        marks = set(flags.split(",")) if flags else set()
        for reason in EXCLUSIONS:
            if reason in marks and (
                reason in self.exclude
                or (reason == "uninvited" and not self.count_uninvited)
                or (reason == "noreason" and self.bad_needs_reason)
            ):
                return reason
        return None

    def as_json(self) -> dict[str, Any]:
        return {"version": self.version, "first_day": self.first_day, **self.document()}

    def document(self) -> dict[str, Any]:
        """The policy as stored (its version and first day are stored beside it)."""
        return {
            "name": self.name,
            "points": {str(level): n for level, n in sorted(self.points.items(), reverse=True)},
            "timeout": self.timeout,
            "count_uninvited": self.count_uninvited,
            "bad_needs_reason": self.bad_needs_reason,
            "review_weight": self.review_weight,
            "exclude": list(self.exclude),
        }


def from_settings(timeout_score: int, count_uninvited: bool) -> Policy:
    """Version 0: the hub's settings, where no stored policy applies."""
    return Policy(timeout=timeout_score, count_uninvited=count_uninvited)


def check(doc: Any, *, version: int = 1, first_day: str = "0001-01-01") -> Policy:
    """A policy from its JSON document; ReportError naming the first thing wrong with it."""
    if not isinstance(doc, dict):
        raise ReportError("a policy is a JSON object")
    unknown = set(doc) - _FIELDS
    if unknown:
        raise ReportError(f"a policy has no field {sorted(unknown)[0]!r} (fields: {', '.join(sorted(_FIELDS))})")
    points = doc.get("points", {str(k): v for k, v in _DEFAULT_POINTS.items()})
    if not isinstance(points, dict) or set(points) != {"1", "2", "3", "4", "5"}:
        raise ReportError('points: give each level "5".."1" its points, e.g. {"5": 100, ..., "1": 0}')
    if not all(isinstance(v, int) and not isinstance(v, bool) and -1000 <= v <= 1000 for v in points.values()):
        raise ReportError("points: whole numbers in -1000..1000")
    timeout = doc.get("timeout", 3)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or not 0 <= timeout <= 5:
        raise ReportError("timeout: the level 1..5 an unanswered invitation counts as, or 0 (not counted)")
    uninvited = doc.get("count_uninvited", False)
    if not isinstance(uninvited, bool):
        raise ReportError("count_uninvited: true or false")
    needs_reason = doc.get("bad_needs_reason", False)
    if not isinstance(needs_reason, bool):
        raise ReportError("bad_needs_reason: true or false")
    weight = doc.get("review_weight", 1.0)
    if not isinstance(weight, int | float) or isinstance(weight, bool) or not 0 <= weight <= 1:
        raise ReportError("review_weight: the rating part's share of a review, 0..1")
    exclude = doc.get("exclude", ["superseded", "invalidated", "misuse"])
    if not isinstance(exclude, list) or not set(exclude) <= {"superseded", "invalidated", "misuse"}:
        raise ReportError(
            "exclude: a list of superseded, invalidated, misuse (uninvited and noreason have their own fields)"
        )
    if "superseded" not in exclude:
        raise ReportError("exclude: must hold superseded (an amend replaces what it amends)")
    name = doc.get("name", f"version {version}")
    if not isinstance(name, str) or len(name) > 200:
        raise ReportError("name: a text of at most 200 characters")
    return Policy(
        version=version,
        first_day=first_day,
        name=name,
        points={int(k): int(v) for k, v in points.items()},
        timeout=timeout,
        count_uninvited=uninvited,
        bad_needs_reason=needs_reason,
        review_weight=float(weight),
        exclude=tuple(e for e in EXCLUSIONS if e in exclude),
    )


def add(db: Database, doc: Any, *, first_day: str, by: str) -> Policy:
    """Store a new policy version applying from `first_day` (inside the writer's transaction).

    Versions only grow, and a new version may not start before the latest one: what was reported
    under a stored policy stays reproducible. ReportError otherwise, or for a bad document.
    """
    db.require_transaction("policy writes")
    try:
        if len(first_day) != 10:
            raise ValueError
        date.fromisoformat(first_day)
    except ValueError:
        raise ReportError(f"first day {first_day!r} is not a date YYYY-MM-DD") from None
    row = db.execute("SELECT max(version), max(first_day) FROM policies").fetchone()
    version = 1 if row[0] is None else int(row[0]) + 1
    if row[1] is not None and first_day <= row[1]:
        raise ReportError(f"a new policy must start after the latest one ({row[1]}); policies are not rewritten")
    policy = check(doc, version=version, first_day=first_day)
    db.execute(
        "INSERT INTO policies (version, first_day, doc, added_ms, added_by) VALUES (?, ?, ?, ?, ?)",
        (version, first_day, json.dumps(policy.document(), ensure_ascii=False), time.time_ns() // 1_000_000, by),
    )
    return policy


def policies(rows: list[tuple[int, str, str]], fallback: Policy) -> list[Policy]:
    """The stored policies from (version, first_day, doc) rows, oldest first, after `fallback`."""
    stored = [check(json.loads(doc), version=int(v), first_day=str(first)) for v, first, doc in rows]
    return [fallback, *sorted(stored, key=lambda p: p.first_day)]


def segments(book: list[Policy], first: date, last: date) -> list[tuple[date, date, Policy]]:
    """Days first..last split where the policy changes: (first, last, the policy applying)."""
    found: list[tuple[date, date, Policy]] = []
    starts = [(date.fromisoformat(p.first_day), p) for p in book]
    for index, (start, policy) in enumerate(starts):
        end = starts[index + 1][0] - timedelta(days=1) if index + 1 < len(starts) else date.max
        lo, hi = max(start, first), min(end, last)
        if lo <= hi:
            found.append((lo, hi, policy))
    return found
