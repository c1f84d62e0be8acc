"""Several hub workers on an MQTT 5 shared subscription and PostgreSQL, with a worker killed mid-stream."""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub import registry
from hub.writer import Writer
from simulator.processes import (
    MosquittoBroker,
    ProcessError,
    TerminalProcess,
    site_hub_key,
    wait_hub_online,
    wait_until,
)
from tests.conftest import need_mosquitto
from tests.helpers import make_terminals
from tests.test_end_to_end import TERMINAL_SETTINGS, Customers, drain_and_check

pytestmark = [pytest.mark.broker, pytest.mark.database, pytest.mark.slow]

MACHINE_BROKER = ("127.0.0.1", 1883)


@pytest.fixture
def broker_url(tmp_path: Path) -> Iterator[str]:
    """The machine's Mosquitto when it runs (as in production), else one started with our config."""
    with socket.socket() as probe:
        probe.settimeout(1)
        if probe.connect_ex(MACHINE_BROKER) == 0:
            yield f"mqtt://{MACHINE_BROKER[0]}:{MACHINE_BROKER[1]}"
            return
    need_mosquitto()
    broker = MosquittoBroker(workdir=tmp_path / "mosquitto").start()
    try:
        yield broker.url
    finally:
        broker.stop()


def worker_pids(client_id: str) -> list[int]:
    found = subprocess.run(
        ["pgrep", "-f", "--", f"--client-id {client_id} "], capture_output=True, text=True, check=False
    )
    return [int(pid) for pid in found.stdout.split()]


def test_two_workers_one_killed_mid_stream_lose_nothing_and_store_nothing_twice(
    tmp_path: Path, postgres_url: str, broker_url: str
) -> None:
    run = uuid.uuid4().hex[:8]  # the machine's broker is shared: our own names for everything
    hub_id = f"hub-{run}"
    with Writer.open(postgres_url) as writer:
        writer.write(registry.add_staff, "E1", name="王芳", department="综合受理")
        folders = make_terminals(writer, tmp_path, 4, prefix=f"w{run}-")
    with open(tmp_path / "hub.log", "wb") as hub_log:
        supervisor = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pingjia",
                "hub",
                "serve",
                "--workers",
                "2",
                "--db",
                postgres_url,
                "--broker",
                broker_url,
                "--client-id",
                hub_id,
                "--share-group",
                f"g{run}",
                "--hub-key",
                str(site_hub_key()[0]),
                "--log-level",
                "INFO",
            ],
            stdout=subprocess.DEVNULL,
            stderr=hub_log,
        )
    terminals: list[TerminalProcess] = []
    try:
        for index in (1, 2):
            wait_hub_online(broker_url, f"{hub_id}-{index}", 30, process=supervisor, log=tmp_path / "hub.log")
        terminals = [
            TerminalProcess(
                folder, broker_url=broker_url, settings=TERMINAL_SETTINGS, log=tmp_path / f"{folder.name}.log"
            )
            for folder in folders
        ]
        for terminal in terminals:
            terminal.start()
        for terminal in terminals:
            terminal.wait_for(lambda t: t.online, 30, "the terminal to connect")
            terminal.login("E1")
        customers = Customers(terminals)
        customers.start()
        for terminal in terminals:
            terminal.wait_for(lambda t: t.acked >= 30, 30, "ratings acked by the two workers")
        [victim] = worker_pids(f"{hub_id}-1")
        subprocess.run(["kill", "-KILL", str(victim)], check=True)
        wait_until(lambda: worker_pids(f"{hub_id}-1") not in ([], [victim]), 30, "the supervisor to restart worker 1")
        for terminal in terminals:
            base = terminal.acked
            terminal.wait_for(lambda t: t.acked >= base + 30, 30, "ratings acked after the kill")
        customers.stop()
        total = drain_and_check(postgres_url, terminals)
        assert total >= 4 * 60
    except ProcessError:
        print((tmp_path / "hub.log").read_text(errors="replace")[-3000:])
        raise
    finally:
        for terminal in terminals:
            terminal.quit()
        supervisor.terminate()
        supervisor.wait(30)
