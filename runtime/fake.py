"""An MQTT broker in memory, for terminals and hubs paired inside one process (tests).

It keeps what a persistent broker keeps, so that the product's own code meets the same rules it
meets on Mosquitto: retained messages (delivered at subscription, an empty payload clears one);
persistent sessions (`clean_start` False) with their subscriptions, the QoS 1 messages queued
while the client is away, and those it never acknowledged (`manual_ack`), delivered again when it
comes back, also after `restart()`; wills, published when a connection is `cut`; a second
connection with a client id in use takes the session over; shared subscriptions
(`$share/<group>/<filter>`) give each message to one member, in turn.

Everything happens at once, in the calling thread, in order: a publication reaches every
subscriber's `on_event` before `publish` returns. Faults are methods: `stop`/`start`/`restart`
the broker, `cut` one client's connection, `lose` the next messages to some topics.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass, field

from runtime.link import Client, Inbound, LinkDown, LinkUp

__all__ = ["FakeBroker", "FakeLink", "topic_matches"]


def topic_matches(pattern: str, topic: str) -> bool:
    """Whether an MQTT topic filter (with `+` and `#`) matches a topic name."""
    wanted, given = pattern.split("/"), topic.split("/")
    for index, level in enumerate(wanted):
        if level == "#":
            return not (index == 0 and topic.startswith("$"))
        if index >= len(given):
            return False
        if level == "+":
            if index == 0 and given[0].startswith("$"):
                return False
            continue
        if level != given[index]:
            return False
    return len(wanted) == len(given)


def _shared(pattern: str) -> tuple[str, str] | None:
    """(group, filter) of `$share/<group>/<filter>`, else None."""
    if not pattern.startswith("$share/"):
        return None
    _, group, rest = pattern.split("/", 2)
    return group, rest


@dataclass(eq=False)
class _Session:
    client_id: str
    persistent: bool
    filters: dict[str, int] = field(default_factory=dict)  # filter -> granted QoS
    queued: deque[tuple[str, bytes, int]] = field(default_factory=deque)  # while away: (topic, payload, qos)
    unacked: dict[int, tuple[str, bytes, int]] = field(default_factory=dict)  # sent, not acknowledged
    link: FakeLink | None = None


class FakeBroker:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._sessions: dict[str, _Session] = {}
        self._retained: dict[str, bytes] = {}
        self._running = True
        self._links: list[FakeLink] = []  # started and not stopped: they connect whenever the broker runs
        self._mids = itertools.count(1)
        self._turns: dict[tuple[str, str], int] = {}  # shared subscriptions: whose turn it is
        self._losses: list[list[object]] = []  # [filter, count] of messages to lose
        self.published: list[tuple[str, bytes, bool]] = []  # every publication it took: (topic, payload, retain)

    def connect(self, client: Client) -> FakeLink:
        return FakeLink(self, client)

    # -- faults -------------------------------------------------------------------------------------

    def stop(self) -> None:
        """The broker goes away: every connection drops (no wills: nobody is left to send them)."""
        with self._lock:
            self._running = False
            for link in list(self._links):
                self._drop(link, "broker stopped", will=False)

    def start(self) -> None:
        """The broker is back, with its retained messages and persistent sessions; links reconnect."""
        with self._lock:
            self._running = True
            for link in list(self._links):
                if not link.connected:
                    self._attach(link)

    def restart(self) -> None:
        self.stop()
        self.start()

    def cut(self, client_id: str, *, reconnect: bool = True) -> None:
        """The client's connection breaks (its will is published); it connects again at once if asked."""
        with self._lock:
            session = self._sessions.get(client_id)
            link = session.link if session is not None else None
            if link is None:
                return
            self._drop(link, "connection lost", will=True)
            if reconnect:
                self._attach(link)

    def lose(self, pattern: str, count: int = 1) -> None:
        """The next `count` publications to topics matching `pattern` vanish (as QoS 0 ones may)."""
        with self._lock:
            self._losses.append([pattern, count])

    def retained(self, topic: str) -> bytes | None:
        with self._lock:
            return self._retained.get(topic)

    def connected(self, client_id: str) -> bool:
        with self._lock:
            session = self._sessions.get(client_id)
            return session is not None and session.link is not None

    # -- what links ask -----------------------------------------------------------------------------

    def _attach(self, link: FakeLink) -> None:
        """Connect a link: CONNACK, what its session kept for it, LinkUp, then retained messages."""
        if not self._running:
            return
        client = link.client
        old = self._sessions.get(client.client_id)
        if old is not None and old.link is not None and old.link is not link:
            self._drop(old.link, "session taken over", will=True)
            old = self._sessions.get(client.client_id)
        persistent = not client.clean_start and client.session_expiry_s > 0  # kept while the client is away
        present = old is not None and not client.clean_start
        session = old if present and old is not None else _Session(client.client_id, persistent)
        session.persistent = persistent  # as this connection asks
        self._sessions[client.client_id] = session
        session.link = link
        link._attempt += 1
        link._generation += 1
        link._connected = True
        again = list(session.unacked.values())  # sent before and never acknowledged: sent again first
        session.unacked.clear()
        for topic, payload, qos in again:
            self._deliver(session, topic, payload, qos, retained=False)
        while session.queued and session.link is link:
            self._deliver(session, *session.queued.popleft(), retained=False)
        session.filters.update(dict(client.subscriptions))
        link._emit(LinkUp(attempt=link._attempt, protocol="5", session_present=present))
        # A link subscribes at every connection, and each subscription brings the retained messages.
        for pattern, qos in client.subscriptions:
            if _shared(pattern) is None:  # shared subscriptions get no retained messages (MQTT 5)
                for topic, payload in sorted(self._retained.items()):
                    if topic_matches(pattern, topic):
                        self._deliver(session, topic, payload, qos, retained=True)

    def _drop(self, link: FakeLink, reason: str, *, will: bool) -> None:
        session = self._sessions.get(link.client_id)
        if session is None or session.link is not link:
            return
        session.link = None
        link._connected = False
        if not session.persistent:
            del self._sessions[link.client_id]
        link._emit(LinkDown(reason))
        if will and link.client.will is not None:
            topic, payload = link.client.will(link._attempt)
            self._publish(topic, payload, 1, True)

    def _start(self, link: FakeLink) -> None:
        with self._lock:
            if link not in self._links:
                self._links.append(link)
            self._attach(link)

    def _stop(self, link: FakeLink) -> None:
        with self._lock:
            if link in self._links:
                self._links.remove(link)
            self._drop(link, "stopped", will=False)

    def _publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        with self._lock:
            for loss in self._losses:
                pattern, count = loss
                if isinstance(pattern, str) and isinstance(count, int) and count > 0 and topic_matches(pattern, topic):
                    loss[1] = count - 1
                    return
            self.published.append((topic, payload, retain))
            if retain:
                if payload:
                    self._retained[topic] = payload
                else:
                    self._retained.pop(topic, None)
            groups: dict[tuple[str, str], list[tuple[_Session, int]]] = {}
            for session in list(self._sessions.values()):
                granted = None
                for pattern, sub_qos in session.filters.items():
                    share = _shared(pattern)
                    if share is not None:
                        if topic_matches(share[1], topic):
                            groups.setdefault(share, []).append((session, sub_qos))
                    elif topic_matches(pattern, topic):
                        granted = max(granted or 0, sub_qos)
                if granted is not None:
                    self._deliver(session, topic, payload, min(qos, granted), retained=False)
            for share, members in sorted(groups.items(), key=lambda item: item[0]):
                members.sort(key=lambda member: (member[0].link is None, member[0].client_id))
                online = [member for member in members if member[0].link is not None] or members
                turn = self._turns.get(share, 0)
                self._turns[share] = turn + 1
                session, sub_qos = online[turn % len(online)]
                self._deliver(session, topic, payload, min(qos, sub_qos), retained=False)

    def _deliver(self, session: _Session, topic: str, payload: bytes, qos: int, *, retained: bool) -> None:
        link = session.link
        if link is None:
            if session.persistent and qos > 0:
                session.queued.append((topic, payload, qos))
            return
        mid = next(self._mids)
        if link.client.manual_ack and qos > 0:
            session.unacked[mid] = (topic, payload, qos)
        link._emit(
            Inbound(topic=topic, payload=payload, mid=mid, qos=qos, generation=link._generation, retained=retained)
        )

    def _ack(self, link: FakeLink, message: Inbound) -> None:
        with self._lock:
            session = self._sessions.get(link.client_id)
            if session is not None and session.link is link and message.generation == link._generation:
                session.unacked.pop(message.mid, None)


class FakeLink:
    """A runtime.link.Link to a FakeBroker."""

    def __init__(self, broker: FakeBroker, client: Client) -> None:
        self.client = client
        self.client_id = client.client_id
        self._broker = broker
        self._connected = False
        self._attempt = 0
        self._generation = 0

    @property
    def connected(self) -> bool:
        return self._connected

    def start(self) -> None:
        self._broker._start(self)

    def stop(self, timeout_s: float = 5.0) -> None:
        del timeout_s
        self._broker._stop(self)

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> bool:
        if not self._connected:
            return False
        self._broker._publish(topic, payload, qos, retain)
        return True

    def ack(self, message: Inbound) -> None:
        self._broker._ack(self, message)

    def _emit(self, event: Inbound | LinkUp | LinkDown) -> None:
        self.client.on_event(event)
