"""A closed fleet with real processes: a Mosquitto with the site's accounts and ACL (`pingjia hub
broker-config`), the hub, terminals with their console on a pty cable, paired by `pingjia tech pair`.

What must hold: only the hub's signed word changes a terminal (a forged ack cannot make it forget
or stop resending, a forged login cannot rebind its clerk), each account can do only its own job,
configuration cannot be rolled back and survives a reboot without the network, and a replaced
terminal's key counts only for what it signed before its revocation.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from device.events import Configured, ControlRefused, Online, Ready
from device.pairing import load_pairing
from device.state import StateDocument
from hub import identity, registry
from hub.writer import Writer
from protocol import (
    Ack,
    Channel,
    Command,
    CommandName,
    ConfigDoc,
    SigningKey,
    Status,
    StatusState,
    encode_ack,
    encode_command,
    encode_config,
    encode_status,
    hub_status_topic,
    topic,
)
from simulator.cable import Cable
from simulator.processes import MosquittoBroker, ProcessError, TerminalProcess, wait_until
from simulator.site import Site
from tests.conftest import need_mosquitto
from tests.helpers import read
from tests.rawclient import RawClient

pytestmark = [pytest.mark.broker, pytest.mark.slow]

SETTINGS = [
    "thank_you_ms=0",
    "mode=open",
    "amend_window_s=0",
    "misuse_interval_s=0",
    "burst_presses=1000",
    "reconnect_min_s=0.1",
    "reconnect_max_s=0.5",
    "ack_timeout_s=2",
]
FORGER = SigningKey.generate()


@pytest.fixture
def cables(tmp_path: Path) -> Iterator[list[Cable]]:
    made = [Cable(tmp_path / f"console-{index}") for index in range(1, 5)]
    yield made
    for cable in made:
        cable.close()


def staff(db: str) -> None:
    with Writer.open(db) as writer:
        writer.write(registry.add_staff, "E1", name="王芳", department="综合受理")
        writer.write(registry.add_staff, "E2", name="李强", department="综合受理")


def account(terminal: TerminalProcess) -> tuple[str, str]:
    state = StateDocument(terminal.data_dir / "settings.json")
    try:
        pairing = load_pairing(state)
    finally:
        state.close()
    assert pairing is not None
    return pairing.username, pairing.password


def press(terminal: TerminalProcess, count: int) -> None:
    before = len(terminal.thanked)
    for _ in range(count):
        terminal.press(5)
    terminal.wait_for(lambda t: len(t.thanked) >= before + count, 20, f"{count} presses thanked")


def all_acked(terminal: TerminalProcess) -> None:
    top = max(terminal.recorded)
    terminal.wait_for(lambda t: t.acked >= top, 30, f"seq {top} acked")


def test_a_paired_fleet_takes_only_what_its_hub_signed(tmp_path: Path, cables: list[Cable]) -> None:
    need_mosquitto()
    db = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    site = Site(tmp_path / "site", db=db, mosquitto=True).setup()
    staff(db)
    hub = site.hub(log=tmp_path / "hub.log").start()
    one = site.terminal(tmp_path / "t1", cables[0], settings=SETTINGS, log=tmp_path / "t1.log").start()
    two = site.terminal(tmp_path / "t2", cables[1], settings=SETTINGS, log=tmp_path / "t2.log").start()
    attacker: RawClient | None = None
    try:
        hub.wait_online()
        paired = site.pair(one, cables[0], department="综合受理", counter="1号窗口")
        site.pair(two, cables[1], department="综合受理", counter="2号窗口")
        first = str(paired["device"])
        with pytest.raises(ProcessError, match="used"):  # the code shown at pairing cannot pair again
            site.pair(two, cables[1], department="综合受理", counter="2号窗口")
        one.wait_for(lambda t: t.of(Online), 20, "terminal 1 online with its own account")
        site.control("command", "--device", first, "login", "--staff", "E1")
        one.wait_for(lambda t: t.state == "idle" or any(r.staff == "E1" for r in t.recorded.values()), 5, "login")
        press(one, 5)
        all_acked(one)

        # Anonymous clients, and one terminal in another's place, get nowhere.
        assert not RawClient(site.port, "anyone").accepted()
        name, password = account(two)
        assert not RawClient(site.port, first, username=name, password="guessed").accepted()
        neighbour = RawClient(site.port, "neighbour", username=name, password=password)
        assert neighbour.accepted()
        neighbour.subscribe(topic(first, Channel.ACK))
        neighbour.publish(topic(first, Channel.RATINGS), b"a batch in another's name")
        neighbour.publish(topic(first, Channel.ACK), encode_ack(Ack(device=first, upto=10**6, t=1), FORGER))
        press(one, 1)
        all_acked(one)
        assert neighbour.messages == []  # nothing of the other terminal's reached it
        assert read(db, lambda r: r.reject_counts()) == {}  # and nothing it sent reached the hub

        # The hub is away; someone with the broker password of the hub's control account (not its
        # key) floods the terminal with acks for everything, and logs another clerk in.
        hub.stop()
        control_name, control_password = site.control_account() or ("", "")
        attacker = RawClient(site.port, "attacker", username=control_name, password=control_password)
        assert attacker.accepted()
        acked_before = one.acked
        for upto in (10**6, 10**9, 2**62):
            attacker.publish(topic(first, Channel.ACK), encode_ack(Ack(device=first, upto=upto, t=2**50), FORGER))
        attacker.publish(
            topic(first, Channel.ACK), b'{"device":"%s","t":1,"type":"ack","upto":999,"v":1}' % first.encode()
        )
        login = Command(device=first, cmd=CommandName.LOGIN, staff="E2", n=2**40, t=2**50)
        attacker.publish(topic(first, Channel.CMD), encode_command(login, FORGER))
        pinned = Status(device=control_name, state=StatusState.ONLINE, session=2**62)  # "a hub is online", forever
        attacker.publish(hub_status_topic(control_name), encode_status(pinned, FORGER, hub=True), retain=True)
        press(one, 20)  # thanked while the hub is away
        one.wait_for(lambda t: len(t.of(ControlRefused)) >= 5, 20, "the forgeries refused")
        assert one.acked == acked_before
        assert {(e.what, e.reason) for e in one.of(ControlRefused)} == {
            ("ack", "bad_signature"),
            ("command", "bad_signature"),
            ("hub status", "bad_signature"),
        }
        hub.start()
        hub.wait_online()
        all_acked(one)
    finally:
        if attacker is not None:
            attacker.close()
        one.quit()
        two.quit()
        hub.stop()
        site.stop()
    stored = read(
        db, lambda r: r.execute("SELECT seq, staff FROM ratings WHERE device = ? ORDER BY seq", (first,)).fetchall()
    )
    assert [seq for seq, _staff in stored] == sorted(one.thanked) == list(range(1, 27))  # each once, none lost
    assert {clerk for _seq, clerk in stored} == {"E1"}  # the forged login credited nobody


def test_configuration_is_signed_kept_across_a_reboot_offline_and_never_rolled_back(
    tmp_path: Path, cables: list[Cable]
) -> None:
    need_mosquitto()
    db = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    site = Site(tmp_path / "site", db=db, mosquitto=True).setup()
    staff(db)
    hub = site.hub(log=tmp_path / "hub.log").start()
    one = site.terminal(tmp_path / "t1", cables[0], settings=SETTINGS, log=tmp_path / "t1.log").start()
    try:
        hub.wait_online()
        device = str(site.pair(one, cables[0], department="综合受理", counter="1号窗口")["device"])
        one.wait_for(lambda t: t.of(Online), 20, "online")
        site.control("configure", "--department", "综合受理", "--set", "reason_labels=慢,凶,乱,烦,其他")
        site.control("configure", "--device", device, "--set", "staff=E2")
        one.wait_for(lambda t: len(t.of(Configured)) >= 2, 20, "two documents in force")
        newest = one.of(Configured)[-1]
        assert newest.settings == {"reason_labels": "慢,凶,乱,烦,其他", "staff": "E2"}
        press(one, 1)
        assert one.recorded[1].staff == "E2"

        # An older document, genuinely signed by the hub, published again: a rollback.
        keys = identity.load(site.hub_key)
        older = ConfigDoc(device=device, version=newest.version - 1, t=1, settings={"mode": "invited"})
        control_name, control_password = site.control_account() or ("", "")
        replayer = RawClient(site.port, "replayer", username=control_name, password=control_password)
        replayer.publish(topic(device, Channel.CONFIG), encode_config(older, keys.sign), retain=True)
        one.wait_for(lambda t: t.of(ControlRefused), 20, "the rollback refused")
        assert [(e.what, e.reason) for e in one.of(ControlRefused)] == [("configuration", "rollback")]
        replayer.close()

        # Rebooted with the broker gone: the last good document is still in force.
        one.quit()
        site.stop()
        again = TerminalProcess(
            tmp_path / "t1", broker_url=None, settings=SETTINGS, log=tmp_path / "t1b.log", hub_key=""
        )
        again.start()
        again.wait_for(lambda t: t.ready, 20, "ready")
        [ready] = again.of(Ready)
        assert (ready.config_version, ready.paired) == (newest.version, True)
        again.quit()
    finally:
        one.quit()
        hub.stop()
        site.stop()


def test_a_replaced_terminal_counts_only_for_what_it_signed_before(
    mosquitto: MosquittoBroker, tmp_path: Path, cables: list[Cable]
) -> None:
    # On an open broker (no accounts), so that the old terminal can still reach the hub after its
    # revocation: the hub itself refuses what its key signs from then on.
    db = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    site = Site(tmp_path / "site", db=db, mosquitto=False, broker_url=mosquitto.url).setup()
    staff(db)
    hub = site.hub(log=tmp_path / "hub.log").start()
    old = site.terminal(tmp_path / "old", cables[0], settings=SETTINGS, log=tmp_path / "old.log").start()
    new = site.terminal(tmp_path / "new", cables[1], settings=SETTINGS, log=tmp_path / "new.log").start()
    try:
        hub.wait_online()
        retired = str(site.pair(old, cables[0], department="综合受理", counter="3号窗口")["device"])
        site.control("command", "--device", retired, "login", "--staff", "E1")
        press(old, 3)
        all_acked(old)
        from device.events import PairingCodeShown

        new.wait_for(lambda t: t.of(PairingCodeShown), 20, "the new terminal's code")
        replaced = site._pingjia(
            "tech",
            "replace",
            "--old",
            retired,
            "--port",
            cables[1].tool_port,
            "--credential",
            str(site.credential),
            "--db",
            db,
            "--hub-key",
            str(site.hub_key),
            "--broker",
            mosquitto.url,
            "--code",
            new.of(PairingCodeShown)[-1].code,
        )
        successor = str(replaced["device"])
        new.wait_for(lambda t: t.of(Online), 20, "the new terminal online")
        press(new, 2)
        all_acked(new)
        press(old, 1)  # the old one, still running with its revoked key
        wait_until(lambda: read(db, lambda r: r.reject_counts()).get("revoked", 0) >= 1, 20, "the late rating refused")
    finally:
        old.quit()
        new.quit()
        hub.stop()
    placed = read(
        db,
        lambda r: r.execute(
            "SELECT id, department, counter, revoked_ms, replaced_by FROM devices ORDER BY added_ms"
        ).fetchall(),
    )
    rows = {row[0]: row[1:] for row in placed}
    assert rows[successor][:2] == ("综合受理", "3号窗口")
    assert rows[retired][2] is not None  # revoked ...
    assert rows[retired][3] == successor  # ... by its successor
    stored = read(db, lambda r: r.execute("SELECT device, count(*) FROM ratings GROUP BY device").fetchall())
    assert dict(stored) == {retired: 3, successor: 2}  # the old key's three before, none after
    assert {r.staff for r in new.recorded.values()} == {"E1"}  # the clerk moved with the placement


def test_a_terminal_claims_its_pairing_without_a_laptop(tmp_path: Path) -> None:
    """The operator types the code the terminal shows at the hub (`pingjia hub claim`); the terminal,
    told only the site's broker, claims its registration with an account derived from that code."""
    from device.events import PairedWith, PairingCodeShown

    need_mosquitto()
    db = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    site = Site(tmp_path / "site", db=db, mosquitto=True).setup()
    staff(db)
    hub = site.hub(log=tmp_path / "hub.log").start()
    claimer = TerminalProcess(
        tmp_path / "t1",
        broker_url=None,
        settings=[*SETTINGS, f"claim_broker={site.broker_url}"],
        log=tmp_path / "t1.log",
        hub_key="",
    ).start()
    try:
        hub.wait_online()
        claimer.wait_for(lambda t: t.of(PairingCodeShown), 30, "the code on the screen")
        with pytest.raises(ProcessError, match="6 digits"):
            site.claim("12ab", department="综合受理", counter="7号窗口")
        site.claim(claimer.of(PairingCodeShown)[-1].code, department="综合受理", counter="7号窗口")
        claimer.wait_for(lambda t: t.of(PairedWith), 30, "the claim answered")
        [paired] = claimer.of(PairedWith)
        assert (paired.hub_key, paired.department, paired.counter) == (site.hub_sign[:16], "综合受理", "7号窗口")
        claimer.wait_for(lambda t: t.of(Online), 30, "online with its own account")
        site.control("command", "--device", claimer.device, "login", "--staff", "E1")
        press(claimer, 3)
        all_acked(claimer)
    finally:
        claimer.quit()
        hub.stop()
        site.stop()
    row = read(db, lambda r: r.execute("SELECT department, counter, paired_by FROM devices").fetchall())
    assert row == [("综合受理", "7号窗口", "site-tech")]
    accounts = read(
        db, lambda r: r.execute("SELECT role, revoked_ms IS NULL FROM broker_users ORDER BY role").fetchall()
    )
    assert ("claim", 0) in accounts  # the claim account is spent
