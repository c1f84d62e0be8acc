"""The technician console at the edge: one serial port, one reader thread, requests out, responses in.

The terminal's second serial port (a USB gadget port, /dev/ttyGS0, on real hardware; a pty in the
simulator and the tests) carries the console of protocol/console.py (spec: protocol/CONSOLE.md).
`ConsoleLink` is the terminal's end of it:

- One daemon thread owns the port. It opens it, reads, splits the bytes into frames and decodes each
  request; a good one is posted to `post` as a `ConsoleRequest`, whose `reply` writes the response.
  A frame that cannot be decoded (damaged, oversize, unknown op, another version, a bad field) is
  answered at once from this thread with a refusal naming the problem, and counted.
- The port may go away (the technician's cable pulled, the gadget re-bound, the pty closed): a read
  error, or the path gone or naming another device, closes it; the thread opens the path again
  every `reopen_interval_s` for as long as it runs. Opening sends a lone newline, which ends a partial
  line the other side may hold.
- `reply` may be called from any thread, once (later calls do nothing); it writes the response to
  the port the request came from, or drops it (counted) if that port was closed meanwhile: an answer
  is never given to whoever plugged in next.

The terminal's loop takes each ConsoleRequest on its own thread and answers with
`device.pairing.Pairer.handle`; this module knows nothing of pairing.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import serial

from protocol import console as wire
from runtime.threads import name_this_thread

__all__ = ["WRITE_TIMEOUT_S", "ConsoleCounters", "ConsoleLink", "ConsoleRequest"]

log = logging.getLogger("pingjia.console")

WRITE_TIMEOUT_S = 0.5  # a response (a few hundred bytes) that the port takes nothing of for this long is dropped
_READ_WAIT_S = 0.05  # how long one read waits for the first byte: bounds how soon stop() is seen
_PATH_CHECK_S = 1.0  # how often an open port's path is checked (gone, or another device now)


@dataclass(frozen=True, slots=True)
class ConsoleRequest:
    """A decoded console request; `reply(response)` answers it (any thread, once)."""

    request: wire.Request
    reply: Callable[[wire.Response], None] = field(repr=False)


@dataclass(frozen=True, slots=True)
class ConsoleCounters:
    """A snapshot of what the link has seen since it was made."""

    requests: dict[str, int]  # good requests posted, by op
    refused: dict[str, int]  # frames answered with a refusal by the link itself, by ConsoleCode
    replies: int  # responses written
    dropped_replies: int  # responses not written: their port was closed, or it failed or stalled
    reconnects: int  # times the port was opened again after the first time


class ConsoleLink:
    """The terminal's end of the technician console; see the module docstring for its rules."""

    def __init__(
        self,
        port: str,
        post: Callable[[object], None],
        *,
        baudrate: int = 115200,
        reopen_interval_s: float = 0.5,
    ) -> None:
        if not port:
            raise ValueError("port must be the path of the console's serial device")
        if baudrate <= 0 or reopen_interval_s <= 0:
            raise ValueError("baudrate and reopen_interval_s must be positive")
        self.port = port
        self._post = post
        self._baudrate = baudrate
        self._reopen_interval_s = reopen_interval_s
        # _lock guards the open port, its generation (which port a reply belongs to) and the counters.
        self._lock = threading.Lock()
        self._serial: Any = None
        self._generation = 0
        self._requests: dict[str, int] = {}
        self._refused: dict[str, int] = {}
        self._replies = 0
        self._dropped_replies = 0
        self._reconnects = 0
        self._splitter = wire.FrameSplitter()  # the reader thread's own
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("ConsoleLink.start() was already called")
        self._thread = threading.Thread(target=self._run, name=f"console-{os.path.basename(self.port)}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Close the port and end the reader thread; replies after this are dropped."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def connected(self) -> bool:
        """Whether the port is open now (not whether anybody is at the other end)."""
        with self._lock:
            return self._serial is not None

    @property
    def counters(self) -> ConsoleCounters:
        with self._lock:
            return ConsoleCounters(
                requests=dict(self._requests),
                refused=dict(self._refused),
                replies=self._replies,
                dropped_replies=self._dropped_replies,
                reconnects=self._reconnects,
            )

    # -- replies, from any thread -----------------------------------------------------------------

    def _write(self, generation: int, data: bytes, *, counted: bool = True) -> None:
        with self._lock:
            port = self._serial if generation == self._generation else None
            ok = False
            if port is not None:
                try:
                    _write_all(port.fileno(), data)
                    ok = True
                except OSError as exc:
                    log.debug("%s: writing a response failed: %s", self.port, exc)
            if not counted:
                return
            if ok:
                self._replies += 1
            else:
                self._dropped_replies += 1

    def _reply_for(self, generation: int) -> Callable[[wire.Response], None]:
        done = threading.Event()

        def reply(response: wire.Response) -> None:
            if done.is_set():
                return
            done.set()
            self._write(generation, wire.encode_response(response))

        return reply

    # -- the reader thread --------------------------------------------------------------------------

    def _run(self) -> None:
        name_this_thread("pj-console")
        opened_before = False
        while not self._stopping.is_set():
            port = self._open()
            if port is None:
                self._stopping.wait(self._reopen_interval_s)
                continue
            if opened_before:
                with self._lock:
                    self._reconnects += 1
            opened_before = True
            reason = self._serve(port)
            self._close()
            log.info("%s: console port closed: %s", self.port, reason)
            if reason != "stopped":
                self._stopping.wait(self._reopen_interval_s)

    def _open(self) -> Any:
        try:
            port = serial.Serial(
                self.port,
                self._baudrate,
                timeout=_READ_WAIT_S,
                write_timeout=WRITE_TIMEOUT_S,
                exclusive=True,  # one terminal process per console
            )
        except (OSError, ValueError) as exc:
            log.debug("%s: cannot open: %s", self.port, exc)
            return None
        self._splitter.reset()
        with self._lock:
            self._serial = port
            self._generation += 1
            generation = self._generation
        self._write(generation, b"\n", counted=False)  # ends a partial line the other side may hold
        log.debug("%s: opened", self.port)
        return port

    def _serve(self, port: Any) -> str:
        """Read until the port is lost or the link stops; return why it ended."""
        fd = port.fileno()
        try:
            device: int | None = os.fstat(fd).st_rdev
        except OSError:
            device = None
        next_check = time.monotonic() + _PATH_CHECK_S
        with self._lock:
            generation = self._generation
        while not self._stopping.is_set():
            try:
                data = _read_some(fd, _READ_WAIT_S)
            except OSError as exc:
                log.debug("%s: read failed: %s", self.port, exc)
                return "unplugged"
            if data:
                self._receive(data, generation)
            if time.monotonic() >= next_check:
                if _path_moved(self.port, device):
                    return "unplugged"
                next_check = time.monotonic() + _PATH_CHECK_S
        return "stopped"

    def _close(self) -> None:
        with self._lock:
            port, self._serial = self._serial, None
            self._generation += 1  # replies still due belonged to the port now closed
        try:
            port.close()
        except OSError as exc:
            log.debug("%s: close failed: %s", self.port, exc)

    def _receive(self, data: bytes, generation: int) -> None:
        for line in self._splitter.feed(data):
            if isinstance(line, wire.ConsoleError):
                self._refuse(line, generation)
                continue
            try:
                request = wire.decode_request(line)
            except wire.ConsoleError as exc:
                self._refuse(exc, generation)
                continue
            with self._lock:
                self._requests[request.op.value] = self._requests.get(request.op.value, 0) + 1
            self._post(ConsoleRequest(request, self._reply_for(generation)))

    def _refuse(self, error: wire.ConsoleError, generation: int) -> None:
        with self._lock:
            self._refused[error.code.value] = self._refused.get(error.code.value, 0) + 1
        log.info("%s: refused a console frame: %s", self.port, error)
        self._write(generation, wire.encode_response(wire.refusal_for(error)))


def _path_moved(path: str, device: int | None) -> bool:
    """The path is gone, or names another device now (re-enumerated while this fd stayed open)."""
    try:
        now = os.stat(path).st_rdev
    except OSError:
        return True
    return device is not None and now != device


# pyserial opens, configures and closes the port; reads and writes go straight to its descriptor
# (as device/io/panel.py does, for the same reasons).


def _read_some(fd: int, wait_s: float) -> bytes:
    """What the port has (up to 4 KiB), waiting at most `wait_s` for the first byte; b"" if nothing.

    OSError if the port is gone: a readable port that gives no bytes is a disconnected device.
    """
    if not select.select([fd], [], [], wait_s)[0]:
        return b""
    try:
        data = os.read(fd, 4096)
    except BlockingIOError:
        return b""
    if not data:
        raise OSError(errno.EIO, "the port is readable but gives no bytes (disconnected?)")
    return data


def _write_all(fd: int, data: bytes) -> None:
    """All of `data`, or OSError (TimeoutError if the port takes nothing for WRITE_TIMEOUT_S)."""
    view = memoryview(data)
    deadline: float | None = None
    while view:
        with contextlib.suppress(BlockingIOError):
            view = view[os.write(fd, view) :]
        if not view:
            return
        if deadline is None:
            deadline = time.monotonic() + WRITE_TIMEOUT_S
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([], [fd], [], left)[1]:
            raise TimeoutError(f"the port took no bytes for {WRITE_TIMEOUT_S} s")
