"""The hub's store-free half of ingest: decode messages and authenticate batches.

Pure with respect to the hub's state (it needs only the terminals' public keys), so it can run on
any thread or in another process: the hub runs it in worker processes, where the JSON work does not
compete with the writer for the interpreter lock. Everything it returns pickles (keys travel as hex).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from protocol import Batch, Channel, DecodeError, ProtocolError, Reason, VerifyKey, decode_batch, parse, verify_batches
from protocol.compact import compact_pickle

__all__ = ["Prepared", "Preparer", "prepare_in_worker", "unhandled", "worker_init"]


@compact_pickle
@dataclass(frozen=True, slots=True)
class Prepared:
    """A message as decoded (and, for a batch, authenticated) before it reaches the store."""

    topic: str
    payload: bytes
    device: str | None
    channel: Channel | None
    batch: Batch | None = None
    verified_with: str | None = None  # hex of the key the batch's signature held for, if checked
    error: ProtocolError | None = None


class Preparer:
    def __init__(self) -> None:
        self._keys: dict[str, VerifyKey] = {}

    def key(self, pubkey: str) -> VerifyKey:
        found = self._keys.get(pubkey)
        if found is None:
            if len(self._keys) > 100_000:
                self._keys.clear()
            found = self._keys[pubkey] = VerifyKey.from_hex(pubkey)
        return found

    def prepare_many(self, messages: Sequence[tuple[str, bytes]], keys: Mapping[str, str]) -> list[Prepared]:
        """Decode messages and authenticate the batches of terminals whose key (hex) `keys` holds.

        Batches of one terminal that continue each other are authenticated by the newest one's
        signature and the hash chain (protocol.verify_batches): one check per terminal, not per
        message. A batch of a terminal not in `keys` is left for the writer to check.
        """
        prepared: list[Prepared] = []
        by_device: dict[str, list[int]] = {}
        for topic, payload in messages:
            try:
                item = self._decode(topic, payload)
            except Exception as exc:  # noqa: BLE001 - one message must not stop the others: it is refused
                item = Prepared(topic=topic, payload=payload, device=None, channel=None, error=unhandled(exc))
            if item.batch is not None and item.device is not None:
                by_device.setdefault(item.device, []).append(len(prepared))
            prepared.append(item)
        for device, indexes in by_device.items():
            pubkey = keys.get(device)
            if pubkey is None:
                continue  # not known yet: the writer looks the key up and checks there
            batches = [prepared[i].batch for i in indexes]
            try:
                results: list[ProtocolError | None] = list(verify_batches(batches, self.key(pubkey)))  # type: ignore[arg-type]
            except Exception as exc:  # noqa: BLE001 - the writer checks these batches again, one by one
                results = [unhandled(exc, device=device)] * len(indexes)
            for index, error in zip(indexes, results, strict=True):
                prepared[index] = replace(prepared[index], verified_with=pubkey if error is None else None, error=error)
        return prepared

    @staticmethod
    def _decode(topic: str, payload: bytes) -> Prepared:
        try:
            device, channel = parse(topic)
        except DecodeError as exc:
            return Prepared(topic=topic, payload=payload, device=None, channel=None, error=exc)
        if channel is not Channel.RATINGS:
            return Prepared(topic=topic, payload=payload, device=device, channel=channel)
        try:
            batch = decode_batch(payload)
            if batch.device != device:
                raise DecodeError(
                    f"a batch of device {batch.device} on the topic of {device}",
                    reason=Reason.TOPIC_MISMATCH,
                    device=device,
                )
        except ProtocolError as exc:
            return Prepared(topic=topic, payload=payload, device=device, channel=channel, error=exc)
        return Prepared(topic=topic, payload=payload, device=device, channel=channel, batch=batch)


def unhandled(exc: BaseException, *, device: str | None = None) -> ProtocolError:
    """A failure nobody foresaw, as a refusal with a reason code (`unhandled`) that names it."""
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - an exception whose text fails is still named by its type
        text = "(no text)"
    return ProtocolError(f"{type(exc).__name__}: {text}"[:300], reason=Reason.UNHANDLED, device=device)


_WORKER = Preparer()


def prepare_in_worker(messages: list[tuple[str, bytes]], keys: dict[str, str]) -> list[Prepared]:
    """Entry point in a hub worker process (one Preparer per process, its keys cached)."""
    return _WORKER.prepare_many(messages, keys)


def worker_init(parent: int) -> None:
    """In a hub worker process: die with the hub, however it dies (a SIGKILL included).

    Linux sends the worker SIGTERM when its parent exits (PR_SET_PDEATHSIG); elsewhere, and in
    case the hub died before that was set, a watchdog notices the parent is gone.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(0)

    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
