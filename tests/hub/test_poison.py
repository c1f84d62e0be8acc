"""The hub's own steps against poison: preparing never raises, the largest seq is stored and acked,
a retained refusal is recorded once, and a preparing process that dies or hangs is replaced."""

from __future__ import annotations

import os
import signal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub import registry
from hub.prepare import Preparer
from hub.preparers import PreparerPool
from hub.queries import Reader
from hub.telemetry import Telemetry
from hub.writer import Writer
from protocol import Channel, Health, Reason, SigningKey, limits, topic
from runtime.fake import FakeBroker
from simulator.processes import wait_until
from tests.helpers import batch_bytes, chain, health_bytes
from tests.hub.conftest import Ear, HubDb, Served

KEY = SigningKey.generate()
NOW = 1_763_800_000_000
RATINGS = topic("d1", Channel.RATINGS)
HEALTH = topic("d1", Channel.HEALTH)
HUGE = b"9" * 5_000


@pytest.fixture
def db(hub_db: HubDb) -> HubDb:
    hub_db.writer.write(registry.add_device, "d1", KEY.public.hex, department="综合受理", counter="3号窗口")
    return hub_db


topics = st.one_of(
    st.sampled_from([RATINGS, HEALTH, topic("d1", Channel.STATUS), topic("d1", Channel.EVENT), "pingjia/v1/d1/x"]),
    st.text(alphabet=st.characters(blacklist_categories=()), max_size=80),
)
payloads = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [
            b'{"head":' + HUGE + b',"records":[],"type":"batch","v":1}',
            b'{"type":"health","v":1,"t":' + HUGE + b"}",
            b'{"detail":"\\ud800","type":"event","v":1}',
            b"[" * 50_000 + b"]" * 50_000,
        ]
    ),
)


@given(st.lists(st.tuples(topics, payloads), max_size=8))
def test_preparing_never_raises_and_answers_every_message(messages: list[tuple[str, bytes]]) -> None:
    prepared = Preparer().prepare_many(messages, {"d1": KEY.public.hex})
    assert [(item.topic, item.payload) for item in prepared] == messages


def test_the_largest_seq_is_stored_and_acked_in_order_and_out_of_order(db: HubDb) -> None:
    """seq 2**63-1, the documented maximum: stored, and the watermark reaches it, whichever comes first."""
    top = chain(KEY, "d1", 3, first=limits.MAX_SEQ - 2)
    ingest = db.ingest()
    db.writer.write(
        lambda conn: conn.execute("UPDATE devices SET upto = ?, max_seq = ? WHERE id = 'd1'", (limits.MAX_SEQ - 3,) * 2)
    )
    ahead = db.receive(RATINGS, batch_bytes(KEY, top[2:]), NOW, ingest)  # ahead of a gap: the watermark waits
    assert (ahead.stored, ahead.upto, ahead.rejections) == (1, limits.MAX_SEQ - 3, [])
    filled = db.receive(RATINGS, batch_bytes(KEY, top[:2]), NOW, ingest)
    assert (filled.stored, filled.upto, filled.rejections) == (2, limits.MAX_SEQ, [])
    again = db.receive(RATINGS, batch_bytes(KEY, top), NOW, ingest)  # a resend of all three: duplicates
    assert (again.stored, again.duplicates, again.upto) == (0, 3, limits.MAX_SEQ)
    assert db.reader.device("d1").upto == limits.MAX_SEQ  # type: ignore[union-attr]
    assert db.reader.stored_seqs("d1")[-1] == limits.MAX_SEQ


def test_a_retained_message_that_is_refused_is_recorded_once_across_restarts(db: HubDb) -> None:
    poison = b'{"type":"health","v":1,"t":' + HUGE + b"}"
    for _restart in range(3):  # a new Ingest each time, as after a hub restart
        ingest = db.ingest()
        db.receive(HEALTH, poison, NOW, ingest, retained=True)
    rows = db.rows("SELECT reason, size FROM rejects WHERE topic = ?", (HEALTH,))
    assert rows == [(Reason.MALFORMED.value, len(poison))]
    assert ingest.counters["rejected_again"] == 1
    db.receive(HEALTH, poison, NOW)  # not retained: every copy is a refusal of its own
    assert db.reader.reject_counts() == {Reason.MALFORMED.value: 2}


def test_a_refusal_text_no_column_can_hold_is_made_printable(db: HubDb) -> None:
    """A NUL in a topic or a fault's text (PostgreSQL's TEXT takes none) must not fail the reject row."""
    db.receive("pingjia/v1/\x00evil/ratings", b"\x00", NOW)
    (stored_topic,) = db.one("SELECT topic FROM rejects") or ("",)
    assert "\x00" not in stored_topic
    assert stored_topic.startswith("pingjia/v1/")


def test_a_preparing_process_that_dies_is_replaced_and_its_jobs_come_back_empty() -> None:
    pool = PreparerPool(2, timeout_s=30)
    try:
        payload = batch_bytes(KEY, chain(KEY, "d1", 2))
        first = pool.result(pool.submit(0, [(RATINGS, payload)], {"d1": KEY.public.hex}))
        assert first is not None
        assert first[0].verified_with == KEY.public.hex
        victim = pool._workers[0].process.pid
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        lost = pool.submit(0, [(RATINGS, payload)], {})
        assert pool.result(lost) is None  # the caller prepares these itself
        assert pool.restarts == 1
        again = pool.result(pool.submit(0, [(RATINGS, payload)], {}))  # the new process works
        assert again is not None
        assert again[0].batch is not None
        other = pool.result(pool.submit(1, [(RATINGS, payload)], {}))
        assert other is not None
    finally:
        pool.close()


def test_a_preparing_process_that_hangs_is_replaced() -> None:
    pool = PreparerPool(1, timeout_s=1)
    try:
        victim = pool._workers[0].process.pid
        assert victim is not None
        os.kill(victim, signal.SIGSTOP)  # stops answering, as a process stuck on one message would
        job = pool.submit(0, [(RATINGS, b"{}")], {})
        assert pool.result(job) is None
        assert pool.restarts == 1
        assert pool.result(pool.submit(0, [(RATINGS, b"{}")], {})) is not None
    finally:
        pool.close()


def test_a_message_a_handler_fails_on_is_refused_acknowledged_and_the_rest_stored(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth: a fault nobody foresaw (here: the health handler raising on one message)
    costs that message only. It is refused as `unhandled` with a reject row, acknowledged to the
    broker so that a restart does not meet it again, and the ratings queued beside it are stored."""
    original = Telemetry.health

    def faulty(self: Telemetry, device: str, payload: bytes, now_ms: int) -> Health | None:
        if b'"fw":"poison"' in payload:
            raise RuntimeError("a fault nobody foresaw")
        return original(self, device, payload, now_ms)

    monkeypatch.setattr(Telemetry, "health", faulty)
    with Writer.open(db_url) as writer:
        writer.write(registry.add_device, "d1", KEY.public.hex, department="A")
    broker = FakeBroker()
    records = chain(KEY, "d1", 4)

    def read(query: str) -> list[tuple[object, ...]]:
        with Reader.open(db_url) as reader:
            return [tuple(row) for row in reader.execute(query).fetchall()]

    Served(db_url, broker).stop()  # the hub's session now exists at the broker: what comes next is queued for it
    client = Ear(broker, "terminal-side", [topic("d1", Channel.ACK)])
    client.publish(RATINGS, batch_bytes(KEY, records[:2]))
    client.publish(HEALTH, health_bytes(KEY, fw="poison"))
    client.publish(RATINGS, batch_bytes(KEY, records[2:]))
    client.publish(HEALTH, health_bytes(KEY, fw="0.1.0"))
    served = Served(db_url, broker)  # the queue arrives at once, as one group
    try:
        wait_until(lambda: read("SELECT upto FROM devices") == [(4,)], 20, "the ratings around the poison")
        wait_until(lambda: bool(read("SELECT reason FROM rejects")), 20, "the refusal")
        assert served.thread.is_alive()
        assert served.hub.ingest.counters["groups_retried"] >= 1  # the group failed, and was stored one by one
    finally:
        served.stop()
    served = Served(db_url, broker)  # a restart: the broker has nothing left to deliver again
    client.publish(HEALTH, health_bytes(KEY, fw="0.1.1"))
    wait_until(lambda: "0.1.1" in str(read("SELECT health FROM devices")), 20, "health")
    served.stop()
    with Reader.open(db_url) as reader:
        assert reader.reject_counts() == {Reason.UNHANDLED.value: 1}
        (detail,) = reader.execute("SELECT detail FROM rejects").fetchone()
        assert "RuntimeError: a fault nobody foresaw" in detail
        assert reader.stored_seqs("d1") == [1, 2, 3, 4]
