"""The terminal's MQTT link against real brokers."""

from __future__ import annotations

import json
import queue
from pathlib import Path

import pytest

from device.mqtt import Inbound, LinkDown, LinkUp, MqttSession, parse_broker_url
from hub.store import Store
from protocol import Channel, decode_batch, topic
from simulator.processes import AmqttBroker, HubProcess, MosquittoBroker, TerminalProcess
from tests.helpers import make_terminals
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


def _terminal(tmp_path: Path, url: str, *extra: str) -> tuple[str, TerminalProcess]:
    db = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    store = Store.open(db)
    [folder] = make_terminals(store, tmp_path, 1)
    store.close()
    settings = [
        "thank_you_ms=0",
        "mode=open",
        "amend_window_s=0",
        "misuse_interval_s=0",
        "burst_presses=1000",
        "reconnect_min_s=0.1",
        "reconnect_max_s=0.5",
        *extra,
    ]
    return db, TerminalProcess(folder, broker_url=url, settings=settings, log=tmp_path / "t01.log")


def test_unacked_records_are_sent_again_while_the_connection_stays_up(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    db, terminal = _terminal(tmp_path, mosquitto.url, "ack_timeout_s=1")
    watcher = RawClient(mosquitto.port, "watcher")
    watcher.subscribe(topic("t01", Channel.RATINGS))
    terminal.start()
    try:
        terminal.wait_for(lambda t: t.online, 20, "online")
        terminal.login("E1")
        terminal.press(4)
        terminal.wait_for(lambda t: bool(t.thanked), 10, "thanks")
        # No hub is listening: the broker takes the message (PUBACK) but nobody acks it end to end.
        sent = watcher.wait_for(topic("t01", Channel.RATINGS), count=3, timeout_s=20)
        assert len({decode_batch(raw).records[0].seq for raw in sent}) == 1  # the same record, again and again
        assert terminal.online  # it never had to reconnect to do so
        hub = HubProcess(db=db, broker_url=mosquitto.url, log=tmp_path / "hub.log").start()
        terminal.wait_for(lambda t: t.acked == 1, 30, "the ack once a hub is there")
        hub.stop()
    finally:
        terminal.quit()
        watcher.close()


def test_a_long_backlog_drains_oldest_first_in_batches_while_new_presses_keep_working(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    db, terminal = _terminal(tmp_path, "mqtt://127.0.0.1:1")  # an address where no broker will ever be
    terminal.start()
    terminal.wait_for(lambda t: t.ready, 20, "ready")
    terminal.login("E1")
    for _ in range(1_200):
        terminal.press(5)
    terminal.wait_for(lambda t: len(t.thanked) == 1_200, 60, "1,200 ratings stored while offline")
    terminal.quit()

    watcher = RawClient(mosquitto.port, "watcher")
    watcher.subscribe(topic("t01", Channel.RATINGS))
    hub = HubProcess(db=db, broker_url=mosquitto.url, log=tmp_path / "hub.log").start()
    hub.wait_online()
    terminal.broker_url = mosquitto.url
    terminal.start()
    try:
        terminal.wait_for(lambda t: t.ready, 20, "ready")
        for _ in range(5):
            terminal.press(3)  # customers keep coming while the backlog drains
        terminal.wait_for(lambda t: len(t.thanked) == 1_205, 30, "the new presses to be thanked")
        terminal.wait_for(lambda t: t.acked == 1_205, 60, "the whole backlog to drain")
        batches = [json.loads(raw) for raw in watcher.wait_for(topic("t01", Channel.RATINGS), count=3)]
        firsts = [b["head"]["first"] for b in batches]
        assert firsts[0] == 1, "the oldest records go first"
        assert len(batches[0]["records"]) == 500, "500 at a time"
        assert all(len(b["records"]) <= 500 for b in batches)
        assert firsts[:3] == sorted(firsts[:3])
        assert Store.open(db, create=False).stored_seqs("t01") == list(range(1, 1_206))
    finally:
        terminal.quit()
        hub.stop()
        watcher.close()


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
