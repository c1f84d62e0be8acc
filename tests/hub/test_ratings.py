"""Ratings ingest (hub.ratings): stored once, in any order, against the stored chain."""

from __future__ import annotations

import json

import pytest

from hub import forks, registry
from hub.audit import audit
from hub.errors import RegistryError
from hub.ingest import Outcome
from hub.writer import Writer
from protocol import Channel, Kind, Rating, Reason, SigningKey, topic
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


def receive(db: HubDb, payload: bytes) -> Outcome:
    return db.receive(RATINGS, payload, NOW)


def test_a_batch_is_stored_with_its_department_and_acked_up_to_its_last_seq(db: HubDb) -> None:
    outcome = receive(db, batch_bytes(KEY, chain(KEY, "d1", 3)))
    assert (outcome.stored, outcome.duplicates, outcome.upto, outcome.rejections) == (3, 0, 3, [])
    row = db.one("SELECT staff, department, counter, day, record FROM ratings WHERE seq = 2")
    assert row is not None
    assert row[:4] == ("E1", "社保医保", "3号窗口", "2025-11-22")
    assert json.loads(row[4])["seq"] == 2
    assert audit(db.reader)["problems"] == []


def test_a_duplicate_is_acked_and_not_stored_twice(db: HubDb) -> None:
    records = chain(KEY, "d1", 3)
    receive(db, batch_bytes(KEY, records))
    outcome = receive(db, batch_bytes(KEY, records[1:]))
    assert (outcome.stored, outcome.duplicates, outcome.upto) == (0, 2, 3)
    assert db.reader.rating_count() == 3


def test_out_of_order_batches_are_stored_and_the_watermark_waits_for_the_gap(db: HubDb) -> None:
    records = chain(KEY, "d1", 6)
    later = receive(db, batch_bytes(KEY, records[3:]))
    assert (later.stored, later.upto) == (3, 0)
    earlier = receive(db, batch_bytes(KEY, records[:3]))
    assert (earlier.stored, earlier.upto) == (3, 6)


def test_an_amend_replaces_what_it_amends_in_either_arrival_order(db: HubDb) -> None:
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
    receive(db, batch_bytes(KEY, [amend]))
    receive(db, batch_bytes(KEY, first))
    rows = db.rows("SELECT seq, superseded_by FROM ratings ORDER BY seq")
    assert rows == [(1, 2), (2, None)]


def test_an_amend_stored_before_a_resend_of_what_it_amends_still_wins(db: HubDb) -> None:
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
    receive(db, batch_bytes(KEY, [records[2], amend]))  # seqs 3..4 arrive first
    receive(db, batch_bytes(KEY, [*records, amend]))  # then a resend of 1..4: 1..2 are new
    assert db.rows("SELECT seq, superseded_by FROM ratings ORDER BY seq") == [
        (1, None),
        (2, 4),
        (3, None),
        (4, None),
    ]
    assert db.reader.device("d1").upto == 4  # type: ignore[union-attr]


def test_a_validly_signed_record_that_does_not_follow_the_stored_chain_is_a_fork_kept_as_evidence(db: HubDb) -> None:
    receive(db, batch_bytes(KEY, chain(KEY, "d1", 2)))
    fork = chain(KEY, "d1", 1, first=3, prev="ab" * 32)
    outcome = receive(db, batch_bytes(KEY, fork))
    assert (outcome.rejections[0].reason, outcome.rejections[0].seq) == (Reason.FORK, 3)
    assert db.reader.rating_count() == 2
    [evidence] = db.reader.forks()
    assert (evidence["device"], evidence["seq"], evidence["other_hash"]) == ("d1", 3, fork[0].hash())
    assert evidence["other_record"]["prev"] == "ab" * 32


def test_a_batch_that_does_not_lead_into_the_stored_successor_is_a_fork(db: HubDb) -> None:
    records = chain(KEY, "d1", 3)
    receive(db, batch_bytes(KEY, records[2:]))
    other = chain(KEY, "d1", 2, score=1)  # seqs 1..2 of another history
    outcome = receive(db, batch_bytes(KEY, other))
    assert (outcome.rejections[0].reason, outcome.rejections[0].seq) == (Reason.FORK, 3)
    assert [f["seq"] for f in db.reader.forks()] == [3]


def test_a_seq_stored_with_other_signed_content_is_a_fork_recorded_once(db: HubDb) -> None:
    receive(db, batch_bytes(KEY, chain(KEY, "d1", 2)))
    for _ in range(3):
        outcome = receive(db, batch_bytes(KEY, chain(KEY, "d1", 2, score=1)))
    assert [r.reason for r in outcome.rejections] == [Reason.FORK, Reason.FORK]
    assert [r.seq for r in outcome.rejections] == [1, 2]
    assert db.reader.reject_counts() == {"fork": 3}
    assert db.reader.rating_count() == 2
    assert [f["seq"] for f in db.reader.forks()] == [1]  # the evidence, once


def test_a_fork_settled_for_the_other_history_lets_the_terminal_in_again(db: HubDb) -> None:
    # A clone of d1's key got a history stored first, ahead of a gap; the terminal's own is refused.
    mine = chain(KEY, "d1", 4, score=5)
    clone = chain(KEY, "d1", 2, first=3, prev="cd" * 32, score=1)
    receive(db, batch_bytes(KEY, mine[:1]))
    assert receive(db, batch_bytes(KEY, clone)).rejections == []  # ahead of the gap at 2: nothing to check against
    assert receive(db, batch_bytes(KEY, mine[1:])).rejections[0].reason is Reason.FORK
    with pytest.raises(RegistryError, match="no open fork"):
        db.writer.write(forks.settle, "d1", 4, keep="other", by="王经理", why="")
    done = db.writer.write(forks.settle, "d1", 3, keep="other", by="王经理", why="the terminal at window 3 is ours")
    assert done["deleted"] == 2
    assert db.reader.forks() == []
    [settled] = db.reader.forks(everything=True)
    assert (settled["settled_by"], settled["decision"]) == ("王经理", "kept other: the terminal at window 3 is ours")
    outcome = receive(db, batch_bytes(KEY, mine[1:]))
    assert (outcome.rejections, outcome.upto) == ([], 4)
    assert db.rows("SELECT seq, score FROM ratings ORDER BY seq") == [(1, 5), (2, 5), (3, 5), (4, 5)]
    assert db.reader.counts() == db.reader.recount()


def test_a_fork_settled_for_the_stored_history_keeps_it(db: HubDb) -> None:
    receive(db, batch_bytes(KEY, chain(KEY, "d1", 2)))
    receive(db, batch_bytes(KEY, chain(KEY, "d1", 2, score=1)))
    db.writer.write(forks.settle, "d1", 1, keep="stored", by="王经理", why="the other one is the clone")
    assert db.rows("SELECT seq, score FROM ratings ORDER BY seq") == [(1, 5), (2, 5)]
    assert db.reader.forks() == []


def test_a_clerk_moved_by_another_connection_takes_their_ratings_of_the_days_of_the_move(db: HubDb) -> None:
    """A move dated from a day re-attributes what is stored of that day, and the hub attributes
    what arrives afterwards by the new history, not by what it remembered of the old one."""
    ingest = db.ingest()
    records = chain(KEY, "d1", 2)
    day = "2025-11-22"  # of NOW, in the site's zone (Asia/Shanghai)

    def group(payload: bytes) -> None:  # as the hub's writer stores one group
        ingest.begin_group()
        with db.writer.transaction():
            ingest.receive(RATINGS, payload, NOW)
            ingest.end_group()

    group(batch_bytes(KEY, records[:1]))
    with Writer.open(db.url) as admin:  # `pingjia hub add-staff`, while the hub runs
        admin.write(registry.add_staff, "E1", name="王芳", department="综合受理", since=day)
    assert db.rows("SELECT seq, department FROM ratings ORDER BY seq") == [(1, "综合受理")]
    group(batch_bytes(KEY, records[1:]))
    assert db.rows("SELECT seq, department FROM ratings ORDER BY seq") == [(1, "综合受理"), (2, "综合受理")]
    assert db.reader.counts() == db.reader.recount()
    assert audit(db.reader)["problems"] == []


def test_a_move_from_a_later_day_leaves_the_earlier_ratings_where_they_were(db: HubDb) -> None:
    receive(db, batch_bytes(KEY, chain(KEY, "d1", 2)))
    db.writer.write(registry.add_staff, "E1", name="王芳", department="综合受理", since="2025-11-23")
    assert db.rows("SELECT DISTINCT department FROM ratings") == [("社保医保",)]
    assert db.rows("SELECT staff, first_day, last_day, unit FROM memberships ORDER BY first_day") == [
        ("E1", "0001-01-01", "2025-11-22", "社保医保"),
        ("E1", "2025-11-23", None, "综合受理"),
    ]
