"""Placing records in time (hub.clock): a wrong wall clock is overruled by its boot's anchor."""

from __future__ import annotations

import pytest

from hub import registry
from protocol import Channel, Kind, Rating, SigningKey, topic
from tests.helpers import batch_bytes, chain
from tests.helpers import health_bytes as health
from tests.hub.conftest import HubDb

KEY = SigningKey.generate()
NOW = 1_763_800_000_000
RATINGS = topic("d1", Channel.RATINGS)
HEALTH = topic("d1", Channel.HEALTH)


@pytest.fixture
def db(hub_db: HubDb) -> HubDb:
    hub_db.writer.write(registry.add_device, "d1", KEY.public.hex, department="综合受理", counter="3号窗口")
    hub_db.writer.write(registry.add_staff, "E1", name="王芳", department="社保医保")
    return hub_db


def test_a_wrong_clock_is_placed_at_the_hub_time(db: HubDb) -> None:
    db.receive(RATINGS, batch_bytes(KEY, chain(KEY, "d1", 1, t=1000)), NOW)  # 1970: the clock was never set
    assert db.one("SELECT at_ms, t_device FROM ratings") == (NOW, 1000)


def test_a_wrong_wall_clock_is_corrected_from_the_heartbeat_before_and_after(db: HubDb) -> None:
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
    db.receive(RATINGS, batch_bytes(KEY, [first]), NOW)
    assert db.one("SELECT at_ms, time_source FROM ratings") == (first.t, "device")
    # Its heartbeat carries both clocks and the hub offset it measured from an ack.
    db.receive(HEALTH, health(KEY, t=epoch + 8_000 + wrong, mono=8_000, hub_offset_ms=-wrong), NOW)
    assert db.one("SELECT at_ms, time_source FROM ratings") == (NOW - 5_000, "anchor")
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
    db.receive(RATINGS, batch_bytes(KEY, [second]), NOW)
    assert db.one("SELECT at_ms, time_source FROM ratings WHERE seq = 2") == (NOW - 1_000, "anchor")


def test_a_right_wall_clock_is_left_alone(db: HubDb) -> None:
    record = chain(KEY, "d1", 1, t=NOW - 1_000)[0]  # boot-1, mono 0
    db.receive(RATINGS, batch_bytes(KEY, [record]), NOW)
    db.receive(HEALTH, health(KEY, t=NOW, mono=1_000, hub_offset_ms=40), NOW)
    assert db.one("SELECT at_ms, time_source FROM ratings") == (NOW - 1_000, "device")


def test_a_rating_moved_to_another_day_by_its_anchor_moves_in_the_counts(db: HubDb) -> None:
    # 00:00:30 on 2025-11-23 in Shanghai by the terminal's clock, which is two hours fast: the
    # press happened at 22:00:30 the day before, and counts there.
    midnight = 1_763_827_200_000
    hub_now = midnight - 7_200_000 + 40_000  # 22:00:40 by the hub's clock
    record = chain(KEY, "d1", 1, t=midnight + 30_000)[0]  # boot-1, mono 0
    db.receive(RATINGS, batch_bytes(KEY, [record]), hub_now)
    assert [bucket[0] for bucket, _n in db.reader.counts()] == ["2025-11-23"]
    db.receive(HEALTH, health(KEY, t=midnight + 31_000, mono=1_000, hub_offset_ms=-7_200_000), hub_now)
    assert [bucket[0] for bucket, _n in db.reader.counts()] == ["2025-11-22"]
    assert db.reader.counts() == db.reader.recount()


def test_a_clock_report_out_of_plausible_bounds_moves_nothing(db: HubDb) -> None:
    # The terminal's own key signs its heartbeat; still, one that says it was sent far from when it
    # arrived (a replay of an old one, or a terminal that lies) re-dates no record.
    record = chain(KEY, "d1", 1, t=NOW - 1_000)[0]
    db.receive(RATINGS, batch_bytes(KEY, [record]), NOW)
    forty_days = 40 * 86_400_000
    ingest = db.ingest()
    db.receive(HEALTH, health(KEY, t=NOW, mono=1_000, hub_offset_ms=-forty_days), NOW, ingest)
    db.receive(HEALTH, health(KEY, t=NOW, mono=1_000, hub_offset_ms=3_600_000), NOW, ingest)  # from the future
    assert db.one("SELECT at_ms, time_source FROM ratings") == (NOW - 1_000, "device")
    assert ingest.counters["clock_implausible"] == 2
    assert db.one("SELECT count(*) FROM clock_anchors") == (0,)
