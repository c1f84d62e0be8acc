"""Ingest: one MQTT message in, stored (or a recorded refusal) and an answer out.

The writer's side of a message, run inside the writer's transaction (hub.writer) so that a group of
messages is committed with one fsync and only then acknowledged. By channel, it calls each part:

    ratings  -> hub.ratings    chain, store once, counts, watermark (placing records by hub.clock)
    status   -> hub.telemetry  newer status only
    health   -> hub.telemetry, then hub.clock (a heartbeat anchors its boot's clock)
    event    -> hub.telemetry

Every refusal (a protocol error, from decoding on) becomes a row in `rejects`, a counter, a
rate-limited log line, and an entry in the device's ack.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from hub.budget import RejectBudget
from hub.clock import Clock
from hub.config import HubConfig
from hub.prepare import Prepared, Preparer
from hub.ratings import Ratings
from hub.store import Store
from hub.telemetry import Telemetry
from hub.writer import Writer
from protocol import Channel, DecodeError, ProtocolError, Reason, Rejection
from protocol.canonical import printable
from runtime.logs import LogLimiter

__all__ = ["Ingest", "Outcome"]

log = logging.getLogger("pingjia.hub.ingest")

_PRUNE_EVERY = 1000  # reject rows written between two checks of the table's size


@dataclass
class Outcome:
    """What one message did. `device` is whom to answer (None: nobody can be answered)."""

    device: str | None
    channel: Channel | None = None
    stored: int = 0
    duplicates: int = 0
    upto: int = 0
    held: tuple[int, int] | None = None  # stored past a gap after `upto` (gap repair)
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def answer(self) -> bool:
        return self.device is not None and self.channel is Channel.RATINGS


class Ingest:
    def __init__(self, writer: Writer, config: HubConfig) -> None:
        self.store = Store(writer.db)
        self.config = config
        self.counters: Counter[str] = Counter()
        self.clock = Clock(self.store, config)
        self.ratings = Ratings(self.store, self.clock, self.counters)
        self.telemetry = Telemetry(self.store, self.counters)
        self._preparer = Preparer()
        self._data_version: int | None = None
        self._limited = LogLimiter(log)
        self.budget = RejectBudget(per_minute=config.rejects_per_minute, burst=config.rejects_burst)
        self._rows_since_prune = 0

    def prepare(self, topic: str, payload: bytes) -> Prepared:
        """`prepare_many` of one message."""
        return self.prepare_many([(topic, payload)])[0]

    def prepare_many(self, messages: Sequence[tuple[str, bytes]]) -> list[Prepared]:
        """Decode and authenticate messages here, with the keys this writer knows (hub.prepare)."""
        return self._preparer.prepare_many(messages, self.keys)

    @property
    def keys(self) -> dict[str, str]:
        """{device: public key hex} of the terminals seen so far, for preparing elsewhere."""
        return self.ratings.pubkeys

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
            self.ratings.forget()
            return
        version = self.store.data_version()
        if version != self._data_version:
            self.ratings.forget()  # a clerk may have moved to another department, too
            self._data_version = version

    def end_group(self) -> None:
        """Inside the group's transaction, before its commit: write the rows, counts and watermarks."""
        self.ratings.end_group()
        self.store.end_group()

    def forget(self) -> None:
        """After a failed transaction: nothing remembered since its start can be trusted."""
        self.ratings.forget()
        self.clock.forget()
        self.store.discard()
        self._data_version = None

    def rewind(self, counters: Counter[str]) -> None:
        """After a failed transaction: `forget`, and the counters as they were before it."""
        self.forget()
        self.counters.clear()
        self.counters.update(counters)

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
                self.ratings.receive(outcome, prepared, now_ms)
            elif channel is Channel.STATUS:
                self.telemetry.status(device, payload, now_ms)
            elif channel is Channel.HEALTH:
                health = self.telemetry.health(device, payload, now_ms)
                implausible = self.clock.implausible
                retimed = 0 if health is None else self.clock.heartbeat(device, health, now_ms)
                if retimed:
                    self.counters["retimed"] += retimed
                if self.clock.implausible != implausible:
                    self.counters["clock_implausible"] += 1
            elif channel is Channel.EVENT:
                self.telemetry.event(device, payload, now_ms)
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
        if not self.budget.take(outcome.device, now_ms):
            # Past this source's budget: counted only (no row, no log line, no answer).
            self.counters["rejects_unrecorded"] += 1
            return Outcome(device=None)
        self._rows_since_prune += 1
        if self._rows_since_prune >= _PRUNE_EVERY:
            self._rows_since_prune = 0
            self.counters["rejects_pruned"] += self.store.prune_rejects(self.config.rejects_max_rows)
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
