"""Load for benchmarks: many terminals played by one process from pre-signed messages.

Real terminal processes cost a core per few hundred presses a second; to find the hub's ceiling
the load must be cheaper than the hub. `Fleet` signs every record and batch head beforehand (real
Ed25519 signatures over real chains, registered keys) and then only publishes bytes and counts the
hub's acks, keeping at most `window` messages unanswered so that no broker queue overflows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from hub import registry
from hub.db import Database
from hub.writer import Writer
from protocol import GENESIS, Channel, Kind, Rating, SigningKey, decode_ack, leaf_hash, seal_batch, topic

__all__ = ["Fleet", "broker_ceiling", "verify_rate"]


@dataclass
class _Device:
    id: str
    messages: list[tuple[int, bytes]]  # (last seq, wire bytes), in order


class Fleet:
    """`devices` terminals, each with `records` signed records packed `per_message` to a message."""

    def __init__(self, *, devices: int, records: int, per_message: int, prefix: str | None = None) -> None:
        prefix = prefix or f"bench{per_message}"
        self.devices: list[_Device] = []
        self.keys: dict[str, SigningKey] = {}
        stamp = time.time_ns() // 1_000_000
        for index in range(devices):
            device = f"{prefix}-{index:04d}"
            key = SigningKey.generate()
            self.keys[device] = key
            prev, bodies, hashes, messages = GENESIS, [], [], []
            for seq in range(1, records + 1):
                record = Rating(
                    device=device,
                    seq=seq,
                    kind=Kind.PRESS,
                    t=stamp + seq,
                    boot="bench-boot",
                    mono=seq,
                    fw="0.1.0",
                    prev=prev,
                    staff=f"S{index % 50:03d}",
                    score=1 + seq % 5,
                ).signed(key)
                body = record.canonical()
                prev = leaf_hash(body)
                bodies.append(body)
                hashes.append(prev)
            for first in range(0, records, per_message):
                chunk = bodies[first : first + per_message]
                last = first + len(chunk)
                messages.append((last, seal_batch(key, device, first + 1, chunk, hashes[last - 1])))
            self.devices.append(_Device(device, messages))
        self.total_records = devices * records
        self.total_messages = sum(len(d.messages) for d in self.devices)

    def register(self, writer: Writer) -> None:
        """Register the fleet's terminals and 50 staff members at the hub, in one transaction."""

        def register(db: Database) -> None:
            for index in range(50):
                registry.add_staff(db, f"S{index:03d}", name="", department=f"D{index % 4}")
            for device, key in self.keys.items():
                registry.add_device(db, device, key.public.hex, department="bench")

        writer.write(register)

    def messages(self) -> Iterator[tuple[str, int, bytes]]:
        """(device, last seq, wire bytes) of every message, the terminals taking turns."""
        return self._interleaved()

    def _interleaved(self) -> Iterator[tuple[str, int, bytes]]:
        cursors = [iter(d.messages) for d in self.devices]
        ids = [d.id for d in self.devices]
        while cursors:
            alive = []
            for device, cursor in zip(ids, cursors, strict=True):
                item = next(cursor, None)
                if item is not None:
                    alive.append((device, cursor))
                    yield device, item[0], item[1]
            ids = [device for device, _ in alive]
            cursors = [cursor for _, cursor in alive]

    def run(self, port: int, *, window: int = 2_000, timeout_s: float = 300) -> dict[str, float]:
        """Publish everything, wait until the hub has acked every record; rates over the whole run."""
        acked: dict[str, int] = {}
        done = threading.Condition()
        outstanding = 0
        target = {d.id: d.messages[-1][0] for d in self.devices}
        finished = 0
        first_ack: float | None = None

        def on_message(_client: paho.Client, _userdata: object, message: paho.MQTTMessage) -> None:
            nonlocal outstanding, finished, first_ack
            ack = decode_ack(bytes(message.payload))
            with done:
                if first_ack is None:
                    first_ack = time.monotonic()
                before = acked.get(ack.device, 0)
                if ack.upto > before:
                    sent_until = sent.get(ack.device, [])
                    while sent_until and sent_until[0] <= ack.upto:
                        sent_until.pop(0)
                        outstanding -= 1
                    acked[ack.device] = ack.upto
                    if ack.upto >= target[ack.device] > before:
                        finished += 1
                done.notify_all()

        sent: dict[str, list[int]] = {}
        client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"loadgen-{port}-{time.monotonic_ns()}", protocol=paho.MQTTv5
        )
        client.on_message = on_message
        client.max_inflight_messages_set(window)
        client.max_queued_messages_set(0)
        client.connect("127.0.0.1", port)
        client.subscribe(f"pingjia/v1/+/{Channel.ACK.value}", qos=1)
        client.loop_start()
        time.sleep(0.5)  # let the SUBACK arrive before the first ack could
        started = time.monotonic()
        deadline = started + timeout_s
        for device, last, payload in self._interleaved():
            with done:
                while outstanding >= window:
                    if not done.wait(max(0.0, deadline - time.monotonic())):
                        raise TimeoutError(f"the hub acked {sum(acked.values())} of {self.total_records} records")
                outstanding += 1
                sent.setdefault(device, []).append(last)
            client.publish(topic(device, Channel.RATINGS), payload, qos=1)
        with done:
            while finished < len(self.devices):
                if not done.wait(max(0.0, deadline - time.monotonic())):
                    raise TimeoutError(f"the hub acked {sum(acked.values())} of {self.total_records} records")
        elapsed = time.monotonic() - started
        client.disconnect()
        client.loop_stop()
        return {
            "records": self.total_records,
            "messages": self.total_messages,
            "seconds": elapsed,
            "records_per_s": self.total_records / elapsed,
            "messages_per_s": self.total_messages / elapsed,
        }


def broker_ceiling(port: int, *, messages: int = 20_000, size: int = 200, window: int = 2_000) -> float:
    """Bare paho -> Mosquitto -> paho, QoS 1, in one process: messages/s delivered (the transport's ceiling)."""
    received = 0
    done = threading.Condition()

    def on_message(_client: paho.Client, _userdata: object, _message: paho.MQTTMessage) -> None:
        nonlocal received
        with done:
            received += 1
            done.notify_all()

    tag = time.monotonic_ns()
    subscriber = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"ceiling-sub-{tag}", protocol=paho.MQTTv5)
    subscriber.on_message = on_message
    subscriber.connect("127.0.0.1", port)
    subscriber.subscribe(f"ceiling/{tag}", qos=1)
    subscriber.loop_start()
    publisher = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"ceiling-pub-{tag}", protocol=paho.MQTTv5)
    publisher.max_inflight_messages_set(window)
    publisher.max_queued_messages_set(0)
    publisher.connect("127.0.0.1", port)
    publisher.loop_start()
    time.sleep(0.5)
    payload = b"x" * size
    started = time.monotonic()
    for sent in range(messages):
        with done:
            while sent - received >= window:
                done.wait(10)
        publisher.publish(f"ceiling/{tag}", payload, qos=1)
    with done:
        while received < messages:
            if not done.wait(30):
                break
    elapsed = time.monotonic() - started
    for client in (publisher, subscriber):
        client.disconnect()
        client.loop_stop()
    return received / elapsed


def verify_rate(seconds: float = 1.0) -> float:
    """Ed25519 verifications per second on one core (one thread), over a batch head's size."""
    key = SigningKey.generate()
    message = b"h" * 150
    signature = key.sign(b"", message)
    count = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(200):
            key.public.verify(signature, b"", message)
        count += 200
    return count / (time.perf_counter() - started)
