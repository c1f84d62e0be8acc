"""Ingest: one MQTT message in, stored ratings (or a recorded rejection) and an answer out.

`Ingest.receive` runs inside the caller's store transaction, so a group of messages is committed
with one fsync and only then acknowledged. For a batch it checks, in order: size and decoding (the
protocol), the device is registered, the head signature and the hash chain, the link to what is
already stored on either side, and replays; then stores new records keyed by (device, seq) and
moves the device's contiguous watermark. A record stored before is a duplicate: acked, not stored
again. Every refusal becomes a row in `rejects`, a counter, and an entry in the device's ack.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from hub.config import HubConfig
from hub.prepare import Prepared, Preparer
from hub.store import Bucket, DeviceEntry, RatingRow, Store
from protocol import (
    AuthError,
    Batch,
    Channel,
    DecodeError,
    Kind,
    ProtocolError,
    Rating,
    Reason,
    Rejection,
    decode_event,
    decode_health,
    decode_status,
    newer_status,
    verify_batch,
)
from protocol import Status as WireStatus
from protocol import StatusState as WireState
from protocol.canonical import printable
from runtime.logs import LogLimiter

__all__ = ["Ingest", "Outcome"]

log = logging.getLogger("pingjia.hub.ingest")

_EARLIEST_MS = 1_577_836_800_000  # 2020-01-01T00:00Z: a terminal clock before this has not been set
_DAY_BUCKET_MS = 900_000  # every real UTC offset is a multiple of 15 minutes
_ANCHOR_SLACK_MS = 250  # a new anchor within this of the stored one changes nothing worth a rewrite


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


@dataclass
class Outcome:
    """What one message did. `device` is whom to answer (None: nobody can be answered)."""

    device: str | None
    channel: Channel | None = None
    stored: int = 0
    duplicates: int = 0
    upto: int = 0
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def answer(self) -> bool:
        return self.device is not None and self.channel is Channel.RATINGS


class Ingest:
    def __init__(self, store: Store, config: HubConfig) -> None:
        self.store = store
        self.config = config
        self.counters: Counter[str] = Counter()
        self._tz = ZoneInfo(config.timezone)
        self._days: dict[int, str] = {}
        self._pubkeys: dict[str, str] = {}
        self._preparer = Preparer()
        self._anchors: dict[tuple[str, str], int | None] = {}  # (device, boot) -> hub epoch ms
        self._terminals: dict[str, _Terminal] = {}
        self._departments: dict[str, str | None] = {}  # staff -> department (None: not registered)
        self._data_version: int | None = None
        self._deltas: Counter[Bucket] = Counter()  # daily_counts changes of the group in progress
        self._unwritten: list[RatingRow] = []  # rows of the group, inserted together unless read sooner
        self._limited = LogLimiter(log)

    def prepare(self, topic: str, payload: bytes) -> Prepared:
        """`prepare_many` of one message."""
        return self.prepare_many([(topic, payload)])[0]

    def prepare_many(self, messages: Sequence[tuple[str, bytes]]) -> list[Prepared]:
        """Decode and authenticate messages here, with the keys this writer knows (hub.prepare)."""
        return self._preparer.prepare_many(messages, self.keys)

    @property
    def keys(self) -> dict[str, str]:
        """{device: public key hex} of the terminals seen so far, for preparing elsewhere."""
        return self._pubkeys

    def receive(self, topic: str, payload: bytes, now_ms: int, *, retained: bool = False) -> Outcome:
        """Handle one message inside the caller's transaction (a group of one). Never raises for bad input."""
        self.begin_group()
        outcome = self.receive_prepared(self.prepare(topic, payload), now_ms, retained=retained)
        self.end_group()
        return outcome

    def begin_group(self) -> None:
        """Before a group's transaction: drop what another connection may have changed since.

        SQLite has one writer (this one), so the terminals' rows it remembers stay true until some
        other connection commits (a registration), which `data_version` tells. Under PostgreSQL
        other workers store too: every group reads the rows afresh, under their row locks.
        """
        if self.store.kind != "sqlite":
            self._terminals.clear()
            self._departments.clear()
            return
        version = self.store.data_version()
        if version != self._data_version:
            self._terminals.clear()
            self._departments.clear()  # a clerk may have moved to another department
            self._data_version = version

    def end_group(self) -> None:
        """Inside the group's transaction, before its commit: write the rows, counts and watermarks."""
        self._write_rows()
        if self._deltas:
            self.store.count(self._deltas)
            self._deltas.clear()
        dirty = [(t.upto, t.max_seq, device) for device, t in self._terminals.items() if t.dirty]
        if dirty:
            self.store.set_uptos(dirty)
            for device in (item[2] for item in dirty):
                self._terminals[device].dirty = False

    def forget(self) -> None:
        """After a failed transaction: nothing remembered since its start can be trusted."""
        self._terminals.clear()
        self._departments.clear()
        self._deltas.clear()
        self._unwritten.clear()
        self._anchors.clear()
        self._data_version = None

    def _write_rows(self) -> None:
        """Insert the group's rows so far: before anything reads the ratings table, and at its end."""
        if self._unwritten:
            self.store.insert_ratings(self._unwritten)
            self._unwritten = []

    def receive_prepared(self, prepared: Prepared, now_ms: int, *, retained: bool = False) -> Outcome:
        """Store what `prepare` made of a message, inside the caller's transaction (the writer thread).

        Refusals of protocol errors are outcomes; anything else a handler raises goes to the caller,
        which stores the message again on its own and refuses it (`refuse`) if it fails again.
        `retained`: the broker keeps the message and sends it again at every subscription.
        """
        self.counters["messages"] += 1
        topic, payload, device = prepared.topic, prepared.payload, prepared.device
        if device is None or prepared.channel is None:
            assert prepared.error is not None
            return self._reject(Outcome(device=None), prepared.error, topic, payload, now_ms, retained=retained)
        channel = prepared.channel
        outcome = Outcome(device=device, channel=channel)
        try:
            if channel is Channel.RATINGS:
                self._ratings(outcome, prepared, now_ms)
            elif channel is Channel.STATUS:
                self._status(device, payload, now_ms)
            elif channel is Channel.HEALTH:
                self._health(device, payload, now_ms)
            elif channel is Channel.EVENT:
                self._event(device, payload, now_ms)
            else:
                raise DecodeError(f"the hub does not take {channel.value} messages", reason=Reason.WRONG_TYPE)
        except ProtocolError as exc:
            return self._reject(outcome, exc, topic, payload, now_ms, retained=retained)
        return outcome

    def refuse(self, prepared: Prepared, error: ProtocolError, now_ms: int, *, retained: bool = False) -> Outcome:
        """Record a message as refused for `error` (inside the caller's transaction), storing nothing of it."""
        self.counters["messages"] += 1
        outcome = Outcome(device=prepared.device, channel=prepared.channel)
        return self._reject(outcome, error, prepared.topic, prepared.payload, now_ms, retained=retained)

    # -- ratings ------------------------------------------------------------------------------------

    def _terminal(self, device: str) -> _Terminal | None:
        known = self._terminals.get(device)
        if known is not None:
            return known
        self.store.lock_device(device)  # other hub workers wait here for this terminal
        entry = self.store.device(device)
        if entry is None:
            return None
        self._terminals[device] = known = _Terminal(entry=entry, upto=entry.upto, max_seq=entry.max_seq)
        return known

    def _ratings(self, outcome: Outcome, prepared: Prepared, now_ms: int) -> None:
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
            self._pubkeys.pop(device, None)
            raise ProtocolError(
                f"device {device} is not registered at this hub", reason=Reason.UNKNOWN_DEVICE, device=device
            )
        entry = terminal.entry
        self._pubkeys[device] = entry.pubkey
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
            self._write_rows()
            around = self.store.chain_around(device, first, last)
        self._check_chain(device, batch, around, outcome)
        rows = self._rows(batch, around, entry.department, entry.counter, now_ms)
        if rows:
            self._store_rows(device, rows, ahead=terminal.max_seq > rows[-1].seq)
        outcome.stored = len(rows)
        outcome.duplicates = len(batch.records) - len(rows)
        self.counters["stored"] += outcome.stored
        self.counters["duplicates"] += outcome.duplicates
        if not rows:
            return
        upto = terminal.upto
        if first <= upto + 1:  # the batch reaches the watermark: move it
            upto = max(upto, last)
            if last + 1 in around:  # records stored earlier continue the run: sweep over them
                self._write_rows()
                upto = self.store.walk_upto(device, upto)
        if upto == last:
            terminal.tail = batch.hashes[-1]
        elif upto != terminal.upto:
            terminal.tail = None  # somewhere among records stored before: read it when needed
        terminal.upto, terminal.max_seq, terminal.dirty = upto, max(terminal.max_seq, last), True
        outcome.upto = upto

    def _check_chain(self, device: str, batch: Batch, around: dict[int, tuple[str, str]], outcome: Outcome) -> None:
        """The batch against what is stored on either side of it: same history, or a refusal."""
        first, last = batch.head.first, batch.head.last
        if first - 1 in around and around[first - 1][0] != batch.records[0].prev:
            raise AuthError(
                f"prev of seq {first} is not the hash of the stored seq {first - 1}",
                reason=Reason.BROKEN_CHAIN,
                device=device,
                seq=first,
            )
        conflicts = [
            record.seq
            for record, digest in zip(batch.records, batch.hashes, strict=True)
            if record.seq in around and around[record.seq][0] != digest
        ]
        if conflicts:
            for seq in conflicts[1:]:
                outcome.rejections.append(
                    Rejection(reason=Reason.REPLAY_CONFLICT, detail="stored with other content", seq=seq)
                )
            raise ProtocolError(
                f"seq {conflicts[0]} is stored with other content ({len(conflicts)} such seqs in this batch)",
                reason=Reason.REPLAY_CONFLICT,
                device=device,
                seq=conflicts[0],
            )
        if last + 1 in around and around[last + 1][1] != batch.hashes[-1]:
            raise AuthError(
                f"the stored seq {last + 1} does not follow this batch's last hash",
                reason=Reason.BROKEN_CHAIN,
                device=device,
                seq=last,
            )

    def _rows(
        self, batch: Batch, around: dict[int, tuple[str, str]], department: str, counter: str, now_ms: int
    ) -> list[RatingRow]:
        rows = []
        for record, body, digest in zip(batch.records, batch.bodies, batch.hashes, strict=True):
            if record.seq in around:
                continue
            at_ms, source = self._place(record, self._anchor(record.device, record.boot), now_ms)
            staff_department = self._department(record.staff) if record.staff is not None else None
            rows.append(
                RatingRow(
                    device=record.device,
                    seq=record.seq,
                    kind=record.kind.value,
                    staff=record.staff,
                    score=record.score,
                    amends=record.amends,
                    flags=",".join(flag.value for flag in record.flags),
                    department=staff_department or department,
                    counter=counter,
                    t_device=record.t,
                    at_ms=at_ms,
                    day=self._day(at_ms),
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

    def _department(self, staff: str) -> str | None:
        """The clerk's department, read once per group at most (see `begin_group`)."""
        if staff not in self._departments:
            self._departments[staff] = self.store.staff_department(staff)
        return self._departments[staff]

    # -- time ---------------------------------------------------------------------------------------

    def _place(self, record: Rating, epoch: int | None, now_ms: int) -> tuple[int, str]:
        """When a record happened, by the hub's clock, and how that was decided.

        With an anchor for the record's boot, the terminal's wall clock is trusted if it agrees with
        the anchor within `clock_tolerance_s`, else the anchor places it (hub epoch + mono). Without
        one, a wall clock before 2020 or too far ahead is replaced by the time of receipt.
        """
        if epoch is not None:
            if abs(record.t - record.mono - epoch) <= self.config.clock_tolerance_s * 1000:
                return record.t, "device"
            return epoch + record.mono, "anchor"
        if _EARLIEST_MS <= record.t <= now_ms + self.config.clock_skew_s * 1000:
            return record.t, "device"
        return now_ms, "received"

    def _anchor(self, device: str, boot: str) -> int | None:
        key = (device, boot)
        if key not in self._anchors:
            found = self.store.anchor(device, boot)
            self._anchors[key] = None if found is None else found[0]
        return self._anchors[key]

    def _store_rows(self, device: str, rows: list[RatingRow], *, ahead: bool) -> None:
        self._unwritten.extend(rows)
        for row in rows:
            if row.staff is not None:
                self._deltas[(row.day, row.staff, row.department, row.kind, row.score or 0, row.flags)] += 1
        if ahead or any(row.amends is not None for row in rows):
            self._write_rows()
            self._supersede(device, rows, ahead=ahead)

    def _supersede(self, device: str, rows: list[RatingRow], *, ahead: bool) -> None:
        """The latest amend of a rating wins, whatever order the records arrive in.

        `ahead`: records with higher seqs were stored before these, and may amend them.
        """
        pairs = [(row.amends, row.seq) for row in rows if row.kind == Kind.AMEND.value and row.amends is not None]
        if ahead:
            pairs += [
                (amended, by)
                for by, amended in self.store.amends_after(device, rows[-1].seq, rows[0].seq, rows[-1].seq)
            ]
        for amended, by in pairs:
            bucket = self.store.supersede(device, amended, by)
            if bucket is not None:
                self._deltas[bucket] -= 1  # replaced: it counts no more

    def _day(self, at_ms: int) -> str:
        bucket = at_ms // _DAY_BUCKET_MS
        day = self._days.get(bucket)
        if day is None:
            day = datetime.fromtimestamp(bucket * _DAY_BUCKET_MS / 1000, self._tz).date().isoformat()
            if len(self._days) > 10_000:
                self._days.clear()
            self._days[bucket] = day
        return day

    # -- status -------------------------------------------------------------------------------------

    def _status(self, device: str, payload: bytes, now_ms: int) -> None:
        if not payload:
            return  # a cleared retained status
        status = decode_status(payload)
        if status.device != device:
            raise DecodeError(f"status of {status.device} on the topic of {device}", reason=Reason.TOPIC_MISMATCH)
        entry = self.store.device(device)
        if entry is None:
            raise ProtocolError(
                f"status from unregistered device {device}", reason=Reason.UNKNOWN_DEVICE, device=device
            )
        current = None
        if entry.status_state is not None and entry.status_session is not None:
            current = WireStatus(device=device, state=WireState(entry.status_state), session=entry.status_session)
        if newer_status(current, status):
            self.store.set_status(device, status.state.value, status.session, now_ms)
            self.counters[f"status_{status.state.value}"] += 1
        else:
            self.counters["status_stale"] += 1

    # -- health and events --------------------------------------------------------------------------

    def _known(self, device: str, what: str) -> None:
        if self.store.device(device) is None:
            raise ProtocolError(
                f"{what} from unregistered device {device}", reason=Reason.UNKNOWN_DEVICE, device=device
            )

    def _health(self, device: str, payload: bytes, now_ms: int) -> None:
        if not payload:
            return  # a cleared retained message
        health = decode_health(payload)
        if health.device != device:
            raise DecodeError(f"health of {health.device} on the topic of {device}", reason=Reason.TOPIC_MISMATCH)
        self._known(device, "health")
        self.store.set_health(device, payload.decode("utf-8"), now_ms)
        self.counters["health"] += 1
        if health.hub_offset_ms is None:
            return  # no ack yet in this boot: nothing to anchor its clock to
        # The terminal measured hub time minus its monotonic clock from an ack; that holds for the
        # whole boot, however wrong its wall clock is and however late this message arrives.
        epoch = health.t - health.mono + health.hub_offset_ms
        current = self._anchor(device, health.boot)
        if current is not None and abs(current - epoch) <= _ANCHOR_SLACK_MS:
            return
        self.store.set_anchor(device, health.boot, epoch, health.t - health.mono, now_ms)
        self._anchors[(device, health.boot)] = epoch
        self._retime(device, health.boot, epoch)

    def _retime(self, device: str, boot: str, epoch: int) -> None:
        """Place again the records of a boot whose time was decided without this anchor."""
        tolerance = self.config.clock_tolerance_s * 1000
        self._write_rows()
        changes = []
        for seq, t_device, mono, source, counted in self.store.boot_times(device, boot):
            if abs(t_device - mono - epoch) <= tolerance:
                at_ms, new_source = t_device, "device"
            else:
                at_ms, new_source = epoch + mono, "anchor"
            if new_source != source or new_source == "anchor":
                day = self._day(at_ms)
                changes.append((seq, at_ms, day, new_source))
                if counted is not None and counted[0] != day:  # the rating moves to another day's counts
                    self._deltas[counted] -= 1
                    self._deltas[(day, *counted[1:])] += 1
        if changes:
            self.store.retime(device, changes)
            self.counters["retimed"] += len(changes)

    def _event(self, device: str, payload: bytes, now_ms: int) -> None:
        event = decode_event(payload)
        if event.device != device:
            raise DecodeError(f"event of {event.device} on the topic of {device}", reason=Reason.TOPIC_MISMATCH)
        self._known(device, "event")
        self.store.add_device_event(device, now_ms, event.t, event.kind.value, event.detail or "")
        self.counters[f"event_{event.kind.value}"] += 1

    # -- rejects ------------------------------------------------------------------------------------

    def _reject(
        self, outcome: Outcome, error: ProtocolError, topic: str, payload: bytes, now_ms: int, *, retained: bool
    ) -> Outcome:
        digest = hashlib.sha256(payload).hexdigest()
        if retained and self.store.rejected_before(topic, digest):
            # The broker sends a retained message again at every subscription: it was refused
            # (recorded, logged) the first time, and is only counted now.
            self.counters["rejected_again"] += 1
            return Outcome(device=None)
        self.counters[f"rejected_{error.reason.value}"] += 1
        self.store.add_reject(
            at_ms=now_ms,
            topic=topic,
            device=outcome.device,
            seq=error.seq,
            reason=error.reason.value,
            detail=error.detail,
            size=len(payload),
            digest=digest,
        )
        outcome.rejections.insert(0, Rejection.from_error(error))
        self._limited.log(
            logging.WARNING,
            error.reason.value,
            "rejected %s (%d bytes%s): %s",
            printable(topic, 120),
            len(payload),
            ", retained" if retained else "",
            printable(str(error), 300),
        )
        return outcome
