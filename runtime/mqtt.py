"""A real broker over the network: one MQTT connection per link, with its own network thread
(paho-mqtt 2.x, callback API v2). `MqttBroker.connect` makes an `MqttSession` (a runtime.link.Link).

Shared by the terminal's link and the hub's ingest. The rules it keeps:

- One network thread owns the socket and runs paho's loop; it reconnects with exponential backoff
  and jitter, so a hall of terminals does not reconnect in lockstep after a broker restart.
- Callbacks only hand events to the owner (`on_event` must not block). Nothing is published from a
  callback; `publish()` and `ack()` are called from one application thread and only queue the
  packet: paho's socket-pair wakes the network thread, which writes it (a registered
  `on_socket_register_write` stops paho from writing on the caller's thread).
- MQTT 5 where the broker has it, 3.1.1 otherwise: in `auto` mode a broker that gives no CONNACK to
  an MQTT 5 CONNECT (amqtt closes or ignores it) is tried with 3.1.1, and the first version that
  connects is kept for the life of the process.
- A new paho client per connection attempt: nothing from a dead connection (in-flight mids,
  queued packets) leaks into the next one; the owner resends what was not acknowledged end to end.
- Credentials and TLS: a username and password (a site's Mosquitto allows no anonymous client; its
  accounts are hub.brokerconf's), over TLS (`mqtts://`, or a CA to verify the broker against). A
  broker that refuses the account is retried with the same backoff, the refusal logged once per
  distinct reason, and never read as a sign of the wrong MQTT version. The password appears in no
  log line, `str()`, `repr()` or exception.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from runtime.link import Client, Inbound, LinkDown, LinkEvent, LinkUp
from runtime.threads import name_this_thread

__all__ = [
    "NOT_UTF8_TOPIC",
    "Backoff",
    "BrokerUrl",
    "MqttBroker",
    "MqttSession",
    "parse_broker_url",
]

log = logging.getLogger("pingjia.mqtt")

PROTOCOLS = ("auto", "5", "3.1.1")
NOT_UTF8_TOPIC = "(a topic that is not UTF-8)"  # what Inbound.topic says of one; no filter matches it
# How long the network thread waits on the socket at a time: writes wake it at once (paho's socket
# pair), so this only bounds how soon it sees `stop()` (and costs an idle wakeup this often).
_LOOP_S = 0.1
# CONNACK reason codes that refuse the account, not the protocol version: MQTT 5's bad user name or
# password, not authorized, bad authentication method; paho reports MQTT 3.1.1's return codes 4 and 5
# as the first two (and a bare int is a 3.1.1 return code).
_AUTH_REFUSALS = frozenset({0x86, 0x87, 0x8C})
_AUTH_RETURN_CODES = frozenset({4, 5})


@dataclass(frozen=True, slots=True)
class BrokerUrl:
    host: str
    port: int
    protocol: str | None = None  # forced by ?protocol=5 or ?protocol=3.1.1
    tls: bool = False  # mqtts://

    def __str__(self) -> str:
        suffix = f"?protocol={self.protocol}" if self.protocol else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}{suffix}"


def parse_broker_url(text: str) -> BrokerUrl:
    """`mqtt://host[:port][?protocol=5|3.1.1]` (port 1883), or `mqtts://...` for MQTT over TLS (port
    8883); ValueError saying what is wrong. Credentials do not go in the URL (it is shown in logs)."""
    parts = urlsplit(text)
    if "@" in parts.netloc:
        raise ValueError("a broker URL holds no credentials: give the username and password on their own")
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"broker {text!r} is not mqtt://host:port or mqtts://host:port")
    query = parse_qs(parts.query)
    protocol = query.get("protocol", [None])[0]
    if protocol is not None and protocol not in ("5", "3.1.1"):
        raise ValueError(f"broker {text!r}: protocol must be 5 or 3.1.1")
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise ValueError(f"broker {text!r} has a bad port") from None
    return BrokerUrl(host=parts.hostname, port=port, protocol=protocol, tls=tls)


class Backoff:
    """Exponential reconnect delays with jitter: uniform in [low, min(high, low * 2**n)]."""

    def __init__(self, low_s: float, high_s: float, rng: random.Random) -> None:
        self.low_s = low_s
        self.high_s = max(high_s, low_s)
        self.failures = 0
        self._rng = rng

    def next_delay(self) -> float:
        ceiling = min(self.high_s, self.low_s * 2 ** min(self.failures, 30))
        self.failures += 1
        return self._rng.uniform(self.low_s, ceiling)

    def reset(self) -> None:
        self.failures = 0


def _noop(*_args: Any) -> None:
    return None


def _no_delay(_client: paho.Client, _userdata: Any, sock: Any) -> None:
    # A rating is one small message answered by one small ack: without this, Nagle's algorithm and
    # the peer's delayed ACK add about 40 ms to each of them.
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@dataclass(frozen=True, kw_only=True)
class MqttBroker:
    """A broker at `url`, with the connection settings of the process that uses it.

    `username`/`password`: the account it connects with. TLS when the URL is `mqtts://` or `tls_ca` is
    set: the broker's certificate is verified against `tls_ca` (a CA certificate, PEM), or against the
    system's CAs without it, and must name the URL's host. `tls_cert`/`tls_key`: a client certificate.
    ValueError for combinations that cannot work (a password without a username, half a client
    certificate, a client certificate without TLS).
    """

    url: BrokerUrl
    protocol: str = "auto"
    keepalive_s: int = 30
    connect_timeout_s: float = 3.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None

    def __post_init__(self) -> None:
        _check_credentials(self.username, self.password, self.tls, self.tls_cert, self.tls_key)

    @property
    def tls(self) -> bool:
        return self.url.tls or self.tls_ca is not None

    def __str__(self) -> str:
        """The URL, as the connection is made (mqtts:// with TLS), with the username; never the password."""
        url = str(BrokerUrl(self.url.host, self.url.port, self.url.protocol, tls=self.tls))
        if self.username is None:
            return url
        scheme, rest = url.split("://", 1)
        return f"{scheme}://{self.username}@{rest}"

    def connect(self, client: Client) -> MqttSession:
        return MqttSession(
            url=self.url,
            client_id=client.client_id,
            on_event=client.on_event,
            subscriptions=client.subscriptions,
            will=client.will,
            clean_start=client.clean_start,
            session_expiry_s=client.session_expiry_s,
            receive_maximum=client.receive_maximum,
            manual_ack=client.manual_ack,
            protocol=client.protocol or self.protocol,
            keepalive_s=self.keepalive_s,
            connect_timeout_s=self.connect_timeout_s,
            reconnect_min_s=self.reconnect_min_s,
            reconnect_max_s=self.reconnect_max_s,
            username=self.username,
            password=self.password,
            tls=self.tls,
            tls_ca=self.tls_ca,
            tls_cert=self.tls_cert,
            tls_key=self.tls_key,
        )


def _check_credentials(
    username: str | None, password: str | None, tls: bool, tls_cert: str | None, tls_key: str | None
) -> None:
    if password is not None and username is None:
        raise ValueError("a broker password needs a username")
    if username == "":
        raise ValueError("a broker username cannot be empty")
    if (tls_cert is None) != (tls_key is None):
        raise ValueError("a client certificate needs both tls_cert and tls_key")
    if tls_cert is not None and not tls:
        raise ValueError("a client certificate needs TLS: an mqtts:// broker, or tls_ca")


class _ClientContext(ssl.SSLContext):
    """A TLS client context that keeps the last socket it wrapped: paho leaves a socket whose handshake
    failed open (for the garbage collector to find), and the link closes it instead."""

    wrapped: ssl.SSLSocket | None = None

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self.wrapped = super().wrap_socket(*args, **kwargs)
        return self.wrapped

    def close_failed(self) -> None:
        if self.wrapped is not None:
            self.wrapped.close()
            self.wrapped = None


def _tls_context(ca: str | None, cert: str | None, key: str | None) -> _ClientContext:
    """A client context that verifies the broker (against `ca`, else the system's CAs) and its name."""
    context = _ClientContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the certificate and the host name
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        if ca is None:
            context.load_default_certs()
        else:
            context.load_verify_locations(cafile=ca)
        if cert is not None:
            context.load_cert_chain(cert, key)
    except OSError as exc:  # ssl.SSLError is one too; the text says what is wrong with which file
        files = ", ".join(f for f in (ca, cert, key) if f)
        raise ValueError(f"TLS files {files}: {exc.strerror or exc}") from None
    return context


class MqttSession:
    def __init__(
        self,
        *,
        url: BrokerUrl,
        client_id: str,
        on_event: Callable[[LinkEvent], None],
        subscriptions: Sequence[tuple[str, int]] = (),
        will: Callable[[int], tuple[str, bytes]] | None = None,
        clean_start: bool = True,
        session_expiry_s: int = 0,
        receive_maximum: int | None = None,
        manual_ack: bool = False,
        protocol: str = "auto",
        keepalive_s: int = 30,
        connect_timeout_s: float = 3.0,
        reconnect_min_s: float = 0.5,
        reconnect_max_s: float = 30.0,
        rng: random.Random | None = None,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
        tls_ca: str | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
    ) -> None:
        mode = url.protocol or protocol
        if mode not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {mode!r}")
        tls = tls or url.tls or tls_ca is not None
        _check_credentials(username, password, tls, tls_cert, tls_key)
        self._username = username
        self._password = password
        self._tls = _tls_context(tls_ca, tls_cert, tls_key) if tls else None
        self._refusals: set[str] = set()  # logged since the last connection that worked
        self.refusal: str | None = None  # why the broker refused the last attempt; None once one works
        self.url = url
        self.client_id = client_id
        self._on_event = on_event
        self._subscriptions = list(subscriptions)
        self._will = will
        self._clean_start = clean_start
        self._session_expiry_s = session_expiry_s
        self._receive_maximum = receive_maximum
        self._manual_ack = manual_ack
        self._keepalive_s = keepalive_s
        self._connect_timeout_s = connect_timeout_s
        self._backoff = Backoff(reconnect_min_s, reconnect_max_s, rng or random.Random())
        self.protocol = "3.1.1" if mode == "3.1.1" else "5"
        self._protocol_settled = mode != "auto"
        self._lock = threading.Lock()
        self._client: paho.Client | None = None
        self._connected = False
        self._generation = 0
        self._acking: paho.Client | None = None  # the client that may PUBACK: set from CONNACK on
        self._attempt = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._connack: tuple[bool, ReasonCode | int, bool] | None = None  # (ok, code, session_present)
        self._subacks: set[int] = set()

    # -- application thread -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"mqtt-{self.client_id}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Disconnect cleanly (no will is sent) and end the network thread."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def connected(self) -> bool:
        """True once the broker has confirmed the subscriptions (LinkUp), until the link drops."""
        return self._connected

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> bool:
        """Queue a message for the network thread; False if not connected (the caller retries later).

        Allowed from CONNACK on, before the subscriptions are confirmed: a resumed session's queued
        messages arrive in that time, and their answers must not be dropped.
        """
        with self._lock:
            if self._acking is None:
                return False
            info = self._acking.publish(topic, payload, qos=qos, retain=retain)
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    def ack(self, message: Inbound) -> None:
        """PUBACK a message received with manual acks, once the application has made it durable."""
        with self._lock:
            if self._acking is None or message.generation != self._generation:
                return  # the connection it came on is gone: the broker delivers it again on the next
            self._acking.ack(message.mid, message.qos)

    # -- network thread -----------------------------------------------------------------------------

    def _new_client(self) -> paho.Client:
        version = paho.MQTTv5 if self.protocol == "5" else paho.MQTTv311
        kwargs: dict[str, Any] = {}
        if version == paho.MQTTv311:
            kwargs["clean_session"] = self._clean_start
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=version, **kwargs)
        client.on_socket_register_write = _noop
        client.on_socket_open = _no_delay
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.manual_ack_set(self._manual_ack)
        client.max_inflight_messages_set(1000)
        if self._username is not None:
            client.username_pw_set(self._username, self._password)
        if self._tls is not None:
            client.tls_set_context(self._tls)
        if self._will is not None:
            topic, payload = self._will(self._attempt)
            client.will_set(topic, payload, qos=1, retain=True)
        return client

    def _connect(self, client: paho.Client) -> None:
        if self.protocol == "5":
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = self._session_expiry_s
            if self._receive_maximum is not None:
                properties.ReceiveMaximum = self._receive_maximum
            client.connect(
                self.url.host,
                self.url.port,
                self._keepalive_s,
                clean_start=self._clean_start,
                properties=properties,
            )
        else:
            client.connect(self.url.host, self.url.port, self._keepalive_s)

    def _on_connect(self, client: paho.Client, _userdata: Any, flags: Any, reason: ReasonCode, _props: Any) -> None:
        self._connack = (not reason.is_failure, reason, bool(getattr(flags, "session_present", False)))
        if not reason.is_failure:
            # A new connection starts here, in the callback: a resumed session's queued messages can
            # follow the CONNACK in the same read, and their acks belong to this connection.
            with self._lock:
                self._generation += 1
                self._acking = client

    def _on_message(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        try:
            name = message.topic
        except UnicodeDecodeError:  # a broker should refuse such a topic; the owner refuses it here
            name = NOT_UTF8_TOPIC
        self._on_event(
            Inbound(
                topic=name,
                payload=bytes(message.payload),
                mid=message.mid,
                qos=message.qos,
                generation=self._generation,
                retained=bool(message.retain),
            )
        )

    def _run(self) -> None:
        name_this_thread("pj-mqtt")
        while not self._stopping.is_set():
            self._attempt += 1
            self._connack = None
            self._subacks.clear()
            client = self._new_client()
            try:
                self._connect(client)
            except ssl.SSLError as exc:  # the broker's certificate, or TLS itself: not a passing network fault
                if self._tls is not None:
                    self._tls.close_failed()
                why = getattr(exc, "verify_message", None) or exc.reason or str(exc)
                self._refused(f"TLS handshake failed: {why}", "check the CA (tls_ca) and the broker's host name")
                self._pause(self._backoff.next_delay())
                continue
            except (OSError, ValueError) as exc:
                if self._tls is not None:
                    self._tls.close_failed()  # a handshake that timed out
                log.info("%s: cannot reach %s: %s", self.client_id, self.url, exc)
                self._pause(self._backoff.next_delay())
                continue
            if self._tls is not None:
                self._tls.wrapped = None  # paho owns the connected socket
            try:
                reason = self._serve(client)
            except Exception as exc:  # noqa: BLE001 - whatever one connection meets, the link goes on
                log.error("%s: connection failed unexpectedly (%r); connecting again", self.client_id, exc)
                reason = f"fault: {exc!r}"[:200]
            with self._lock:
                was_connected = self._connected
                self._connected = False
                self._client = None
                self._acking = None
            # A clean DISCONNECT (no will) on stop, and to close a socket that never got a CONNACK;
            # paho writes whatever was queued before it, then closes.
            client.disconnect()
            client.loop(0.2)
            if was_connected:
                log.info("%s: connection ended: %s", self.client_id, reason)
                self._on_event(LinkDown(reason))
            if not self._stopping.is_set():
                self._pause(self._backoff.next_delay())

    def _serve(self, client: paho.Client) -> str:
        """Run one connection until it ends; return why it ended.

        The connection counts as up (LinkUp) once the broker has confirmed the subscriptions, so
        that whoever waits for it knows messages for it will now be delivered.
        """
        deadline = time.monotonic() + self._connect_timeout_s
        subscribing: int | None = None
        while not self._stopping.is_set():
            rc = client.loop(timeout=_LOOP_S)
            if self._connack is not None and not self._connected and subscribing is None:
                ok, code, session_present = self._connack
                if not ok:
                    if _is_auth_refusal(code):
                        self._refused(f"account refused: {code}", "check the username and password")
                    else:
                        self._refused(f"connection refused: {code}", None)
                        self._maybe_switch_protocol(f"CONNACK refused: {code}", code)
                    return f"refused: {code}"
                self._protocol_works()
                if not self._subscriptions:
                    self._went_up(client, session_present)
                else:
                    subscribing = client.subscribe(self._subscriptions)[1]
            if subscribing is not None and subscribing in self._subacks:
                subscribing = None
                self._went_up(client, self._connack is not None and self._connack[2])
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                if self._connack is None:
                    self._maybe_switch_protocol(f"closed before CONNACK ({rc.name})", None)
                return rc.name
            if self._connack is None and time.monotonic() > deadline:
                # No deadline for the SUBACK: it can queue behind a resumed session's backlog,
                # and a connection that stops answering is caught by the keepalive.
                self._maybe_switch_protocol("no CONNACK in time", None)
                return "no CONNACK"
        return "stopped"

    def _on_subscribe(self, _client: paho.Client, _userdata: Any, mid: int, _codes: Any, _props: Any) -> None:
        self._subacks.add(mid)

    def _protocol_works(self) -> None:
        if not self._protocol_settled:
            self._protocol_settled = True
            log.info("%s: broker speaks MQTT %s", self.client_id, self.protocol)

    def _refused(self, why: str, hint: str | None) -> None:
        """The broker turned this attempt down: say so once per reason, until a connection works."""
        self.refusal = why
        if why in self._refusals:
            return
        self._refusals.add(why)
        account = f"account {self._username}" if self._username is not None else "no username"
        shown = BrokerUrl(self.url.host, self.url.port, self.url.protocol, tls=self._tls is not None)
        advice = f" ({hint})" if hint else ""
        log.warning("%s: %s, %s: %s%s; trying again with backoff", self.client_id, shown, account, why, advice)

    def _went_up(self, client: paho.Client, session_present: bool) -> None:
        with self._lock:
            self._client = client
            self._connected = True
        self._backoff.reset()
        self._refusals.clear()
        self.refusal = None
        self._on_event(LinkUp(attempt=self._attempt, protocol=self.protocol, session_present=session_present))

    def _maybe_switch_protocol(self, why: str, code: ReasonCode | int | None) -> None:
        if _is_auth_refusal(code):
            return  # the broker read the CONNECT well enough to refuse the account
        unsupported = code is None or (isinstance(code, ReasonCode) and code.value in (1, 0x84))
        if not self._protocol_settled and unsupported:
            old = self.protocol
            self.protocol = "3.1.1" if old == "5" else "5"
            log.info("%s: MQTT %s failed (%s); trying %s", self.client_id, old, why, self.protocol)

    def _pause(self, seconds: float) -> None:
        self._stopping.wait(seconds)


def _is_auth_refusal(code: ReasonCode | int | None) -> bool:
    if isinstance(code, ReasonCode):
        return code.value in _AUTH_REFUSALS
    return code is not None and code in _AUTH_RETURN_CODES
