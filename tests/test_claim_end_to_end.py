"""Pairing without a laptop, end to end on a real site: Mosquitto with the accounts and ACL of `pingjia
hub broker-config`, the operator's `pingjia hub claim` (a real process), a hub account answering
claims with `ClaimDesk` (a small loop here, as `hub serve`'s writer runs it), and a terminal's
`ClaimClient` claiming with the code it shows.

What must hold: until the code is entered the claim account does not exist and the terminal gets
nowhere; once it is, the terminal is registered at the hub and holds its own broker account, which
the broker takes; the claim account is closed behind it.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from device.claim import ClaimClient
from device.pairing import Pairing
from hub import identity
from hub.brokerconf import load_hub_secret
from hub.claim import ClaimDesk, claim_filter
from hub.writer import Writer
from protocol import SigningKey
from protocol import claim as wire
from runtime.link import Client, Inbound, LinkEvent
from runtime.mqtt import MqttBroker, parse_broker_url
from simulator.processes import PYTHON, wait_until
from simulator.site import TECHNICIAN, Site
from tests.conftest import need_mosquitto
from tests.helpers import read
from tests.rawclient import RawClient

pytestmark = [pytest.mark.broker, pytest.mark.slow]

CODE = "604213"
DEVICE = "hall1-w11"


class HubDesk:
    """A hub account answering claims: its writer, its MQTT session, and the desk, on one thread."""

    def __init__(self, site: Site) -> None:
        self.desk = ClaimDesk(identity.load(site.hub_key), broker_site=site.broker_dir, db_url=site.db)
        self._db = site.db
        self._events: queue.Queue[LinkEvent] = queue.Queue()
        password = load_hub_secret(site.secret)["pingjia-hub"]
        broker = MqttBroker(url=parse_broker_url(site.broker_url), username="pingjia-hub", password=password)
        self.link = broker.connect(
            Client(
                client_id="pingjia-hub",
                on_event=self._events.put,
                subscriptions=[(claim_filter(), 1)],
                manual_ack=True,
            )
        )
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hub-desk", daemon=True)

    def start(self) -> HubDesk:
        self.link.start()
        self._thread.start()
        wait_until(lambda: self.link.connected, 20, "the hub account to subscribe")
        return self

    def _run(self) -> None:
        with Writer.open(self._db) as writer:
            while not self._stopping.is_set():
                try:
                    event = self._events.get(timeout=0.1)
                except queue.Empty:
                    event = None
                if isinstance(event, Inbound):
                    self.desk.serve(writer, self.link, event)
                self.desk.tick()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(10)
        self.link.stop()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    need_mosquitto()
    made = Site(tmp_path / "site", db=f"sqlite:///{tmp_path / 'hub.sqlite3'}", mosquitto=True).setup()
    yield made
    made.stop()


def accepted(port: int, username: str, password: str) -> bool:
    client = RawClient(port, username, username=username, password=password)
    try:
        return client.accepted()
    finally:
        client.close()


def test_a_terminal_claims_its_registration_with_the_code_entered_at_the_hub(site: Site) -> None:
    hub = HubDesk(site).start()
    paired: list[Pairing] = []
    terminal = ClaimClient(
        site.broker_url, DEVICE, SigningKey.generate(), lambda: CODE, paired.append, retry_s=0.5, reconnect_max_s=1.0
    )
    terminal.start()
    try:
        # Nobody entered the code yet: the broker has no such account, and says so.
        wait_until(lambda: terminal.refused is not None, 20, "the broker to refuse the claim account")
        assert not terminal.connected
        assert terminal.counters["requests"] == 0

        argv = ["claim", CODE, "--department", "综合受理", "--counter", "11号窗口", "--site", "hall1"]
        argv += ["--by", TECHNICIAN, "--db", site.db, "--broker-site", str(site.broker_dir)]
        done = subprocess.run(
            [PYTHON, "-m", "pingjia", "hub", *argv],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        entered = json.loads(done.stdout)
        assert entered["claim_account"] == wire.claim_user(CODE)
        assert isinstance(entered["broker_reloaded"], int)  # the site's Mosquitto reread its accounts

        wait_until(lambda: terminal.claimed, 30, "the terminal's claim answered")
        [pairing] = paired
        assert pairing.hub_sign == identity.load(site.hub_key).sign_hex
        assert (pairing.username, pairing.department, pairing.counter, pairing.site) == (
            DEVICE,
            "综合受理",
            "11号窗口",
            "hall1",
        )
        assert pairing.broker == site.broker_url
        assert pairing.tech == f"claim:{TECHNICIAN}"

        # The hub rewrites the site a moment after its answer: the terminal's own account works,
        # and the claim account is gone.
        wait_until(lambda: accepted(site.port, DEVICE, pairing.password), 20, "the terminal's account taken")
        assert not accepted(site.port, wire.claim_user(CODE), wire.claim_password(CODE))
        assert not accepted(site.port, DEVICE, "guessed")
        registered = read(site.db, lambda r: r.execute("SELECT id, paired_by FROM devices").fetchall())
        assert [tuple(row) for row in registered] == [(DEVICE, TECHNICIAN)]
        assert hub.desk.counters["claimed"] == 1
    finally:
        terminal.stop()
        hub.stop()
