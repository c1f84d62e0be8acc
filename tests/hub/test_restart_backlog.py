"""A hub that comes back to more queued messages than the broker lets be in flight to it.

The broker delivers a resumed session's queue right after CONNACK; if those messages were never
acknowledged (PUBACK), the in-flight window would stay full and the hub would stall for good.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hub.queries import Reader
from hub.writer import Writer
from protocol import Channel, decode_ack, topic
from simulator.loadgen import Fleet
from simulator.processes import HubProcess, MosquittoBroker, wait_until
from tests.rawclient import RawClient

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_a_restarted_hub_drains_its_queue_and_answers_every_terminal(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    # 60 terminals' backlogs of 500 ratings each (about 12 MB) queued for the hub: after its restart
    # they arrive before the broker confirms the hub's subscriptions.
    fleet = Fleet(devices=60, records=500, per_message=500)
    small = Fleet(devices=30, records=100, per_message=1)  # and 3,000 more messages than may be in flight
    with Writer.open(db) as writer:
        fleet.register(writer)
        small.register(writer)
    hub = HubProcess(db=db, broker_url=mosquitto.url, log=tmp_path / "hub.log").start()
    hub.wait_online()  # its persistent session now exists at the broker
    hub.stop()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="terminals", protocol=paho.MQTTv5)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    sent = [
        client.publish(topic(device, Channel.RATINGS), payload, qos=1)
        for queued in (fleet, small)
        for device, _, payload in queued.messages()
    ]
    for info in sent:
        info.wait_for_publish(30)
    client.disconnect()
    client.loop_stop()
    answers = RawClient(mosquitto.port, "terminals-listening")
    answers.subscribe("pingjia/v1/+/ack")
    hub.start()
    reader = Reader.open(db)
    try:
        total = fleet.total_records + small.total_records
        wait_until(lambda: reader.rating_count() == total, 60, f"all {total} queued ratings stored")
        # ... and every terminal was told so: no answer is dropped while the hub catches up
        for queued, last in ((fleet, 500), (small, 100)):
            for device in queued.keys:
                answers.wait_until(topic(device, Channel.ACK), _acked_upto(last), timeout_s=20)
    finally:
        reader.close()
        answers.close()
        hub.stop()


def _acked_upto(last: int) -> Callable[[list[bytes]], bool]:
    return lambda raw: any(decode_ack(payload).upto == last for payload in raw)


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found.add(int(child))
            found |= _descendants(int(child))
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_killed_hub_leaves_no_worker_processes_behind(mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    fleet = Fleet(devices=4, records=50, per_message=10)
    with Writer.open(db) as writer:
        fleet.register(writer)
    hub = HubProcess(db=db, broker_url=mosquitto.url, log=tmp_path / "hub.log")
    hub.start()
    hub.wait_online()
    fleet.run(mosquitto.port)  # the hub has prepared these in its worker processes
    assert hub.process is not None
    workers = {pid for pid in _descendants(hub.process.pid) if "spawn_main" in _cmdline(pid)}
    assert workers, "the hub prepares in worker processes"
    hub.kill()  # SIGKILL: no chance to shut its pool down
    wait_until(lambda: not any(_alive(pid) for pid in workers), 10, "the hub's workers to exit")
