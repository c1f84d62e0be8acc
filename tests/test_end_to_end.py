"""End to end through a real Mosquitto: terminals -> broker -> hub, with real faults mid-stream."""

from __future__ import annotations

import random
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from device.events import HubBehind
from hub import registry
from hub.audit import audit
from hub.queries import Reader
from hub.writer import Writer
from simulator.processes import HubProcess, MosquittoBroker, TerminalProcess
from tests.helpers import make_terminals

pytestmark = [pytest.mark.broker, pytest.mark.slow]

# These tests are about delivery: every press is a rating (open mode, no amend or misuse windows).
TERMINAL_SETTINGS = [
    "thank_you_ms=0",
    "mode=open",
    "amend_window_s=0",
    "misuse_interval_s=0",
    "burst_presses=1000",
    "ack_timeout_s=2",
    "reconnect_min_s=0.1",
    "reconnect_max_s=1",
]


class Customers(threading.Thread):
    """Presses keys on every terminal at a steady pace until stopped (the simulated queue of people)."""

    def __init__(self, terminals: list[TerminalProcess], pace_s: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.terminals = terminals
        self.pace_s = pace_s
        self.halt = threading.Event()
        self.rng = random.Random(5)

    def run(self) -> None:
        while not self.halt.wait(self.pace_s):
            for terminal in self.terminals:
                terminal.press(self.rng.randint(3, 5))  # no reasons window: every press a rating

    def stop(self) -> None:
        self.halt.set()
        self.join()


@pytest.fixture
def hall(tmp_path: Path, mosquitto: MosquittoBroker) -> Iterator[tuple[str, list[TerminalProcess], HubProcess]]:
    db = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    with Writer.open(db) as writer:
        writer.write(registry.add_staff, "E1", name="王芳", department="综合受理")
        folders = make_terminals(writer, tmp_path, 4)
    hub = HubProcess(db=db, broker_url=mosquitto.url, log=tmp_path / "hub.log").start()
    hub.wait_online()
    terminals = [
        TerminalProcess(
            folder, broker_url=mosquitto.url, settings=TERMINAL_SETTINGS, log=tmp_path / f"{folder.name}.log"
        )
        for folder in folders
    ]
    for terminal in terminals:
        terminal.start()
    for terminal in terminals:
        terminal.wait_for(lambda t: t.online, 30, "the terminal to connect")
        terminal.login("E1")
    try:
        yield db, terminals, hub
    finally:
        for terminal in terminals:
            terminal.quit()
        hub.stop()


def drain_and_check(db: str, terminals: list[TerminalProcess]) -> int:
    for terminal in terminals:
        # The clerk leaves: once the terminal shows "closed", every press before it has been handled.
        terminal.send("logout")
        terminal.wait_for(lambda t: t.state == "closed", 30, "the terminal to close")
        terminal.wait_for(lambda t: t.acked >= t.last_thanked, 90, "the hub to ack every thanked rating")
    with Reader.open(db) as reader:
        total = 0
        for terminal in terminals:
            thanked = terminal.thanked
            assert len(thanked) == len(set(thanked)), "a seq was thanked twice"
            stored = reader.stored_seqs(terminal.device)
            assert stored == sorted(terminal.recorded), f"{terminal.device}: stored != recorded"
            assert set(thanked) <= set(stored), f"{terminal.device}: a thanked rating is missing"
            total += len(stored)
        assert reader.rating_count() == total  # nothing stored twice, nothing extra
        assert audit(reader)["problems"] == []
    return total


def test_pressed_equals_stored_across_a_broker_restart(
    hall: tuple[str, list[TerminalProcess], HubProcess], mosquitto: MosquittoBroker
) -> None:
    db, terminals, hub = hall
    customers = Customers(terminals)
    customers.start()
    for terminal in terminals:
        terminal.wait_for(lambda t: t.acked >= 20, 30, "20 ratings acked before the fault")
    mosquitto.kill()  # SIGKILL: whatever the broker held in memory is gone
    for terminal in terminals:
        terminal.wait_for(lambda t: not t.online, 30, "the terminal to notice the broker is gone")
        base = len(terminal.thanked)
        terminal.wait_for(lambda t: len(t.thanked) >= base + 20, 30, "ratings thanked while offline")
    mosquitto.start()
    for terminal in terminals:
        terminal.wait_for(lambda t: t.online, 30, "the terminal to reconnect")
        base = terminal.acked
        terminal.wait_for(lambda t: t.acked >= base + 20, 30, "ratings acked after the restart")
    customers.stop()
    total = drain_and_check(db, terminals)
    assert total >= 4 * 60
    assert hub.alive()


def test_pressed_equals_stored_when_the_hub_is_killed_mid_ingest(
    hall: tuple[str, list[TerminalProcess], HubProcess],
) -> None:
    db, terminals, hub = hall
    customers = Customers(terminals)
    customers.start()
    for round_ in range(3):
        for terminal in terminals:
            terminal.wait_for(lambda t: t.acked >= (round_ + 1) * 20, 30, "ratings acked before the kill")
        hub.kill()  # SIGKILL while groups are being stored and acked
        hub.start()
        hub.wait_online()
    customers.stop()
    total = drain_and_check(db, terminals)
    assert total >= 4 * 60


def back_up_mid_stream(path: Path, terminals: list[TerminalProcess], backup: Path) -> Customers:
    """Customers press on; the nightly backup is taken while the hub runs, and more ratings are acked
    after it. The customers are left pressing."""
    customers = Customers(terminals)
    customers.start()
    for terminal in terminals:
        terminal.wait_for(lambda t: t.acked >= 20, 30, "ratings acked before the backup")
    with sqlite3.connect(path) as live, sqlite3.connect(backup) as copy:
        live.backup(copy)
    marks = {terminal.device: terminal.acked for terminal in terminals}
    for terminal in terminals:
        terminal.wait_for(lambda t: t.acked >= marks[t.device] + 30, 30, "ratings acked after the backup")
    return customers


def restore(hub: HubProcess, path: Path, backup: Path) -> None:
    """The hub's disk dies; the technician restores last night's backup and starts the hub."""
    hub.kill()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    backup.replace(path)
    hub.start()
    hub.wait_online()


def saw_hub_behind(terminal: TerminalProcess) -> bool:
    """The terminal has seen the hub answer below what it acked, and is sending those records again."""
    return bool(terminal.of(HubBehind))


def test_a_hub_restored_from_an_older_backup_gets_back_what_it_lost(
    hall: tuple[str, list[TerminalProcess], HubProcess], tmp_path: Path
) -> None:
    db, terminals, hub = hall
    path = Path(db.removeprefix("sqlite:///"))
    customers = back_up_mid_stream(path, terminals, tmp_path / "backup.sqlite3")
    restore(hub, path, tmp_path / "backup.sqlite3")
    for terminal in terminals:
        terminal.wait_for(saw_hub_behind, 60, "the terminal to see what the hub lost")
    customers.stop()
    total = drain_and_check(db, terminals)  # every record, the lost ones included, stored once
    assert total >= 4 * 50


def test_an_idle_terminal_sends_a_restored_hub_what_it_lost_without_another_press(
    hall: tuple[str, list[TerminalProcess], HubProcess], tmp_path: Path
) -> None:
    db, terminals, hub = hall
    path = Path(db.removeprefix("sqlite:///"))
    customers = back_up_mid_stream(path, terminals, tmp_path / "backup.sqlite3")
    customers.stop()  # the hall closes for the night: nothing more to send
    for terminal in terminals:
        terminal.wait_for(lambda t: t.acked >= t.last_thanked, 30, "every rating acked")
    pressed = {terminal.device: len(terminal.thanked) for terminal in terminals}
    restore(hub, path, tmp_path / "backup.sqlite3")  # its online status is what makes each terminal check it
    for terminal in terminals:
        terminal.wait_for(saw_hub_behind, 30, "the terminal to see what the hub lost")
        terminal.wait_for(lambda t: t.acked >= t.last_thanked, 30, "the lost ratings acked again")
    assert {terminal.device: len(terminal.thanked) for terminal in terminals} == pressed, "nobody pressed a key"
    drain_and_check(db, terminals)
