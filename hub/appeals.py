"""Decisions on single ratings: an upheld appeal invalidates a rating.

The State Council's opinion asks for an appeal mechanism: a malicious or mistaken bad rating can be
excluded, with a record of who decided and why. An invalidated rating is kept as it was signed;
its cell in every roll-up moves to one flagged `invalidated`, which the scoring policy leaves out
and every figure counts among its exclusions. A decision can be reversed (`reinstate`).

Write functions of the writer's connection (`Writer.write`).
"""

from __future__ import annotations

import time
from collections import Counter

from hub import rollups
from hub.db import Database
from hub.errors import RegistryError
from hub.rows import Bucket

__all__ = ["invalidate", "reinstate"]


def invalidate(db: Database, device: str, seq: int, *, by: str, why: str) -> dict[str, object]:
    """Leave rating (device, seq) out of figures from now on, saying who decided and why.
    RegistryError for a rating the hub does not store, one already invalidated, or no who/why."""
    if not by.strip() or not why.strip():
        raise RegistryError("an invalidation needs who decided (--by) and why (--why)")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return _decide(db, device, seq, f"{why.strip()} (decided by {by.strip()}, {stamp})")


def reinstate(db: Database, device: str, seq: int) -> dict[str, object]:
    """Reverse an invalidation: the rating counts again as the policy says."""
    return _decide(db, device, seq, None)


def _decide(db: Database, device: str, seq: int, decision: str | None) -> dict[str, object]:
    db.require_transaction("decisions on ratings")
    row = db.execute(
        "SELECT day, staff, department, counter, kind, score, flags, superseded_by, invalidated FROM ratings "
        "WHERE device = ? AND seq = ?",
        (device, seq),
    ).fetchone()
    if row is None:
        raise RegistryError(f"no rating {device} seq {seq} is stored here")
    day, staff, department, counter, kind, score, flags, superseded, before = row
    if (before is None) == (decision is None):
        state = "is not invalidated" if decision is None else f"is invalidated already: {before}"
        raise RegistryError(f"rating {device} seq {seq} {state}")
    db.execute("UPDATE ratings SET invalidated = ? WHERE device = ? AND seq = ?", (decision, device, seq))
    if staff is not None:
        cell = (str(day), str(staff), str(department), str(counter), str(kind), int(score or 0))
        deltas: Counter[Bucket] = Counter()
        old = rollups.cell_flags(str(flags), superseded=superseded is not None, invalidated=before is not None)
        new = rollups.cell_flags(str(flags), superseded=superseded is not None, invalidated=decision is not None)
        deltas[(*cell, old)] -= 1
        deltas[(*cell, new)] += 1
        rollups.apply(db, deltas)
    return {"device": device, "seq": seq, "invalidated": decision}
