"""A full disk under the outbox: the terminal goes out of service, never thanks what it could not
store, says so, and comes back by itself once there is room again."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from device import identity
from device.events import Error, HealthReported, Refused, Thanked
from device.outbox import Outbox
from simulator.processes import TerminalProcess
from tests.conftest import IN_CI
from tests.device.counter import Counter

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs: a real filesystem that really fills up."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        if IN_CI:
            pytest.fail(f"cannot mount a tmpfs for the disk-full test: {done.stderr.strip()}")
        pytest.skip(f"needs permission to mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\xff" * 4096)
    except OSError:
        pass  # ENOSPC: full
    finally:
        os.close(fd)
    return filler


def new_terminal(disk: Path, log: Path) -> tuple[Path, TerminalProcess]:
    """A fresh terminal identity on `disk`, started: every press a rating, no amend or misuse windows."""
    folder = disk / "t01"
    identity.create(folder, "t01")
    terminal = TerminalProcess(
        folder,
        broker_url=None,
        log=log,
        settings=["thank_you_ms=0", "mode=open", "amend_window_s=0", "misuse_interval_s=0"],
    )
    return folder, terminal.start()


def test_a_full_disk_takes_the_terminal_out_of_service_and_never_thanks_a_lost_rating(small_disk: Path) -> None:
    # The terminal in this process (tests/device/counter.py), on the real small disk.
    counter = Counter(
        small_disk / "t01", settings=["thank_you_ms=0", "mode=open", "amend_window_s=0", "misuse_interval_s=0"]
    )
    counter.login("E1")
    counter.press(5)
    assert [t.seq for t in counter.of(Thanked)] == [1]  # a rating while there is room
    filler = fill(small_disk)
    for _ in range(400):  # presses until the outbox cannot take one (the WAL may hold a few more)
        counter.press(4)
    assert counter.state == "out_of_service"
    assert sum(e.reason == "out_of_service" for e in counter.of(Refused)) >= 1  # presses refused while out of service
    assert any("out of service" in e.detail for e in counter.of(Error))
    assert any(e.fields["state"] == "out_of_service" for e in counter.of(HealthReported))
    thanked_while_full = [t.seq for t in counter.of(Thanked)]
    os.remove(filler)  # the technician frees the disk
    counter.after(5_100)  # the next probe: the terminal comes back by itself
    assert counter.state == "idle"
    counter.press(3)
    thanked = [t.seq for t in counter.of(Thanked)]
    assert len(thanked) == len(thanked_while_full) + 1  # a rating after recovery
    counter.close()
    outbox = Outbox(small_disk / "t01" / identity.OUTBOX_FILE, device="t01", create=False)
    stored = {record.seq for record in outbox.records()}
    outbox.verify_chain()
    outbox.close()
    assert set(thanked) <= stored, "a thanked rating is not in the outbox"
    assert sorted(stored) == list(range(1, max(stored) + 1))


def test_a_power_cut_while_the_disk_is_full_restarts_out_of_service_and_recovers(
    small_disk: Path, tmp_path: Path
) -> None:
    folder, terminal = new_terminal(small_disk, tmp_path / "t01.log")
    try:
        terminal.wait_for(lambda t: t.ready, 20, "the terminal to start")
        terminal.login("E1")
        terminal.press(5)
        terminal.wait_for(lambda t: t.thanked == [1], 10, "a rating while there is room")
        filler = fill(small_disk)
        terminal.kill()  # the power goes while the disk is full
        terminal.start()
        terminal.wait_for(lambda t: t.ready, 20, "the terminal to start on a full disk")
        assert terminal.state == "out_of_service"
        assert any("out of service" in detail for detail in terminal.errors())
        terminal.press(4)
        terminal.wait_for(
            lambda t: any(e.reason == "out_of_service" for e in t.of(Refused)),
            10,
            "the press refused, not thanked",
        )
        os.remove(filler)
        terminal.wait_for(lambda t: t.state == "idle", 30, "the terminal back, with its clerk, once there is room")
        terminal.press(3)
        terminal.wait_for(lambda t: t.thanked == [1, 2], 10, "a rating after recovery")
    finally:
        terminal.quit()
    outbox = Outbox(folder / identity.OUTBOX_FILE, device="t01", create=False)
    assert outbox.boots == 2, "the start on the full disk was counted once there was room"
    assert [record.seq for record in outbox.records()] == [1, 2]
    outbox.close()


def test_a_terminal_that_cannot_open_its_outbox_waits_for_it_instead_of_exiting(
    small_disk: Path, tmp_path: Path
) -> None:
    _, terminal = new_terminal(small_disk, tmp_path / "t01.log")
    terminal.wait_for(lambda t: t.ready, 20, "the terminal to start")
    assert terminal.quit() == 0  # a clean stop folds and removes the WAL: opening again needs room
    filler = fill(small_disk)
    terminal.start()
    try:
        terminal.wait_for(
            lambda t: any("cannot open outbox" in detail for detail in t.errors()), 20, "the terminal to say why"
        )
        assert terminal.alive(), "the terminal exited instead of waiting"
        assert not terminal.ready
        os.remove(filler)
        terminal.wait_for(lambda t: t.ready, 20, "the terminal to start once there is room")
        terminal.login("E1")
        terminal.press(5)
        terminal.wait_for(lambda t: t.thanked == [1], 10, "a rating")
    finally:
        terminal.quit()
