"""`pingjia hub serve --workers N`: N hub workers on one MQTT 5 shared subscription.

The broker hands each message to one worker of the group (`$share/<group>/pingjia/v1/+/...`);
every worker stores into the same PostgreSQL database, where a terminal's row lock serializes the
ingest of its batches. When a worker dies, the broker delivers what it had not acknowledged to the
others (or the terminals send it again), and this supervisor starts it again.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

__all__ = ["Supervisor"]

log = logging.getLogger("pingjia.hub.workers")

_RESTART_DELAY_S = 1.0


class Supervisor:
    def __init__(
        self,
        *,
        workers: int,
        db: str,
        broker: str,
        client_id: str,
        group: str,
        settings: Sequence[str],
        log_level: str,
        passed: Sequence[str] = (),
    ) -> None:
        self.passed = list(passed)  # options every worker gets as they are (keys, secrets)
        self.count = workers
        self.db = db
        self.broker = broker
        self.client_id = client_id
        self.group = group
        self.settings = list(settings)
        self.log_level = log_level
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self._stopping = threading.Event()

    def argv(self, index: int) -> list[str]:
        argv = [
            sys.executable,
            "-m",
            "pingjia",
            "hub",
            "serve",
            "--db",
            self.db,
            "--broker",
            self.broker,
            "--client-id",
            f"{self.client_id}-{index}",
            "--share-group",
            self.group,
            "--lifeline",
            "--log-level",
            self.log_level,
        ]
        for assignment in self.settings:
            argv += ["--set", assignment]
        return argv + self.passed

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda _number, _frame: self.stop())
        for index in range(1, self.count + 1):
            self._start(index)
        while not self._stopping.wait(0.5):
            for index, process in list(self.processes.items()):
                if process.poll() is not None:
                    log.warning("hub worker %d exited with %s; starting it again", index, process.returncode)
                    time.sleep(_RESTART_DELAY_S)
                    self._start(index)
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
            if process.stdin is not None:
                process.stdin.close()
        return 0

    def _start(self, index: int) -> None:
        self.processes[index] = subprocess.Popen(self.argv(index), stdin=subprocess.PIPE)
        log.info("hub worker %d started (pid %d)", index, self.processes[index].pid)
