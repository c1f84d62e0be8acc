from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.audit import audit
from hub.config import HubConfig
from hub.ingest import Ingest, Outcome
from hub.prepare import Preparer
from hub.store import Store
from protocol import (
    Channel,
    Kind,
    Rating,
    Reason,
    SigningKey,
    Status,
    StatusState,
    encode,
    encode_status,
    leaf_hash,
    seal_batch,
    topic,
)
from tests.helpers import batch_bytes, chain

KEY = SigningKey.generate()
NOW = 1_763_800_000_000
RATINGS = topic("d1", Channel.RATINGS)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.database)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    store = Store.open(url)
    store.add_device("d1", KEY.public.hex, department="综合受理", counter="3号窗口")
    store.add_staff("E1", name="王芳", department="社保医保")
    yield store
    store.close()


def receive(store: Store, payload: bytes, name: str = RATINGS, ingest: Ingest | None = None) -> Outcome:
    ingest = ingest or Ingest(store, HubConfig())
    with store.transaction():
        return ingest.receive(name, payload, NOW)


def test_a_batch_is_stored_with_its_department_and_acked_up_to_its_last_seq(store: Store) -> None:
    outcome = receive(store, batch_bytes(KEY, chain(KEY, "d1", 3)))
    assert (outcome.stored, outcome.duplicates, outcome.upto, outcome.rejections) == (3, 0, 3, [])
    row = store.execute("SELECT staff, department, counter, day, record FROM ratings WHERE seq = 2").fetchone()
    assert row[:4] == ("E1", "社保医保", "3号窗口", "2025-11-22")
    assert json.loads(row[4])["seq"] == 2
    assert audit(store)["problems"] == []


def test_a_duplicate_is_acked_and_not_stored_twice(store: Store) -> None:
    records = chain(KEY, "d1", 3)
    receive(store, batch_bytes(KEY, records))
    outcome = receive(store, batch_bytes(KEY, records[1:]))
    assert (outcome.stored, outcome.duplicates, outcome.upto) == (0, 2, 3)
    assert store.rating_count() == 3


def test_out_of_order_batches_are_stored_and_the_watermark_waits_for_the_gap(store: Store) -> None:
    records = chain(KEY, "d1", 6)
    later = receive(store, batch_bytes(KEY, records[3:]))
    assert (later.stored, later.upto) == (3, 0)
    earlier = receive(store, batch_bytes(KEY, records[:3]))
    assert (earlier.stored, earlier.upto) == (3, 6)


def test_an_amend_replaces_what_it_amends_in_either_arrival_order(store: Store) -> None:
    first = chain(KEY, "d1", 1, score=1)
    amend = Rating(
        device="d1",
        seq=2,
        kind=Kind.AMEND,
        t=NOW,
        boot="b",
        mono=9,
        fw="1",
        prev=first[0].hash(),
        staff="E1",
        score=4,
        amends=1,
    ).signed(KEY)
    receive(store, batch_bytes(KEY, [amend]))
    receive(store, batch_bytes(KEY, first))
    rows = store.execute("SELECT seq, superseded_by FROM ratings ORDER BY seq").fetchall()
    assert rows == [(1, 2), (2, None)]


def test_an_amend_stored_before_a_resend_of_what_it_amends_still_wins(store: Store) -> None:
    records = chain(KEY, "d1", 3, score=1)
    amend = Rating(
        device="d1",
        seq=4,
        kind=Kind.AMEND,
        t=NOW,
        boot="b",
        mono=9,
        fw="1",
        prev=records[-1].hash(),
        staff="E1",
        score=5,
        amends=2,
    ).signed(KEY)
    receive(store, batch_bytes(KEY, [records[2], amend]))  # seqs 3..4 arrive first
    receive(store, batch_bytes(KEY, [*records, amend]))  # then a resend of 1..4: 1..2 are new
    assert store.execute("SELECT seq, superseded_by FROM ratings ORDER BY seq").fetchall() == [
        (1, None),
        (2, 4),
        (3, None),
        (4, None),
    ]
    assert store.device("d1").upto == 4  # type: ignore[union-attr]


def test_a_fork_against_the_stored_chain_is_a_broken_chain(store: Store) -> None:
    receive(store, batch_bytes(KEY, chain(KEY, "d1", 2)))
    fork = chain(KEY, "d1", 1, first=3, prev="ab" * 32)
    outcome = receive(store, batch_bytes(KEY, fork))
    assert outcome.rejections[0].reason is Reason.BROKEN_CHAIN
    assert store.rating_count() == 2


def test_a_batch_that_does_not_lead_into_the_stored_successor_is_a_broken_chain(store: Store) -> None:
    records = chain(KEY, "d1", 3)
    receive(store, batch_bytes(KEY, records[2:]))
    other = chain(KEY, "d1", 2, score=1)  # seqs 1..2 of another history
    outcome = receive(store, batch_bytes(KEY, other))
    assert outcome.rejections[0].reason is Reason.BROKEN_CHAIN


def test_a_replayed_seq_with_other_content_is_refused_and_recorded(store: Store) -> None:
    receive(store, batch_bytes(KEY, chain(KEY, "d1", 2)))
    outcome = receive(store, batch_bytes(KEY, chain(KEY, "d1", 2, score=1)))
    assert [r.reason for r in outcome.rejections] == [Reason.REPLAY_CONFLICT, Reason.REPLAY_CONFLICT]
    assert [r.seq for r in outcome.rejections] == [1, 2]
    assert store.reject_counts() == {"replay_conflict": 1}
    assert store.rating_count() == 2


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
    store: Store, name: str, payload: bytes, reason: Reason, answered: bool
) -> None:
    ingest = Ingest(store, HubConfig())
    outcome = receive(store, payload, name, ingest)
    assert outcome.rejections[0].reason is reason
    assert outcome.answer is answered
    assert ingest.counters[f"rejected_{reason.value}"] == 1
    row = store.execute("SELECT reason, size FROM rejects").fetchone()
    assert row == (reason.value, len(payload))
    # and the device keeps flowing
    good = receive(store, batch_bytes(KEY, chain(KEY, "d1", 1)), RATINGS, ingest)
    assert good.stored == 1


def test_a_wrong_clock_is_placed_at_the_hub_time(store: Store) -> None:
    receive(store, batch_bytes(KEY, chain(KEY, "d1", 1, t=1000)))  # 1970: the clock was never set
    assert store.execute("SELECT at_ms, t_device FROM ratings").fetchone() == (NOW, 1000)


def test_a_late_offline_status_does_not_override_a_fresh_online(store: Store) -> None:
    status_topic = topic("d1", Channel.STATUS)
    for state, session in [(StatusState.ONLINE, 5), (StatusState.OFFLINE, 4), (StatusState.ONLINE, 5)]:
        receive(store, encode_status(Status(device="d1", state=state, session=session)), status_topic)
    assert store.execute("SELECT status_state, status_session FROM devices").fetchone() == ("online", 5)
    receive(store, encode_status(Status(device="d1", state=StatusState.OFFLINE, session=5)), status_topic)
    assert store.execute("SELECT status_state FROM devices").fetchone() == ("offline",)


def test_a_failed_transaction_stores_nothing(store: Store) -> None:
    ingest = Ingest(store, HubConfig())

    def crash_before_commit() -> None:
        with store.transaction():
            ingest.receive(RATINGS, batch_bytes(KEY, chain(KEY, "d1", 2)), NOW)
            raise RuntimeError("power cut before commit")

    with pytest.raises(RuntimeError):
        crash_before_commit()
    assert store.rating_count() == 0
    assert store.device("d1").upto == 0  # type: ignore[union-attr]


def test_audit_finds_a_record_whose_own_signature_is_wrong(store: Store) -> None:
    # A batch authenticates via its head; a record with a bad own signature inside a validly
    # signed chain is stored, and the audit is what reports it.
    bad = Rating(
        device="d1",
        seq=1,
        kind=Kind.PRESS,
        t=NOW,
        boot="b",
        mono=1,
        fw="1",
        prev="0" * 64,
        staff="E1",
        score=5,
        sig="ab" * 64,
    )
    body = encode(bad.wire())
    receive(store, seal_batch(KEY, "d1", 1, [body], leaf_hash(body)))
    result = audit(store)
    assert result["records"] == 1
    assert result["problems"][0]["problem"] == "signature does not verify with the registered key"


def test_registering_a_device_again_with_another_key_is_refused(store: Store) -> None:
    from hub.errors import RegistryError

    with pytest.raises(RegistryError, match="another key"):
        store.add_device("d1", SigningKey.generate().public.hex)
    with pytest.raises(RegistryError, match=r"not an Ed25519 key|hex"):
        store.add_device("d2", "zz")


def _health(**changes: object) -> bytes:
    from protocol import Health, PanelState, encode_health

    fields: dict[str, object] = {
        "device": "d1",
        "t": NOW,
        "boot": "boot-1",
        "mono": 0,
        "fw": "0.1.0",
        "uptime_s": 5,
        "state": "idle",
        "panel": PanelState.CONNECTED,
        "outbox_depth": 0,
        "free_disk_bytes": 10**9,
        "misuse_alarms": 0,
        "rejected": 0,
        "session": 1,
    }
    fields.update(changes)
    return encode_health(Health(**fields))  # type: ignore[arg-type]


def test_health_is_kept_per_terminal(store: Store) -> None:
    receive(store, _health(staff="E1", last_error="key panel unplugged"), topic("d1", Channel.HEALTH))
    stored = json.loads(store.execute("SELECT health FROM devices WHERE id = 'd1'").fetchone()[0])
    assert stored["last_error"] == "key panel unplugged"
    outcome = receive(store, _health(device="d2"), topic("d2", Channel.HEALTH))
    assert outcome.rejections[0].reason is Reason.UNKNOWN_DEVICE


def test_a_wrong_wall_clock_is_corrected_from_the_heartbeat_before_and_after(store: Store) -> None:
    # The terminal booted with its clock two hours behind; by the hub's clock, its boot's
    # monotonic zero was at NOW - 10 s (so a record at mono 5 s happened at NOW - 5 s).
    wrong = -7_200_000
    epoch = NOW - 10_000
    first = Rating(
        device="d1",
        seq=1,
        kind=Kind.PRESS,
        t=epoch + 5_000 + wrong,
        boot="boot-1",
        mono=5_000,
        fw="1",
        prev="0" * 64,
        staff="E1",
        score=5,
    ).signed(KEY)
    receive(store, batch_bytes(KEY, [first]))
    assert store.execute("SELECT at_ms, time_source FROM ratings").fetchone() == (first.t, "device")
    # Its heartbeat carries both clocks and the hub offset it measured from an ack.
    receive(store, _health(t=epoch + 8_000 + wrong, mono=8_000, hub_offset_ms=-wrong), topic("d1", Channel.HEALTH))
    assert store.execute("SELECT at_ms, time_source FROM ratings").fetchone() == (NOW - 5_000, "anchor")
    second = Rating(
        device="d1",
        seq=2,
        kind=Kind.PRESS,
        t=epoch + 9_000 + wrong,
        boot="boot-1",
        mono=9_000,
        fw="1",
        prev=first.hash(),
        staff="E1",
        score=4,
    ).signed(KEY)
    receive(store, batch_bytes(KEY, [second]))
    assert store.execute("SELECT at_ms, time_source FROM ratings WHERE seq = 2").fetchone() == (NOW - 1_000, "anchor")


def test_a_right_wall_clock_is_left_alone(store: Store) -> None:
    record = chain(KEY, "d1", 1, t=NOW - 1_000)[0]  # boot-1, mono 0
    receive(store, batch_bytes(KEY, [record]))
    receive(store, _health(t=NOW, mono=1_000, hub_offset_ms=40), topic("d1", Channel.HEALTH))
    assert store.execute("SELECT at_ms, time_source FROM ratings").fetchone() == (NOW - 1_000, "device")


def test_events_are_recorded(store: Store) -> None:
    from protocol import DeviceEvent, EventKind, encode_event

    event = DeviceEvent(device="d1", t=NOW, boot="b", mono=1, kind=EventKind.MISUSE_BURST, detail="8 presses in 10 s")
    receive(store, encode_event(event), topic("d1", Channel.EVENT))
    assert store.execute("SELECT kind, detail FROM device_events").fetchall() == [("misuse_burst", "8 presses in 10 s")]


def test_a_clerk_moved_by_another_connection_counts_for_the_new_department_from_then_on(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    store = Store.open(url)
    store.add_device("d1", KEY.public.hex, department="综合受理", counter="3号窗口")
    store.add_staff("E1", name="王芳", department="社保医保")
    ingest = Ingest(store, HubConfig())
    records = chain(KEY, "d1", 2)

    def group(payload: bytes) -> None:  # as the hub's writer stores one group
        ingest.begin_group()
        with store.transaction():
            ingest.receive(RATINGS, payload, NOW)
            ingest.end_group()

    group(batch_bytes(KEY, records[:1]))
    admin = Store.open(url, create=False)  # `pingjia hub add-staff`, while the hub runs
    admin.add_staff("E1", name="王芳", department="综合受理")
    admin.close()
    group(batch_bytes(KEY, records[1:]))
    rows = store.execute("SELECT seq, department FROM ratings ORDER BY seq").fetchall()
    store.close()
    assert [tuple(row) for row in rows] == [(1, "社保医保"), (2, "综合受理")]


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
