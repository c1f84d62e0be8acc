"""The terminal's outbox: every rating is durable here before the customer is thanked.

SQLite in WAL mode with synchronous=FULL: a record is committed (and fsynced) in one statement
together with its seq; the chain head is the newest row, which pruning never removes, so seq and
head cannot disagree after a power cut. Appends go to the end of an INTEGER PRIMARY KEY b-tree and
touch no secondary index, so their cost stays flat as the outbox grows. The delivery watermark
(`acked`: every seq up to it is stored at the hub) lives in a one-row meta table.

One thread owns an Outbox (the terminal's main loop) at a time; it is not shared across threads.
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from device.errors import ForeignOutbox, OutboxError
from protocol import GENESIS, ProtocolError, Rating, leaf_hash, rating_from_wire
from protocol import decode as decode_json
from protocol.limits import MAX_MESSAGE_BYTES, MAX_SEQ

__all__ = ["Appended", "ForeignOutbox", "Outbox", "OutboxError", "Pending"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    body BLOB NOT NULL,         -- canonical bytes of the signed record
    hash TEXT NOT NULL,         -- its chain hash
    created_ms INTEGER NOT NULL -- terminal wall clock at append, for retention only
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# Room for the batch envelope and head around the records, within the protocol's message limit.
_ENVELOPE_BYTES = 1024
# The newest records are kept in memory too: the link sends each one right after it is stored.
_TAIL_RECORDS = 256


@dataclass(frozen=True, slots=True)
class Appended:
    seq: int
    hash: str
    record: Rating


@dataclass(frozen=True, slots=True)
class Pending:
    """Consecutive unacked records ready to be sealed into one batch."""

    first: int
    bodies: list[bytes]
    last_hash: str

    @property
    def last(self) -> int:
        return self.first + len(self.bodies) - 1


class Outbox:
    def __init__(self, path: Path, *, device: str, create: bool = True) -> None:
        if not create and not path.exists():
            raise OutboxError(f"outbox {path} is missing")
        try:
            # One thread owns the outbox at a time; it may be opened on another (a test, a start-up thread).
            self._db = sqlite3.connect(path, isolation_level=None, timeout=10, check_same_thread=False)
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot open outbox {path}: {exc}") from exc
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            if not meta:
                meta = {"device": device, "outbox_id": uuid.uuid4().hex, "acked": "0", "boots": "0"}
                self._db.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", meta.items())
            row = self._db.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        except sqlite3.Error as exc:
            self._db.close()
            raise OutboxError(f"cannot open outbox {path}: {exc}") from exc
        if meta["device"] != device:
            self._db.close()
            raise ForeignOutbox(f"outbox {path} belongs to device {meta['device']}, not {device}")
        self.path = path
        self.device = device
        self.outbox_id: str = meta["outbox_id"]
        self._acked = int(meta["acked"])
        self._acked_saved = self._acked
        self._boots = self._boots_saved = int(meta["boots"])
        self._head: tuple[int, str] = (row[0], row[1]) if row else (0, GENESIS)
        self._tail: deque[tuple[int, bytes, str]] = deque(maxlen=_TAIL_RECORDS)  # (seq, body, hash), consecutive
        self.changes = 0  # appends and watermark moves since opening: what an idle checkpoint looks for

    # -- writing ------------------------------------------------------------------------------------

    def append(self, build: Callable[[int, str], Rating], *, now_ms: int) -> Appended:
        """Store the next record durably and return it; raise OutboxError if it could not be stored.

        `build(seq, prev)` makes the signed record for the next seq; the record is committed with a
        full fsync before this returns. Nothing is changed if it raises.
        """
        seq, prev = self._head[0] + 1, self._head[1]
        if seq > MAX_SEQ:
            raise OutboxError(f"every seq up to {MAX_SEQ} is used: this terminal takes no more records; re-pair it")
        record = build(seq, prev)
        if record.seq != seq or record.prev != prev:
            raise OutboxError(f"record built for seq {record.seq}, expected {seq}")
        body = record.canonical()
        digest = leaf_hash(body)
        try:
            self._db.execute(
                "INSERT INTO records(seq, body, hash, created_ms) VALUES (?, ?, ?, ?)",
                (seq, body, digest, now_ms),
            )
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot store seq {seq}: {exc}") from exc
        self._head = (seq, digest)
        self._tail.append((seq, body, digest))
        self.changes += 1
        return Appended(seq=seq, hash=digest, record=record)

    def mark_acked(self, upto: int) -> bool:
        """Record that the hub holds every seq up to `upto`; True if that moved the watermark.

        In memory at once; on disk at the next `save_meta()`. A watermark lost in a power cut only
        means sending again records the hub already holds, which it acks and does not store twice.
        """
        upto = min(upto, self._head[0])
        if upto <= self._acked:
            return False
        self._acked = upto
        self.changes += 1
        return True

    def rewind_acked(self, upto: int) -> int:
        """The hub lost records it had acked: lower the watermark to `upto`, or as far as the records
        kept here reach (older ones were pruned after the retention); return the new watermark."""
        try:
            row = self._db.execute("SELECT min(seq) FROM records").fetchone()
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot read the outbox: {exc}") from exc
        oldest = row[0] if row and row[0] is not None else self._head[0] + 1
        self._acked = min(self._acked, max(upto, oldest - 1))
        self.changes += 1
        return self._acked

    def save_meta(self) -> None:
        """Write the watermark and the boot count if they moved (one small transaction each).

        Call when idle and before stopping.
        """
        if self._boots != self._boots_saved:
            try:
                self._db.execute("UPDATE meta SET value = ? WHERE key = 'boots'", (str(self._boots),))
            except sqlite3.Error as exc:
                raise OutboxError(f"cannot count boot {self._boots}: {exc}") from exc
            self._boots_saved = self._boots
        if self._acked != self._acked_saved:
            try:
                self._db.execute("UPDATE meta SET value = ? WHERE key = 'acked'", (str(self._acked),))
            except sqlite3.Error as exc:
                raise OutboxError(f"cannot record ack {self._acked}: {exc}") from exc
            self._acked_saved = self._acked

    def prune(self, *, older_than_ms: int) -> int:
        """Delete acked records created before `older_than_ms`; never the newest (it is the chain head).

        Only up to the saved watermark: after a power cut the outbox must still hold every record
        from the watermark it starts with.
        """
        try:
            cursor = self._db.execute(
                "DELETE FROM records WHERE seq <= ? AND seq < ? AND created_ms < ?",
                (min(self._acked, self._acked_saved), self._head[0], older_than_ms),
            )
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot prune: {exc}") from exc
        return cursor.rowcount

    def next_boot(self) -> int:
        """Count one more start of the terminal process (the high part of MQTT session ids).

        The count moves in memory even when it cannot be written (OutboxError); `save_meta` writes
        it once the disk takes writes again.
        """
        self._boots += 1
        self.save_meta()
        return self._boots

    @property
    def boots(self) -> int:
        return self._boots

    def probe(self, now_ms: int) -> None:
        """Write something small: OutboxError if the outbox cannot take a write (disk full, read-only)
        or would refuse the next record anyway (every seq is used)."""
        if self._head[0] >= MAX_SEQ:
            raise OutboxError(f"every seq up to {MAX_SEQ} is used: this terminal takes no more records; re-pair it")
        try:
            self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('probe', ?)", (str(now_ms),))
        except sqlite3.Error as exc:
            raise OutboxError(f"probe write failed: {exc}") from exc

    def checkpoint(self) -> None:
        """Fold the WAL into the database while the terminal is idle (keeps appends' latency even)."""
        try:
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            raise OutboxError(f"checkpoint failed: {exc}") from exc

    # -- reading ------------------------------------------------------------------------------------

    @property
    def head(self) -> tuple[int, str]:
        """(seq, hash) of the newest record; (0, GENESIS) before the first."""
        return self._head

    @property
    def acked(self) -> int:
        return self._acked

    @property
    def depth(self) -> int:
        """Records thanked but not yet stored at the hub."""
        return self._head[0] - self._acked

    def oldest_unacked_ms(self) -> int | None:
        row = self._db.execute("SELECT created_ms FROM records WHERE seq = ?", (self._acked + 1,)).fetchone()
        return None if row is None else int(row[0])

    def pending(self, first: int, limit: int) -> Pending | None:
        """Up to `limit` consecutive records from `first`, within one message's byte limit."""
        rows: Sequence[tuple[int, bytes, str]]
        if self._tail and self._tail[0][0] <= first:  # appended lately: no need to read them back
            rows = list(itertools.islice(self._tail, first - self._tail[0][0], first - self._tail[0][0] + limit))
        else:
            rows = self._db.execute(
                "SELECT seq, body, hash FROM records WHERE seq >= ? ORDER BY seq LIMIT ?", (first, limit)
            ).fetchall()
        if not rows or rows[0][0] != first:
            return None
        bodies: list[bytes] = []
        size = _ENVELOPE_BYTES
        last_hash = ""
        for seq, body, digest in rows:
            if bodies and (size + len(body) + 1 > MAX_MESSAGE_BYTES or seq != first + len(bodies)):
                break
            bodies.append(bytes(body))
            size += len(body) + 1
            last_hash = digest
        return Pending(first=first, bodies=bodies, last_hash=last_hash)

    def records(self, first: int = 1) -> list[Rating]:
        """Records from `first` on, decoded (for checks and tests; not on the press path)."""
        rows = self._db.execute("SELECT body FROM records WHERE seq >= ? ORDER BY seq", (first,)).fetchall()
        return [rating_from_wire(decode_json(bytes(row[0]))) for row in rows]

    def verify_chain(self) -> int:
        """Check every stored record's hash and prev link; return how many were checked.

        Raises OutboxError at the first break. The oldest kept record's prev is taken on trust
        (its predecessor may have been pruned after the hub stored it).
        """
        previous: tuple[int, str] | None = None
        count = 0
        for seq, stored, digest in self._db.execute("SELECT seq, body, hash FROM records ORDER BY seq"):
            body = stored if isinstance(stored, bytes) else str(stored).encode("utf-8")
            if leaf_hash(body) != digest:
                raise OutboxError(f"seq {seq}: stored hash does not match its body")
            try:
                record = rating_from_wire(decode_json(body))
            except ProtocolError as exc:
                raise OutboxError(f"seq {seq} does not decode: {exc}") from exc
            if record.seq != seq:
                raise OutboxError(f"row {seq} holds a record of seq {record.seq}")
            if previous is not None:
                if seq != previous[0] + 1:
                    raise OutboxError(f"gap: seq {previous[0]} is followed by {seq}")
                if record.prev != previous[1]:
                    raise OutboxError(f"seq {seq}: prev is not the hash of seq {previous[0]}")
            elif seq == 1 and record.prev != GENESIS:
                raise OutboxError("seq 1 does not start from the genesis hash")
            previous = (seq, digest)
            count += 1
        return count

    def close(self) -> None:
        with contextlib.suppress(OutboxError):
            self.save_meta()
        self._db.close()
