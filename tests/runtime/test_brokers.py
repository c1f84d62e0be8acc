"""The in-memory broker keeps the rules the product relies on, as Mosquitto does: the same checks
run against both (runtime.fake.FakeBroker and runtime.mqtt.MqttBroker on a real Mosquitto)."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.fake import FakeBroker, topic_matches
from runtime.link import Broker, Client, Inbound, Link, LinkDown, LinkEvent, LinkUp
from runtime.mqtt import MqttBroker, parse_broker_url
from tests.conftest import need_mosquitto


class Ear:
    """A client whose events a test takes in order, by kind (an event of another kind waits its turn)."""

    def __init__(self, broker: Broker, client_id: str, filters: list[str], **options: object) -> None:
        self.arrived: queue.Queue[LinkEvent] = queue.Queue()
        self.waiting: list[LinkEvent] = []
        # How long silence must last to mean "nothing more": the in-memory broker delivers at once.
        self.patience_s = 0.0 if isinstance(broker, FakeBroker) else 0.3
        self.link: Link = broker.connect(
            Client(client_id=client_id, on_event=self.arrived.put, subscriptions=[(f, 1) for f in filters], **options)  # type: ignore[arg-type]
        )

    def up(self) -> LinkUp:
        self.link.start()
        return self.next(LinkUp)  # type: ignore[return-value]

    def next(self, kind: type, timeout_s: float = 10) -> LinkEvent:
        for index, event in enumerate(self.waiting):
            if isinstance(event, kind):
                return self.waiting.pop(index)
        while True:
            event = self.arrived.get(timeout=timeout_s)
            if isinstance(event, kind):
                return event
            self.waiting.append(event)

    def messages(self, count: int, timeout_s: float = 10) -> list[Inbound]:
        return [self.next(Inbound, timeout_s) for _ in range(count)]  # type: ignore[misc]

    def quiet(self, timeout_s: float | None = None) -> bool:
        """True if no message is waiting or arrives for a while (for the fake: none is waiting)."""
        try:
            self.next(Inbound, self.patience_s if timeout_s is None else timeout_s)
        except queue.Empty:
            return True
        return False


@pytest.fixture(params=["fake", pytest.param("mosquitto", marks=[pytest.mark.broker, pytest.mark.slow])])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker]:
    if request.param == "fake":
        yield FakeBroker()
        return
    need_mosquitto()
    real = request.getfixturevalue("mosquitto")
    yield MqttBroker(url=parse_broker_url(real.url), reconnect_min_s=0.05, reconnect_max_s=0.2)


def test_retained_messages_come_with_each_subscription_and_an_empty_one_clears(broker: Broker) -> None:
    sender = Ear(broker, "sender", [])
    sender.up()
    assert sender.link.publish("a/status", b"online", retain=True)
    first = Ear(broker, "first", ["a/+"])
    first.up()
    (message,) = first.messages(1)
    assert (message.topic, message.payload, message.retained) == ("a/status", b"online", True)
    sender.link.publish("a/status", b"live")
    assert not first.messages(1)[0].retained  # a live message is not flagged retained
    sender.link.publish("a/status", b"", retain=True)
    first.messages(1)
    later = Ear(broker, "later", ["a/+"])
    later.up()
    assert later.quiet()
    for ear in (sender, first, later):
        ear.link.stop()


def test_a_persistent_session_keeps_what_was_published_while_it_was_away(broker: Broker) -> None:
    def hub() -> Ear:  # a new process each time, with the same client id
        return Ear(broker, "hub", ["r/#"], clean_start=False, session_expiry_s=300, manual_ack=True, protocol="5")

    first = hub()
    assert first.up().session_present is False
    first.link.stop()
    sender = Ear(broker, "sender", [])
    sender.up()
    sender.link.publish("r/1", b"one")
    sender.link.publish("r/2", b"two")
    second = hub()
    assert second.up().session_present
    one, two = second.messages(2)
    assert [one.payload, two.payload] == [b"one", b"two"]
    second.link.ack(one)  # the second is never acknowledged: it comes again on the next connection
    second.link.stop()
    third = hub()
    third.up()
    (again,) = third.messages(1)
    assert again.payload == b"two"
    third.link.ack(again)
    third.link.stop()
    fourth = hub()
    fourth.up()
    assert fourth.quiet()
    fourth.link.stop()
    sender.link.stop()


def test_a_shared_subscription_gives_each_message_to_one_member(broker: Broker) -> None:
    workers = [
        Ear(broker, f"worker-{n}", ["$share/hub/r/#"], clean_start=False, session_expiry_s=300, protocol="5")
        for n in (1, 2)
    ]
    for worker in workers:
        worker.up()
    sender = Ear(broker, "sender", [])
    sender.up()
    for index in range(20):
        sender.link.publish(f"r/{index}", str(index).encode())
    got: list[list[bytes]] = [[], []]
    for index, worker in enumerate(workers):
        while True:
            try:
                got[index].append(worker.messages(1, timeout_s=worker.patience_s + 0.2)[0].payload)
            except queue.Empty:
                break
    for worker in workers:
        worker.link.stop()
    sender.link.stop()
    assert sorted(got[0] + got[1]) == sorted(str(index).encode() for index in range(20))  # each exactly once
    assert got[0]
    assert got[1]  # and both members had a share


def test_filters_match_as_mqtt_says() -> None:
    assert topic_matches("pingjia/v1/+/ratings", "pingjia/v1/t01/ratings")
    assert not topic_matches("pingjia/v1/+/ratings", "pingjia/v1/t01/ack")
    assert topic_matches("pingjia/#", "pingjia/hub/h/status")
    assert topic_matches("pingjia/#", "pingjia")
    assert not topic_matches("#", "$SYS/x")
    assert not topic_matches("a/+", "a/b/c")


def test_a_cut_connection_sends_its_will_and_comes_back() -> None:
    broker = FakeBroker()
    watcher = Ear(broker, "watcher", ["w/#"])
    watcher.up()
    client = Ear(broker, "client", [], will=lambda attempt: ("w/client", f"gone {attempt}".encode()))
    client.up()
    broker.cut("client")
    assert isinstance(client.next(LinkDown), LinkDown)
    assert client.next(LinkUp).attempt == 2  # type: ignore[union-attr]
    (will,) = watcher.messages(1)
    assert will.payload == b"gone 1"
    assert broker.retained("w/client") == b"gone 1"
    client.link.stop()  # a clean stop sends no will
    assert watcher.quiet()


def test_a_stopped_broker_drops_everyone_and_keeps_what_it_persists() -> None:
    broker = FakeBroker()
    hub = Ear(broker, "hub", ["r/#"], clean_start=False, session_expiry_s=300, manual_ack=True)
    hub.up()
    sender = Ear(broker, "sender", [])
    sender.up()
    sender.link.publish("r/1", b"kept", retain=True)
    (message,) = hub.messages(1)
    broker.stop()
    assert isinstance(hub.next(LinkDown), LinkDown)
    assert not sender.link.publish("r/2", b"nobody hears this")
    broker.start()
    assert hub.next(LinkUp).session_present  # type: ignore[union-attr]
    (again,) = hub.messages(1)  # never acknowledged: delivered again, then the retained one
    assert (again.payload, again.retained) == (b"kept", False)
    assert hub.messages(1)[0].retained
    broker.lose("r/#")
    sender.link.publish("r/3", b"lost")
    sender.link.publish("r/4", b"arrives")
    assert [m.payload for m in hub.messages(1)] == [b"arrives"]
    del message
