"""A terminal's link to the hub through a real broker: a long backlog drains in order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub.queries import Reader
from hub.writer import Writer
from protocol import Channel, topic
from simulator.processes import HubProcess, MosquittoBroker, TerminalProcess
from tests.helpers import make_terminals
from tests.rawclient import RawClient

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def _terminal(tmp_path: Path, url: str, *extra: str) -> tuple[str, TerminalProcess]:
    db = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    with Writer.open(db) as writer:
        [folder] = make_terminals(writer, tmp_path, 1)
    settings = [
        "thank_you_ms=0",
        "mode=open",
        "amend_window_s=0",
        "misuse_interval_s=0",
        "burst_presses=1000",
        "reconnect_min_s=0.1",
        "reconnect_max_s=0.5",
        *extra,
    ]
    return db, TerminalProcess(folder, broker_url=url, settings=settings, log=tmp_path / "t01.log")


def test_a_long_backlog_drains_oldest_first_in_batches_while_new_presses_keep_working(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    db, terminal = _terminal(tmp_path, "mqtt://127.0.0.1:1")  # an address where no broker will ever be
    terminal.start()
    terminal.wait_for(lambda t: t.ready, 20, "ready")
    terminal.login("E1")
    for _ in range(1_200):
        terminal.press(5)
    terminal.wait_for(lambda t: len(t.thanked) == 1_200, 60, "1,200 ratings stored while offline")
    terminal.quit()

    watcher = RawClient(mosquitto.port, "watcher")
    watcher.subscribe(topic("t01", Channel.RATINGS))
    hub = HubProcess(db=db, broker_url=mosquitto.url, log=tmp_path / "hub.log").start()
    hub.wait_online()
    terminal.broker_url = mosquitto.url
    terminal.start()
    try:
        terminal.wait_for(lambda t: t.ready, 20, "ready")
        for _ in range(5):
            terminal.press(3)  # customers keep coming while the backlog drains
        terminal.wait_for(lambda t: len(t.thanked) == 1_205, 30, "the new presses to be thanked")
        terminal.wait_for(lambda t: t.acked == 1_205, 60, "the whole backlog to drain")
        batches = [json.loads(raw) for raw in watcher.wait_for(topic("t01", Channel.RATINGS), count=3)]
        firsts = [b["head"]["first"] for b in batches]
        assert firsts[0] == 1, "the oldest records go first"
        assert len(batches[0]["records"]) == 500, "500 at a time"
        assert all(len(b["records"]) <= 500 for b in batches)
        assert firsts[:3] == sorted(firsts[:3])
        with Reader.open(db) as reader:
            assert reader.stored_seqs("t01") == list(range(1, 1_206))
    finally:
        terminal.quit()
        hub.stop()
        watcher.close()
