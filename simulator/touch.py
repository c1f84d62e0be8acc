"""The host backend of the touchscreen: a simulated customer's finger and a clerk's USB card reader.

A touchscreen terminal in the simulator is the product's own process (`pingjia device run --keys
touch`, run by simulator.terminal so that this finger can attach to it) on SDL's dummy drivers, or
in a real window for the demo. Every pygame display is one per process, so a fleet of touchscreens
is a fleet of processes, and what a person does must reach each one from outside: a named pipe
(`fingers`) carries one line per action, and `Finger`, a thread inside the terminal's process, turns
each into the events SDL would report:

- `tap ID [WAIT_MS]`: wait (up to WAIT_MS, default `WAIT_MS`) until the screen has drawn the control
  ID (face:5, reason:3, done, change, ...) in a frame begun after the line came, then a finger down
  at its centre, in SDL's 0..1 coordinates. A control that does not come in time is not touched
  (the customer gave up), and the log says so. A person waits to see a button before touching it;
  so does the finger.
- `card UID`: a USB card reader typing the card's hex digits and Enter (a staff card).

The touchscreen backend (device.io.touch) reads these events as it reads a real panel's: the device
code under test is the real one. `FingerChannel` is the simulator's end of the pipe.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from device.io.touch import TouchScreen

__all__ = ["WAIT_MS", "Finger", "FingerChannel", "headless_env"]

log = logging.getLogger("pingjia.simulator.finger")

WAIT_MS: Final = 2000  # how long a customer waits for a button to show before giving up
_POLL_S: Final = 0.002


def headless_env() -> dict[str, str]:
    """The environment of a touchscreen without a display or a sound card (SDL's dummy drivers)."""
    return {"SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}


class FingerChannel:
    """The simulator's end of a touchscreen's finger pipe: one line per action (see the module).

    The pipe is opened for reading and writing, so neither end waits for the other to open it, and
    what is written before the terminal reads stays in the pipe (across a terminal restart, too)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            os.mkfifo(path, 0o600)
        self._fd: int | None = os.open(path, os.O_RDWR)
        self._lock = threading.Lock()

    def tap(self, ident: str, wait_ms: int = WAIT_MS) -> bool:
        return self._send(f"tap {ident} {wait_ms}")

    def card(self, uid: bytes | str) -> bool:
        return self._send(f"card {uid.hex() if isinstance(uid, bytes) else uid}")

    def _send(self, line: str) -> bool:
        with self._lock:
            if self._fd is None:
                return False
            try:
                os.write(self._fd, line.encode("ascii") + b"\n")
            except OSError:
                return False
            return True

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


class Finger:
    """Inside the terminal's process: reads the pipe at `path` and acts on `touch` (see the module)."""

    def __init__(self, path: Path, touch: TouchScreen) -> None:
        self.path = path
        self.touch = touch
        self.taps = 0
        self.missed = 0

    def start(self) -> None:
        threading.Thread(target=self._run, name="pj-finger", daemon=True).start()

    def _run(self) -> None:
        fd = os.open(self.path, os.O_RDWR)  # never an end of input: the simulator may come and go
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            pending = b""
            while chunk := pipe.read(4096):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self.act(line.decode("ascii", "replace").strip())

    def act(self, line: str) -> None:
        word, _, rest = line.partition(" ")
        if not self._ready(5.0):
            log.warning("finger: the screen never opened; %r dropped", line)
            return
        if word == "tap":
            ident, _, wait = rest.partition(" ")
            self._tap(ident, int(wait) if wait.isdigit() else WAIT_MS)
        elif word == "card":
            self._card(rest.strip())
        elif line:
            log.warning("finger: %r is neither tap nor card", line[:80])

    def _ready(self, timeout_s: float) -> bool:
        """The display is open (events can be posted once SDL's video is up)."""
        deadline = time.monotonic() + timeout_s
        while self.touch.page is None:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def _tap(self, ident: str, wait_ms: int) -> None:
        import pygame

        deadline = time.monotonic() + wait_ms / 1000
        # The screen drawn now may be older than what the terminal has said it shows (the next frame
        # takes it): look once a frame begun after this line has been drawn, as an eye would.
        seen = self.touch.frames
        while self.touch.frames < seen + 2 and time.monotonic() < deadline:
            time.sleep(_POLL_S)
        while True:
            found = next((control for control in self.touch.controls if control.id == ident), None)
            if found is not None or time.monotonic() >= deadline:
                break
            time.sleep(_POLL_S)
        if found is None:
            self.missed += 1
            log.info("finger: %s is not on the %s screen; not touched", ident, self.touch.page)
            return
        x, y = found.box.center
        width, height = self.touch.size
        event = pygame.event.Event(pygame.FINGERDOWN, touch_id=1, finger_id=1, x=x / width, y=y / height, dx=0, dy=0)
        with contextlib.suppress(pygame.error):  # the display closed meanwhile: the terminal is stopping
            pygame.event.post(event)
            self.taps += 1

    def _card(self, uid: str) -> None:
        import pygame

        with contextlib.suppress(pygame.error):
            for char in uid.lower():
                pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=ord(char), mod=0, unicode=char))
            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_RETURN, mod=0, unicode="\r"))
