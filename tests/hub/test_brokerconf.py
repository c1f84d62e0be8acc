"""The site's Mosquitto (hub.brokerconf): password hashes as mosquitto_passwd makes them, broker accounts
in the hub database, the files, and — on a real Mosquitto running the generated configuration — what
each account can and cannot do.

"Never receives" is shown without waiting for silence: the forbidden message is refused first (a v5
PUBACK "Not authorized"), then an allowed marker is sent on the same path; the broker delivers in
order, so once the marker is in, anything forbidden would have arrived before it.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from hub.brokerconf import (
    TUNING,
    BrokerUser,
    add_broker_user,
    add_command,
    broker_users,
    ensure_hub_secret,
    hash_password,
    hub_usernames,
    load_hub_secret,
    make_tls,
    new_password,
    render_site,
    revoke_broker_user,
    verify_password,
)
from hub.errors import RegistryError, StoreError
from hub.queries import Reader
from hub.writer import Writer
from protocol.topics import Channel, hub_filters, hub_status_topic, terminal_filters, topic
from simulator.processes import BrokerProcess, free_port, wait_until
from tests.conftest import need_mosquitto
from tests.hub.conftest import HubDb

NOT_AUTHORIZED = 0x87
ROOT = os.geteuid() == 0
PASSWORDS = {
    name: new_password()
    for name in ("t-a", "t-b", "t-c", "t-new", "t-gone", "tech-1", "claim-x", "claim-y", "claim-old")
}
ROLES = {"tech-1": "tech", "claim-x": "claim", "claim-y": "claim", "claim-old": "claim"}


def config(device: str) -> str:
    return f"pingjia/v1/{device}/config"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="pingjia hub")
    add_command(parser.add_subparsers(dest="hub_command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


# -- passwords ----------------------------------------------------------------------------------------


def test_a_hash_is_what_mosquitto_passwd_writes(tmp_path: Path) -> None:
    binary = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    if not Path(binary).exists():
        need_mosquitto()  # fails under CI, skips elsewhere
        pytest.skip("mosquitto_passwd is not installed")
    password = "秘密 pass:word"
    (tmp_path / "passwd").write_text("", encoding="utf-8")
    subprocess.run([binary, "-b", str(tmp_path / "passwd"), "someone", password], check=True, capture_output=True)
    name, theirs = (tmp_path / "passwd").read_text(encoding="utf-8").strip().split(":", 1)
    assert name == "someone"
    _, seven, iterations, salt, _digest = theirs.split("$")
    assert (seven, iterations) == ("7", "101")
    assert hash_password(password, salt=base64.b64decode(salt), iterations=int(iterations)) == theirs
    assert verify_password(password, theirs)
    assert not verify_password(password + "x", theirs)
    ours = hash_password(password)
    assert ours.startswith("$7$101$")
    assert ours != hash_password(password)  # a new salt each time
    assert verify_password(password, ours)


def test_bad_passwords_and_hashes_are_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        hash_password("")
    with pytest.raises(ValueError, match="iterations"):
        hash_password("x", iterations=0)
    assert not verify_password("x", "x")
    assert not verify_password("x", "$7$101$!!!!$????")
    assert len(new_password()) == 32
    assert new_password() != new_password()


# -- accounts -----------------------------------------------------------------------------------------


def test_accounts_are_added_replaced_revoked_and_expire(hub_db: HubDb) -> None:
    write = hub_db.writer.write
    now = now_ms()
    write(add_broker_user, "t1", hash_password("one"), role="terminal")
    write(add_broker_user, "pingjia-hub", hash_password("hub"), role="hub")
    write(add_broker_user, "claim-1", hash_password("c"), role="claim", device="t9", expires_ms=now + 60_000)
    write(add_broker_user, "claim-2", hash_password("c"), role="claim", expires_ms=now - 1)
    write(add_broker_user, "t1", hash_password("two"), role="terminal")  # a new password replaces the hash
    listed = broker_users(hub_db.reader, now)
    assert [(u.username, u.role, u.device) for u in listed] == [
        ("claim-1", "claim", "t9"),
        ("pingjia-hub", "hub", None),
        ("t1", "terminal", "t1"),  # a terminal's device is its username
    ]
    (terminal,) = [u for u in listed if u.username == "t1"]
    assert verify_password("two", terminal.pw_hash)
    assert not verify_password("one", terminal.pw_hash)
    assert terminal.pw_hash not in repr(terminal)
    write(revoke_broker_user, "t1", now)
    write(revoke_broker_user, "t1", now + 5)  # again: the first revocation stays
    assert hub_db.rows("SELECT revoked_ms FROM broker_users WHERE username = 't1'") == [(now,)]
    assert [u.username for u in broker_users(hub_db.reader, now)] == ["claim-1", "pingjia-hub"]
    assert [u.username for u in broker_users(hub_db.reader, now + 60_000)] == ["pingjia-hub"]  # claim-1 expired
    write(add_broker_user, "t1", hash_password("three"), role="terminal")  # a new password opens it again
    assert "t1" in [u.username for u in broker_users(hub_db.reader, now)]
    with pytest.raises(RegistryError, match="no broker account"):
        write(revoke_broker_user, "nobody", now)


@pytest.mark.parametrize(
    ("username", "role", "device", "error"),
    [
        ("a/b", "terminal", None, "must be 1..64"),
        ("+", "terminal", None, "must be 1..64"),
        ("a" * 65, "terminal", None, "must be 1..64"),
        ("t1", "admin", None, "not one of"),
        ("pingjia-hub-9", "terminal", None, "hub accounts"),
        ("hub-1", "hub", None, "hub accounts"),
        ("claim-1", "terminal", None, "claim accounts"),
        ("claim-1", "tech", None, "claim accounts"),
        ("c1", "claim", None, "claim accounts"),
        ("t1", "terminal", "t2", "is its device id"),
    ],
)
def test_an_account_that_could_borrow_anothers_rights_is_refused(
    hub_db: HubDb, username: str, role: str, device: str | None, error: str
) -> None:
    with pytest.raises(RegistryError, match=error):
        hub_db.writer.write(add_broker_user, username, hash_password("x"), role=role, device=device)


def test_an_account_keeps_its_role_and_takes_only_a_hash(hub_db: HubDb) -> None:
    hub_db.writer.write(add_broker_user, "t1", hash_password("x"), role="terminal")
    with pytest.raises(RegistryError, match="is a terminal account"):
        hub_db.writer.write(add_broker_user, "t1", hash_password("x"), role="tech")
    with pytest.raises(RegistryError, match=r"not a Mosquitto \$7\$ hash"):
        hub_db.writer.write(add_broker_user, "t2", "plain-text\nt3:$7$1$x$y", role="terminal")
    with pytest.raises(StoreError, match="inside the writer's transaction"):
        add_broker_user(hub_db.writer.db, "t2", hash_password("x"), role="terminal")


# -- the files ----------------------------------------------------------------------------------------


def test_the_site_keeps_the_tuning_of_the_dev_configuration() -> None:
    dev = {}
    for line in (Path(__file__).parents[2] / "hub" / "mosquitto.conf").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition(" ")
            dev[name] = value
    assert {name: dev.get(name) for name, _ in TUNING} == dict(TUNING)


def test_the_acl_gives_each_role_its_topics_and_denies_the_patterns_to_the_others(tmp_path: Path) -> None:
    users = [
        BrokerUser("t1", hash_password("x"), "terminal", "t1"),
        BrokerUser("pingjia-hub", hash_password("x"), "hub"),
        BrokerUser("claim-1", hash_password("x"), "claim"),
        BrokerUser("tech-1", hash_password("x"), "tech"),
    ]
    files = render_site(users, directory=tmp_path, port=1884, persistence_dir=tmp_path / "store", tls=None)
    conf = files["mosquitto.conf"].splitlines()
    assert "allow_anonymous false" in conf
    assert f"password_file {tmp_path.resolve() / 'passwd'}" in conf
    assert conf[conf.index("listener 1884 127.0.0.1") + 1] == "use_username_as_clientid true"
    assert not any(line.startswith("listener 1883") for line in conf)  # never the machine's default port
    assert files["passwd"].splitlines()[0].startswith("claim-1:$7$101$")
    blocks = {block.splitlines()[0]: block.splitlines()[1:] for block in files["acl"].split("\n\n")}
    patterns = [line for line in files["acl"].splitlines() if line.startswith("pattern")]
    assert patterns == [
        "pattern write pingjia/v1/%u/ratings",
        "pattern write pingjia/v1/%u/status",
        "pattern write pingjia/v1/%u/health",
        "pattern write pingjia/v1/%u/event",
        "pattern read pingjia/v1/%u/ack",
        "pattern read pingjia/v1/%u/cmd",
        "pattern read pingjia/v1/%u/config",
        "pattern read pingjia/v1/%u/card",
    ]
    assert blocks["user t1"] == ["topic read pingjia/hub/+/status"]
    assert blocks["user claim-1"] == [
        "topic deny pingjia/v1/claim-1/#",
        "topic write pingjia/claim/claim-1/request",
        "topic read pingjia/claim/claim-1/reply",
    ]
    for name in ("pingjia-hub", "tech-1"):
        assert blocks[f"user {name}"][0] == f"topic deny pingjia/v1/{name}/#"
    assert not any("write" in line for line in blocks["user tech-1"])
    with pytest.raises(ValueError, match="spaces"):
        render_site(users, directory=tmp_path / "a b", port=1884, persistence_dir=tmp_path, tls=None)


def test_hub_passwords_are_made_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "site" / "hub.secret"
    path.parent.mkdir()
    first = ensure_hub_secret(path, hub_usernames(1))
    assert list(first) == ["pingjia-hub", "pingjia-hub-control"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = ensure_hub_secret(path, hub_usernames(3))
    assert second["pingjia-hub"] == first["pingjia-hub"]
    assert sorted(second) == ["pingjia-hub", "pingjia-hub-1", "pingjia-hub-2", "pingjia-hub-3", "pingjia-hub-control"]
    assert load_hub_secret(path) == second
    renewed = ensure_hub_secret(path, ["pingjia-hub"], renew=["pingjia-hub"])
    assert renewed["pingjia-hub"] != first["pingjia-hub"]
    path.write_text('{"pingjia-hub": "' + "s3cr3t" + '", "x": 1}', encoding="utf-8")
    with pytest.raises(ValueError, match="not a JSON object") as caught:
        load_hub_secret(path)
    assert "s3cr3t" not in str(caught.value)
    with pytest.raises(ValueError, match="cannot read"):
        load_hub_secret(tmp_path / "missing")


def test_the_ca_is_kept_and_the_broker_certificate_follows_its_hostnames(tmp_path: Path) -> None:
    first = make_tls(tmp_path / "tls", ["hall.example", "10.0.0.5"])
    assert stat.S_IMODE(first.key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "tls" / "ca.key").stat().st_mode) == 0o600
    ca, cert = first.ca.read_bytes(), first.cert.read_bytes()
    again = make_tls(tmp_path / "tls", ["10.0.0.5", "hall.example"])
    assert (again.ca.read_bytes(), again.cert.read_bytes()) == (ca, cert)
    moved = make_tls(tmp_path / "tls", ["hall.example", "10.0.0.6"])
    assert moved.ca.read_bytes() == ca
    assert moved.cert.read_bytes() != cert
    for bad in ([], ["bad host"], ["-x.example"]):
        with pytest.raises(ValueError, match="hostname"):
            make_tls(tmp_path / "tls", bad)


def test_the_command_says_what_is_wrong_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    out = str(tmp_path / "site")
    for argv, error in [
        (["--tls"], "--tls needs at least one --hostname"),
        (["--hostname", "h"], "it needs --tls"),
        (["--hub-workers", "0"], "at least one worker"),
        (["--port", "0"], "not in 1..65535"),
        (["--reload-pid", "999999999"], "no such process"),
    ]:
        assert run_cli(["broker-config", "--db", db, "--out", out, *argv]) == 2
        captured = capsys.readouterr()
        assert captured.err.count("\n") == 1
        assert captured.err.startswith("pingjia hub broker-config: ")
        assert error in captured.err
        assert "Traceback" not in captured.err
    assert run_cli(["broker-config", "--db", db, "--out", out, "--port", "2883", "--hub-workers", "2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["accounts"] == {"hub": 4}
    assert summary["hub_accounts"] == ["pingjia-hub", "pingjia-hub-1", "pingjia-hub-2", "pingjia-hub-control"]
    assert summary["listeners"] == ["mqtt://127.0.0.1:2883"]
    assert stat.S_IMODE(Path(summary["files"]["passwd"]).stat().st_mode) == 0o600


# -- on a real Mosquitto running the generated site ---------------------------------------------------


class SiteBroker(BrokerProcess):
    kind = "mosquitto"

    def __init__(self, conf: Path, port: int) -> None:
        super().__init__(port, log=conf.parent / "mosquitto.log")
        self.conf = conf

    def argv(self) -> list[str]:
        return [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(self.conf)]


class Peer:
    """A bare MQTT client of the site's broker (paho, no reconnects): what the broker answers, and
    what it delivers."""

    def __init__(
        self, port: int, username: str | None, password: str | None, *, client_id: str = "", protocol: int = 5
    ) -> None:
        self.connack: ReasonCode | None = None
        self.disconnected = False
        self.messages: list[tuple[str, bytes]] = []
        self._acks: dict[int, ReasonCode] = {}
        self._subacks: dict[int, list[int]] = {}
        self._condition = threading.Condition()
        version = paho.MQTTv5 if protocol == 5 else paho.MQTTv311
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"peer-{username}",
            protocol=version,
            reconnect_on_failure=False,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.wait(lambda: self.connack is not None, "a CONNACK")

    # paho's network thread: note what came, and wake whoever waits for it.

    def _on_connect(self, _client, _userdata, _flags, reason: ReasonCode, _properties) -> None:
        with self._condition:
            self.connack = reason
            self._condition.notify_all()

    def _on_disconnect(self, *_args) -> None:
        with self._condition:
            self.disconnected = True
            self._condition.notify_all()

    def _on_publish(self, _client, _userdata, mid: int, reason: ReasonCode, _properties) -> None:
        with self._condition:
            self._acks[mid] = reason
            self._condition.notify_all()

    def _on_subscribe(self, _client, _userdata, mid: int, codes: list[ReasonCode], _properties) -> None:
        with self._condition:
            self._subacks[mid] = [code.value for code in codes]
            self._condition.notify_all()

    def _on_message(self, _client, _userdata, message: paho.MQTTMessage) -> None:
        with self._condition:
            self.messages.append((message.topic, bytes(message.payload)))
            self._condition.notify_all()

    def wait(self, condition: Callable[[], bool], what: str, timeout_s: float = 10) -> None:
        with self._condition:
            assert self._condition.wait_for(condition, timeout_s), f"timed out waiting for {what}"

    @property
    def accepted(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def publish(self, name: str, payload: bytes = b"x", *, retain: bool = False) -> int:
        """Publish at QoS 1; 0 if the broker took it (its PUBACK says success, or "no matching
        subscribers"), else the PUBACK's reason code (0x87: not authorized)."""
        mid = self.client.publish(name, payload, qos=1, retain=retain).mid
        self.wait(lambda: mid in self._acks, f"the PUBACK of {name}")
        reason = self._acks[mid]
        return int(reason.value) if reason.is_failure else 0

    def subscribe(self, *filters: str) -> list[int]:
        mid = self.client.subscribe([(f, 1) for f in filters])[1]
        assert mid is not None
        self.wait(lambda: mid in self._subacks, "a SUBACK")
        return self._subacks[mid]

    def wait_for(self, name: str, payload: bytes) -> None:
        self.wait(lambda: (name, payload) in self.messages, f"{payload!r} on {name}")

    def topics(self) -> set[str]:
        with self._condition:
            return {name for name, _ in self.messages}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.client._reset_sockets()  # its wake-up socket pair too, now rather than whenever gc gets to it


@dataclass
class Site:
    directory: Path
    db: str
    port: int
    argv: list[str]
    broker: SiteBroker
    hub_passwords: dict[str, str]
    peers: list[Peer] = field(default_factory=list)

    def peer(self, username: str | None, password: str | None = None, **options: object) -> Peer:
        """A client of the site's broker as `username` (with its password unless given); closed after the test."""
        if password is None and username is not None:
            password = PASSWORDS.get(username) or self.hub_passwords[username]
        self.peers.append(Peer(self.port, username, password, **options))  # type: ignore[arg-type]
        return self.peers[-1]


@pytest.fixture
def site(running_site: Site) -> Iterator[Site]:
    yield running_site
    while running_site.peers:
        running_site.peers.pop().close()


@pytest.fixture(scope="module")
def running_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    need_mosquitto()
    directory = tmp_path_factory.mktemp("brokerconf")
    db = f"sqlite:///{directory / 'hub.sqlite3'}"
    now = now_ms()
    with Writer.open(db) as writer:
        for name, password in PASSWORDS.items():
            if name == "t-new":
                continue  # added by the reload test
            expires = now - 1 if name == "claim-old" else now + 600_000 if name.startswith("claim-") else None
            writer.write(
                add_broker_user, name, hash_password(password), role=ROLES.get(name, "terminal"), expires_ms=expires
            )
        writer.write(revoke_broker_user, "t-gone", now)
    port = free_port()
    argv = ["broker-config", "--db", db, "--out", str(directory / "site"), "--port", str(port), "--hub-workers", "2"]
    argv += ["--run-as", "root"] if ROOT else []  # as root, Mosquitto would drop to a user who cannot read the files
    assert run_cli(argv) == 0
    broker = SiteBroker(directory / "site" / "mosquitto.conf", port)
    broker.start()
    try:
        yield Site(directory, db, port, argv, broker, load_hub_secret(directory / "site" / "hub.secret"))
    finally:
        broker.stop()


@pytest.mark.broker
@pytest.mark.slow
def test_no_anonymous_client_no_wrong_password_no_closed_account(site: Site) -> None:
    for peer in (
        site.peer(None),
        site.peer(None, protocol=3),
        site.peer("t-a", "wrong"),
        site.peer("t-a", "wrong", protocol=3),
        site.peer("nobody", "x"),
        site.peer("t-gone"),  # revoked
        site.peer("claim-old"),  # expired
    ):
        assert peer.connack is not None
        assert peer.connack.value == NOT_AUTHORIZED  # MQTT 3.1.1's return code 5, as paho reports it
    for name in ("t-a", "tech-1", "claim-x", "pingjia-hub", "pingjia-hub-2"):
        peer = site.peer(name)
        assert peer.accepted, name


@pytest.mark.broker
@pytest.mark.slow
def test_a_terminal_publishes_only_its_own_ratings_and_telemetry(site: Site) -> None:
    shared = site.peer("pingjia-hub")  # a hub worker on the shared subscription
    assert shared.subscribe(*hub_filters("pingjia-hub")) == [1, 1, 1, 1]
    plain = site.peer("pingjia-hub-1")
    plain.subscribe(*hub_filters(None))
    b = site.peer("t-b")
    b.subscribe(*terminal_filters("t-b"), config("t-b"))
    a = site.peer("t-a")
    forged = [topic("t-b", channel) for channel in Channel] + [config("t-b")]
    forged += [topic("t-a", Channel.ACK), topic("t-a", Channel.CMD), config("t-a")]  # its own, from the hub only
    forged += [hub_status_topic("pingjia-hub"), hub_status_topic("t-a"), "pingjia/claim/t-a/request", "elsewhere"]
    for name in forged:
        assert a.publish(name, b"forged") == NOT_AUTHORIZED, name
    for channel in (Channel.RATINGS, Channel.STATUS, Channel.HEALTH, Channel.EVENT):
        assert a.publish(topic("t-a", channel), b"mine") == 0
    for hub in (shared, plain):
        hub.wait_for(topic("t-a", Channel.EVENT), b"mine")  # the last: every earlier one is in
        assert hub.topics() == {
            topic("t-a", c) for c in (Channel.RATINGS, Channel.STATUS, Channel.HEALTH, Channel.EVENT)
        }
    assert shared.publish(topic("t-b", Channel.ACK), b"ack") == 0
    b.wait_for(topic("t-b", Channel.ACK), b"ack")
    assert b.messages == [(topic("t-b", Channel.ACK), b"ack")]


@pytest.mark.broker
@pytest.mark.slow
def test_a_terminal_receives_no_other_terminals_ack_cmd_or_config(site: Site) -> None:
    hub = site.peer("pingjia-hub")
    assert hub.publish(config("t-b"), b"b's config", retain=True) == 0
    assert hub.publish(config("t-a"), b"a's config", retain=True) == 0
    b = site.peer("t-b")
    b.subscribe(*terminal_filters("t-b"), config("t-b"))
    a = site.peer("t-a")
    wide = ["pingjia/v1/t-b/#", "pingjia/v1/+/ack", "pingjia/v1/+/cmd", "pingjia/v1/+/config", "#"]
    wide += ["$share/g/pingjia/v1/+/cmd", *terminal_filters("t-a")]
    # Mosquitto 2.0.11 grants any SUBSCRIBE; read access is checked per message, as it is delivered.
    assert a.subscribe(*wide) == [1] * len(wide)
    a.wait_for(config("t-a"), b"a's config")  # retained ones come with the subscription, in one go
    for channel in (Channel.ACK, Channel.CMD):
        assert hub.publish(topic("t-b", channel), b"for b") == 0
    assert hub.publish(topic("t-a", Channel.ACK), b"marker") == 0
    a.wait_for(topic("t-a", Channel.ACK), b"marker")
    b.wait_for(topic("t-b", Channel.CMD), b"for b")
    assert not {name for name in a.topics() if "/t-b/" in name}
    assert {config("t-b"), topic("t-b", Channel.ACK), topic("t-b", Channel.CMD)} <= b.topics()
    assert hub.publish(config("t-a"), b"", retain=True) == 0
    assert hub.publish(config("t-b"), b"", retain=True) == 0


def cut_with_will(site: Site, device: str, will_topic: str) -> Peer:
    """Connect as `device` with a will on `will_topic`, cut the connection (no DISCONNECT), and
    connect again: by this new connection's CONNACK the broker has dealt with the old one's will."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=device, protocol=paho.MQTTv5, reconnect_on_failure=False
    )
    client.username_pw_set(device, PASSWORDS[device])
    client.will_set(will_topic, b"offline (will)", qos=1)
    client.connect("127.0.0.1", site.port)
    wait_until(lambda: client.loop(0.05) == 0 and client.is_connected(), 10, f"{device} to connect with a will")
    client._reset_sockets()  # a cut connection: Mosquitto publishes its will, if the ACL lets the account
    return site.peer(device)


@pytest.mark.broker
@pytest.mark.slow
def test_a_terminals_will_cannot_speak_for_another(site: Site) -> None:
    hub = site.peer("pingjia-hub")
    hub.subscribe(*hub_filters(None))
    again = cut_with_will(site, "t-a", topic("t-a", Channel.STATUS))
    hub.wait_for(topic("t-a", Channel.STATUS), b"offline (will)")  # its own will is published
    again = cut_with_will(site, "t-a", topic("t-b", Channel.STATUS))
    assert again.publish(topic("t-a", Channel.EVENT), b"marker") == 0
    hub.wait_for(topic("t-a", Channel.EVENT), b"marker")
    assert topic("t-b", Channel.STATUS) not in hub.topics()  # one for another terminal is not


@pytest.mark.broker
@pytest.mark.slow
def test_a_claim_account_uses_only_its_own_claim_topics(site: Site) -> None:
    hub = site.peer("pingjia-hub")
    hub.subscribe("pingjia/claim/+/request", *hub_filters(None))
    assert hub.publish(hub_status_topic("pingjia-hub"), b"online", retain=True) == 0
    claim = site.peer("claim-x")
    wide = ["#", "pingjia/claim/+/reply", "pingjia/hub/+/status", "pingjia/v1/claim-x/#", "pingjia/v1/+/cmd"]
    claim.subscribe(*wide)
    refused = ["pingjia/claim/claim-y/request", "pingjia/claim/claim-x/reply", hub_status_topic("claim-x")]
    refused += [topic("claim-x", channel) for channel in Channel] + [topic("t-a", Channel.RATINGS)]
    for name in refused:
        assert claim.publish(name, b"no") == NOT_AUTHORIZED, name
    assert claim.publish("pingjia/claim/claim-x/request", b"pair me") == 0
    hub.wait_for("pingjia/claim/claim-x/request", b"pair me")
    assert hub.topics() == {"pingjia/claim/claim-x/request"}
    for name in ("pingjia/claim/claim-y/reply", topic("claim-x", Channel.ACK), topic("claim-x", Channel.CMD)):
        assert hub.publish(name, b"not for x") == 0  # the hub may: the claim account may not receive it
    assert hub.publish("pingjia/claim/claim-x/reply", b"paired") == 0
    claim.wait_for("pingjia/claim/claim-x/reply", b"paired")
    assert claim.topics() == {"pingjia/claim/claim-x/reply"}  # not even the hub's status
    assert hub.publish(hub_status_topic("pingjia-hub"), b"", retain=True) == 0


@pytest.mark.broker
@pytest.mark.slow
def test_hub_and_tech_accounts_get_nothing_from_the_terminal_patterns(site: Site) -> None:
    hub = site.peer("pingjia-hub-2")
    tech = site.peer("tech-1")
    tech.subscribe("pingjia/v1/+/status", "pingjia/v1/+/ratings", "pingjia/v1/tech-1/#")
    for name, peer in (("pingjia-hub-2", hub), ("tech-1", tech)):
        for channel in (Channel.RATINGS, Channel.STATUS):
            assert peer.publish(topic(name, channel)) == NOT_AUTHORIZED
    assert tech.publish(topic("t-a", Channel.CMD)) == NOT_AUTHORIZED
    assert hub.publish(topic("tech-1", Channel.CMD), b"for tech") == 0
    a = site.peer("t-a")
    assert a.publish(topic("t-a", Channel.RATINGS), b"rating") == 0
    assert a.publish(topic("t-a", Channel.STATUS), b"status") == 0
    tech.wait_for(topic("t-a", Channel.STATUS), b"status")
    assert tech.topics() == {topic("t-a", Channel.STATUS)}  # telemetry only: no ratings, no commands


@pytest.mark.broker
@pytest.mark.slow
def test_another_account_cannot_take_over_the_hubs_session(site: Site) -> None:
    hub = site.peer("pingjia-hub", client_id="pingjia-hub")
    hub.subscribe(*hub_filters(None))
    thief = site.peer("t-a", client_id="pingjia-hub")
    assert thief.accepted  # as t-a: its username is its client id
    assert site.peer("pingjia-hub", "wrong", client_id="pingjia-hub").connack.value == NOT_AUTHORIZED  # type: ignore[union-attr]
    b = site.peer("t-b")
    assert b.publish(topic("t-b", Channel.RATINGS), b"still here") == 0
    hub.wait_for(topic("t-b", Channel.RATINGS), b"still here")
    assert not hub.disconnected


@pytest.mark.broker
@pytest.mark.slow
def test_a_reload_drops_a_revoked_account_and_admits_a_new_one(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    gone = site.peer("t-c")
    assert gone.accepted
    secret = (site.directory / "site" / "hub.secret").read_bytes()
    with Writer.open(site.db) as writer:
        writer.write(revoke_broker_user, "t-c", now_ms())
        writer.write(add_broker_user, "t-new", hash_password(PASSWORDS["t-new"]), role="terminal")
    assert site.broker.process is not None
    assert run_cli([*site.argv, "--reload-pid", str(site.broker.process.pid)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["reloaded"] == site.broker.process.pid
    assert summary["accounts"] == {"claim": 2, "hub": 4, "tech": 1, "terminal": 3}
    gone.wait(lambda: gone.disconnected, "the revoked terminal to be dropped")
    assert site.peer("t-c").connack.value == NOT_AUTHORIZED  # type: ignore[union-attr]
    assert site.peer("t-new").accepted
    assert (site.directory / "site" / "hub.secret").read_bytes() == secret  # the hub's passwords are kept
    with Reader.open(site.db) as reader:
        hubs = [u for u in broker_users(reader, now_ms()) if u.role == "hub"]
    assert all(verify_password(site.hub_passwords[u.username], u.pw_hash) for u in hubs)
