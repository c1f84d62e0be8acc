"""`pingjia hub serve`: subscribe, store in groups, then acknowledge.

The link's thread (MQTT network thread, or the publisher's thread with an in-memory broker) only
queues what arrives. This module's thread is the single writer: it owns the write connection
(hub.writer), takes whatever is queued (up to `group_max` messages), runs them through Ingest in
one transaction, commits (one fsync for the group), and only then publishes each device's ack and
sends the MQTT PUBACKs (manual acks). A hub killed at any point has either committed a message and
may ack it again, or not committed it and never acked it: the terminal sends it again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from hub.cards import CardDesk
from hub.claim import ClaimDesk, claim_filter, is_claim
from hub.config import HubConfig
from hub.identity import HubKeys
from hub.ingest import Ingest, Outcome
from hub.prepare import Prepared, unhandled
from hub.preparers import Job, PreparerPool
from hub.writer import Writer
from protocol import (
    Ack,
    Channel,
    DecodeError,
    Rejection,
    Status,
    StatusState,
    encode_ack,
    encode_status,
    hub_filters,
    hub_status_topic,
    parse,
    topic,
)
from protocol.session import hub_session
from protocol.topics import QOS
from runtime.link import Broker, Client, Inbound, LinkDown, LinkEvent, LinkUp
from runtime.logs import LogLimiter

__all__ = ["Hub"]

log = logging.getLogger("pingjia.hub")

_PREPARERS = 2  # worker processes decoding and authenticating, beside the writer
_GROUPS_AHEAD = 2  # groups being prepared while the writer stores an older one


class Hub:
    """One hub worker: a link to the broker, and the writer of the hub database.

    `db` is migrated to the current schema here, before anything is served (StoreError if it
    cannot be opened, SchemaError if it is newer than this pingjia). `preparers`: processes
    decoding and authenticating beside the writer (0: the writer does it, as tests may want).
    """

    def __init__(
        self,
        *,
        db: str,
        broker: Broker,
        config: HubConfig,
        keys: HubKeys,
        client_id: str = "pingjia-hub",
        share_group: str | None = None,
        preparers: int = _PREPARERS,
        broker_site: Path | None = None,
    ) -> None:
        self.config = config
        self.keys = keys  # signs every ack and the hub's status
        self.client_id = client_id
        self._status_topic = hub_status_topic(client_id)  # ValueError for a client id no topic can hold
        self.writer = Writer.open(db, migrate=True)
        self.ingest = Ingest(self.writer, config)
        # Terminals claiming their registration (hub.claim); with the broker site, its accounts are
        # rewritten after each answer, so that the new terminal's account works at once.
        self.claims = ClaimDesk(keys, broker_site=broker_site, db_url=db)
        # Clerks' cards (hub.cards): published after a log-in is committed, and when the directory
        # or the day changes what a logged-in clerk's card shows.
        self.cards = CardDesk(keys, timezone=config.timezone)
        self.inbox: queue.Queue[LinkEvent] = queue.Queue()
        # Sessions grow across restarts of the hub (its clock is trusted) and across reconnects.
        self._started_ms = time.time_ns() // 1_000_000
        self._attempt = 0
        self._broker_name = str(broker)
        self._stopping = threading.Event()
        self._limited = LogLimiter(log)
        try:
            self.link = broker.connect(
                Client(
                    client_id=client_id,
                    on_event=self.inbox.put,
                    will=lambda attempt: (self._status_topic, self._status(StatusState.OFFLINE, attempt)),
                    subscriptions=[(f, 1) for f in (*hub_filters(share_group), claim_filter(share_group))],
                    clean_start=False,
                    session_expiry_s=config.session_expiry_s,
                    receive_maximum=config.receive_maximum,
                    manual_ack=True,
                    protocol="5" if share_group is not None else None,  # shared subscriptions are MQTT 5
                )
            )
            self._preparers = PreparerPool(preparers) if preparers > 0 else None
        except BaseException:
            self.writer.close()
            raise

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        """Serve until `stop`: the calling thread becomes the writer."""
        self.writer.handover()
        self.link.start()
        log.info("hub %s: serving %s with %s", self.client_id, self._broker_name, self.writer.kind)
        every_s = self.config.stats_every_s
        next_stats = time.monotonic() + every_s
        # Under load the worker processes prepare the next groups while this thread stores the
        # oldest one; with nothing queued, each group is stored at once. Groups are stored (and
        # acked) in the order they arrived.
        preparing: deque[_Prepping] = deque()
        try:
            while not self._stopping.is_set():
                try:
                    self._turn(preparing)
                    self._publish_cards(time.time_ns() // 1_000_000)
                except Exception as exc:  # noqa: BLE001 - the writer outlives any one fault; it is counted
                    self.ingest.counters["writer_errors"] += 1
                    self._limited.log(logging.ERROR, "writer", "hub: writer fault, going on: %r", exc)
                if time.monotonic() >= next_stats:
                    next_stats = time.monotonic() + every_s
                    self._log_stats()
        finally:
            if self._preparers is not None:
                self._preparers.close()
            if self.link.connected:
                self.link.publish(self._status_topic, self._status(StatusState.OFFLINE, self._attempt), retain=True)
            self.link.stop()
            self._log_stats()
            self.writer.close()

    def _turn(self, preparing: deque[_Prepping]) -> None:
        """Take what arrived; hand it to the preparers; store the oldest prepared group when due."""
        group = self._take_group(wait=not preparing)
        messages = [item for item in group if isinstance(item, Inbound) and not is_claim(item.topic)]
        for item in group:
            if isinstance(item, LinkUp | LinkDown):
                self._link(item)
            elif isinstance(item, Inbound) and is_claim(item.topic):
                self.claims.serve(self.writer, self.link, item)
        self.claims.tick()
        if messages:
            preparing.append(self._prepare_group(messages))
        if preparing and (len(preparing) > _GROUPS_AHEAD or not messages or self.inbox.empty()):
            self._store_group(preparing.popleft())

    def _publish_cards(self, now_ms: int) -> None:
        """The cards of clerks who logged in (noted in groups already committed), and those the
        directory or the day changed; signed in one transaction (their versions), then published."""
        logins = self.ingest.telemetry.take_logins()
        changed = self.cards.due(self.writer.db, now_ms)
        if not logins and not changed:
            return
        with self.writer.transaction() as db:
            publications = self.cards.logins(db, logins, now_ms)
            if changed:
                publications += self.cards.changed(db, now_ms)
        for item in publications:
            self.link.publish(item.topic, item.payload, qos=item.qos, retain=item.retain)

    def _link(self, event: LinkUp | LinkDown) -> None:
        if isinstance(event, LinkDown):
            log.warning("hub: disconnected: %s", event.reason)
            return
        log.info("hub: subscribed (MQTT %s, session present: %s)", event.protocol, event.session_present)
        self._attempt = event.attempt
        self.link.publish(self._status_topic, self._status(StatusState.ONLINE, event.attempt), retain=True)

    def _status(self, state: StatusState, attempt: int) -> bytes:
        session = hub_session(self._started_ms, attempt)
        return encode_status(Status(device=self.client_id, state=state, session=session), self.keys.sign, hub=True)

    def _take_group(self, *, wait: bool) -> list[LinkEvent]:
        try:
            group = [self.inbox.get(timeout=0.2) if wait else self.inbox.get_nowait()]
        except queue.Empty:
            return []
        size = len(group[0].payload) if isinstance(group[0], Inbound) else 0
        while len(group) < self.config.group_max and size < self.config.group_max_bytes:
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                break
            group.append(item)
            if isinstance(item, Inbound):
                size += len(item.payload)
        return group

    def _prepare_group(self, messages: list[Inbound]) -> _Prepping:
        """Hand a group to the preparing processes: JSON, canonical bytes, hashes, signatures.

        That work does not need the store, and in other processes it does not take the writer's
        interpreter lock; the writer thread meanwhile stores the group before.
        """
        # In a fixed order of terminals, so that two workers locking terminals' rows never deadlock.
        messages = sorted(messages, key=lambda message: message.topic)
        if self._preparers is None:
            return _Prepping(messages, [])
        keys = self.ingest.keys
        jobs = []
        for index, chunk in enumerate(_chunks(messages, self._preparers.size)):
            devices = {device for device in map(_device_of, chunk) if device is not None}
            chunk_keys = {device: keys[device] for device in devices if device in keys}
            jobs.append(self._preparers.submit(index, [(m.topic, m.payload) for m in chunk], chunk_keys))
        return _Prepping(messages, jobs)

    def _store_group(self, group: _Prepping) -> None:
        """Store a prepared group in one transaction, then answer the terminals and PUBACK.

        A group that fails is stored again one message at a time, so that a message no handler
        foresaw is found, refused (a reject row) and acknowledged to the broker, and everything
        around it is stored: the broker must not deliver it again at every restart. Only when the
        store cannot even take a reject row is nothing acknowledged (the database is away).
        """
        messages = group.messages
        prepared: list[Prepared] = []
        if self._preparers is None:
            prepared = self.ingest.prepare_many([(m.topic, m.payload) for m in messages])
        else:
            for job, chunk in zip(group.jobs, _chunks(messages, self._preparers.size), strict=True):
                done = self._preparers.result(job)
                # None: the worker died or hung on it; prepare here (the writer guards each message too).
                prepared.extend(
                    done if done is not None else self.ingest.prepare_many([(m.topic, m.payload) for m in chunk])
                )
        now_ms = time.time_ns() // 1_000_000
        before = self.ingest.counters.copy()
        try:
            outcomes = self._ingest(messages, prepared, now_ms)
        except Exception as exc:  # noqa: BLE001 - the store's, or a handler's: find out which, one by one
            self.ingest.rewind(before)
            self.ingest.counters["groups_retried"] += 1
            self._limited.log(
                logging.ERROR, "group", "hub: a group of %d failed (%s); storing them one by one", len(messages), exc
            )
            outcomes, messages = self._one_by_one(messages, prepared, now_ms)
        self._answer(outcomes)
        for message in messages:
            self.link.ack(message)

    def _ingest(self, messages: list[Inbound], prepared: list[Prepared], now_ms: int) -> list[Outcome]:
        """Messages through Ingest inside one transaction (one fsync); raises if anything failed."""
        outcomes: list[Outcome] = []
        self.ingest.begin_group()
        with self.writer.transaction():
            for message, item in zip(messages, prepared, strict=True):
                outcomes.append(self.ingest.receive_prepared(item, now_ms, retained=message.retained))
            self.ingest.end_group()
        return outcomes

    def _one_by_one(
        self, messages: list[Inbound], prepared: list[Prepared], now_ms: int
    ) -> tuple[list[Outcome], list[Inbound]]:
        """Each message in its own transaction; one that fails on its own is refused as `unhandled`.

        Returns the outcomes and the messages now durable (stored or refused), which may be acked.
        Stops at the first message whose refusal cannot be stored either: the store is failing.
        """
        outcomes: list[Outcome] = []
        done: list[Inbound] = []
        for message, item in zip(messages, prepared, strict=True):
            before = self.ingest.counters.copy()
            try:
                outcomes += self._ingest([message], [item], now_ms)
            except Exception as exc:  # noqa: BLE001 - this message is the one (or the store is away)
                self.ingest.rewind(before)
                error = unhandled(exc, device=item.device)
                try:
                    with self.writer.transaction():
                        outcomes.append(self.ingest.refuse(item, error, now_ms, retained=message.retained))
                except Exception as store_exc:  # noqa: BLE001 - nothing more can be made durable now
                    self.ingest.rewind(before)
                    self.ingest.counters["store_errors"] += 1
                    self._limited.log(
                        logging.ERROR,
                        "store",
                        "hub: could not store %d messages: %s",
                        len(messages) - len(done),
                        store_exc,
                    )
                    break
            done.append(message)
        return outcomes, done

    def _answer(self, outcomes: list[Outcome]) -> None:
        answers: dict[str, tuple[int, tuple[int, int] | None, list[Rejection]]] = {}
        for outcome in outcomes:
            if outcome.answer and outcome.device is not None:
                upto, held, rejections = answers.get(outcome.device, (0, None, []))
                if outcome.upto >= upto:
                    upto, held = outcome.upto, outcome.held
                answers[outcome.device] = (upto, held, rejections + outcome.rejections)
        sign = self.keys.sign
        for device, (upto, beyond, rejections) in answers.items():
            held = beyond if beyond is not None and beyond[0] > upto + 1 else None
            ack = Ack(device=device, upto=upto, t=time.time_ns() // 1_000_000, held=held, rejects=tuple(rejections))
            # QoS 0: a lost ack costs a resend, which is acked again; QoS 1 would cost every ack a
            # PUBACK on both legs.
            self.link.publish(topic(device, Channel.ACK), encode_ack(ack, sign), qos=QOS[Channel.ACK])

    def _log_stats(self) -> None:
        counters = dict(sorted(self.ingest.counters.items()))
        log.info("hub %s: %s; queued %d", self.client_id, counters, self.inbox.qsize())


@dataclass(frozen=True, slots=True)
class _Prepping:
    messages: list[Inbound]
    jobs: list[Job]


def _chunks(items: list[Inbound], parts: int) -> list[list[Inbound]]:
    """`items` cut into at most `parts` runs of about equal length, in order."""
    size = -(-len(items) // parts)
    return [items[start : start + size] for start in range(0, len(items), size)]


def _device_of(message: Inbound) -> str | None:
    """The terminal a message is about, by its topic; None for a topic that is not a terminal's."""
    try:
        return parse(message.topic)[0]
    except DecodeError:
        return None
