"""Audit: every stored record checked on its own, as an outside auditor would.

Ingest authenticates a batch with one signature over its head plus the hash chain; the audit
checks what the batch check does not: each record's own Ed25519 signature, that the stored hash is
the hash of the stored bytes, and that each record's prev is the hash of the record before it; and
that the daily counts reports read agree with the ratings they count. It reads through a read-only
connection (hub.queries): an audit cannot change what it checks.
"""

from __future__ import annotations

from typing import Any

from hub.queries import Reader
from protocol import GENESIS, ProtocolError, decode, leaf_hash, rating_from_wire

__all__ = ["audit"]


def audit(reader: Reader, *, device: str | None = None, limit_problems: int = 100) -> dict[str, Any]:
    entries = [e for e in reader.devices() if device is None or e.id == device]
    checked = 0
    problems: list[dict[str, Any]] = []

    def problem(device_id: str, seq: int, what: str) -> None:
        if len(problems) < limit_problems:
            problems.append({"device": device_id, "seq": seq, "problem": what})

    for entry in entries:
        previous: tuple[int, str] | None = None
        for seq, digest, text in reader.chain(entry.id):
            checked += 1
            body = text.encode("utf-8")
            if leaf_hash(body) != digest:
                problem(entry.id, seq, "stored hash is not the hash of the stored record")
            try:
                record = rating_from_wire(decode(body))
            except ProtocolError as exc:
                problem(entry.id, seq, f"stored record does not decode: {exc}")
                previous = None
                continue
            if record.seq != seq or record.device != entry.id:
                problem(entry.id, seq, "stored record names another device or seq")
            if not record.verify(entry.key):
                problem(entry.id, seq, "signature does not verify with the registered key")
            if previous is not None and previous[0] == seq - 1 and record.prev != previous[1]:
                problem(entry.id, seq, "prev is not the hash of the record before it")
            if seq == 1 and record.prev != GENESIS:
                problem(entry.id, seq, "seq 1 does not start from the genesis hash")
            previous = (seq, digest)
    if device is None:
        kept, recounted = dict(reader.counts()), dict(reader.recount())
        for bucket in sorted(set(kept) | set(recounted)):
            if kept.get(bucket, 0) != recounted.get(bucket, 0):
                problem(
                    "-", 0, f"daily count {bucket} is {kept.get(bucket, 0)}, the ratings say {recounted.get(bucket, 0)}"
                )
    return {"devices": len(entries), "records": checked, "problems": problems}
