"""Poison through a real Mosquitto: no message, retained or not, stops a terminal or the hub, or
makes a restart die again; each is recorded once, and everyone else's ratings keep flowing.

The messages are the ones that stopped the product before: an integer of 5,000 digits (over
Python's int() limit) where a number belongs, and a lone surrogate in an ack's text.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from device import identity
from device.events import HealthReported, Refused
from device.outbox import Outbox
from hub import registry
from hub.config import HubConfig
from hub.ingest import Ingest
from hub.writer import Writer
from protocol import Channel, limits, topic
from simulator.processes import HubProcess, MosquittoBroker, TerminalProcess, wait_until
from tests.helpers import batch_bytes, chain, make_terminals, read
from tests.rawclient import RawClient

pytestmark = [pytest.mark.broker, pytest.mark.slow]

HUGE = b"9" * 5_000
SETTINGS = ["thank_you_ms=0", "mode=open", "amend_window_s=0", "misuse_interval_s=0", "reconnect_max_s=0.5"]


def poison_number(template: bytes, field: bytes) -> bytes:
    """`template` with the number after `"field":` replaced by 5,000 nines."""
    head, _, rest = template.partition(b'"' + field + b'":')
    digits = len(rest) - len(rest.lstrip(b"0123456789"))
    return head + b'"' + field + b'":' + HUGE + rest[digits:]


def rejects(db: str, name: str) -> list[tuple[str, int]]:
    with sqlite3.connect(db.removeprefix("sqlite:///")) as connection:
        rows = connection.execute("SELECT reason, size FROM rejects WHERE topic = ?", (name,)).fetchall()
    return [(reason, size) for reason, size in rows]


def test_the_hub_survives_a_poison_batch_and_a_retained_poison_health_and_so_does_its_restart(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    key = identity.create(tmp_path / "good", "good").key
    with Writer.open(db) as writer:
        writer.write(registry.add_device, "good", key.public.hex, department="A")
        writer.write(registry.add_device, "evil", key.public.hex, department="A")
    records = chain(key, "good", 3)
    client = RawClient(mosquitto.port, "attacker")
    client.subscribe("pingjia/v1/good/ack")
    health, ratings = topic("evil", Channel.HEALTH), topic("evil", Channel.RATINGS)
    health_poison = b'{"device":"evil","t":' + HUGE + b',"type":"health","v":1}'
    # Retained before the hub ever starts: it meets it at its first subscription, and at every one after.
    client.publish(health, health_poison, retain=True)
    hub = HubProcess(db=db, broker_url=mosquitto.url, log=tmp_path / "hub.log").start()
    try:
        hub.wait_online()
        client.publish(ratings, poison_number(batch_bytes(key, chain(key, "evil", 1)), b"first"))
        wait_until(lambda: len(rejects(db, ratings)) == 1, 20, "the poison batch refused")
        client.publish(topic("good", Channel.RATINGS), batch_bytes(key, records[:2]))
        client.wait_until(topic("good", Channel.ACK), lambda acks: any(b'"upto":2' in a for a in acks))
        assert hub.alive()

        hub.kill()  # and again, with the retained poison still there and the batch's fate in the broker's hands
        hub.start()
        hub.wait_online()
        client.publish(topic("good", Channel.RATINGS), batch_bytes(key, records[2:]))
        client.wait_until(topic("good", Channel.ACK), lambda acks: any(b'"upto":3' in a for a in acks))
        assert hub.alive()
    finally:
        hub.stop()
        client.close()
    # Each recorded once: the batch was acknowledged to the broker (not delivered again), and the
    # retained health, delivered at both subscriptions, was recognised the second time.
    assert rejects(db, ratings) == [
        ("malformed", len(poison_number(batch_bytes(key, chain(key, "evil", 1)), b"first")))
    ]
    assert rejects(db, health) == [("malformed", len(health_poison))]
    assert read(db, lambda reader: reader.stored_seqs("good")) == [1, 2, 3]
    log = (tmp_path / "hub.log").read_text()
    assert "Traceback" not in log
    assert "leaked semaphore" not in log  # the killed hub's preparing processes left nothing behind


def test_a_terminal_survives_retained_poison_on_the_hub_status_and_its_command_topic(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    with Writer.open(db) as writer:
        (folder,) = make_terminals(writer, tmp_path, 1)
    attacker = RawClient(mosquitto.port, "attacker")
    status_poison = b'{"device":"evil-hub","session":' + HUGE + b',"state":"online","type":"status","v":1}'
    command_poison = b'{"cmd":"login","device":"t01","staff":"E1","type":"cmd","v":' + HUGE + b"}"
    attacker.publish("pingjia/hub/evil-hub/status", status_poison, retain=True)  # every terminal of the site hears it
    attacker.publish(topic("t01", Channel.CMD), command_poison, retain=True)
    hub = HubProcess(db=db, broker_url=mosquitto.url, log=tmp_path / "hub.log").start()
    terminal = TerminalProcess(folder, broker_url=mosquitto.url, settings=SETTINGS, log=tmp_path / "t01.log")

    def unreadable(t: TerminalProcess) -> list[str]:
        return [detail for detail in t.errors() if "unreadable" in detail]

    try:
        hub.wait_online()
        for run in range(2):  # the restart meets the same retained poison, and lives too
            terminal.start()
            terminal.wait_for(lambda t: t.online, 30, "the terminal to connect")
            terminal.login("E1")
            terminal.press(5)
            expected = run + 1
            terminal.wait_for(lambda t: t.acked == expected, 30, "the rating acked")
            terminal.wait_for(lambda t: len(unreadable(t)) >= 2, 10, "both poisons reported")
            if run == 0:
                # An ack no UTF-8 writer can write back, sent live: reported, and the terminal goes on.
                attacker.publish(
                    topic("t01", Channel.ACK),
                    b'{"device":"t01","rejects":[{"detail":"\\ud800","reason":"malformed"}],"t":1,"type":"ack",'
                    b'"upto":1,"v":1}',
                )
                terminal.wait_for(lambda t: any("unreadable ack" in d for d in unreadable(t)), 10, "the bad ack")
                # A reconnect brings the retained poison again; it is not reported again.
                mosquitto.stop()
                terminal.wait_for(lambda t: not t.online, 30, "the terminal to see the broker gone")
                mosquitto.start()
                terminal.wait_for(lambda t: t.online, 30, "the terminal to reconnect")
                hub.wait_online()
                terminal.press(4)
                terminal.wait_for(lambda t: t.acked == 2, 30, "a rating after the reconnect")
                details = unreadable(terminal)
                assert sum("unreadable hub status" in d for d in details) == 1
                assert sum("unreadable command" in d for d in details) == 1
                counted = [e.fields["unreadable"] for e in terminal.of(HealthReported)]
                assert counted[-1] == 3  # the terminal's health counts them for the hub and a technician
                terminal.quit()
                terminal.events.clear()
        assert terminal.alive()
    finally:
        terminal.quit()
        hub.stop()
        attacker.close()
    assert read(db, lambda reader: reader.stored_seqs("t01")) == [1, 2, 3]


def test_a_terminal_and_a_hub_fed_the_largest_seq(mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    """seq 2**63-1 is stored, thanked, sent, stored at the hub and acked; the next press finds the
    terminal out of service (never thanked), and both processes stay up."""
    db = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    made = identity.create(tmp_path / "t01", "t01")
    # The terminal has used every seq but the last: its newest record, acked, is seq 2**63-2.
    (before,) = chain(made.key, "t01", 1, first=limits.MAX_SEQ - 1)
    outbox = Outbox(tmp_path / "t01" / identity.OUTBOX_FILE, device="t01")
    outbox.close()
    with sqlite3.connect(tmp_path / "t01" / identity.OUTBOX_FILE) as raw:
        raw.execute(
            "INSERT INTO records(seq, body, hash, created_ms) VALUES (?, ?, ?, 0)",
            (before.seq, before.canonical(), before.hash()),
        )
        raw.execute("UPDATE meta SET value = ? WHERE key = 'acked'", (str(before.seq),))
    with Writer.open(db) as writer:
        writer.write(registry.add_device, "t01", made.public_hex, department="A")
        with writer.transaction():
            Ingest(writer, HubConfig()).receive(topic("t01", Channel.RATINGS), batch_bytes(made.key, [before]), 0)
        writer.write(lambda conn: conn.execute("UPDATE devices SET upto = ? WHERE id = 't01'", (before.seq,)))
    hub = HubProcess(db=db, broker_url=mosquitto.url, log=tmp_path / "hub.log").start()
    terminal = TerminalProcess(tmp_path / "t01", broker_url=mosquitto.url, settings=SETTINGS, log=tmp_path / "t.log")
    try:
        hub.wait_online()
        terminal.start()
        terminal.wait_for(lambda t: t.online, 30, "the terminal to connect")
        terminal.login("E1")
        terminal.press(5)
        terminal.wait_for(lambda t: t.thanked == [limits.MAX_SEQ], 15, "seq 2**63-1 thanked")
        terminal.wait_for(lambda t: t.acked == limits.MAX_SEQ, 15, "seq 2**63-1 acked")
        terminal.press(4)
        terminal.wait_for(lambda t: t.state == "out_of_service", 15, "out of service: no seq is left")
        terminal.press(3)
        terminal.wait_for(lambda t: bool(t.of(Refused)), 15, "a press refused")
        assert terminal.thanked == [limits.MAX_SEQ]
        assert terminal.alive()
        assert hub.alive()
    finally:
        terminal.quit()
        hub.stop()
    assert read(db, lambda reader: reader.stored_seqs("t01")) == [limits.MAX_SEQ - 1, limits.MAX_SEQ]
