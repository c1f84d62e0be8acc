"""Ingest (hub.ingest): every message is stored or refused, recorded, counted and answered."""

from __future__ import annotations

import pickle

import pytest

from hub import registry
from hub.prepare import Preparer
from protocol import Channel, Reason, SigningKey, topic
from tests.helpers import batch_bytes, chain
from tests.hub.conftest import HubDb

KEY = SigningKey.generate()
NOW = 1_763_800_000_000
RATINGS = topic("d1", Channel.RATINGS)


@pytest.fixture
def db(hub_db: HubDb) -> HubDb:
    hub_db.writer.write(registry.add_device, "d1", KEY.public.hex, department="综合受理", counter="3号窗口")
    hub_db.writer.write(registry.add_staff, "E1", name="王芳", department="社保医保")
    return hub_db


def _other_device_batch() -> bytes:
    other = SigningKey.generate()
    return batch_bytes(other, chain(other, "d9", 1))


@pytest.mark.parametrize(
    ("name", "payload", "reason", "answered"),
    [
        (RATINGS, b"\x00garbage", Reason.MALFORMED, True),
        (RATINGS, b"x" * 600_000, Reason.OVERSIZE, True),
        (RATINGS, batch_bytes(KEY, chain(KEY, "d1", 1)).replace(b'"v":1}', b'"v":2}'), Reason.UNKNOWN_VERSION, True),
        (RATINGS, batch_bytes(SigningKey.generate(), chain(KEY, "d1", 1)), Reason.BAD_SIGNATURE, True),
        (RATINGS, batch_bytes(KEY, chain(KEY, "d1", 1, prev="12" * 32)), Reason.BROKEN_CHAIN, True),
        (topic("d9", Channel.RATINGS), _other_device_batch(), Reason.UNKNOWN_DEVICE, True),
        (RATINGS, _other_device_batch(), Reason.TOPIC_MISMATCH, True),
        (topic("d1", Channel.ACK), b"{}", Reason.WRONG_TYPE, False),
        ("pingjia/v1/d1", b"{}", Reason.BAD_TOPIC, False),
        (topic("d1", Channel.STATUS), b"{}", Reason.UNKNOWN_VERSION, False),
    ],
)
def test_every_bad_input_is_recorded_counted_and_answered(
    db: HubDb, name: str, payload: bytes, reason: Reason, answered: bool
) -> None:
    ingest = db.ingest()
    outcome = db.receive(name, payload, NOW, ingest)
    assert outcome.rejections[0].reason is reason
    assert outcome.answer is answered
    assert ingest.counters[f"rejected_{reason.value}"] == 1
    assert db.one("SELECT reason, size FROM rejects") == (reason.value, len(payload))
    # and the device keeps flowing
    good = db.receive(RATINGS, batch_bytes(KEY, chain(KEY, "d1", 1)), NOW, ingest)
    assert good.stored == 1


def test_a_failed_transaction_stores_nothing(db: HubDb) -> None:
    ingest = db.ingest()

    def crash_before_commit() -> None:
        with db.writer.transaction():
            ingest.receive(RATINGS, batch_bytes(KEY, chain(KEY, "d1", 2)), NOW)
            raise RuntimeError("power cut before commit")

    with pytest.raises(RuntimeError):
        crash_before_commit()
    assert db.reader.rating_count() == 0
    assert db.reader.device("d1").upto == 0  # type: ignore[union-attr]


def test_what_a_worker_prepares_comes_back_whole_from_another_process() -> None:
    payload = batch_bytes(KEY, chain(KEY, "d1", 3))
    prepared = Preparer().prepare_many(
        [(RATINGS, payload), ("pingjia/v1/bad topic/ratings", b"{}")], {"d1": KEY.public.hex}
    )
    good, bad = pickle.loads(pickle.dumps(prepared))
    assert good == prepared[0]
    assert good.verified_with == KEY.public.hex
    assert (bad.topic, bad.device, bad.channel) == (prepared[1].topic, None, None)
    assert str(bad.error) == str(prepared[1].error)
