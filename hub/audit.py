"""Audit: every stored record checked on its own, as an outside auditor would.

Ingest authenticates a batch with one signature over its head plus the hash chain; the audit
checks what the batch check does not: each record's own Ed25519 signature, that the stored hash is
the hash of the stored bytes, and that each record's prev is the hash of the record before it; and
that the roll-ups reports read agree with the ratings they count. It reads through a read-only
connection (hub.queries): an audit cannot change what it checks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hub import rollups
from hub.queries import Reader
from protocol import GENESIS, ProtocolError, decode, leaf_hash, rating_from_wire

__all__ = ["audit", "check_explained"]


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
        _rollups(reader, problem)
    return {"devices": len(entries), "records": checked, "problems": problems}


def _rollups(reader: Reader, problem: Callable[[str, int, str], None]) -> None:
    """Every roll-up against a recount of the ratings."""
    kept, recounted = dict(reader.counts()), dict(reader.recount())
    for bucket in sorted(set(kept) | set(recounted)):
        if kept.get(bucket, 0) != recounted.get(bucket, 0):
            problem(
                "-", 0, f"daily count {bucket} is {kept.get(bucket, 0)}, the ratings say {recounted.get(bucket, 0)}"
            )
    wanted = rollups.coarser(recounted)
    for table, cells in reader.rollup_tables().items():
        found = dict(cells)
        for cell in sorted(set(found) | {c for c, n in wanted[table].items() if n}, key=str):
            if found.get(cell, 0) != wanted[table].get(cell, 0):
                problem("-", 0, f"{table} {cell} is {found.get(cell, 0)}, the ratings say {wanted[table].get(cell, 0)}")


def check_explained(reader: Reader, lines: list[str], *, limit_problems: int = 100) -> dict[str, Any]:
    """Check the records an explanation listed (JSON lines with device, seq, hash, record): each
    record's own signature with its terminal's registered key, its hash, and that the hub stores
    exactly it. Lines that are not records (the closing summary) are skipped."""
    problems: list[dict[str, Any]] = []
    checked = 0
    keys = {entry.id: entry.key for entry in reader.devices()}
    for number, line in enumerate(lines, start=1):
        try:
            item = json.loads(line)
        except ValueError:
            problems.append({"line": number, "problem": "not JSON"})
            continue
        if not isinstance(item, dict) or "record" not in item:
            continue
        checked += 1
        what = _explained_problem(reader, keys, item)
        if what is not None and len(problems) < limit_problems:
            problems.append({"line": number, "device": item.get("device"), "seq": item.get("seq"), "problem": what})
    return {"records": checked, "problems": problems}


def _explained_problem(reader: Reader, keys: dict[str, Any], item: dict[str, Any]) -> str | None:
    device, seq, text = item.get("device"), item.get("seq"), item.get("record")
    if not isinstance(text, str) or not isinstance(device, str) or not isinstance(seq, int):
        return "device, seq and record must be given"
    body = text.encode("utf-8")
    try:
        record = rating_from_wire(decode(body))
    except ProtocolError as exc:
        return f"the record does not decode: {exc}"
    key = keys.get(device)
    found = [
        (leaf_hash(body) != item.get("hash"), "the hash is not the hash of the record"),
        (record.device != device or record.seq != seq, "the record names another device or seq"),
        (key is None, "the terminal is not registered at this hub"),
        (key is not None and not record.verify(key), "the signature does not verify with the terminal's key"),
        (
            [r for s, _h, r in reader.chain_range(device, seq, seq) if s == seq] != [text],
            "the hub does not store this record as it is",
        ),
    ]
    return next((what for wrong, what in found if wrong), None)
