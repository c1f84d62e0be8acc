"""The host backend of the key panel: the panel's firmware, played on a real pseudo-terminal.

The terminal's `device.io.panel.PanelLink` opens a serial device by path and runs pyserial on it. So
that tests run that very code, the emulator gives it a real device: a pty whose slave side is in
raw mode, published at a stable path of the caller's choosing (a symlink, as udev makes
/dev/serial/by-id/... point at the current /dev/ttyACMn). A thread reads host frames from the
master side and answers like the firmware described in protocol/PANEL.md: Pong to Ping, Hello to
Identify, FrameAck to SetLeds and Beep, FrameNak to a frame it cannot use.

Faults, each like the hardware's:

- `silence(True)`: hung firmware. Nothing is answered or sent (the host's bytes are read and lost).
- `unplug()`: the USB cable pulled. The pty master is closed, so the host's next read fails with
  EIO, and the symlink is removed, so opening the path fails until `replug()`.
- `replug()`: USB re-enumeration. A new pty behind the same symlink, and a boot: LEDs off, seq
  and clock from 0, Hello.
- `reboot()`: a watchdog reset. The same boot, on the same pty: the host's port never errors.
- `send_raw(data)`: line noise, or any bytes a test wants the host to read.

Tests wait for the emulator's state with `wait_for(predicate, timeout_s, what)`, never with sleeps:
every change of state notifies one condition variable.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

from protocol import panel as wire

__all__ = ["PanelEmulator"]

_OFF = (wire.LedState.OFF,) * wire.KEYS


@dataclass(slots=True)
class _Pty:
    """One plug-in: a pty pair, the symlink target, and the thread reading the master side."""

    master: int
    slave: int  # held open so that the host closing its end is not a hang-up for the master
    path: str
    wake_read: int
    wake_write: int
    thread: threading.Thread | None = None


class PanelEmulator:
    """A key panel on a pty at `link`. Start it (or use it as a context manager) before the host opens."""

    def __init__(self, *, link: Path, fw: str = "panel-1.0", serial: str = "PJP-000001") -> None:
        wire.Hello(fw=fw, serial=serial)  # ValueError now rather than a panel that cannot say Hello
        self.link = link
        self.fw = fw
        self.serial = serial
        self._cond = threading.Condition(threading.RLock())  # re-entered: press() reads clock_ms()
        self._write_lock = threading.Lock()  # one frame at a time on the master side
        self._pty: _Pty | None = None
        self._decoder = wire.FrameDecoder(on_drop=self._refuse)
        self._naks_due: list[wire.FrameNak] = []
        self._seq = 0
        self._booted_at = time.monotonic()
        self._held_ms = 0  # key holds that press() put on the panel clock without waiting them out
        # State, read by tests (under wait_for, or once a wait_for has seen what they look at).
        self.silent = False
        self.boots = 0
        self.leds: tuple[wire.LedState, ...] = _OFF
        self.led_log: list[tuple[float, tuple[wire.LedState, ...]]] = []  # (time.monotonic(), states)
        self.beeps: list[tuple[tuple[int, int], ...]] = []
        self.pings = 0
        self.identifies = 0
        self.commands: list[wire.Frame] = []  # every frame decoded from the host, in order
        self.unsent = 0  # frames the panel meant to send but could not (unplugged, silent, pty full)

    # -- life cycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Plug in: make the pty, publish the symlink, boot (Hello)."""
        if self._pty is not None:
            raise RuntimeError("PanelEmulator is already plugged in")
        self._plug()

    def stop(self) -> None:
        """Unplug for good: close the pty and remove the symlink."""
        self.unplug()

    def __enter__(self) -> PanelEmulator:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def unplug(self) -> None:
        """The cable is pulled: the host's reads fail with EIO and the path is gone."""
        with self._write_lock:
            pty, self._pty = self._pty, None
        if pty is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()
        os.write(pty.wake_write, b"x")
        if pty.thread is not None:
            pty.thread.join()
        for fd in (pty.master, pty.slave, pty.wake_read, pty.wake_write):
            os.close(fd)
        with self._cond:
            self._cond.notify_all()

    def replug(self) -> None:
        """USB re-enumeration: unplugged if it was not, then a new pty behind the same path, and a boot."""
        self.unplug()
        self._plug()

    def reboot(self) -> None:
        """A watchdog reset: the firmware starts over (LEDs off, seq and clock from 0, Hello) on the
        same pty; the host sees no error on its port, only a Hello while the panel is up."""
        with self._cond:
            self._boot()
        with self._write_lock:
            self._seq = 0
        self._send(wire.Hello(fw=self.fw, serial=self.serial))

    def silence(self, on: bool) -> None:
        """Hang (True) or recover (False) the firmware, without a reboot."""
        with self._cond:
            self.silent = on
            self._cond.notify_all()

    # -- the customer, the clerk and the line --------------------------------------------------------

    def press(self, key: int, hold_ms: int = 80) -> bool:
        """KeyDown, then KeyUp exactly `hold_ms` later on the panel's clock (at once in real time:
        the clock is moved on by the hold, so it never runs backwards)."""
        with self._cond:
            down_ms = self.clock_ms()
            self._held_ms += hold_ms
        down = self._send(wire.KeyDown(key=key, panel_ms=down_ms))
        up = self._send(wire.KeyUp(key=key, panel_ms=(down_ms + hold_ms) & 0xFFFF_FFFF))
        return down and up

    def key_down(self, key: int) -> bool:
        return self._send(wire.KeyDown(key=key, panel_ms=self.clock_ms()))

    def key_up(self, key: int) -> bool:
        return self._send(wire.KeyUp(key=key, panel_ms=self.clock_ms()))

    def card(self, uid: bytes) -> bool:
        return self._send(wire.Card(uid=uid))

    def send_raw(self, data: bytes) -> bool:
        """Write bytes as they are, silenced or not: noise on the line, or a frame made by the test."""
        with self._write_lock:
            return self._write_locked(data)

    def clock_ms(self) -> int:
        """The panel's clock: ms since it booted, wrapping at 2**32."""
        with self._cond:
            return (int((time.monotonic() - self._booted_at) * 1000) + self._held_ms) & 0xFFFF_FFFF

    # -- waiting ------------------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 2.0, what: str = "the condition") -> None:
        """Block until predicate() is true (checked at every change of state); TimeoutError naming
        `what` and the panel's state if it is not true within timeout_s."""
        with self._cond:
            if not self._cond.wait_for(predicate, timeout_s):
                raise TimeoutError(
                    f"panel emulator: no {what} within {timeout_s} s "
                    f"(leds={[int(s) for s in self.leds]}, beeps={len(self.beeps)}, pings={self.pings}, "
                    f"identifies={self.identifies}, silent={self.silent}, plugged={self._pty is not None})"
                )

    @property
    def next_seq(self) -> int:
        """The seq the panel's next frame will carry."""
        with self._write_lock:
            return self._seq

    @property
    def dropped(self) -> dict[str, int]:
        """What the panel's decoder dropped, by reason (the host's leading 0x00s count as "empty")."""
        with self._cond:
            return dict(self._decoder.counts)

    # -- the firmware -------------------------------------------------------------------------------

    def _plug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        wake_read, wake_write = os.pipe()
        pty = _Pty(master=master, slave=slave, path=os.ttyname(slave), wake_read=wake_read, wake_write=wake_write)
        staging = self.link.with_name(self.link.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            staging.unlink()
        staging.symlink_to(pty.path)
        staging.replace(self.link)  # atomic: the path never points nowhere while re-pointed
        with self._cond:
            self._boot()
        pty.thread = threading.Thread(target=self._read, args=(pty,), name=f"panel-emulator-{pty.path}", daemon=True)
        pty.thread.start()
        with self._write_lock:
            self._seq = 0
            self._pty = pty
        self._send(wire.Hello(fw=self.fw, serial=self.serial))

    def _boot(self) -> None:
        self.boots += 1
        self._booted_at = time.monotonic()
        self._held_ms = 0
        self._decoder.reset()
        self._set_leds(_OFF)

    def _read(self, pty: _Pty) -> None:
        while True:
            ready, _, _ = select.select([pty.master, pty.wake_read], [], [])
            if pty.wake_read in ready:
                return
            try:
                data = os.read(pty.master, 4096)
            except BlockingIOError:
                continue
            except OSError:  # no slave open at all; cannot happen while we hold ours, but never spin
                select.select([pty.wake_read], [], [], 0.05)
                continue
            self._receive(data)

    def _receive(self, data: bytes) -> None:
        replies: list[wire.Frame] = []
        with self._cond:
            if self.silent:
                return
            # One delimiter at a time, so that answers and Naks go out in the order of what they answer.
            *whole, rest = data.split(wire.DELIMITER)
            for chunk in [piece + wire.DELIMITER for piece in whole] + [rest]:
                for frame in self._decoder.feed(chunk):
                    self.commands.append(frame)
                    replies.append(self._answer(frame))
                replies.extend(self._naks_due)
                self._naks_due.clear()
            self._cond.notify_all()
        for reply in replies:
            self._send(reply)

    def _answer(self, frame: wire.Frame) -> wire.Frame:
        match frame:
            case wire.Ping():
                self.pings += 1
                return wire.Pong(token=frame.token)
            case wire.Identify():
                self.identifies += 1
                return wire.Hello(fw=self.fw, serial=self.serial)
            case wire.SetLeds():
                self._set_leds(frame.states)
                return wire.FrameAck(ref=frame.seq)
            case wire.Beep():
                self.beeps.append(frame.pattern)
                return wire.FrameAck(ref=frame.seq)
            case _:  # a panel -> host type: not a command
                return wire.FrameNak(ref=frame.seq, code=wire.NakCode.UNKNOWN_TYPE)

    def _refuse(self, dropped: wire.Dropped) -> None:
        """A frame with a good CRC that the firmware cannot use is answered; damaged ones are not."""
        if dropped.seq is None:
            return
        code = wire.NakCode.UNKNOWN_TYPE if dropped.reason is wire.DropReason.UNKNOWN_TYPE else wire.NakCode.BAD_BODY
        self._naks_due.append(wire.FrameNak(ref=dropped.seq, code=code))

    def _set_leds(self, states: tuple[wire.LedState, ...]) -> None:
        self.leds = states
        self.led_log.append((time.monotonic(), states))

    def _send(self, frame: wire.Frame) -> bool:
        with self._cond:
            if self.silent:
                self.unsent += 1
                return False
        with self._write_lock:
            numbered = wire.encode_frame(replace(frame, seq=self._seq))
            self._seq = (self._seq + 1) & 0xFF
            sent = self._write_locked(numbered)
        if not sent:
            with self._cond:
                self.unsent += 1
        return sent

    def _write_locked(self, data: bytes) -> bool:
        if self._pty is None:
            return False
        try:
            return os.write(self._pty.master, data) == len(data)
        except OSError:  # BlockingIOError: the host has not read for a long time and the pty is full
            return False
