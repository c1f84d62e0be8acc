"""Clocks lie: a terminal with no RTC starts two hours wrong, then NTP corrects it mid-run.

Seqs never reorder, the terminal reports the jump, and the hub places every record at the time it
really happened, from the terminal's monotonic clock and the hub offset in its heartbeat.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from device.events import ClockJumped
from hub.queries import Reader
from hub.writer import Writer
from pingjia.cli import main
from simulator.processes import HubProcess, MosquittoBroker, TerminalProcess, wait_until
from tests.helpers import make_terminals

pytestmark = [pytest.mark.broker, pytest.mark.slow]

TWO_HOURS_MS = 2 * 3600 * 1000


def test_a_wrong_clock_and_its_jump_neither_reorder_seqs_nor_misplace_ratings(
    mosquitto: MosquittoBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    with Writer.open(db) as writer:
        [folder] = make_terminals(writer, tmp_path, 1)
    hub = HubProcess(db=db, broker_url=mosquitto.url, log=tmp_path / "hub.log").start()
    hub.wait_online()
    offset = tmp_path / "clock-offset"
    offset.write_text(str(-TWO_HOURS_MS))
    terminal = TerminalProcess(
        folder,
        broker_url=mosquitto.url,
        log=tmp_path / "t01.log",
        clock_offset_file=offset,
        settings=["thank_you_ms=0", "mode=open", "amend_window_s=0", "misuse_interval_s=0", "heartbeat_s=1"],
    )
    pressed_at: dict[int, int] = {}  # seq -> real wall time of the press, ms
    try:
        terminal.start()
        terminal.wait_for(lambda t: t.online, 20, "online")
        terminal.login("E1")

        def press() -> None:
            count = len(terminal.thanked)
            before = time.time_ns() // 1_000_000
            terminal.press(4)
            terminal.wait_for(lambda t: len(t.thanked) > count, 10, "the thanks")
            pressed_at[terminal.thanked[-1]] = before

        for _ in range(3):
            press()
        terminal.wait_for(lambda t: t.acked >= 3, 20, "the hub's ack")
        offset.write_text("0")  # NTP syncs: the wall clock jumps two hours forward
        terminal.wait_for(lambda t: bool(t.of(ClockJumped)), 10, "the jump noticed")
        for _ in range(3):
            press()
        terminal.wait_for(lambda t: t.acked >= 6, 20, "all acked")
        jump = terminal.of(ClockJumped)[0]
        assert abs(jump.ms - TWO_HOURS_MS) < 1_000
        assert terminal.thanked == [1, 2, 3, 4, 5, 6]  # seq order is press order, whatever the clock did

        def placed() -> list[tuple[int, int, int, str]]:
            with Reader.open(db) as reader:
                rows = reader.execute("SELECT seq, t_device, at_ms, time_source FROM ratings ORDER BY seq").fetchall()
            return [tuple(row) for row in rows]

        # Once a heartbeat with the hub offset has arrived, every record sits at its real time.
        wait_until(
            lambda: all(abs(at - pressed_at[seq]) <= 2_000 for seq, _t, at, _s in placed()),
            20,
            "every record placed at the time it was pressed",
        )
        rows = placed()
        assert [source for *_, source in rows[:3]] == ["anchor"] * 3  # the wrong clock was overruled
        assert all(abs(t_device - pressed_at[seq] + TWO_HOURS_MS) < 2_000 for seq, t_device, *_ in rows[:3])
        assert [source for *_, source in rows[3:]] == ["device"] * 3  # the synced clock was trusted
        # The terminal's health and its jump reached the hub: what `pingjia hub devices` shows.
        capsys.readouterr()
        assert main(["hub", "devices", "--db", db]) == 0
        [device] = json.loads(capsys.readouterr().out)
        assert device["status"] == "online"
        assert device["health"]["staff"] == "E1"
        assert device["health"]["outbox_depth"] == 0
        assert abs(device["health"]["hub_offset_ms"]) < 2_000
        assert "clock_jump" in [event["kind"] for event in device["events"]]
    finally:
        terminal.quit()
        hub.stop()
