"""A real terminal and a real hub paired in one process on the in-memory broker (runtime.fake):
the whole path from a key to the hub's store and back to the terminal's watermark, in well under a
second, with the product's own code at both ends."""

from __future__ import annotations

import json
import time
from pathlib import Path

from device.events import Acked, Thanked
from hub import registry
from hub.queries import Reader
from hub.writer import Writer
from runtime.fake import FakeBroker
from tests.device.counter import Counter
from tests.hub.conftest import Ear, Served


def until_acked(counter: Counter, upto: int, timeout_s: float = 15) -> None:
    """Turn the terminal until the hub's ack for `upto` has arrived (the hub answers from its thread)."""
    deadline = time.monotonic() + timeout_s
    while not any(event.upto >= upto for event in counter.of(Acked)):
        assert time.monotonic() < deadline, f"no ack up to {upto}"
        inbox = counter.terminal.inbox
        inbox.put(inbox.get(timeout=max(0.0, deadline - time.monotonic())))  # wait for the next thing for it
        counter.settle()


def test_a_press_is_stored_once_at_the_hub_and_acked_even_across_a_hub_restart(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    broker = FakeBroker()
    counter = Counter(tmp_path / "t01", broker=broker, settings=["mode=open", "amend_window_s=0"])
    with Writer.open(db) as writer:
        writer.write(registry.add_device, "t01", counter.terminal.recorder.identity.public_hex, department="综合受理")
        writer.write(registry.add_staff, "E1", name="王芳", department="社保医保")
    served = Served(db, broker)
    try:
        counter.login("E1")
        for level in (5, 4, 3):
            counter.press(level)
        until_acked(counter, 3)
        served.stop()  # the hub goes away; the terminal keeps its customers' ratings
        for level in (5, 4):
            counter.after(400)
            counter.press(level)
        served = Served(db, broker)  # back: its persistent session kept what came meanwhile
        until_acked(counter, 5)
    finally:
        served.stop()
        counter.close()
    with Reader.open(db) as reader:
        assert reader.stored_seqs("t01") == [1, 2, 3, 4, 5]
        rows = reader.execute("SELECT seq, department FROM ratings ORDER BY seq").fetchall()
    assert {department for _seq, department in rows} == {"社保医保"}  # the clerk's department
    assert counter.terminal.recorder.outbox.depth == 0


def test_a_long_backlog_drains_oldest_first_in_batches_while_new_presses_keep_working(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    broker = FakeBroker()
    counter = Counter(
        tmp_path / "t01",
        broker=broker,
        settings=["mode=open", "amend_window_s=0", "misuse_interval_s=0", "burst_presses=1000", "thank_you_ms=0"],
    )
    with Writer.open(db) as writer:
        writer.write(registry.add_device, "t01", counter.terminal.recorder.identity.public_hex, department="综合受理")
    served = Served(db, broker)
    watcher = Ear(broker, "watcher", ["pingjia/v1/t01/ratings"])
    broker.stop()  # the network is away: the terminal stores and thanks, and sends nothing
    try:
        counter.login("E1")
        for _ in range(1_200):
            counter.press(5)
        assert len(counter.of(Thanked)) == 1_200
        broker.start()  # back: the backlog drains ...
        for _ in range(5):
            counter.press(3)  # ... while customers keep coming
        assert len(counter.of(Thanked)) == 1_205
        until_acked(counter, 1_205)
    finally:
        served.stop()
        counter.close()
    batches = [json.loads(raw) for raw in watcher.wait_for("pingjia/v1/t01/ratings", count=3)]
    firsts = [batch["head"]["first"] for batch in batches]
    assert firsts[0] == 1, "the oldest records go first"
    assert len(batches[0]["records"]) == 500, "500 at a time"
    assert all(len(batch["records"]) <= 500 for batch in batches)
    assert firsts[:3] == sorted(firsts[:3])
    with Reader.open(db) as reader:
        assert reader.stored_seqs("t01") == list(range(1, 1_206))
