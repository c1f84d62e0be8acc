"""Settling a fork: an operator decides which of two validly signed histories of a terminal stands.

A fork means the terminal's key signed two different records at one seq: the key is cloned or
stolen. The hub refuses the second history (`fork`) and keeps its first record as evidence
(hub.ratings); the terminal whose records are refused is stuck until someone decides:

- `stored`: what the hub holds stands (the other history came from the clone); the evidence is
  closed, and the other history stays refused.
- `other`: the refused history is the terminal's own (the clone got there first): every stored
  record of that terminal from the fork's seq on is deleted, counts are recounted, and the
  watermark goes back below the fork, so the terminal's resends are stored.

Either way the key is no longer to be trusted: replace the terminal (`pingjia tech replace`).
"""

from __future__ import annotations

import time

from hub.db import Database
from hub.errors import RegistryError
from hub.store import rebuild_counts

__all__ = ["settle"]


def settle(db: Database, device: str, seq: int, *, keep: str, by: str, why: str) -> dict[str, object]:
    """Settle the open forks of `device` at `seq` (a write function); what was done, as a dict."""
    db.require_transaction("fork settlements")
    if keep not in ("stored", "other"):
        raise RegistryError(f"keep must be stored or other, not {keep!r}")
    if not by.strip():
        raise RegistryError("say who settles it (--by)")
    open_forks = db.execute(
        "SELECT other_hash FROM forks WHERE device = ? AND seq = ? AND settled_ms IS NULL", (device, seq)
    ).fetchall()
    if not open_forks:
        raise RegistryError(f"no open fork of {device} at seq {seq}: see `pingjia hub forks`")
    deleted = 0
    if keep == "other":
        deleted = int(
            db.execute("SELECT count(*) FROM ratings WHERE device = ? AND seq >= ?", (device, seq)).fetchone()[0]
        )
        db.execute("DELETE FROM ratings WHERE device = ? AND seq >= ?", (device, seq))
        db.execute("UPDATE ratings SET superseded_by = NULL WHERE device = ? AND superseded_by >= ?", (device, seq))
        top = db.execute("SELECT coalesce(max(seq), 0) FROM ratings WHERE device = ?", (device,)).fetchone()[0]
        db.execute(
            "UPDATE devices SET upto = CASE WHEN upto >= ? THEN ? ELSE upto END, max_seq = ? WHERE id = ?",
            (seq, seq - 1, int(top), device),
        )
        rebuild_counts(db)
    decision = f"kept {keep}: {why.strip() or 'no reason given'}"
    db.execute(
        "UPDATE forks SET settled_ms = ?, settled_by = ?, decision = ? "
        "WHERE device = ? AND seq = ? AND settled_ms IS NULL",
        (time.time_ns() // 1_000_000, by.strip(), decision, device, seq),
    )
    return {"device": device, "seq": seq, "kept": keep, "deleted": deleted, "forks_settled": len(open_forks)}
