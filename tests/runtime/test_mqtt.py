"""The MQTT link (runtime.mqtt) against real brokers: Mosquitto, and the embedded amqtt."""

from __future__ import annotations

import queue
from pathlib import Path

import pytest

from runtime.link import Inbound, LinkDown, LinkUp
from runtime.mqtt import MqttSession, parse_broker_url
from simulator.processes import AmqttBroker, MosquittoBroker
from tests.rawclient import RawClient

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def session_events(url: str, client_id: str) -> tuple[MqttSession, queue.Queue[object]]:
    events: queue.Queue[object] = queue.Queue()
    session = MqttSession(
        url=parse_broker_url(url),
        client_id=client_id,
        on_event=events.put,
        subscriptions=[("x/y", 1)],
        connect_timeout_s=1.0,
        reconnect_min_s=0.05,
        reconnect_max_s=0.2,
    )
    return session, events


def next_of(events: queue.Queue[object], kind: type) -> object:
    while True:
        event = events.get(timeout=20)
        if isinstance(event, kind):
            return event


def test_auto_mode_speaks_5_to_mosquitto_and_falls_back_to_3_1_1_for_amqtt(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    session, events = session_events(mosquitto.url, "probe-5")
    assert not session.publish("x/y", b"early")  # not connected yet: the caller keeps it for later
    session.start()
    up = next_of(events, LinkUp)
    assert isinstance(up, LinkUp)
    assert up.protocol == "5"
    session.stop()
    with AmqttBroker(log=tmp_path / "amqtt.log") as amqtt:
        session, events = session_events(amqtt.url, "probe-3")
        session.start()
        up = next_of(events, LinkUp)
        assert isinstance(up, LinkUp)
        assert up.protocol == "3.1.1"
        assert session.publish("x/y", b"hello")
        session.stop()


def test_the_link_comes_back_after_a_broker_restart(mosquitto: MosquittoBroker) -> None:
    session, events = session_events(mosquitto.url, "probe-r")
    session.start()
    first = next_of(events, LinkUp)
    mosquitto.kill()
    next_of(events, LinkDown)
    mosquitto.start()
    again = next_of(events, LinkUp)
    assert isinstance(first, LinkUp)
    assert isinstance(again, LinkUp)
    assert again.attempt > first.attempt
    session.stop()


def test_a_resumed_session_can_answer_before_its_subscriptions_are_confirmed(mosquitto: MosquittoBroker) -> None:
    """The broker sends a resumed session's queue before the SUBACK; answers must not wait for it."""
    events: queue.Queue[object] = queue.Queue()

    def session() -> MqttSession:
        return MqttSession(
            url=parse_broker_url(mosquitto.url),
            client_id="resumer",
            on_event=events.put,
            subscriptions=[("backlog/#", 1)],
            clean_start=False,
            session_expiry_s=300,
            manual_ack=True,
            protocol="5",
        )

    first = session()
    first.start()
    next_of(events, LinkUp)
    first.stop()
    sender = RawClient(mosquitto.port, "backlog-sender")
    for index in range(60):
        sender.publish(f"backlog/{index}", bytes(400_000))  # 24 MB waiting for the session
    sender.close()
    while not events.empty():
        events.get()
    second = session()
    second.start()
    try:
        first_event = events.get(timeout=20)
        while not isinstance(first_event, Inbound | LinkUp):
            first_event = events.get(timeout=20)
        assert isinstance(first_event, Inbound), "Mosquitto delivers the queue before the SUBACK"
        assert second.publish("answers/x", b"stored", qos=0), "an answer was dropped before the SUBACK"
        second.ack(first_event)
    finally:
        second.stop()
