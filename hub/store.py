"""The writer's SQL during ingest: ratings, daily counts, watermarks, refusals, terminals' telemetry
and clock anchors, on the write connection, inside the writer's transaction (hub.writer).

`Store` keeps the roll-ups (hub.rollups) equal to a recount of the ratings, whatever order records,
amends and clock anchors arrive in: adding a rating counts it, an amend moves what it replaces to a
superseded cell, retiming moves a rating to its new day (and to the unit and counter of that day).
Rows and count changes of a group are held back and written together (one statement each) at the
group's end, or before anything reads the ratings table.

A rating is attributed to the unit its clerk belonged to on its day and the counter its terminal
stood at that day (`attribution`), as the directory's history says (hub.directory). Under
PostgreSQL a group holds the directory's lock shared, so that a change of the history, which
re-attributes stored ratings under the same lock held exclusively, never misses a group's ratings.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence

from hub import rollups
from hub.db import Database
from hub.rows import DEVICE_COLUMNS, Bucket, DeviceEntry, RatingRow
from protocol import limits
from protocol.canonical import printable

__all__ = ["DIRECTORY_LOCK", "Store", "rebuild_counts"]

DIRECTORY_LOCK = 0x70696E676A6961  # PostgreSQL advisory lock key of the directory's history

# Built from RatingRow's own field names, so the columns and the tuples cannot disagree.
_INSERT_RATING = (
    f"INSERT INTO ratings({', '.join(RatingRow._fields)}) "  # noqa: S608 (constant names, no input)
    f"VALUES ({', '.join('?' * len(RatingRow._fields))})"
)
_SELECT_DEVICE = f"SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?"  # noqa: S608 (constant names)


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.kind = db.kind
        self._rows: list[RatingRow] = []  # of the group in progress, not inserted yet
        self._deltas: Counter[Bucket] = Counter()  # daily_counts changes of the group in progress
        self._spans: dict[rollups.Span, list[int]] = {}  # clerks' spans on terminals' days, ditto
        # The directory's history as read in this group: {staff: [(first_day, last_day, unit)]},
        # {device: [(first_day, last_day, counter)]}; None: not read (nor locked) yet.
        self._memberships: dict[str, list[tuple[str, str | None, str]]] = {}
        self._placements: dict[str, list[tuple[str, str | None, str]]] = {}
        self._zones: dict[str, str] = {}  # {counter: the time zone of its site ('' : the hub's)}
        self._directory: int | None = None  # the directory's version the history above is of
        self._checked = False  # whether this group checked that version (and, PostgreSQL, took the lock)

    # -- the group ----------------------------------------------------------------------------------

    def end_group(self) -> None:
        """Inside the group's transaction, before its commit: write its rows and count changes."""
        self._flush()
        rollups.apply(self.db, self._deltas)
        rollups.spans(self.db, self._spans)
        self._deltas.clear()
        self._spans.clear()
        self._checked = False

    def discard(self) -> None:
        """After a failed transaction: forget the rows and counts it held back."""
        self._rows.clear()
        self._deltas.clear()
        self._spans.clear()
        self.forget()

    def forget(self) -> None:
        """Drop the directory's history read so far (another connection may have changed it)."""
        self._memberships.clear()
        self._placements.clear()
        self._zones.clear()
        self._directory = None
        self._checked = False

    def _flush(self) -> None:
        """Insert the rows held back: before anything reads the ratings table, and at the group's end."""
        if self._rows:
            self.db.executemany(_INSERT_RATING, self._rows)
            self._rows = []

    def data_version(self) -> int:
        """SQLite: a number that changes when another connection commits."""
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    # -- terminals and staff ------------------------------------------------------------------------

    def lock_device(self, device: str) -> None:
        """Serialize ingest of one terminal across hub workers, until the transaction ends.

        SQLite has one writer already; PostgreSQL locks the device's row.
        """
        if self.kind == "postgresql":
            self._check_directory()  # the directory's lock first, as its writers take it: no deadlock
            self.db.execute("SELECT upto FROM devices WHERE id = ? FOR UPDATE", (device,))

    def device(self, device: str) -> DeviceEntry | None:
        row = self.db.execute(_SELECT_DEVICE, (device,)).fetchone()
        return None if row is None else DeviceEntry(*row)

    def attribution(self, staff: str | None, device: str, day: str) -> tuple[str, str]:
        """(unit, counter) of a rating: the unit its clerk belonged to on `day` ('' for a clerk the
        directory does not know then, or none) and the counter `device` stood at that day."""
        self._check_directory()
        unit = ""
        if staff is not None:
            periods = self._memberships.get(staff)
            if periods is None:
                periods = self._memberships[staff] = _history(
                    self.db, "SELECT first_day, last_day, unit FROM memberships WHERE staff = ?", staff
                )
            unit = _on(periods, day)
        return unit, self._counter(device, day)

    def _counter(self, device: str, day: str) -> str:
        """The counter `device` stood at on `day` ('' for none), its placements read once."""
        places = self._placements.get(device)
        if places is None:
            places = self._placements[device] = _history(
                self.db, "SELECT first_day, last_day, counter FROM placements WHERE device = ?", device
            )
        return _on(places, day)

    def zone(self, device: str, day: str) -> str:
        """The time zone of the site `device` stood at on `day` (the first unit with one, from its
        counter's unit up the tree), or '' (none placed, none set: the hub's `timezone`)."""
        self._check_directory()
        counter = self._counter(device, day)
        if not counter:
            return ""
        zone = self._zones.get(counter)
        if zone is None:
            zone = self._zones[counter] = self._zone_of(counter)
        return zone

    def _zone_of(self, counter: str) -> str:
        row = self.db.execute("SELECT unit FROM counters WHERE id = ?", (counter,)).fetchone()
        unit = None if row is None else row[0]
        for _ in range(100):  # the tree has no cycles (hub.directory.set_unit); a bound all the same
            if unit is None:
                return ""
            row = self.db.execute("SELECT parent, timezone FROM units WHERE id = ?", (unit,)).fetchone()
            if row is None:
                return ""
            if row[1]:
                return str(row[1])
            unit = row[0]
        return ""

    def _check_directory(self) -> None:
        """Once per group: (PostgreSQL) hold the directory's lock shared, and drop the history
        remembered if the directory changed since it was read."""
        if self._checked:
            return
        if self.kind == "postgresql":
            self.db.execute("SELECT pg_advisory_xact_lock_shared(?)", (DIRECTORY_LOCK,))
        version = int(self.db.execute("SELECT version FROM directory_version").fetchone()[0])
        if version != self._directory:
            self._memberships.clear()
            self._placements.clear()
            self._zones.clear()
            self._directory = version
        self._checked = True

    def set_uptos(self, rows: Sequence[tuple[int, int, str]]) -> None:
        """Write (upto, max_seq, device) of terminals: each watermark and highest seq stored."""
        self.db.executemany("UPDATE devices SET upto = ?, max_seq = ? WHERE id = ?", rows)

    # -- ratings ------------------------------------------------------------------------------------

    def add_ratings(self, rows: Sequence[RatingRow]) -> None:
        """Store new ratings (held back until the group's end or a read) and count them."""
        self._rows.extend(rows)
        deltas, spans = self._deltas, self._spans
        last: tuple[str, str, str] | None = None
        span: list[int] = []
        for row in rows:
            staff = row.staff
            if staff is None:
                continue
            deltas[(row.day, staff, row.department, row.counter, row.kind, row.score or 0, row.flags)] += 1
            seq, at_ms = row.seq, row.at_ms
            key = (row.device, row.day, staff)
            if key != last:  # a batch's rows mostly share their span: one look-up per run of them
                last = key
                found = spans.get(key)
                if found is None:
                    spans[key] = span = [seq, seq, at_ms, at_ms]
                    continue
                span = found
            if seq < span[0]:
                span[0] = seq
            elif seq > span[1]:
                span[1] = seq
            if at_ms < span[2]:
                span[2] = at_ms
            elif at_ms > span[3]:
                span[3] = at_ms

    def chain_around(self, device: str, first: int, last: int) -> dict[int, tuple[str, str]]:
        """{seq: (hash, prev)} of stored records of `device` in first-1 .. last+1 (within the seq range)."""
        self._flush()
        rows = self.db.execute(
            "SELECT seq, hash, prev FROM ratings WHERE device = ? AND seq BETWEEN ? AND ?",
            (device, first - 1, min(last + 1, limits.MAX_SEQ)),
        )
        return {seq: (digest, prev) for seq, digest, prev in rows}

    def supersede(self, device: str, amended: int, by: int) -> None:
        """Mark `amended` as replaced by the amend `by` (the latest amend wins): its cell becomes a
        superseded one."""
        self._flush()
        row = self.db.execute(
            "SELECT day, staff, department, counter, kind, score, flags, superseded_by, invalidated FROM ratings "
            "WHERE device = ? AND seq = ?",
            (device, amended),
        ).fetchone()
        if row is None or (row[7] is not None and row[7] >= by):
            return
        self.db.execute("UPDATE ratings SET superseded_by = ? WHERE device = ? AND seq = ?", (by, device, amended))
        if row[7] is not None or row[1] is None:
            return  # already superseded (by an older amend), or counted for no one
        cell = (row[0], row[1], row[2], row[3], row[4], int(row[5] or 0))
        invalidated = row[8] is not None
        self._deltas[(*cell, rollups.cell_flags(row[6], invalidated=invalidated))] -= 1
        self._deltas[(*cell, rollups.cell_flags(row[6], superseded=True, invalidated=invalidated))] += 1

    def amends_after(self, device: str, after: int, lo: int, hi: int) -> list[tuple[int, int]]:
        """(amend seq, amended seq) of stored amends past `after` that name a seq in lo..hi."""
        self._flush()
        rows = self.db.execute(
            "SELECT seq, amends FROM ratings "
            "WHERE device = ? AND seq > ? AND kind = 'amend' AND amends BETWEEN ? AND ?",
            (device, after, lo, hi),
        )
        return [(int(a), int(b)) for a, b in rows]

    def walk_upto(self, device: str, upto: int) -> int:
        """The contiguous watermark from `upto` on, over every consecutive stored seq."""
        self._flush()
        while True:
            rows = self.db.execute(
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

    def held_after(self, device: str, upto: int) -> tuple[int, int] | None:
        """(first, last) of the first run of stored seqs past a gap after `upto`; None if none."""
        self._flush()
        row = self.db.execute("SELECT min(seq) FROM ratings WHERE device = ? AND seq > ?", (device, upto)).fetchone()
        if row is None or row[0] is None:
            return None
        first = int(row[0])
        return first, self.walk_upto(device, first)

    # -- time ---------------------------------------------------------------------------------------

    def anchor(self, device: str, boot: str) -> tuple[int, int] | None:
        """(epoch_ms, device_epoch_ms) of a terminal's boot: hub time = epoch_ms + mono."""
        row = self.db.execute(
            "SELECT epoch_ms, device_epoch_ms FROM clock_anchors WHERE device = ? AND boot = ?", (device, boot)
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def set_anchor(self, device: str, boot: str, epoch_ms: int, device_epoch_ms: int, at_ms: int) -> None:
        self.db.execute("DELETE FROM clock_anchors WHERE device = ? AND boot = ?", (device, boot))
        self.db.execute(
            "INSERT INTO clock_anchors(device, boot, epoch_ms, device_epoch_ms, at_ms) VALUES (?, ?, ?, ?, ?)",
            (device, boot, epoch_ms, device_epoch_ms, at_ms),
        )

    def boot_times(self, device: str, boot: str) -> list[tuple[int, int, int, str, Bucket | None]]:
        """(seq, t_device, mono, time_source, its cell, or None without a clerk) of a terminal's
        records from one boot."""
        self._flush()
        rows = self.db.execute(
            "SELECT seq, t_device, mono, time_source, day, staff, department, counter, kind, score, flags, "
            "superseded_by, invalidated FROM ratings WHERE device = ? AND boot = ?",
            (device, boot),
        )
        found = []
        for seq, t_device, mono, source, day, staff, department, counter, kind, score, flags, by, invalid in rows:
            cell = rollups.cell_flags(flags, superseded=by is not None, invalidated=invalid is not None)
            counted = None if staff is None else (day, staff, department, counter, kind, int(score or 0), cell)
            found.append((int(seq), int(t_device), int(mono), str(source), counted))
        return found

    def retime(self, device: str, rows: Sequence[tuple[int, int, str, str, Bucket | None]]) -> None:
        """Set (at_ms, day, time_source) of records given as (seq, at_ms, day, source, cell or None).

        A rating whose day changes moves to that day's cell, with the unit and counter of that day.
        """
        updates: list[tuple[int, str, str, str | None, str | None, str, int]] = []
        for seq, at, day, source, counted in rows:
            if counted is None or counted[0] == day:
                updates.append((at, day, source, None, None, device, seq))
                continue
            staff = counted[1]
            unit, counter = self.attribution(staff, device, day)
            updates.append((at, day, source, unit, counter, device, seq))
            self._deltas[counted] -= 1
            self._deltas[(day, staff, unit, counter, *counted[4:])] += 1
            span = self._spans.setdefault((device, day, staff), [seq, seq, at, at])
            span[0], span[1], span[2], span[3] = (
                min(span[0], seq),
                max(span[1], seq),
                min(span[2], at),
                max(span[3], at),
            )
        self.db.executemany(
            "UPDATE ratings SET at_ms = ?, day = ?, time_source = ?, department = coalesce(?, department), "
            "counter = coalesce(?, counter) WHERE device = ? AND seq = ?",
            updates,
        )

    def add_fork(self, device: str, seq: int, stored_hash: str, other_hash: str, other_record: bytes) -> None:
        """Evidence of two validly signed histories of a terminal at `seq` (kept once per pair)."""
        self.db.execute(
            "INSERT INTO forks(device, seq, stored_hash, other_hash, other_record, seen_ms) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (device, seq, other_hash) DO NOTHING",
            (device, seq, stored_hash, other_hash, other_record.decode("utf-8"), _now_ms()),
        )

    # -- refusals -----------------------------------------------------------------------------------

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
        self.db.execute(
            "INSERT INTO rejects(at_ms, topic, device, seq, reason, detail, size, digest) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (at_ms, printable(topic, 200), device, seq, reason, printable(detail, 500), size, digest),
        )

    def prune_rejects(self, keep: int) -> int:
        """Keep the newest `keep` reject rows; return how many older ones were deleted."""
        row = self.db.execute("SELECT at_ms FROM rejects ORDER BY at_ms DESC LIMIT 1 OFFSET ?", (keep,)).fetchone()
        if row is None:
            return 0
        cursor = self.db.execute("DELETE FROM rejects WHERE at_ms <= ?", (row[0],))
        return max(0, int(cursor.rowcount))

    def rejected_before(self, topic: str, digest: str) -> bool:
        """Whether this very message (topic and SHA-256 of its payload) was refused before."""
        row = self.db.execute(
            "SELECT 1 FROM rejects WHERE digest = ? AND topic = ? LIMIT 1", (digest, printable(topic, 200))
        ).fetchone()
        return row is not None

    # -- telemetry ----------------------------------------------------------------------------------

    def set_status(self, device: str, state: str, session: int, at_ms: int) -> None:
        self.db.execute(
            "UPDATE devices SET status_state = ?, status_session = ?, status_ms = ? WHERE id = ?",
            (state, session, at_ms, device),
        )

    def set_health(self, device: str, health: str, at_ms: int) -> None:
        self.db.execute("UPDATE devices SET health = ?, health_ms = ? WHERE id = ?", (health, at_ms, device))

    def add_device_event(self, device: str, at_ms: int, t_device: int, kind: str, detail: str) -> None:
        self.db.execute(
            "INSERT INTO device_events(device, at_ms, t_device, kind, detail) VALUES (?, ?, ?, ?, ?)",
            (device, at_ms, t_device, kind, detail),
        )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _history(db: Database, sql: str, key: str) -> list[tuple[str, str | None, str]]:
    return [
        (str(first), None if last is None else str(last), str(value)) for first, last, value in db.execute(sql, (key,))
    ]


def _on(periods: list[tuple[str, str | None, str]], day: str) -> str:
    """The value of the period of `periods` (first_day, last_day or None, value) holding `day`; ''."""
    for first, last, value in periods:
        if first <= day and (last is None or day <= last):
            return value
    return ""


def rebuild_counts(db: Database) -> None:
    """Recount every roll-up from the ratings (a repair, and for rows put in directly; ingest keeps
    them right). A write function: `writer.write(rebuild_counts)`."""
    rollups.rebuild(db)
