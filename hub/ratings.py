"""Ratings ingest: a terminal's batch checked against what is stored, then stored once.

For a batch it checks, in order: the device is registered, the head signature (unless a preparing
process already checked it with the same key) and the hash chain, the link to what is already
stored on either side, and replays; then stores new records keyed by (device, seq), each placed in
time by hub.clock, and moves the device's contiguous watermark. A record stored before is a
duplicate: acked, not stored again. The latest amend of a rating replaces it in the counts,
whatever order they arrive in. Refusals are raised as protocol errors for hub.ingest to record.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hub.clock import DAY_BUCKET_MS, Clock
from hub.prepare import Prepared
from hub.rows import DeviceEntry, RatingRow
from hub.store import Store
from protocol import AuthError, Batch, Kind, ProtocolError, Rating, Reason, Rejection, verify_batch

if TYPE_CHECKING:
    from hub.ingest import Outcome

__all__ = ["NO_REASON", "Ratings"]

NO_REASON = "noreason"


@dataclass(slots=True)
class _Terminal:
    """What the writer knows of a terminal's row during a group of messages.

    `tail` is the chain hash of the record at `upto` when known: with it, a batch that continues
    the chain in order is checked without reading the ratings table.
    """

    entry: DeviceEntry
    upto: int
    max_seq: int
    tail: str | None = None
    dirty: bool = False


class Ratings:
    def __init__(self, store: Store, clock: Clock, counters: Counter[str]) -> None:
        self._store = store
        self._clock = clock
        self._counters = counters
        self.pubkeys: dict[str, str] = {}  # {device: public key hex} of the terminals seen so far
        self._terminals: dict[str, _Terminal] = {}

    def forget(self) -> None:
        """Drop the terminals' rows and the directory's history remembered (another connection may
        have changed them, or the transaction that read them failed)."""
        self._terminals.clear()
        self._store.forget()

    def end_group(self) -> None:
        """Inside the group's transaction, before its commit: write the watermarks that moved."""
        dirty = [(t.upto, t.max_seq, device) for device, t in self._terminals.items() if t.dirty]
        if dirty:
            self._store.set_uptos(dirty)
            for device in (item[2] for item in dirty):
                self._terminals[device].dirty = False

    def receive(self, outcome: Outcome, prepared: Prepared, now_ms: int) -> None:
        """Store a prepared batch (inside the writer's transaction) and fill in `outcome`; a refusal
        raises its ProtocolError, with `outcome.upto` already saying where the terminal stands."""
        device = outcome.device
        assert device is not None
        terminal = self._terminal(device)
        if terminal is not None:
            outcome.upto = terminal.upto  # every answer, refusals too, tells the terminal where it stands
        if prepared.error is not None:
            raise prepared.error
        batch = prepared.batch
        assert batch is not None
        if terminal is None:
            self.pubkeys.pop(device, None)
            raise ProtocolError(
                f"device {device} is not registered at this hub", reason=Reason.UNKNOWN_DEVICE, device=device
            )
        entry = terminal.entry
        self.pubkeys[device] = entry.pubkey
        if prepared.verified_with != entry.pubkey:
            verify_batch(batch, entry.key)  # first message of this terminal, or its key was replaced
        first, last = batch.head.first, batch.head.last
        if (
            first == terminal.upto + 1
            and terminal.max_seq == terminal.upto
            and (terminal.upto == 0 or terminal.tail is not None)
        ):
            # In order, and nothing stored past the watermark: the record at `upto` is the only
            # neighbour, and its hash is known.
            around = {} if terminal.upto == 0 else {terminal.upto: (terminal.tail or "", "")}
        else:
            around = self._store.chain_around(device, first, last)
        self._check_chain(device, batch, around, outcome)
        rows = self._rows(batch, around, now_ms)
        self._check_revoked(entry, rows)
        if rows:
            self._store_rows(device, rows, ahead=terminal.max_seq > rows[-1].seq)
        outcome.stored = len(rows)
        outcome.duplicates = len(batch.records) - len(rows)
        self._counters["stored"] += outcome.stored
        self._counters["duplicates"] += outcome.duplicates
        if not rows:
            self._held(device, terminal, outcome)
            return
        upto = terminal.upto
        if first <= upto + 1:  # the batch reaches the watermark: move it
            upto = max(upto, last)
            if last + 1 in around:  # records stored earlier continue the run: sweep over them
                upto = self._store.walk_upto(device, upto)
        if upto == last:
            terminal.tail = batch.hashes[-1]
        elif upto != terminal.upto:
            terminal.tail = None  # somewhere among records stored before: read it when needed
        terminal.upto, terminal.max_seq, terminal.dirty = upto, max(terminal.max_seq, last), True
        outcome.upto = upto
        self._held(device, terminal, outcome)

    def _held(self, device: str, terminal: _Terminal, outcome: Outcome) -> None:
        """Records are stored past a gap: say which, so that the terminal sends the gap again at
        once (a batch the broker lost) instead of waiting for its ack timeout."""
        if terminal.max_seq > terminal.upto:
            outcome.held = self._store.held_after(device, terminal.upto)

    def _terminal(self, device: str) -> _Terminal | None:
        known = self._terminals.get(device)
        if known is not None:
            return known
        self._store.lock_device(device)  # other hub workers wait here for this terminal
        entry = self._store.device(device)
        if entry is None:
            return None
        self._terminals[device] = known = _Terminal(entry=entry, upto=entry.upto, max_seq=entry.max_seq)
        return known

    def _check_chain(self, device: str, batch: Batch, around: dict[int, tuple[str, str]], outcome: Outcome) -> None:
        """The batch against what is stored on either side of it: the same history, or a fork.

        The batch is authentic (its signature holds with the terminal's key), and so is what is
        stored: two histories signed by one key mean the key is cloned or stolen. The evidence is
        kept (hub.store.add_fork) and the batch refused as `fork`, until an operator settles it.
        """
        first, last = batch.head.first, batch.head.last
        if first - 1 in around and around[first - 1][0] != batch.records[0].prev:
            self._fork(
                device, batch, first, around[first - 1][0], index=0, what="does not follow the stored seq before it"
            )
        conflicts = [
            index
            for index, (record, digest) in enumerate(zip(batch.records, batch.hashes, strict=True))
            if record.seq in around and around[record.seq][0] != digest
        ]
        if conflicts:
            for index in conflicts[1:]:
                outcome.rejections.append(
                    Rejection(reason=Reason.FORK, detail="stored with other content", seq=batch.records[index].seq)
                )
            seq = batch.records[conflicts[0]].seq
            self._fork(
                device,
                batch,
                seq,
                around[seq][0],
                index=conflicts[0],
                what=f"is stored with other content ({len(conflicts)} such seqs in this batch)",
            )
        if last + 1 in around and around[last + 1][1] != batch.hashes[-1]:
            self._fork(
                device,
                batch,
                last + 1,
                around[last + 1][0],
                index=len(batch.records) - 1,
                what="is not followed by the stored seq after it",
            )

    def _fork(self, device: str, batch: Batch, seq: int, stored_hash: str, *, index: int, what: str) -> None:
        """Keep the evidence of a fork at `seq` (the batch's record at `index`) and refuse the batch."""
        self._store.add_fork(device, seq, stored_hash, batch.hashes[index], batch.bodies[index])
        self._counters["forks"] += 1
        raise AuthError(
            f"fork: seq {batch.records[index].seq} of this validly signed batch {what}: the key of {device} "
            "signs two histories (cloned or stolen); evidence kept, see `pingjia hub forks`",
            reason=Reason.FORK,
            device=device,
            seq=seq,
        )

    def _rows(self, batch: Batch, around: dict[int, tuple[str, str]], now_ms: int) -> list[RatingRow]:
        """New records as rows, each placed in time and attributed to its clerk's unit and its
        terminal's counter of that day (hub.store.Store.attribution)."""
        place, day_of, attribution = self._clock.place, self._clock.site_day, self._store.attribution
        # A batch is one terminal's minutes: its days (per quarter hour, as hub.clock reckons
        # them) and attributions (per clerk and day) are looked up once each, not per record.
        days: dict[int, str] = {}
        attributed: dict[tuple[str | None, str], tuple[str, str]] = {}
        rows = []
        for record, body, digest in zip(batch.records, batch.bodies, batch.hashes, strict=True):
            if record.seq in around:
                continue
            at_ms, source = place(record, now_ms)
            day = days.get(at_ms // DAY_BUCKET_MS)
            if day is None:
                day = days[at_ms // DAY_BUCKET_MS] = day_of(record.device, at_ms)
            found = attributed.get((record.staff, day))
            if found is None:
                found = attributed[(record.staff, day)] = attribution(record.staff, record.device, day)
            unit, counter = found
            rows.append(
                RatingRow(
                    device=record.device,
                    seq=record.seq,
                    kind=record.kind.value,
                    staff=record.staff,
                    score=record.score,
                    amends=record.amends,
                    flags=_flags(record),
                    department=unit,
                    counter=counter,
                    t_device=record.t,
                    at_ms=at_ms,
                    day=day,
                    stored_ms=now_ms,
                    prev=record.prev,
                    hash=digest,
                    record=body.decode("utf-8"),
                    boot=record.boot,
                    mono=record.mono,
                    time_source=source,
                )
            )
        return rows

    @staticmethod
    def _check_revoked(entry: DeviceEntry, rows: list[RatingRow]) -> None:
        """A revoked key's records count only if they happened before its revocation (by the
        hub's placing of them in time); AuthError(revoked) for a batch holding a later one."""
        revoked_ms = entry.revoked_ms
        if revoked_ms is None:
            return
        late = [row.seq for row in rows if row.at_ms > revoked_ms]
        if late:
            raise AuthError(
                f"{len(late)} records made after the key of {entry.id} was revoked (first: seq {late[0]})",
                reason=Reason.REVOKED,
                device=entry.id,
                seq=late[0],
            )

    def _store_rows(self, device: str, rows: list[RatingRow], *, ahead: bool) -> None:
        self._store.add_ratings(rows)
        if ahead or any(row.amends is not None for row in rows):
            self._supersede(device, rows, ahead=ahead)

    def _supersede(self, device: str, rows: list[RatingRow], *, ahead: bool) -> None:
        """The latest amend of a rating wins, whatever order the records arrive in.

        `ahead`: records with higher seqs were stored before these, and may amend them.
        """
        pairs = [(row.amends, row.seq) for row in rows if row.kind == Kind.AMEND.value and row.amends is not None]
        if ahead:
            pairs += [
                (amended, by)
                for by, amended in self._store.amends_after(device, rows[-1].seq, rows[0].seq, rows[-1].seq)
            ]
        for amended, by in pairs:
            self._store.supersede(device, amended, by)


def _flags(record: Rating) -> str:
    """The record's own flags, and `noreason` for a bad rating (level 1 or 2) given without a reason
    (a fact the scoring policy may act on: "a bad rating needs a reason")."""
    flags = [flag.value for flag in record.flags]
    if record.kind is not Kind.TIMEOUT and record.score is not None and record.score <= 2 and not record.reasons:
        flags.append(NO_REASON)
    return ",".join(flags)
