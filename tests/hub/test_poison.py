"""The hub's own steps against poison: preparing never raises, the largest seq is stored and acked,
a retained refusal is recorded once, and a preparing process that dies or hangs is replaced."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device.mqtt import parse_broker_url
from hub.config import HubConfig
from hub.ingest import Ingest
from hub.prepare import Preparer
from hub.preparers import PreparerPool
from hub.serve import Hub
from hub.store import Store
from protocol import Channel, Reason, SigningKey, limits, topic
from simulator.processes import MosquittoBroker, wait_until
from tests.helpers import batch_bytes, chain
from tests.rawclient import RawClient

KEY = SigningKey.generate()
NOW = 1_763_800_000_000
RATINGS = topic("d1", Channel.RATINGS)
HEALTH = topic("d1", Channel.HEALTH)
HUGE = b"9" * 5_000


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.database)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = (
        f"sqlite:///{tmp_path / 'hub.sqlite3'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    store = Store.open(url)
    store.add_device("d1", KEY.public.hex, department="综合受理", counter="3号窗口")
    yield store
    store.close()


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


def test_the_largest_seq_is_stored_and_acked_in_order_and_out_of_order(store: Store) -> None:
    """seq 2**63-1, the documented maximum: stored, and the watermark reaches it, whichever comes first."""
    top = chain(KEY, "d1", 3, first=limits.MAX_SEQ - 2)
    ingest = Ingest(store, HubConfig())
    store.execute("UPDATE devices SET upto = ?, max_seq = ? WHERE id = 'd1'", (limits.MAX_SEQ - 3,) * 2)
    with store.transaction():
        ahead = ingest.receive(RATINGS, batch_bytes(KEY, top[2:]), NOW)  # ahead of a gap: the watermark waits
    assert (ahead.stored, ahead.upto, ahead.rejections) == (1, limits.MAX_SEQ - 3, [])
    with store.transaction():
        filled = ingest.receive(RATINGS, batch_bytes(KEY, top[:2]), NOW)
    assert (filled.stored, filled.upto, filled.rejections) == (2, limits.MAX_SEQ, [])
    with store.transaction():
        again = ingest.receive(RATINGS, batch_bytes(KEY, top), NOW)  # a resend of all three: duplicates
    assert (again.stored, again.duplicates, again.upto) == (0, 3, limits.MAX_SEQ)
    assert store.device("d1").upto == limits.MAX_SEQ  # type: ignore[union-attr]
    assert store.stored_seqs("d1")[-1] == limits.MAX_SEQ


def test_a_retained_message_that_is_refused_is_recorded_once_across_restarts(store: Store) -> None:
    poison = b'{"type":"health","v":1,"t":' + HUGE + b"}"
    for _restart in range(3):  # a new Ingest each time, as after a hub restart
        ingest = Ingest(store, HubConfig())
        with store.transaction():
            ingest.receive(HEALTH, poison, NOW, retained=True)
    rows = store.execute("SELECT reason, size FROM rejects WHERE topic = ?", (HEALTH,)).fetchall()
    assert [tuple(row) for row in rows] == [(Reason.MALFORMED.value, len(poison))]
    assert ingest.counters["rejected_again"] == 1
    with store.transaction():  # not retained: every copy is a refusal of its own
        Ingest(store, HubConfig()).receive(HEALTH, poison, NOW)
    assert store.reject_counts() == {Reason.MALFORMED.value: 2}


def test_a_refusal_text_no_column_can_hold_is_made_printable(store: Store) -> None:
    """A NUL in a topic or a fault's text (PostgreSQL's TEXT takes none) must not fail the reject row."""
    with store.transaction():
        Ingest(store, HubConfig()).receive("pingjia/v1/\x00evil/ratings", b"\x00", NOW)
    (stored_topic,) = store.execute("SELECT topic FROM rejects").fetchone()
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


def _health(fw: str) -> bytes:
    from protocol import Health, PanelState, encode_health

    return encode_health(
        Health(
            device="d1",
            t=NOW,
            boot="boot-1",
            mono=0,
            fw=fw,
            uptime_s=5,
            state="idle",
            panel=PanelState.CONNECTED,
            outbox_depth=0,
            free_disk_bytes=10**9,
            misuse_alarms=0,
            rejected=0,
            session=1,
        )
    )


@pytest.mark.broker
def test_a_message_a_handler_fails_on_is_refused_acknowledged_and_the_rest_stored(
    mosquitto: MosquittoBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth: a fault nobody foresaw (here: the health handler raising on one message)
    costs that message only. It is refused as `unhandled` with a reject row, acknowledged to the
    broker so that a restart does not meet it again, and the ratings queued beside it are stored."""
    original = Ingest._health

    def faulty(self: Ingest, device: str, payload: bytes, now_ms: int) -> None:
        if b'"fw":"poison"' in payload:
            raise RuntimeError("a fault nobody foresaw")
        original(self, device, payload, now_ms)

    monkeypatch.setattr(Ingest, "_health", faulty)
    db = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    Store.open(db).add_device("d1", KEY.public.hex, department="A")
    broker = parse_broker_url(mosquitto.url)
    records = chain(KEY, "d1", 4)

    def serve() -> tuple[Hub, threading.Thread]:
        hub = Hub(store_url=db, broker=broker, config=HubConfig())
        thread = threading.Thread(target=hub.run, daemon=True)
        thread.start()
        wait_until(lambda: hub.session.connected, 20, "the hub to subscribe")
        return hub, thread

    def stop(hub: Hub, thread: threading.Thread) -> None:
        hub.stop()
        thread.join(20)
        assert not thread.is_alive()

    stop(*serve())  # the hub's session now exists at the broker: what comes next is queued for it
    client = RawClient(mosquitto.port, "terminal-side")
    client.publish(RATINGS, batch_bytes(KEY, records[:2]))
    client.publish(HEALTH, _health("poison"))
    client.publish(RATINGS, batch_bytes(KEY, records[2:]))
    client.publish(HEALTH, _health("0.1.0"))
    hub, thread = serve()  # the queue arrives at once, most likely as one group
    try:
        wait_until(lambda: Store.open(db).device("d1").upto == 4, 20, "the ratings around the poison")  # type: ignore[union-attr]
        wait_until(lambda: bool(Store.open(db).reject_counts()), 20, "the refusal")
        assert thread.is_alive()
        assert hub.ingest.counters["groups_retried"] >= 1  # the group failed, and was stored one by one
    finally:
        stop(hub, thread)
    hub, thread = serve()  # a restart: the broker has nothing left to deliver again
    client.publish(HEALTH, _health("0.1.1"))
    wait_until(
        lambda: b"0.1.1" in (Store.open(db).execute("SELECT health FROM devices").fetchone()[0] or "").encode(),
        20,
        "health",
    )
    stop(hub, thread)
    client.close()
    store = Store.open(db)
    assert store.reject_counts() == {Reason.UNHANDLED.value: 1}
    (detail,) = store.execute("SELECT detail FROM rejects").fetchone()
    assert "RuntimeError: a fault nobody foresaw" in detail
    assert store.stored_seqs("d1") == [1, 2, 3, 4]
