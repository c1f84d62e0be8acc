"""The Mosquitto that tests, benchmarks and `make chaos` start saves its store and restores it: a
persistent session, and the message queued for it while it was away, survive a restart, whether
the broker runs as the user who started it or (started by root) switches to another user."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from pathlib import Path

import pytest

from simulator.netfaults import SessionProbe
from simulator.processes import MosquittoBroker
from tests.conftest import need_mosquitto

pytestmark = [pytest.mark.broker, pytest.mark.slow]


@pytest.mark.parametrize("user", [None, "nobody"], ids=["as-its-starter", "switched-to-nobody"])
def test_a_restarted_broker_restores_a_session_and_its_queued_message(tmp_path: Path, user: str | None) -> None:
    need_mosquitto()
    workdir = tmp_path / "mosquitto"
    if user is not None:
        if os.geteuid() != 0:
            pytest.skip("only root can start Mosquitto as another user; the other case runs as this one")
        # A folder that user can write, on a path it can walk (pytest's own folders are private).
        workdir = Path(tempfile.mkdtemp(prefix="pingjia-broker-"))
        entry = pwd.getpwnam(user)
        os.chown(workdir, entry.pw_uid, entry.pw_gid)
    broker = MosquittoBroker(workdir=workdir, log=tmp_path / "mosquitto.log", user=user, log_types=["information"])
    try:
        broker.start()
        probe = SessionProbe(broker.port)
        probe.arm()
        assert probe.queue(b"kept across the restart")
        broker.stop()  # SIGTERM: Mosquitto saves its store as it ends
        broker.start()
        assert probe.collect(b"kept across the restart"), "the queued message did not survive the restart"
    finally:
        broker.stop()
        log = (tmp_path / "mosquitto.log").read_text(encoding="utf-8", errors="replace")
        if user is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    assert "Saving in-memory database" in log
    assert "Error" not in log, log
