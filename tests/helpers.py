"""Small helpers for building signed chains and registered terminals in tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from hub import registry
from hub.db import Database
from hub.identity import HubKeys
from hub.queries import Reader
from hub.writer import Writer
from protocol import (
    GENESIS,
    Health,
    Kind,
    PanelState,
    Rating,
    SealKey,
    SigningKey,
    encode_health,
    leaf_hash,
    seal_batch,
)

T = TypeVar("T")

# The hub keys of the tests' site: hubs served in this process sign with them, and terminals built
# by the tests pin their public half (as pairing would).
HUB_KEYS = HubKeys(sign=SigningKey.generate(), seal=SealKey.generate())


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


def health_bytes(key: SigningKey, **changes: object) -> bytes:
    """A terminal's heartbeat (d1, boot-1, at 1_763_800_000_000), with `changes` to its fields,
    signed with the terminal's `key`."""
    fields: dict[str, object] = {
        "device": "d1",
        "t": 1_763_800_000_000,
        "boot": "boot-1",
        "mono": 0,
        "fw": "0.1.0",
        "uptime_s": 5,
        "state": "idle",
        "panel": PanelState.CONNECTED,
        "outbox_depth": 0,
        "free_disk_bytes": 10**9,
        "misuse_alarms": 0,
        "rejected": 0,
        "session": 1,
    }
    fields.update(changes)
    return encode_health(Health(**fields), key)  # type: ignore[arg-type]


def make_terminals(
    writer: Writer, workdir: Path, count: int, *, department: str = "综合受理", prefix: str = "t"
) -> list[Path]:
    """Create `count` terminal identities under workdir and register them at the hub (one transaction)."""
    from device import identity  # only tests that start terminals need the terminal's code

    made = [identity.create(workdir / f"{prefix}{index + 1:02d}", f"{prefix}{index + 1:02d}") for index in range(count)]

    def register(db: Database) -> None:
        for index, terminal in enumerate(made):
            registry.add_device(db, terminal.device, terminal.public_hex, department=department, counter=str(index + 1))

    writer.write(register)
    return [workdir / f"{prefix}{index + 1:02d}" for index in range(count)]


def read(db: str, query: Callable[[Reader], T]) -> T:
    """One query on a read-only connection of its own, as a reader beside a running hub makes it."""
    with Reader.open(db) as reader:
        return query(reader)


def upto(db: str, device: str) -> int:
    """The hub's watermark of `device` (0 if it is not registered)."""
    entry = read(db, lambda reader: reader.device(device))
    return 0 if entry is None else entry.upto
