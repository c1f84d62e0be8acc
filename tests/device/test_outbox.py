from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from device.errors import OutboxError
from device.outbox import _TAIL_RECORDS, Outbox
from protocol import GENESIS, Kind, Rating, decode_batch, seal_batch, verify_batch
from protocol.limits import MAX_MESSAGE_BYTES
from tests.strategies import KEY


def builder(score: int = 5, contact: str | None = None):
    def build(seq: int, prev: str) -> Rating:
        return Rating(
            device="d1",
            seq=seq,
            kind=Kind.PRESS,
            t=1_000 + seq,
            boot="b",
            mono=seq,
            fw="1",
            prev=prev,
            staff="E1",
            score=score,
            contact=contact,
        ).signed(KEY)

    return build


def test_appends_number_and_chain_records_and_survive_reopening(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", device="d1")
    assert outbox.head == (0, GENESIS)
    first = outbox.append(builder(), now_ms=1)
    second = outbox.append(builder(), now_ms=2)
    assert (first.seq, second.seq) == (1, 2)
    assert second.record.prev == first.hash
    outbox.close()
    again = Outbox(tmp_path / "o.db", device="d1")
    assert again.head == (2, second.hash)
    assert again.verify_chain() == 2
    assert again.depth == 2


def test_pending_records_seal_into_a_batch_the_hub_accepts(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", device="d1")
    for _ in range(7):
        outbox.append(builder(), now_ms=0)
    pending = outbox.pending(3, 500)
    assert pending is not None
    assert (pending.first, pending.last) == (3, 7)
    batch = decode_batch(seal_batch(KEY, "d1", pending.first, pending.bodies, pending.last_hash))
    verify_batch(batch, KEY.public)
    assert [r.seq for r in batch.records] == [3, 4, 5, 6, 7]
    assert outbox.pending(8, 500) is None


def test_pending_stays_within_the_message_limit(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", device="d1")
    for _ in range(500):
        outbox.append(builder(contact="A" * 1024), now_ms=0)
    pending = outbox.pending(1, 500)
    assert pending is not None
    assert 0 < len(pending.bodies) < 500
    raw = seal_batch(KEY, "d1", 1, pending.bodies, pending.last_hash)
    assert len(raw) <= MAX_MESSAGE_BYTES


def test_acks_move_a_persistent_watermark_and_pruning_keeps_unacked_and_the_head(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", device="d1")
    for _ in range(5):
        outbox.append(builder(), now_ms=100)
    assert outbox.mark_acked(3)
    assert not outbox.mark_acked(2)
    assert outbox.prune(older_than_ms=200) == 0  # acked in memory only: not yet safe to forget
    outbox.save_meta()
    assert outbox.prune(older_than_ms=200) == 3
    assert [r.seq for r in outbox.records()] == [4, 5]
    outbox.mark_acked(5)
    outbox.save_meta()
    assert outbox.prune(older_than_ms=200) == 1  # seq 4 goes; seq 5 is the chain head and stays
    outbox.close()
    again = Outbox(tmp_path / "o.db", device="d1")
    assert again.acked == 5
    assert again.head[0] == 5
    assert again.append(builder(), now_ms=300).seq == 6  # the chain continues after pruning
    assert again.oldest_unacked_ms() == 300


def test_a_rewound_watermark_reaches_only_as_far_back_as_the_records_kept(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", device="d1")
    for _ in range(6):
        outbox.append(builder(), now_ms=100)
    outbox.mark_acked(4)
    outbox.save_meta()
    assert outbox.prune(older_than_ms=200) == 4  # seqs 1..4 are gone here
    outbox.mark_acked(6)
    assert outbox.rewind_acked(2) == 4, "seqs 3..4 were pruned: the watermark cannot go below them"
    assert outbox.rewind_acked(5) == 4, "a rewind never moves the watermark up"
    outbox.save_meta()
    outbox.close()
    again = Outbox(tmp_path / "o.db", device="d1")
    assert again.acked == 4


def test_pruning_never_reaches_past_a_rewound_watermark(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", device="d1")
    for _ in range(5):
        outbox.append(builder(), now_ms=100)
    outbox.mark_acked(4)
    outbox.save_meta()
    assert outbox.rewind_acked(1) == 1  # the hub lost 2..4; not saved yet
    assert outbox.prune(older_than_ms=200) == 1
    assert [r.seq for r in outbox.records()] == [2, 3, 4, 5]


def test_young_acked_records_are_kept_for_the_retention_period(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", device="d1")
    for _ in range(3):
        outbox.append(builder(), now_ms=1_000)
    outbox.mark_acked(3)
    outbox.save_meta()
    assert outbox.prune(older_than_ms=500) == 0


def test_an_outbox_of_another_device_is_refused(tmp_path: Path) -> None:
    Outbox(tmp_path / "o.db", device="d1").close()
    with pytest.raises(OutboxError, match="belongs to device d1"):
        Outbox(tmp_path / "o.db", device="d2")


def test_a_failed_write_changes_nothing_and_raises(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", device="d1")
    outbox.append(builder(), now_ms=0)
    # Another connection holds the write lock, as a full or read-only disk would refuse the write.
    blocker = sqlite3.connect(tmp_path / "o.db", timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    outbox._db.execute("PRAGMA busy_timeout = 0")
    with pytest.raises(OutboxError, match="cannot store seq 2"):
        outbox.append(builder(), now_ms=0)
    blocker.rollback()
    assert outbox.head[0] == 1
    assert outbox.append(builder(), now_ms=0).seq == 2


def test_verify_chain_finds_a_tampered_record(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", device="d1")
    for _ in range(3):
        outbox.append(builder(), now_ms=0)
    outbox._db.execute(
        "UPDATE records SET body = CAST(replace(body, '\"score\":5', '\"score\":1') AS BLOB) WHERE seq = 2"
    )
    with pytest.raises(OutboxError, match="seq 2: stored hash does not match"):
        outbox.verify_chain()


def test_a_record_built_for_the_wrong_seq_is_refused(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", device="d1")
    with pytest.raises(OutboxError, match="expected 1"):
        outbox.append(lambda seq, prev: builder()(seq + 1, prev), now_ms=0)


def test_an_unsaved_watermark_is_lost_in_a_crash_but_nothing_unsent_is_pruned(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", device="d1")
    for _ in range(4):
        outbox.append(builder(), now_ms=100)
    outbox.mark_acked(2)
    outbox.save_meta()
    outbox.mark_acked(4)  # then the power goes: the process dies without closing
    crashed = sqlite3.connect(tmp_path / "o.db")
    assert crashed.execute("SELECT value FROM meta WHERE key = 'acked'").fetchone() == ("2",)
    crashed.close()
    assert outbox.prune(older_than_ms=200) == 2
    assert outbox.pending(3, 500) is not None  # what a restart would send again is still there


def test_pending_reads_the_same_from_memory_as_from_disk(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", device="d1")
    for _ in range(_TAIL_RECORDS + 44):  # the oldest 44 are no longer held in memory
        outbox.append(builder(), now_ms=0)
    reopened = Outbox(tmp_path / "o.db", device="d1")  # holds nothing in memory: reads every record
    for first, limit in [(1, 10), (40, 10), (44, 3), (45, 3), (46, 500), (200, 64), (300, 1), (300, 9), (301, 5)]:
        assert outbox.pending(first, limit) == reopened.pending(first, limit), (first, limit)
    assert outbox.pending(300, 1) is not None
    assert outbox.pending(301, 5) is None
