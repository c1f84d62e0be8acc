"""The key panel at the edge: one serial port, one reader thread, events out, commands in.

The five keys, their LEDs, the buzzer and the card reader sit on a microcontroller on USB serial;
protocol/panel.py is the wire format. `PanelLink` is the terminal's end of it (the driver; keypanel.py
makes a terminal backend of it):

- One daemon thread owns the port. It opens it (by a stable path such as /dev/serial/by-id/...),
  reads, decodes and posts events to `on_event`; it pings the panel every `ping_interval_s`. The
  panel is *up* from its Hello until the link loses it: the port errors or its path goes away
  (USB unplugged: PanelDown "unplugged"), nothing at all is heard for `ping_timeout_s` (hung
  firmware: PanelDown "silent"), or `stop()` ("closed"). After a loss the thread closes the port
  and opens it again every `reopen_interval_s`, for as long as it runs; the panel is up again at its
  next Hello. Up and down are transitions: a panel that was never up is never reported down.
- A host that opens the port cannot know whether the panel has just booted (and said Hello to
  nobody) or has been running for hours, so until a Hello arrives each ping goes with an Identify,
  which the panel answers with Hello.
- `set_leds()`, `beep()` and `show()` (both in one write) write at once, in the calling thread (the
  terminal's main loop), under a lock shared with the pings: the time from a key-down event to the
  LED command is one write (a SetLeds is 11 bytes, about 1 ms at 115200 baud), never a hop through
  the reader thread. A write never raises for I/O: with no port, or a port that fails or stalls
  for more than `WRITE_TIMEOUT_S`, it counts a write failure and returns; the reader thread finds
  out what happened to the panel on its own.
- The last LED state asked for is kept and sent again whenever the panel says Hello, because a
  panel that rebooted or was plugged back in starts with its LEDs off. A Hello while the panel is
  up posts nothing more, unless it comes from another panel (other fw or serial): PanelUp again.

Events are posted from the reader thread only, in the order the panel sent them. Key and card
events are posted as they arrive, even before a Hello: a press is never dropped for being early.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import serial

from protocol import panel as wire
from runtime.threads import name_this_thread

__all__ = [
    "WRITE_TIMEOUT_S",
    "CardRead",
    "KeyPressed",
    "KeyReleased",
    "PanelCounters",
    "PanelDown",
    "PanelEvent",
    "PanelLink",
    "PanelUp",
]

log = logging.getLogger("pingjia.panel")

WRITE_TIMEOUT_S = 0.1  # the longest a stalled panel can hold up the caller of set_leds() or beep()
_MAX_READ_WAIT_S = 0.05  # how long one read waits for the first byte; bounds ping and timeout jitter


@dataclass(frozen=True, slots=True)
class PanelUp:
    fw: str
    serial: str


@dataclass(frozen=True, slots=True)
class PanelDown:
    reason: str  # "unplugged", "silent" or "closed"


@dataclass(frozen=True, slots=True)
class KeyPressed:
    key: int  # 1..5
    panel_ms: int  # the panel's clock: ms since it booted, wrapping at 2**32


@dataclass(frozen=True, slots=True)
class KeyReleased:
    key: int
    panel_ms: int


@dataclass(frozen=True, slots=True)
class CardRead:
    uid: str  # lowercase hex


PanelEvent = PanelUp | PanelDown | KeyPressed | KeyReleased | CardRead


@dataclass(frozen=True, slots=True)
class PanelCounters:
    """A snapshot of what the link has seen since it was made."""

    received: dict[str, int]  # valid frames by type name: "Hello", "Pong", "KeyDown", ...
    dropped: dict[str, int]  # by protocol.panel.DropReason: "crc", "cobs", "oversize", ...
    sent: dict[str, int]  # frames written, by type name
    reconnects: int  # times the port was opened again after the first time
    write_failures: int  # commands, pings included, that could not be written
    acks: int
    naks: int
    seq_gaps: int  # panel frames whose seq did not follow the one before: frames lost on the way


class PanelLink:
    """The terminal's link to its key panel; see the module docstring for the rules it keeps."""

    def __init__(
        self,
        *,
        port: str,
        on_event: Callable[[object], None],
        baudrate: int = 115200,
        ping_interval_s: float = 1.0,
        ping_timeout_s: float = 3.0,
        reopen_interval_s: float = 0.5,
    ) -> None:
        if not port:
            raise ValueError("port must be the path of the panel's serial device")
        if baudrate <= 0:
            raise ValueError(f"baudrate must be positive, got {baudrate}")
        if ping_interval_s <= 0 or reopen_interval_s <= 0:
            raise ValueError("ping_interval_s and reopen_interval_s must be positive")
        if ping_timeout_s <= ping_interval_s:
            # A quiet panel is heard from once per ping: a shorter timeout would call it silent.
            raise ValueError(
                f"ping_timeout_s ({ping_timeout_s}) must be longer than ping_interval_s ({ping_interval_s})"
            )
        self.port = port
        self._on_event = on_event
        self._baudrate = baudrate
        self._ping_interval_s = ping_interval_s
        self._ping_timeout_s = ping_timeout_s
        self._reopen_interval_s = reopen_interval_s
        self._read_wait_s = min(_MAX_READ_WAIT_S, ping_interval_s / 2)
        # _write_lock serializes writes and guards what they use: the open port, the seq and token
        # counters, the LED state to restore, and whether the panel is up.
        self._write_lock = threading.Lock()
        self._serial: Any = None
        self._device: int | None = None  # st_rdev of the open port, to notice the path moving on
        self._seq = 0
        self._token = 0
        self._leds: wire.SetLeds | None = None
        self._connected = False
        self._identity: tuple[str, str] | None = None
        # _stats_lock guards the counters and the decoder (whose counts are part of them).
        self._stats_lock = threading.Lock()
        self._decoder = wire.FrameDecoder()
        self._received: dict[str, int] = {}
        self._sent: dict[str, int] = {}
        self._reconnects = 0
        self._write_failures = 0
        self._acks = 0
        self._naks = 0
        self._seq_gaps = 0
        self._expected_seq: int | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the terminal's thread ----------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("PanelLink.start() was already called")
        self._thread = threading.Thread(target=self._run, name=f"panel-{os.path.basename(self.port)}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Close the port and end the reader thread; a panel that was up is posted PanelDown("closed")."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def connected(self) -> bool:
        """True from the panel's Hello until the link loses it."""
        return self._connected

    @property
    def counters(self) -> PanelCounters:
        with self._stats_lock:
            return PanelCounters(
                received=dict(self._received),
                dropped=dict(self._decoder.counts),
                sent=dict(self._sent),
                reconnects=self._reconnects,
                write_failures=self._write_failures,
                acks=self._acks,
                naks=self._naks,
                seq_gaps=self._seq_gaps,
            )

    def set_leds(self, states: Sequence[wire.LedState]) -> None:
        """Set all five key LEDs (key 1 first: LedState or 0 off, 1 on, 2 blink) now.

        ValueError for anything but five LED states. A write that fails, or finds no panel, is
        counted in `counters.write_failures`; the state is kept and sent again whenever the panel
        says Hello, so the LEDs are right once the panel is back.
        """
        self.show(states)

    def beep(self, pattern: Sequence[tuple[int, int]]) -> None:
        """Sound the buzzer: up to 8 (on_ms, off_ms) steps, each 0..65535 ms; an empty pattern stops it.

        ValueError for a pattern the panel cannot play. A beep that cannot be written is counted in
        `counters.write_failures` and not kept for later: a late beep is worse than none.
        """
        frame = wire.Beep(pattern=tuple(pattern))
        with self._write_lock:
            self._send_locked(frame)

    def show(self, states: Sequence[wire.LedState], beep: Sequence[tuple[int, int]] | None = None) -> None:
        """`set_leds(states)` and, if given, `beep(beep)`, in one write: one trip through the kernel
        for what a change of state shows and sounds. Both are checked before anything is sent."""
        leds = wire.SetLeds(states=states)  # type: ignore[arg-type]
        frames: list[wire.Frame] = [leds] if beep is None else [leds, wire.Beep(pattern=tuple(beep))]
        with self._write_lock:
            self._leds = leds
            self._send_locked(*frames)

    # -- writing, under _write_lock -----------------------------------------------------------------

    def _send_locked(self, *frames: wire.Frame, lead: bytes = b"") -> bool:
        data = bytearray(lead)
        for frame in frames:
            data += wire.encode_frame(frame, self._seq)
            self._seq = (self._seq + 1) & 0xFF
        ok = False
        if self._serial is not None:
            try:
                _write_all(self._serial.fileno(), data)
                ok = True
            except OSError as exc:
                log.debug("%s: writing %s failed: %s", self.port, _names(frames), exc)
        with self._stats_lock:
            if ok:
                for frame in frames:
                    name = type(frame).__name__
                    self._sent[name] = self._sent.get(name, 0) + 1
            else:
                self._write_failures += len(frames)
        return ok

    def _ask_locked(self) -> None:
        """Ping, and ask for a Hello while the panel is not known to be up."""
        ping = wire.Ping(token=self._token)
        if self._connected:
            self._send_locked(ping)
        else:
            self._send_locked(wire.Identify(), ping)
        self._token = (self._token + 1) & 0xFFFF_FFFF

    # -- the reader thread --------------------------------------------------------------------------

    def _run(self) -> None:
        name_this_thread("pj-panel")
        opened_before = False
        while not self._stopping.is_set():
            port = self._open()
            if port is None:
                self._stopping.wait(self._reopen_interval_s)
                continue
            if opened_before:
                with self._stats_lock:
                    self._reconnects += 1
            opened_before = True
            reason = self._serve(port)
            self._close()
            self._went_down(reason)
            if reason != "closed":
                self._stopping.wait(self._reopen_interval_s)

    def _open(self) -> Any:
        try:
            port = serial.Serial(
                self.port,
                self._baudrate,
                timeout=self._read_wait_s,
                write_timeout=WRITE_TIMEOUT_S,
                exclusive=True,  # one terminal process per panel
            )
        except (OSError, ValueError) as exc:
            log.debug("%s: cannot open: %s", self.port, exc)
            return None
        try:
            device: int | None = os.fstat(port.fileno()).st_rdev
        except (OSError, AttributeError):
            device = None
        with self._stats_lock:
            self._decoder.reset()
            self._expected_seq = None
        with self._write_lock:
            self._serial = port
            self._device = device
            # The leading 0x00 ends whatever partial frame the panel may hold from before.
            self._send_locked(wire.Identify(), wire.Ping(token=self._token), lead=wire.DELIMITER)
            self._token = (self._token + 1) & 0xFFFF_FFFF
        log.debug("%s: opened", self.port)
        return port

    def _serve(self, port: Any) -> str:
        """Read until the panel is lost or the link stops; return why it ended."""
        last_heard = time.monotonic()
        next_ping = last_heard + self._ping_interval_s  # _open has just pinged
        fd = port.fileno()
        while not self._stopping.is_set():
            try:
                data = _read_some(fd, self._read_wait_s)
            except OSError as exc:  # EIO after a USB unplug
                log.debug("%s: read failed: %s", self.port, exc)
                return "unplugged"
            now = time.monotonic()
            if data:
                last_heard = now
                self._receive(data)
            elif now - last_heard > self._ping_timeout_s:
                return "silent"
            if now >= next_ping:
                if self._path_moved():
                    return "unplugged"
                with self._write_lock:
                    self._ask_locked()
                next_ping = now + self._ping_interval_s
        return "closed"

    def _path_moved(self) -> bool:
        """The path is gone, or names another device now (re-enumerated while this fd stayed open)."""
        try:
            device = os.stat(self.port).st_rdev
        except OSError:
            return True
        return self._device is not None and device != self._device

    def _close(self) -> None:
        with self._write_lock:
            port, self._serial = self._serial, None
        try:
            port.close()
        except OSError as exc:
            log.debug("%s: close failed: %s", self.port, exc)

    def _receive(self, data: bytes) -> None:
        with self._stats_lock:
            frames = self._decoder.feed(data)
            for frame in frames:
                name = type(frame).__name__
                self._received[name] = self._received.get(name, 0) + 1
                # Hello starts a count of its own (0 at boot); any other break in the count is lost frames.
                if not isinstance(frame, wire.Hello) and self._expected_seq not in (None, frame.seq):
                    self._seq_gaps += 1
                self._expected_seq = (frame.seq + 1) & 0xFF
                if isinstance(frame, wire.FrameAck):
                    self._acks += 1
                elif isinstance(frame, wire.FrameNak):
                    self._naks += 1
        for frame in frames:
            self._handle(frame)

    def _handle(self, frame: wire.Frame) -> None:
        match frame:
            case wire.Hello():
                self._hello(frame)
            case wire.KeyDown():
                self._on_event(KeyPressed(frame.key, frame.panel_ms))
            case wire.KeyUp():
                self._on_event(KeyReleased(frame.key, frame.panel_ms))
            case wire.Card():
                self._on_event(CardRead(frame.uid.hex()))
            case wire.FrameNak():
                log.warning("%s: panel refused command seq %d with code %d", self.port, frame.ref, frame.code)
            case _:
                pass  # Pong, FrameAck: counted; hearing them is what keeps the link up

    def _hello(self, frame: wire.Hello) -> None:
        identity = (frame.fw, frame.serial)
        with self._write_lock:
            news = not self._connected or identity != self._identity
            self._connected = True
            self._identity = identity
            if self._leds is not None:  # a panel says Hello after a boot: its LEDs are off
                self._send_locked(self._leds)
        if news:
            log.info("%s: panel %s up, firmware %s", self.port, frame.serial, frame.fw)
            self._on_event(PanelUp(fw=frame.fw, serial=frame.serial))

    def _went_down(self, reason: str) -> None:
        with self._write_lock:
            was_up, self._connected = self._connected, False
        if was_up:
            log.info("%s: panel down: %s", self.port, reason)
            self._on_event(PanelDown(reason))


def _names(frames: Sequence[wire.Frame]) -> str:
    return "+".join(type(frame).__name__ for frame in frames)


# pyserial opens, configures, locks and closes the port (and leaves it non-blocking); reads and
# writes go straight to its descriptor. pyserial's read() asks the driver how many bytes wait, and
# its write() waits for the port after every write, even one that took all the bytes: a system call
# more per read and per write, on the path of every key press and LED change.


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
        raise OSError(errno.EIO, "the port is readable but gives no bytes (device disconnected?)")
    return data


def _write_all(fd: int, data: bytes | bytearray) -> None:
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
