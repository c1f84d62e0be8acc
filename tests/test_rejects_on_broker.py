"""Every reject reason, sent as raw bytes through a real Mosquitto to a running hub."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub.store import Store
from protocol import Channel, Reason, SigningKey, decode_ack, encode, topic
from simulator.processes import HubProcess, MosquittoBroker, wait_until
from tests.helpers import batch_bytes, chain
from tests.rawclient import RawClient

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_every_reject_reason_is_answered_recorded_and_other_devices_keep_flowing(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    store = Store.open(db)
    good, liar = SigningKey.generate(), SigningKey.generate()
    store.add_device("good", good.public.hex, department="A")
    store.add_device("liar", liar.public.hex, department="A")
    hub = HubProcess(db=db, broker_url=mosquitto.url, log=tmp_path / "hub.log").start()
    client = RawClient(mosquitto.port, "test-raw")
    client.subscribe("pingjia/v1/+/ack")
    ratings = topic("liar", Channel.RATINGS)
    ack_topic = topic("liar", Channel.ACK)
    try:
        hub.wait_online()
        client.publish(topic("good", Channel.RATINGS), batch_bytes(good, chain(good, "good", 1)))
        client.wait_for(topic("good", Channel.ACK))

        stored = chain(liar, "liar", 2)
        client.publish(ratings, batch_bytes(liar, stored))
        non_canonical = json.dumps(json.loads(batch_bytes(liar, chain(liar, "liar", 1))), indent=1).encode()
        too_many = json.loads(batch_bytes(liar, chain(liar, "liar", 1)))
        too_many["records"] = []
        stranger = SigningKey.generate()
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
            (ratings, batch_bytes(liar, chain(liar, "liar", 1, first=3, prev="77" * 32)), Reason.BROKEN_CHAIN),
            (ratings, batch_bytes(liar, chain(liar, "liar", 2, score=1)), Reason.REPLAY_CONFLICT),
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
        wait_until(lambda: sum(Store.open(db).reject_counts().values()) >= len(cases), 15, "reject rows")
        counts = Store.open(db).reject_counts()
        for _name, _payload, reason in cases:
            assert counts.get(reason.value, 0) >= 1, reason
        sizes = dict(Store.open(db).execute("SELECT reason, size FROM rejects").fetchall())
        assert sizes["oversize"] > 512 * 1024

        # The good terminal, and the liar's valid continuation, still flow.
        client.publish(
            topic("good", Channel.RATINGS), batch_bytes(good, chain(good, "good", 2)[1:] and chain(good, "good", 2))
        )
        client.publish(ratings, batch_bytes(liar, chain(liar, "liar", 3)[2:]))
        wait_until(lambda: Store.open(db).device("liar").upto == 3, 15, "the liar's seq 3")  # type: ignore[union-attr]
        wait_until(lambda: Store.open(db).device("good").upto == 2, 15, "the good terminal's seq 2")  # type: ignore[union-attr]
        assert hub.alive()
    finally:
        client.close()
        hub.stop()
