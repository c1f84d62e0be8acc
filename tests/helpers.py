"""Small helpers for building signed chains and registered terminals in tests."""

from __future__ import annotations

from pathlib import Path

from device import identity
from hub.store import Store
from protocol import GENESIS, Kind, Rating, SigningKey, leaf_hash, seal_batch


def chain(
    key: SigningKey,
    device: str,
    count: int,
    *,
    first: int = 1,
    prev: str = GENESIS,
    staff: str = "E1",
    score: int = 5,
    t: int = 1_763_800_000_000,
) -> list[Rating]:
    records = []
    for offset in range(count):
        record = Rating(
            device=device,
            seq=first + offset,
            kind=Kind.PRESS,
            t=t + offset,
            boot="boot-1",
            mono=offset,
            fw="0.1.0",
            prev=prev,
            staff=staff,
            score=score,
        ).signed(key)
        records.append(record)
        prev = record.hash()
    return records


def batch_bytes(key: SigningKey, records: list[Rating]) -> bytes:
    bodies = [r.canonical() for r in records]
    return seal_batch(key, records[0].device, records[0].seq, bodies, leaf_hash(bodies[-1]))


def make_terminals(
    store: Store, workdir: Path, count: int, *, department: str = "综合受理", prefix: str = "t"
) -> list[Path]:
    """Create `count` terminal identities under workdir and register them at the hub."""
    folders = []
    for index in range(count):
        folder = workdir / f"{prefix}{index + 1:02d}"
        made = identity.create(folder, f"{prefix}{index + 1:02d}")
        store.add_device(made.device, made.public_hex, department=department, counter=str(index + 1))
        folders.append(folder)
    return folders
