"""A bare paho client for tests: publish raw bytes, collect what arrives."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


class RawClient:
    def __init__(self, port: int, client_id: str, *, username: str | None = None, password: str | None = None) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.connack: Any = None  # the broker's answer to the CONNECT (a paho ReasonCode)
        self._condition = threading.Condition()
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
        self._client.on_message = self._on_message
        self._client.on_connect = self._on_connect
        if username is not None:
            self._client.username_pw_set(username, password)
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()

    def _on_connect(self, _client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        with self._condition:
            self.connack = reason
            self._condition.notify_all()

    def accepted(self, timeout_s: float = 10) -> bool:
        """Whether the broker took the connection (waits for its CONNACK)."""
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while self.connack is None:
                remaining = deadline - time.monotonic()
                assert remaining > 0, "no CONNACK"
                self._condition.wait(remaining)
            return not self.connack.is_failure

    def _on_message(self, _client: Any, _userdata: Any, message: paho.MQTTMessage) -> None:
        with self._condition:
            self.messages.append((message.topic, bytes(message.payload)))
            self._condition.notify_all()

    def subscribe(self, topic: str) -> None:
        result, _mid = self._client.subscribe(topic, qos=1)
        assert result == paho.MQTT_ERR_SUCCESS

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self._client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def wait_for(self, topic: str, count: int = 1, timeout_s: float = 15) -> list[bytes]:
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while True:
                found = [payload for name, payload in self.messages if name == topic]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"timed out waiting for {count} message(s) on {topic}; got {len(found)}"
                self._condition.wait(remaining)

    def wait_until(self, topic: str, predicate: Callable[[list[bytes]], bool], timeout_s: float = 15) -> list[bytes]:
        """Wait until the payloads received on `topic` satisfy `predicate`; return them."""
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while True:
                found = [payload for name, payload in self.messages if name == topic]
                if predicate(found):
                    return found
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"timed out waiting on {topic}; got {len(found)} message(s)"
                self._condition.wait(remaining)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
