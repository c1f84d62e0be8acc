"""How a terminal or a hub reaches the broker, whichever broker it is.

A process asks a `Broker` to `connect` a `Client` (its id, subscriptions, will and session
options, and where to post what happens) and gets a `Link` back: start it, publish, acknowledge,
stop it. What happens arrives as `LinkEvent`s, posted from the link's own thread (or, in memory,
from the publisher's): never published from, never blocking.

Two brokers implement it: `runtime.mqtt.MqttBroker`, a real one over the network (paho-mqtt), and
`runtime.fake.FakeBroker`, one in memory that pairs terminals and hubs inside one process for
tests (the idea of httpx's MockTransport). The product's code is the same with either.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Broker", "Client", "Inbound", "Link", "LinkDown", "LinkEvent", "LinkUp"]


@dataclass(frozen=True, slots=True)
class LinkUp:
    """Connected and subscribed: what is published to the client's filters now reaches it."""

    attempt: int  # 1 for the first connection of this link, +1 per connection attempt
    protocol: str
    session_present: bool


@dataclass(frozen=True, slots=True)
class LinkDown:
    reason: str


@dataclass(frozen=True, slots=True)
class Inbound:
    """A message for the client. With manual acks, `Link.ack` it once it is durable."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int  # which connection it came on; acks for an older one are dropped
    retained: bool = False


LinkEvent = LinkUp | LinkDown | Inbound


@dataclass(frozen=True, kw_only=True)
class Client:
    """What a process asks of the broker.

    `will(attempt)` gives the (topic, payload) published, retained, if the connection made at that
    attempt ends without a clean disconnect. A persistent session (`clean_start` False) keeps the
    subscriptions and queues messages for `session_expiry_s` while the client is away; with
    `manual_ack` a message is acknowledged only by `Link.ack`, and one never acknowledged is
    delivered again on the next connection.
    """

    client_id: str
    on_event: Callable[[LinkEvent], None]
    subscriptions: Sequence[tuple[str, int]] = ()
    will: Callable[[int], tuple[str, bytes]] | None = None
    clean_start: bool = True
    session_expiry_s: int = 0
    receive_maximum: int | None = None
    manual_ack: bool = False
    protocol: str | None = None  # "5" or "3.1.1" to insist on one (shared subscriptions need 5)


class Link(Protocol):
    client_id: str

    @property
    def connected(self) -> bool:
        """True from LinkUp until the connection drops."""
        ...

    def start(self) -> None: ...

    def stop(self, timeout_s: float = 5.0) -> None:
        """Disconnect cleanly (no will) and stop reconnecting."""
        ...

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> bool:
        """Queue a message; False if not connected (the caller sends it again later)."""
        ...

    def ack(self, message: Inbound) -> None:
        """Acknowledge a message received with manual acks, once it is durable."""
        ...


class Broker(Protocol):
    def connect(self, client: Client) -> Link:
        """A link for `client`, not started yet."""
        ...
