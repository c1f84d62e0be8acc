"""The MQTT link with credentials and TLS (runtime.mqtt), against a real Mosquitto running a site's
generated configuration (hub.brokerconf): no anonymous clients, an ACL, a TLS listener with the
site's own CA."""

from __future__ import annotations

import logging
import os
import queue
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from hub.brokerconf import BrokerUser, TlsFiles, hash_password, make_tls, new_password, write_site
from protocol.topics import Channel, hub_filters, topic
from runtime.link import Client, Inbound, LinkEvent, LinkUp
from runtime.mqtt import MqttBroker, MqttSession, parse_broker_url
from simulator.processes import BrokerProcess, free_port, wait_until
from tests.conftest import need_mosquitto

PASSWORDS = {"pingjia-hub": new_password(), "t-a": new_password()}


# -- without a broker ---------------------------------------------------------------------------------


def test_mqtts_urls_mean_tls_on_8883_and_urls_hold_no_credentials() -> None:
    url = parse_broker_url("mqtts://hall.example")
    assert (url.host, url.port, url.tls) == ("hall.example", 8883, True)
    assert str(url) == "mqtts://hall.example:8883"
    assert str(parse_broker_url("mqtts://h:9?protocol=5")) == "mqtts://h:9?protocol=5"
    assert parse_broker_url("mqtt://h").tls is False
    with pytest.raises(ValueError, match="no credentials") as caught:
        parse_broker_url("mqtt://t1:hunter2@h:1883")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ValueError, match="mqtts://host:port"):
        parse_broker_url("ssl://h")


def test_a_password_shows_nowhere_and_impossible_settings_are_refused() -> None:
    broker = MqttBroker(url=parse_broker_url("mqtt://h:1"), username="t1", password="hunter2", tls_ca="/ca.pem")
    assert str(broker) == "mqtts://t1@h:1"  # TLS because of the CA, the username, never the password
    assert "hunter2" not in repr(broker)
    assert "hunter2" not in str(broker)
    url = parse_broker_url("mqtt://h:1")
    for options, error in [
        ({"password": "hunter2"}, "needs a username"),
        ({"username": ""}, "cannot be empty"),
        ({"tls_cert": "c.pem"}, "both tls_cert and tls_key"),
        ({"tls_cert": "c.pem", "tls_key": "k.pem"}, "needs TLS"),
    ]:
        with pytest.raises(ValueError, match=error) as caught:
            MqttBroker(url=url, **options)  # type: ignore[arg-type]
        assert "hunter2" not in str(caught.value)


def test_a_missing_ca_file_is_named_when_the_link_is_made(tmp_path: Path) -> None:
    broker = MqttBroker(url=parse_broker_url("mqtts://h"), tls_ca=str(tmp_path / "nowhere.pem"))
    with pytest.raises(ValueError, match=r"nowhere\.pem"):
        broker.connect(Client(client_id="c", on_event=lambda _event: None))


@pytest.mark.parametrize(
    "code",
    [
        ReasonCode(PacketTypes.CONNACK, "Bad user name or password"),  # MQTT 5 0x86; paho's name for 3.1.1's 4
        ReasonCode(PacketTypes.CONNACK, "Not authorized"),  # 0x87; and 3.1.1's 5
        ReasonCode(PacketTypes.CONNACK, "Bad authentication method"),
        4,
        5,
    ],
)
def test_a_refused_account_is_not_taken_for_the_wrong_protocol_version(code: ReasonCode | int) -> None:
    session = MqttSession(url=parse_broker_url("mqtt://h:1"), client_id="c", on_event=lambda _event: None)
    session._maybe_switch_protocol("refused", code)
    assert session.protocol == "5"
    session._maybe_switch_protocol("refused", ReasonCode(PacketTypes.CONNACK, "Unsupported protocol version"))
    assert session.protocol == "3.1.1"  # while this one is


# -- on a real Mosquitto running a generated site -----------------------------------------------------


class SiteBroker(BrokerProcess):
    kind = "mosquitto"

    def __init__(self, conf: Path, port: int) -> None:
        super().__init__(port, log=conf.parent / "mosquitto.log")
        self.conf = conf

    def argv(self) -> list[str]:
        return [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(self.conf)]


@dataclass
class Site:
    port: int
    tls_port: int
    tls: TlsFiles

    def broker(self, username: str | None, password: str | None = None, *, tls: bool = False, **options: object):
        if password is None and username is not None:
            password = PASSWORDS[username]
        url = parse_broker_url(f"mqtts://127.0.0.1:{self.tls_port}" if tls else f"mqtt://127.0.0.1:{self.port}")
        return MqttBroker(
            url=url,
            username=username,
            password=password,
            reconnect_min_s=0.1,
            reconnect_max_s=0.2,
            **options,  # type: ignore[arg-type]
        )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    need_mosquitto()
    directory = tmp_path_factory.mktemp("mqtt-auth")
    users = [
        BrokerUser("pingjia-hub", hash_password(PASSWORDS["pingjia-hub"]), "hub"),
        BrokerUser("t-a", hash_password(PASSWORDS["t-a"]), "terminal", "t-a"),
    ]
    tls = make_tls(directory / "tls", ["127.0.0.1", "localhost"])
    port = free_port()
    tls_port = free_port()
    while tls_port == port:
        tls_port = free_port()
    files = write_site(
        directory,
        users,
        port=port,
        tls=tls,
        tls_port=tls_port,
        tls_bind="127.0.0.1",
        run_as="root" if os.geteuid() == 0 else None,
    )
    broker = SiteBroker(files["mosquitto.conf"], port)
    broker.start()
    wait_until(lambda: _port_open(tls_port), 10, "the TLS listener")
    try:
        yield Site(port, tls_port, tls)
    finally:
        broker.stop()


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Ear:
    def __init__(self, broker: MqttBroker, client_id: str, filters: list[str], **options: object) -> None:
        self.events: queue.Queue[LinkEvent] = queue.Queue()
        self.link = broker.connect(
            Client(client_id=client_id, on_event=self.events.put, subscriptions=[(f, 1) for f in filters], **options)  # type: ignore[arg-type]
        )
        self.link.start()

    def next(self, kind: type, timeout_s: float = 10) -> LinkEvent:
        while True:
            event = self.events.get(timeout=timeout_s)
            if isinstance(event, kind):
                return event


@pytest.mark.broker
@pytest.mark.slow
def test_accounts_connect_and_deliver_through_the_link(site: Site) -> None:
    hub = Ear(
        site.broker("pingjia-hub"),
        "pingjia-hub",
        list(hub_filters("pingjia-hub")),
        clean_start=False,
        session_expiry_s=60,
        manual_ack=True,
        protocol="5",
    )
    terminal = Ear(site.broker("t-a"), "t-a", [topic("t-a", Channel.ACK)])
    try:
        assert isinstance(hub.next(LinkUp), LinkUp)
        assert isinstance(terminal.next(LinkUp), LinkUp)
        assert terminal.link.publish(topic("t-a", Channel.RATINGS), b"batch")
        message = hub.next(Inbound)
        assert isinstance(message, Inbound)
        assert (message.topic, message.payload) == (topic("t-a", Channel.RATINGS), b"batch")
        hub.link.ack(message)
        assert hub.link.publish(topic("t-a", Channel.ACK), b"ack", qos=0)
        ack = terminal.next(Inbound)
        assert isinstance(ack, Inbound)
        assert ack.payload == b"ack"
    finally:
        hub.link.stop()
        terminal.link.stop()


@pytest.mark.broker
@pytest.mark.slow
@pytest.mark.parametrize(("username", "password"), [("t-a", "wrong-password"), (None, None)])
def test_a_refused_account_backs_off_says_so_once_and_keeps_its_protocol(
    site: Site, caplog: pytest.LogCaptureFixture, username: str | None, password: str | None
) -> None:
    caplog.set_level(logging.INFO, logger="pingjia.mqtt")
    session = site.broker(username, password).connect(Client(client_id="t-a", on_event=lambda _event: None))
    assert isinstance(session, MqttSession)
    started = time.monotonic()
    session.start()
    try:
        wait_until(lambda: session._attempt >= 4, 10, "four refused attempts")
        # Not hot: each retry waited at least reconnect_min_s (0.1 s) after the refusal before it.
        assert time.monotonic() - started >= 3 * 0.1
        assert not session.connected
        assert session.protocol == "5"  # a refused account is no reason to try MQTT 3.1.1
        assert session.refusal == "account refused: Not authorized"
    finally:
        session.stop()
    refusals = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(refusals) == 1, refusals  # once, not once per attempt
    assert "Not authorized" in refusals[0]
    assert "check the username and password" in refusals[0]
    assert "wrong-password" not in caplog.text


@pytest.mark.broker
@pytest.mark.slow
def test_tls_with_the_sites_ca_connects_and_without_it_does_not(site: Site) -> None:
    secure = site.broker("t-a", tls=True, tls_ca=str(site.tls.ca))
    assert str(secure) == f"mqtts://t-a@127.0.0.1:{site.tls_port}"
    hub = Ear(site.broker("pingjia-hub", tls=True, tls_ca=str(site.tls.ca)), "pingjia-hub", list(hub_filters(None)))
    terminal = Ear(secure, "t-a", [])
    try:
        assert isinstance(hub.next(LinkUp), LinkUp)
        assert isinstance(terminal.next(LinkUp), LinkUp)
        assert terminal.link.publish(topic("t-a", Channel.EVENT), b"over tls")
        message = hub.next(Inbound)
        assert isinstance(message, Inbound)
        assert message.payload == b"over tls"
    finally:
        hub.link.stop()
        terminal.link.stop()
    untrusting = site.broker("t-a", tls=True).connect(Client(client_id="t-a", on_event=lambda _event: None))
    assert isinstance(untrusting, MqttSession)
    untrusting.start()
    try:
        wait_until(lambda: untrusting.refusal is not None, 10, "the TLS handshake to fail")
        assert "TLS handshake failed" in (untrusting.refusal or "")
        assert "certificate" in (untrusting.refusal or "")
        assert not untrusting.connected
    finally:
        untrusting.stop()
