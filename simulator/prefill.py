"""Filling terminals and hubs with data for benchmarks, fast.

A million ratings pressed one at a time would take longer than the benchmark; these helpers build
the same data directly: terminals with outboxes holding real signed, chained records (as if the
hub had been away while customers pressed), and a hub database with millions of ratings and their
daily counts. What they write is exactly what the product writes; only the way in is shorter.
Results are cached under `var/bench/` and copied for each run.
"""

from __future__ import annotations

import multiprocessing
import random
import shutil
import sqlite3
from pathlib import Path

from device import identity
from device.outbox import Outbox
from hub import registry
from hub.store import rebuild_counts
from hub.writer import Writer
from protocol import GENESIS, Kind, Rating, leaf_hash

__all__ = ["fleet_with_backlog", "hub_with_ratings"]

_STAMP_MS = 1_763_800_000_000


def _fill_terminal(job: tuple[Path, str, int]) -> tuple[str, str]:
    folder, device, count = job
    made = identity.create(folder, device)
    outbox = Outbox(folder / identity.OUTBOX_FILE, device=device)
    outbox.close()
    db = sqlite3.connect(folder / identity.OUTBOX_FILE, isolation_level=None)
    db.execute("BEGIN")
    prev = GENESIS
    rows = []
    for seq in range(1, count + 1):
        record = Rating(
            device=device,
            seq=seq,
            kind=Kind.PRESS,
            t=_STAMP_MS + seq * 1000,
            boot="prefill",
            mono=seq * 1000,
            fw="0.1.0",
            prev=prev,
            staff=f"S{seq % 50:03d}",
            score=1 + seq % 5,
            ticket=f"A{seq:05d}",
        ).signed(made.key)
        body = record.canonical()
        prev = leaf_hash(body)
        rows.append((seq, body, prev, _STAMP_MS + seq * 1000))
        if len(rows) == 5_000:
            db.executemany("INSERT INTO records(seq, body, hash, created_ms) VALUES (?, ?, ?, ?)", rows)
            rows.clear()
    db.executemany("INSERT INTO records(seq, body, hash, created_ms) VALUES (?, ?, ?, ?)", rows)
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return device, made.public_hex


def fleet_with_backlog(cache: Path, *, devices: int, per_device: int) -> tuple[Path, dict[str, str]]:
    """Folders of `devices` terminals, each with `per_device` unsent ratings; {device: public key}."""
    keys_file = cache / "keys.txt"
    if not keys_file.exists():
        building = cache.with_name(cache.name + ".building")
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(parents=True)
        jobs = [(building / f"b{index:03d}", f"b{index:03d}", per_device) for index in range(devices)]
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            keys = dict(pool.map(_fill_terminal, jobs))
        (building / "keys.txt").write_text("".join(f"{d} {k}\n" for d, k in sorted(keys.items())), encoding="utf-8")
        shutil.rmtree(cache, ignore_errors=True)
        building.rename(cache)
    keys = dict(line.split() for line in keys_file.read_text(encoding="utf-8").splitlines())
    return cache, keys


def hub_with_ratings(cache: Path, *, ratings: int, month: str = "2026-11", staff: int = 200) -> Path:
    """An SQLite hub database with `ratings` ratings in one month, and their daily counts."""
    if cache.exists():
        Writer.open(f"sqlite:///{cache}", migrate=True).close()  # a cache an older version built
        return cache
    building = cache.with_name(cache.name + ".building")
    building.unlink(missing_ok=True)
    writer = Writer.open(f"sqlite:///{building}")
    for index in range(staff):
        writer.write(registry.add_staff, f"S{index:03d}", name="", department=f"D{index % 8}")
    rng = random.Random(1)
    insert = (
        "INSERT INTO ratings(device, seq, kind, staff, score, amends, flags, department, counter, t_device, at_ms, "
        "day, stored_ms, prev, hash, record, boot, mono, time_source) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    with writer.transaction() as db:
        rows = []
        for index in range(ratings):
            person = index % staff
            kind = "timeout" if index % 23 == 0 else "press"
            score = None if kind == "timeout" else rng.choices((5, 4, 3, 2, 1), (50, 25, 12, 8, 5))[0]
            flags = "misuse" if index % 97 == 0 else ""
            rows.append(
                (
                    f"dev{person:03d}",
                    index + 1,
                    kind,
                    f"S{person:03d}",
                    score,
                    None,
                    flags,
                    f"D{person % 8}",
                    "",
                    0,
                    0,
                    f"{month}-{1 + index % 30:02d}",
                    0,
                    "0" * 64,
                    "0" * 64,
                    "{}",
                    None,
                    None,
                    "device",
                )
            )
            if len(rows) == 100_000:
                db.executemany(insert, rows)
                rows.clear()
        db.executemany(insert, rows)
    writer.write(rebuild_counts)
    writer.close()
    building.rename(cache)
    return cache
