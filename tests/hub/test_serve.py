"""`hub serve` in this process, on the in-memory broker: every refusal answered and recorded, the
hub's own status, and what `pingjia hub devices` shows. (Real processes, real Mosquitto and real
kills are in tests/hub/test_restart_backlog.py, tests/hub/test_workers.py and tests/test_*.py.)"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator

import pytest

from hub import registry
from hub.writer import Writer
from pingjia.cli import main
from protocol import (
    Channel,
    DeviceEvent,
    EventKind,
    Reason,
    SigningKey,
    Status,
    StatusState,
    decode_ack,
    decode_status,
    encode,
    encode_event,
    encode_status,
    hub_status_topic,
    newer_status,
    topic,
)
from protocol.session import HUB_ATTEMPT_BITS, hub_started_ms
from runtime.fake import FakeBroker
from simulator.processes import wait_until
from tests.helpers import batch_bytes, chain, read, upto
from tests.helpers import health_bytes as health
from tests.hub.conftest import Ear, Served


@pytest.fixture
def broker() -> FakeBroker:
    return FakeBroker()


@pytest.fixture
def served(db_url: str, broker: FakeBroker) -> Iterator[Served]:
    hub = Served(db_url, broker)
    try:
        yield hub
    finally:
        hub.stop()


def test_every_reject_reason_is_answered_recorded_and_other_devices_keep_flowing(
    db_url: str, broker: FakeBroker
) -> None:
    good, liar = SigningKey.generate(), SigningKey.generate()
    with Writer.open(db_url) as writer:
        writer.write(registry.add_device, "good", good.public.hex, department="A")
        writer.write(registry.add_device, "liar", liar.public.hex, department="A")
    served = Served(db_url, broker)
    client = Ear(broker, "test-raw", ["pingjia/v1/+/ack"])
    ratings = topic("liar", Channel.RATINGS)
    ack_topic = topic("liar", Channel.ACK)
    try:
        client.publish(topic("good", Channel.RATINGS), batch_bytes(good, chain(good, "good", 1)))
        client.wait_for(topic("good", Channel.ACK))

        stored = chain(liar, "liar", 2)
        client.publish(ratings, batch_bytes(liar, stored))
        non_canonical = json.dumps(json.loads(batch_bytes(liar, chain(liar, "liar", 1))), indent=1).encode()
        too_many = json.loads(batch_bytes(liar, chain(liar, "liar", 1)))
        too_many["records"] = []
        stranger = SigningKey.generate()
        next_one, after = chain(liar, "liar", 2, first=3, prev=stored[-1].hash())
        cases: list[tuple[str, bytes, Reason]] = [
            (ratings, b"\xde\xad\xbe\xef not json", Reason.MALFORMED),
            (ratings, b"[" + b"0," * 300_000 + b"0]", Reason.OVERSIZE),
            (
                ratings,
                batch_bytes(liar, chain(liar, "liar", 1)).replace(b'"type":"batch","v":1}', b'"type":"batch","v":2}'),
                Reason.UNKNOWN_VERSION,
            ),
            (ratings, non_canonical, Reason.NOT_CANONICAL),
            (ratings, encode(too_many), Reason.TOO_MANY_RECORDS),
            (
                ratings,
                batch_bytes(stranger, chain(liar, "liar", 1, first=3, prev=stored[-1].hash())),
                Reason.BAD_SIGNATURE,
            ),
            (
                ratings,
                batch_bytes(liar, [next_one, dataclasses.replace(after, prev="77" * 32).signed(liar)]),
                Reason.BROKEN_CHAIN,
            ),
            (ratings, batch_bytes(liar, chain(liar, "liar", 2, score=1)), Reason.FORK),
            (ratings, batch_bytes(good, chain(good, "good", 1)), Reason.TOPIC_MISMATCH),
            (
                topic("ghost", Channel.RATINGS),
                batch_bytes(stranger, chain(stranger, "ghost", 1)),
                Reason.UNKNOWN_DEVICE,
            ),
        ]
        for name, payload, _reason in cases:
            client.publish(name, payload)
        expected = {reason for name, _payload, reason in cases if name == ratings}

        def reasons_of(raw: list[bytes]) -> set[Reason]:
            return {rejection.reason for ack in map(decode_ack, raw) for rejection in ack.rejects}

        answers = [decode_ack(raw) for raw in client.wait_until(ack_topic, lambda raw: expected <= reasons_of(raw))]
        assert all(ack.upto == 2 for ack in answers)  # the stored records stay acked throughout
        ghost = decode_ack(client.wait_for(topic("ghost", Channel.ACK))[0])
        assert ghost.rejects[0].reason is Reason.UNKNOWN_DEVICE
        assert ghost.upto == 0

        # Every refusal is a row with its reason and raw size.
        wait_until(lambda: sum(read(db_url, lambda r: r.reject_counts()).values()) >= len(cases), 15, "reject rows")
        counts = read(db_url, lambda r: r.reject_counts())
        for _name, _payload, reason in cases:
            assert counts.get(reason.value, 0) >= 1, reason
        sizes = dict(read(db_url, lambda r: r.execute("SELECT reason, size FROM rejects").fetchall()))
        assert sizes["oversize"] > 512 * 1024

        # The good terminal, and the liar's valid continuation, still flow.
        client.publish(topic("good", Channel.RATINGS), batch_bytes(good, chain(good, "good", 2)))
        client.publish(ratings, batch_bytes(liar, chain(liar, "liar", 3)[2:]))
        wait_until(lambda: upto(db_url, "liar") == 3, 15, "the liar's seq 3")
        wait_until(lambda: upto(db_url, "good") == 2, 15, "the good terminal's seq 2")
        assert served.thread.is_alive()
    finally:
        served.stop()


def test_the_hub_says_online_with_growing_sessions_and_its_will_says_offline(db_url: str, broker: FakeBroker) -> None:
    name = hub_status_topic("pingjia-hub")
    before_ms = time.time_ns() // 1_000_000
    served = Served(db_url, broker)
    try:
        after_ms = time.time_ns() // 1_000_000
        wait_until(lambda: broker.retained(name) is not None, 10, "the hub's online status")
        first = decode_status(broker.retained(name) or b"")
        assert first.state is StatusState.ONLINE
        assert first.session % (1 << HUB_ATTEMPT_BITS) == 1  # its first connection ...
        assert before_ms <= hub_started_ms(first.session) <= after_ms  # ... of the hub started just now
        broker.cut("pingjia-hub")  # the connection breaks: the will speaks, and the hub is back at once
        wait_until(lambda: decode_status(broker.retained(name) or b"").session > first.session, 10, "online again")
        published = [decode_status(payload) for name_, payload, _retain in broker.published if name_ == name]
        will, again = published[-2:]
        assert (will.state, will.session) == (StatusState.OFFLINE, first.session)
        assert again.state is StatusState.ONLINE
        assert newer_status(will, again)  # a late will of the old connection cannot end the new one
    finally:
        served.stop()
    last = decode_status(broker.retained(name) or b"")
    assert (last.state, last.session) == (StatusState.OFFLINE, again.session)


def test_what_terminals_say_is_what_hub_devices_shows(
    served: Served, broker: FakeBroker, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    key = SigningKey.generate()
    with Writer.open(db_url) as writer:  # registered while the hub runs, as an operator would
        writer.write(registry.add_device, "d1", key.public.hex, department="综合受理", counter="3号窗口")
    terminal = Ear(broker, "d1", [topic("d1", Channel.ACK)])
    online = Status(device="d1", state=StatusState.ONLINE, session=7)
    terminal.publish(topic("d1", Channel.STATUS), encode_status(online, key))
    terminal.publish(
        topic("d1", Channel.HEALTH), health(key, staff="E1", outbox_depth=3, last_error="key panel unplugged")
    )
    now = time.time_ns() // 1_000_000
    event = DeviceEvent(device="d1", t=now, boot="b", mono=1, kind=EventKind.CLOCK_JUMP, detail="+7200000 ms")
    terminal.publish(topic("d1", Channel.EVENT), encode_event(event, key))
    terminal.publish(topic("d1", Channel.RATINGS), batch_bytes(key, chain(key, "d1", 2)))
    terminal.wait_until(topic("d1", Channel.ACK), lambda acks: any(decode_ack(a).upto == 2 for a in acks))
    wait_until(lambda: bool(read(db_url, lambda r: r.device_listing(5)[0]["events"])), 10, "the event stored")
    capsys.readouterr()
    assert main(["hub", "devices", "--db", db_url]) == 0
    [device] = json.loads(capsys.readouterr().out)
    assert (device["device"], device["department"], device["counter"]) == ("d1", "综合受理", "3号窗口")
    assert (device["status"], device["stored_upto"]) == ("online", 2)
    assert device["health"]["staff"] == "E1"
    assert device["health"]["outbox_depth"] == 3
    assert device["health"]["last_error"] == "key panel unplugged"
    assert [(e["kind"], e["detail"]) for e in device["events"]] == [("clock_jump", "+7200000 ms")]
