"""Network faults for the fault scenario: a TCP proxy per terminal, and a replayer.

`CutProxy` sits between one terminal and the broker. `cut(seconds)` drops every connection through
it at once and refuses new ones for that long: the terminal's link dies mid-message, as when a
switch port or a Wi-Fi link goes. `Replayer` subscribes to the terminals' rating messages and
publishes some of them again later, once or twice: the hub sees duplicated and reordered
deliveries, as brokers produce after reconnects and redeliveries. `SessionProbe` shows that a
restarted broker restored a persistent session and the message queued for it.
"""

from __future__ import annotations

import contextlib
import random
import selectors
import socket
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

__all__ = ["CutProxy", "Replayer", "SessionProbe"]


class CutProxy:
    """127.0.0.1:`port` -> 127.0.0.1:`target`, with cuts."""

    def __init__(self, target: int) -> None:
        self.target = target
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.setblocking(False)
        self.port = int(self._listener.getsockname()[1])
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._pairs: dict[socket.socket, socket.socket] = {}
        self._cut_until = 0.0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"proxy-{self.port}", daemon=True)
        self.cuts = 0

    def start(self) -> CutProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)
        for sock in list(self._pairs):
            self._close(sock)
        self._listener.close()

    def cut(self, seconds: float) -> None:
        """Drop every connection now and refuse new ones for `seconds`."""
        with self._lock:
            self._cut_until = time.monotonic() + seconds
            self.cuts += 1
            doomed = list(self._pairs)
        for sock in doomed:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _run(self) -> None:
        while not self._stopping.is_set():
            for key, _ in self._selector.select(0.2):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._listener:
                    self._accept()
                else:
                    self._forward(sock)

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        with self._lock:
            refused = time.monotonic() < self._cut_until
        if refused:
            client.close()
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target), timeout=2)
        except OSError:
            client.close()
            return
        for sock in (client, upstream):
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._pairs[client], self._pairs[upstream] = upstream, client
        self._selector.register(client, selectors.EVENT_READ, None)
        self._selector.register(upstream, selectors.EVENT_READ, None)

    def _forward(self, sock: socket.socket) -> None:
        peer = self._pairs.get(sock)
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data or peer is None:
            self._close(sock)
            return
        try:
            peer.setblocking(True)
            peer.sendall(data)
            peer.setblocking(False)
        except OSError:
            self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            peer = self._pairs.pop(sock, None)
            if peer is not None:
                self._pairs.pop(peer, None)
        for one in (sock, peer):
            if one is None:
                continue
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(one)
            with contextlib.suppress(OSError):
                one.close()


@dataclass
class _Held:
    due: float
    topic: str
    payload: bytes


class Replayer:
    """Publishes some rating messages again, later and sometimes twice."""

    def __init__(self, port: int, *, share: float, delay_s: tuple[float, float], rng: random.Random) -> None:
        self.share = share
        self.delay_s = delay_s
        self.rng = rng
        self.replayed = 0
        self._held: list[_Held] = []
        self._lock = threading.Lock()
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"replayer-{port}-{time.monotonic_ns()}", protocol=paho.MQTTv5
        )
        self._client.on_message = self._on_message
        self._client.on_connect = self._on_connect
        self._client.reconnect_delay_set(1, 2)
        self._client.connect_async("127.0.0.1", port)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="replayer", daemon=True)

    def start(self) -> Replayer:
        self._client.loop_start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(
        self, client: paho.Client, _userdata: object, _flags: object, _reason: object, _properties: object
    ) -> None:
        client.subscribe("pingjia/v1/+/ratings", qos=1)  # again after every broker restart

    def _on_message(self, client: paho.Client, _userdata: object, message: paho.MQTTMessage) -> None:
        del client
        if message.retain or self.rng.random() >= self.share:
            return
        with self._lock:
            for _ in range(1 if self.rng.random() < 0.7 else 2):
                due = time.monotonic() + self.rng.uniform(*self.delay_s)
                self._held.append(_Held(due, message.topic, bytes(message.payload)))

    def _run(self) -> None:
        while not self._stopping.wait(0.05):
            now = time.monotonic()
            with self._lock:
                due = [held for held in self._held if held.due <= now]
                self._held = [held for held in self._held if held.due > now]
            self.rng.shuffle(due)
            for held in due:
                if self._client.is_connected():
                    self._client.publish(held.topic, held.payload, qos=1)
                    self.replayed += 1


class SessionProbe:
    """A persistent MQTT session that is away while a broker restarts: proof that the broker saved
    and restored its sessions and their queued messages, as a hub's persistent session needs.

    `arm()` connects once to make the session (subscribed, expiring in an hour) and leaves; `queue()`
    publishes a QoS 1 message, which the broker must keep for it; after the restart, `collect()`
    resumes the session and says whether that message arrived.
    """

    TOPIC = "pingjia/probe/queued"

    def __init__(self, port: int, client_id: str = "pingjia-session-probe") -> None:
        self.port = port
        self.client_id = client_id

    def _client(self) -> paho.Client:
        return paho.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=paho.MQTTv5)

    def _connect(self, client: paho.Client, timeout_s: float) -> bool:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 3600
        connected = threading.Event()
        client.on_connect = lambda *_args: connected.set()
        try:
            client.connect("127.0.0.1", self.port, clean_start=False, properties=properties)
        except OSError:
            return False
        client.loop_start()
        return connected.wait(timeout_s)

    def arm(self, timeout_s: float = 10) -> None:
        client = self._client()
        subscribed = threading.Event()
        client.on_subscribe = lambda *_args: subscribed.set()
        try:
            if self._connect(client, timeout_s):
                client.subscribe(self.TOPIC, qos=1)
                subscribed.wait(timeout_s)
        finally:
            client.disconnect()
            client.loop_stop()

    def queue(self, payload: bytes, timeout_s: float = 10) -> bool:
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{self.client_id}-sender", protocol=paho.MQTTv5)
        try:
            if not self._connect(client, timeout_s):
                return False
            info = client.publish(self.TOPIC, payload, qos=1)
            info.wait_for_publish(timeout_s)
            return info.is_published()
        finally:
            client.disconnect()
            client.loop_stop()

    def collect(self, payload: bytes, timeout_s: float = 10) -> bool:
        """Resume the session: True if `payload` arrives (then the session stays armed)."""
        client = self._client()
        arrived = threading.Event()

        def on_message(_client: paho.Client, _userdata: object, message: paho.MQTTMessage) -> None:
            if bytes(message.payload) == payload:
                arrived.set()

        client.on_message = on_message
        try:
            return self._connect(client, timeout_s) and arrived.wait(timeout_s)
        finally:
            client.disconnect()
            client.loop_stop()
