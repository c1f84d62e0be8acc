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
from protocol import (
    Ack,
    Batch,
    Channel,
    Command,
    CommandName,
    ConfigDoc,
    Rejection,
    SigningKey,
    Status,
    StatusState,
    VerifyKey,
    decode_batch,
    encode_ack,
    encode_command,
    encode_config,
    encode_status,
    hub_status_topic,
    topic,
)
from runtime.fake import FakeBroker
from runtime.link import Client, Inbound, LinkEvent
from runtime.settings import from_assignments
from tests.helpers import HUB_KEYS

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
        hub_key: VerifyKey | None = HUB_KEYS.sign.public,
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
            hub_key=hub_key,
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
        self._t = 1_764_000_000_000  # its clock: every ack is newer than the one before

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
        self,
        upto: int,
        *,
        device: str = "t01",
        t: int | None = None,
        rejects: tuple[Rejection, ...] = (),
        held: tuple[int, int] | None = None,
        key: SigningKey = HUB_KEYS.sign,
        on: str | None = None,
    ) -> bytes:
        """Ack as the hub does: signed with the site's hub key (or `key`), at a hub time later than
        the last ack's, on its device's topic (or `on`'s); return its bytes."""
        self._t += 1
        ack = Ack(device=device, upto=upto, t=self._t if t is None else t, rejects=rejects, held=held)
        raw = encode_ack(ack, key)
        self.link.publish(topic(on or device, Channel.ACK), raw, qos=0)
        return raw

    def command(
        self,
        cmd: CommandName,
        *,
        staff: str | None = None,
        ticket: str | None = None,
        device: str = "t01",
        n: int | None = None,
        t: int | None = None,
        key: SigningKey = HUB_KEYS.sign,
        on: str | None = None,
    ) -> bytes:
        """Send a command as the hub signs it (the next counter, unless `n`), on the topic of its
        device (or of `on`); return its bytes."""
        self._n = n if n is not None else getattr(self, "_n", 0) + 1
        self._t += 1
        raw = encode_command(
            Command(device=device, cmd=cmd, staff=staff, ticket=ticket, n=self._n, t=self._t if t is None else t), key
        )
        self.link.publish(topic(on or device, Channel.CMD), raw)
        return raw

    def configure(self, version: int, device: str = "t01", key: SigningKey = HUB_KEYS.sign, **settings: str) -> bytes:
        """Publish (retained) a configuration document signed as the hub signs it; return its bytes."""
        self._t += 1
        raw = encode_config(ConfigDoc(device=device, version=version, t=self._t, settings=settings), key)
        self.link.publish(topic(device, Channel.CONFIG), raw, retain=True)
        return raw

    def online(self, session: int, client: str = "pingjia-hub", key: SigningKey = HUB_KEYS.sign) -> bytes:
        raw = encode_status(Status(device=client, state=StatusState.ONLINE, session=session), key, hub=True)
        self.link.publish(hub_status_topic(client), raw, retain=True)
        return raw

    def say(self, name: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish anything, as anyone on the broker could."""
        self.link.publish(name, payload, retain=retain)
