"""A real terminal in this process, turned by the test: the in-memory io (keys and what is shown),
a manual clock, and optionally the in-memory broker with a scripted hub at its other end.

Everything is the product's own code (device.terminal.Terminal and its parts); only the edges are
fakes (STYLE.md habit 4). Nothing sleeps: the test turns the loop (`settle`) and moves the clock
(`after`), so each test takes milliseconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from device import identity
from device.clock import ManualClock
from device.config import DeviceConfig
from device.events import Recorded, TerminalEvent
from device.io.fake import FakeIo
from device.state import StateDocument
from device.terminal import Terminal
from protocol import Ack, Batch, Channel, Rejection, decode_batch, encode_ack, topic
from runtime.fake import FakeBroker
from runtime.link import Client, Inbound, LinkEvent
from runtime.settings import from_assignments

E = TypeVar("E", bound=TerminalEvent)

# What most flows need: quick windows that the manual clock walks through.
QUICK = ["thank_you_ms=300", "invite_window_s=3", "amend_window_s=1", "misuse_interval_s=2", "reasons_window_s=2"]


class Counter:
    def __init__(
        self,
        folder: Path,
        *,
        settings: list[str] | None = None,
        broker: FakeBroker | None = None,
        cards: dict[str, str] | None = None,
        device: str = "t01",
        clock: ManualClock | None = None,
    ) -> None:
        if not (folder / identity.KEY_FILE).exists():
            identity.create(folder, device)
        if cards is not None:
            state = StateDocument(folder / identity.STATE_FILE)
            state.update(cards=cards)
            state.close()
        self.folder = folder
        self.clock = clock or ManualClock()
        self.io = FakeIo()
        self.events: list[TerminalEvent] = []
        self.terminal = Terminal(
            identity=identity.load(folder),
            config=from_assignments(DeviceConfig, QUICK + (settings or [])),
            clock=self.clock,
            broker=broker,
            io=self.io,
            report=self.events.append,
        )
        self.terminal.start()
        self.settle()

    def settle(self) -> None:
        """Turn the loop until nothing is waiting (timers run at every turn)."""
        self.terminal.turn(wait=False)
        while not self.terminal.inbox.empty():
            self.terminal.turn(wait=False)

    def after(self, ms: int) -> None:
        """Let `ms` pass, in steps of at most 100 ms, turning the loop at each."""
        while ms > 0:
            step = min(ms, 100)
            self.clock.advance(step)
            ms -= step
            self.settle()

    def close(self) -> None:
        self.terminal.close()

    # -- what a person does --------------------------------------------------------------------------

    def press(self, key: int) -> None:
        self.io.press(key)
        self.settle()

    def invite(self, ticket: str | None = None) -> None:
        self.io.invite(ticket)
        self.settle()

    def login(self, staff: str = "E1") -> None:
        self.io.login(staff)
        self.settle()

    def card(self, uid: str) -> None:
        self.io.card(uid)
        self.settle()

    # -- what the terminal did -----------------------------------------------------------------------

    def of(self, kind: type[E]) -> list[E]:
        return [event for event in self.events if isinstance(event, kind)]

    @property
    def records(self) -> list[Recorded]:
        return self.of(Recorded)

    @property
    def state(self) -> str:
        return self.terminal.flow.state.value


class HubEnd:
    """The hub's side of the in-memory broker, scripted by the test: it sees each batch and acks
    (or does not) as the test says."""

    def __init__(self, broker: FakeBroker, client_id: str = "scripted-hub") -> None:
        self.broker = broker
        self.received: list[Inbound] = []
        self.link = broker.connect(
            Client(
                client_id=client_id,
                on_event=self._on_event,
                subscriptions=[("pingjia/v1/+/ratings", 1), ("pingjia/v1/+/health", 1), ("pingjia/v1/+/event", 1)],
            )
        )
        self.link.start()

    def _on_event(self, event: LinkEvent) -> None:
        if isinstance(event, Inbound):
            self.received.append(event)

    def batches(self, device: str = "t01") -> list[Batch]:
        name = topic(device, Channel.RATINGS)
        return [decode_batch(message.payload) for message in self.received if message.topic == name]

    def on(self, channel: Channel, device: str = "t01") -> list[bytes]:
        name = topic(device, channel)
        return [message.payload for message in self.received if message.topic == name]

    def ack(
        self, upto: int, device: str = "t01", t: int = 1_764_000_000_000, rejects: tuple[Rejection, ...] = ()
    ) -> None:
        self.link.publish(
            topic(device, Channel.ACK), encode_ack(Ack(device=device, upto=upto, t=t, rejects=rejects)), qos=0
        )

    def say(self, name: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish anything, as anyone on the broker could."""
        self.link.publish(name, payload, retain=retain)
