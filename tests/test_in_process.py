"""A real terminal and a real hub paired in one process on the in-memory broker (runtime.fake):
the whole path from a key to the hub's store and back to the terminal's watermark, in well under a
second, with the product's own code at both ends."""

from __future__ import annotations

import time
from pathlib import Path

from device.events import Acked
from hub import registry
from hub.queries import Reader
from hub.writer import Writer
from runtime.fake import FakeBroker
from tests.device.counter import Counter
from tests.hub.conftest import Served


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
