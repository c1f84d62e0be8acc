"""The hub's store: schema migrations, the device and staff registry, ratings, rejects, health.

SQLite by default (`sqlite:///path` or a plain path; WAL, synchronous=FULL, one writer) or
PostgreSQL (`postgresql://...`, several hub workers). Each Store owns one connection (hub.db) and
runs every write inside `transaction()`; readers (reports, the demo's live line) open their own.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from hub.db import Cursor, Database, SQLiteDatabase, open_database, sqlite_path
from hub.errors import RegistryError
from protocol import VerifyKey, limits, valid_device_id
from protocol.canonical import printable

__all__ = ["Bucket", "DeviceEntry", "RatingRow", "Store", "sqlite_path"]

# A cell of daily_counts: (day, staff, department, kind, score or 0, flags).
Bucket = tuple[str, str, str, str, int, str]


@dataclass(frozen=True, slots=True)
class DeviceEntry:
    id: str
    pubkey: str  # hex
    department: str
    counter: str
    upto: int
    status_state: str | None
    status_session: int | None
    max_seq: int = 0

    @property
    def key(self) -> VerifyKey:
        return _verify_key(self.pubkey)


@functools.lru_cache(maxsize=100_000)
def _verify_key(pubkey: str) -> VerifyKey:
    return VerifyKey.from_hex(pubkey)


class RatingRow(NamedTuple):
    """One row of the ratings table, in its column order (a tuple: inserted as it is)."""

    device: str
    seq: int
    kind: str
    staff: str | None
    score: int | None
    amends: int | None
    flags: str
    department: str
    counter: str
    t_device: int
    at_ms: int
    day: str
    stored_ms: int
    prev: str
    hash: str
    record: str
    boot: str | None = None
    mono: int | None = None
    time_source: str = "device"


# Built from RatingRow's own field names, so the columns and the tuples cannot disagree.
_INSERT_RATING = (
    f"INSERT INTO ratings({', '.join(RatingRow._fields)}) "  # noqa: S608 (constant names, no input)
    f"VALUES ({', '.join('?' * len(RatingRow._fields))})"
)


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files("hub") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return sorted(found)


class Store:
    def __init__(self, url: str, *, create: bool = True) -> None:
        self.db: Database = open_database(url, create=create)
        self.url = url
        self.path: Path | None = self.db.path if isinstance(self.db, SQLiteDatabase) else None
        if create:
            self.migrate()

    @classmethod
    def open(cls, url: str, *, create: bool = True) -> Store:
        return cls(url, create=create)

    @property
    def kind(self) -> str:
        return self.db.kind

    def close(self) -> None:
        self.db.close()

    # -- plumbing -----------------------------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self.db.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.db.executemany(sql, rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction: committed (and made durable) on success, rolled back on any error."""
        with self.db.transaction():
            yield

    def schema_version(self) -> int:
        row = self.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def migrate(self) -> int:
        """Apply the migrations this database lacks, each in its own transaction; return the version."""
        with self.transaction():
            self.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_ms BIGINT)")
        current = self.schema_version()
        for version, sql in _migrations():
            if version <= current:
                continue
            with self.transaction():
                if self.db.kind == "postgresql":  # one migrator at a time, whoever starts first
                    self.execute("LOCK TABLE schema_version IN EXCLUSIVE MODE")
                if self.schema_version() >= version:  # another worker migrated meanwhile
                    continue
                for statement in _statements(sql):
                    self.execute(statement)
                self.execute("INSERT INTO schema_version(version, applied_ms) VALUES (?, ?)", (version, _now_ms()))
            current = version
        return current

    def lock_device(self, device: str) -> None:
        """Serialize ingest of one terminal across hub workers, until the transaction ends.

        SQLite has one writer already; PostgreSQL locks the device's row.
        """
        if self.db.kind == "postgresql":
            self.execute("SELECT upto FROM devices WHERE id = ? FOR UPDATE", (device,))

    # -- registry -----------------------------------------------------------------------------------

    def add_device(self, device: str, pubkey: str, *, department: str = "", counter: str = "") -> None:
        """Register a terminal or change its department/counter; its key may not change silently."""
        if not valid_device_id(device):
            raise RegistryError(f"device id {device!r} must be 1..64 of [A-Za-z0-9_.-]")
        try:
            VerifyKey.from_hex(pubkey)
        except ValueError as exc:
            raise RegistryError(f"public key of {device}: {exc}") from exc
        except Exception as exc:
            raise RegistryError(f"public key of {device} is not an Ed25519 key: {exc}") from exc
        with self.transaction():
            row = self.execute("SELECT pubkey FROM devices WHERE id = ?", (device,)).fetchone()
            if row is None:
                self.execute(
                    "INSERT INTO devices(id, pubkey, department, counter, added_ms) VALUES (?, ?, ?, ?, ?)",
                    (device, pubkey, department, counter, _now_ms()),
                )
            elif row[0] != pubkey:
                raise RegistryError(f"device {device} is registered with another key; re-pairing replaces keys")
            else:
                self.execute(
                    "UPDATE devices SET department = ?, counter = ? WHERE id = ?",
                    (department, counter, device),
                )

    def add_staff(self, staff: str, *, name: str = "", department: str) -> None:
        if not staff or len(staff) > 64 or not staff.isprintable():
            raise RegistryError(f"staff id {staff!r} must be 1..64 printable characters")
        if not department:
            raise RegistryError(f"staff {staff} needs a department")
        with self.transaction():
            self.execute("DELETE FROM staff WHERE id = ?", (staff,))
            self.execute(
                "INSERT INTO staff(id, name, department, added_ms) VALUES (?, ?, ?, ?)",
                (staff, name, department, _now_ms()),
            )

    _DEVICE_COLUMNS = "id, pubkey, department, counter, upto, status_state, status_session, max_seq"

    def device(self, device: str) -> DeviceEntry | None:
        row = self.execute(f"SELECT {self._DEVICE_COLUMNS} FROM devices WHERE id = ?", (device,)).fetchone()  # noqa: S608
        return None if row is None else DeviceEntry(*row)

    def devices(self) -> list[DeviceEntry]:
        rows = self.execute(f"SELECT {self._DEVICE_COLUMNS} FROM devices ORDER BY id").fetchall()  # noqa: S608
        return [DeviceEntry(*row) for row in rows]

    def staff_department(self, staff: str) -> str | None:
        row = self.execute("SELECT department FROM staff WHERE id = ?", (staff,)).fetchone()
        return None if row is None else str(row[0])

    def staff_names(self) -> dict[str, tuple[str, str]]:
        return {r[0]: (r[1], r[2]) for r in self.execute("SELECT id, name, department FROM staff")}

    # -- ingest (inside a transaction) --------------------------------------------------------------

    def chain_around(self, device: str, first: int, last: int) -> dict[int, tuple[str, str]]:
        """{seq: (hash, prev)} of stored records of `device` in first-1 .. last+1 (within the seq range)."""
        rows = self.execute(
            "SELECT seq, hash, prev FROM ratings WHERE device = ? AND seq BETWEEN ? AND ?",
            (device, first - 1, min(last + 1, limits.MAX_SEQ)),
        )
        return {seq: (digest, prev) for seq, digest, prev in rows}

    def insert_ratings(self, rows: Sequence[RatingRow]) -> None:
        self.executemany(_INSERT_RATING, rows)

    def supersede(self, device: str, amended: int, by: int) -> Bucket | None:
        """Mark `amended` as replaced by the amend `by` (the latest amend wins).

        Returns the daily_counts cell the amended rating was counted in, if it was counted until now
        (the caller takes it out of the counts).
        """
        row = self.execute(
            "SELECT day, staff, department, kind, score, flags, superseded_by FROM ratings "
            "WHERE device = ? AND seq = ?",
            (device, amended),
        ).fetchone()
        if row is None or (row[6] is not None and row[6] >= by):
            return None
        self.execute("UPDATE ratings SET superseded_by = ? WHERE device = ? AND seq = ?", (by, device, amended))
        if row[6] is not None or row[1] is None:
            return None  # already out of the counts (an older amend), or counted for no one
        return (row[0], row[1], row[2], row[3], int(row[4] or 0), row[5])

    def count(self, deltas: dict[Bucket, int]) -> None:
        """Add to daily_counts (inside the ingest transaction)."""
        rows = [(*bucket, n) for bucket, n in deltas.items() if n]
        if rows:
            self.executemany(
                "INSERT INTO daily_counts (day, staff, department, kind, score, flags, n) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (day, staff, department, kind, score, flags) "
                "DO UPDATE SET n = daily_counts.n + excluded.n",
                rows,
            )

    def recount(self) -> list[tuple[Bucket, int]]:
        """daily_counts as the ratings themselves say it should be (for the audit and for tests)."""
        rows = self.execute(
            "SELECT day, staff, department, kind, coalesce(score, 0), flags, count(*) FROM ratings "
            "WHERE staff IS NOT NULL AND superseded_by IS NULL "
            "GROUP BY day, staff, department, kind, coalesce(score, 0), flags"
        ).fetchall()
        return sorted(((r[0], r[1], r[2], r[3], int(r[4]), r[5]), int(r[6])) for r in rows)

    def counts(self) -> list[tuple[Bucket, int]]:
        rows = self.execute(
            "SELECT day, staff, department, kind, score, flags, n FROM daily_counts WHERE n != 0"
        ).fetchall()
        return sorted(((r[0], r[1], r[2], r[3], int(r[4]), r[5]), int(r[6])) for r in rows)

    def rebuild_counts(self) -> None:
        """Replace daily_counts with a recount of the ratings (a repair; ingest keeps it right)."""
        with self.transaction():
            self.execute("DELETE FROM daily_counts")
            self.count(dict(self.recount()))

    def amends_after(self, device: str, after: int, lo: int, hi: int) -> list[tuple[int, int]]:
        """(amend seq, amended seq) of stored amends past `after` that name a seq in lo..hi."""
        rows = self.execute(
            "SELECT seq, amends FROM ratings "
            "WHERE device = ? AND seq > ? AND kind = 'amend' AND amends BETWEEN ? AND ?",
            (device, after, lo, hi),
        )
        return [(int(a), int(b)) for a, b in rows]

    def walk_upto(self, device: str, upto: int) -> int:
        """The contiguous watermark from `upto` on, over every consecutive stored seq."""
        while True:
            rows = self.execute(
                "SELECT seq FROM ratings WHERE device = ? AND seq > ? ORDER BY seq LIMIT 1000", (device, upto)
            ).fetchall()
            moved = False
            for (seq,) in rows:
                if seq != upto + 1:
                    break
                upto = seq
                moved = True
            if not moved or len(rows) < 1000:
                return upto

    def set_uptos(self, rows: Sequence[tuple[int, int, str]]) -> None:
        """Write (upto, max_seq, device) of terminals: each watermark and highest seq stored."""
        self.executemany("UPDATE devices SET upto = ?, max_seq = ? WHERE id = ?", rows)

    def data_version(self) -> int:
        """SQLite: a number that changes when another connection commits."""
        return int(self.execute("PRAGMA data_version").fetchone()[0])

    def add_reject(
        self,
        *,
        at_ms: int,
        topic: str,
        device: str | None,
        seq: int | None,
        reason: str,
        detail: str,
        size: int,
        digest: str | None = None,
    ) -> None:
        """A refused message: where it came from, why, how big, and its SHA-256 (`digest`, hex).

        Text is made printable first: a topic or a fault's text may hold what a column cannot
        (PostgreSQL's TEXT takes no NUL), and a reject row must never fail to be written.
        """
        self.execute(
            "INSERT INTO rejects(at_ms, topic, device, seq, reason, detail, size, digest) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (at_ms, printable(topic, 200), device, seq, reason, printable(detail, 500), size, digest),
        )

    def rejected_before(self, topic: str, digest: str) -> bool:
        """Whether this very message (topic and SHA-256 of its payload) was refused before."""
        row = self.execute(
            "SELECT 1 FROM rejects WHERE digest = ? AND topic = ? LIMIT 1", (digest, printable(topic, 200))
        ).fetchone()
        return row is not None

    def set_status(self, device: str, state: str, session: int, at_ms: int) -> None:
        self.execute(
            "UPDATE devices SET status_state = ?, status_session = ?, status_ms = ? WHERE id = ?",
            (state, session, at_ms, device),
        )

    def set_health(self, device: str, health: str, at_ms: int) -> None:
        self.execute("UPDATE devices SET health = ?, health_ms = ? WHERE id = ?", (health, at_ms, device))

    def add_device_event(self, device: str, at_ms: int, t_device: int, kind: str, detail: str) -> None:
        self.execute(
            "INSERT INTO device_events(device, at_ms, t_device, kind, detail) VALUES (?, ?, ?, ?, ?)",
            (device, at_ms, t_device, kind, detail),
        )

    def anchor(self, device: str, boot: str) -> tuple[int, int] | None:
        """(epoch_ms, device_epoch_ms) of a terminal's boot: hub time = epoch_ms + mono."""
        row = self.execute(
            "SELECT epoch_ms, device_epoch_ms FROM clock_anchors WHERE device = ? AND boot = ?", (device, boot)
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def set_anchor(self, device: str, boot: str, epoch_ms: int, device_epoch_ms: int, at_ms: int) -> None:
        self.execute("DELETE FROM clock_anchors WHERE device = ? AND boot = ?", (device, boot))
        self.execute(
            "INSERT INTO clock_anchors(device, boot, epoch_ms, device_epoch_ms, at_ms) VALUES (?, ?, ?, ?, ?)",
            (device, boot, epoch_ms, device_epoch_ms, at_ms),
        )

    def boot_times(self, device: str, boot: str) -> list[tuple[int, int, int, str, Bucket | None]]:
        """(seq, t_device, mono, time_source, counted cell or None) of a terminal's records from one boot."""
        rows = self.execute(
            "SELECT seq, t_device, mono, time_source, day, staff, department, kind, score, flags, superseded_by "
            "FROM ratings WHERE device = ? AND boot = ?",
            (device, boot),
        )
        found = []
        for seq, t_device, mono, source, day, staff, department, kind, score, flags, superseded in rows:
            counted = (
                None
                if staff is None or superseded is not None
                else (day, staff, department, kind, int(score or 0), flags)
            )
            found.append((int(seq), int(t_device), int(mono), str(source), counted))
        return found

    def retime(self, device: str, rows: Sequence[tuple[int, int, str, str]]) -> None:
        """Set (at_ms, day, time_source) of records given as (seq, at_ms, day, source)."""
        self.executemany(
            "UPDATE ratings SET at_ms = ?, day = ?, time_source = ? WHERE device = ? AND seq = ?",
            [(at, day, source, device, seq) for seq, at, day, source in rows],
        )

    # -- reading ------------------------------------------------------------------------------------

    def reject_counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.execute("SELECT reason, count(*) FROM rejects GROUP BY reason")}

    def rating_count(self) -> int:
        return int(self.execute("SELECT count(*) FROM ratings").fetchone()[0])

    def stored_seqs(self, device: str, first: int = 1) -> list[int]:
        return [
            r[0]
            for r in self.execute("SELECT seq FROM ratings WHERE device = ? AND seq >= ? ORDER BY seq", (device, first))
        ]


def _statements(script: str) -> list[str]:
    """The statements of a migration: `--` comments removed, split on `;` (no `;` inside literals)."""
    code = "\n".join(line.split("--", 1)[0] for line in script.splitlines())
    return [statement.strip() for statement in code.split(";") if statement.strip()]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
