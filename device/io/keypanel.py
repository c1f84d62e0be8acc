"""The key-panel backend: five keys, an invite key and a card reader in; LEDs and a buzzer out.

`KeyPanel` makes a terminal backend (device.io.Io) of the serial driver (device.io.panel.PanelLink):
a key's down-edge is a press once the `Debouncer` has judged it (the invite key is an Invite), a
card is a CardTap, and the panel coming and going is IoUp / IoDown. What each state of the flow
looks and sounds like is a table (`FEEDBACK`): the thank-you is the same for every level, and
nothing shown depends on the key pressed, so a clerk cannot read the customer's choice from across
the counter. LED states per key: 0 off, 1 on, 2 blink (the panel protocol's values). A terminal not
paired yet plays its pairing code on the LEDs (`CodePlayer`, `digit_leds`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from device.config import DeviceConfig
from device.flow import Invite, Press, State
from device.io import CardTap, IoDown, IoStatus, IoUp, Post, Screen
from device.io.panel import CardRead, KeyPressed, PanelDown, PanelLink, PanelUp
from protocol import PanelState
from protocol.panel import INVITE_KEY, LedState

__all__ = ["CODE_BEEP", "FEEDBACK", "REFUSED_BEEP", "CodePlayer", "Debouncer", "Feedback", "KeyPanel", "digit_leds"]

OFF, ON, BLINK = LedState.OFF, LedState.ON, LedState.BLINK
Beep = tuple[tuple[int, int], ...]  # (on ms, off ms) pairs


@dataclass(frozen=True, slots=True)
class Feedback:
    leds: tuple[LedState, ...]
    beep: Beep = ()


FEEDBACK: Final[dict[State, Feedback]] = {
    State.CLOSED: Feedback((OFF,) * 5),
    State.IDLE: Feedback((ON,) * 5),
    State.INVITED: Feedback((BLINK,) * 5, ((60, 40), (60, 0))),  # please rate
    State.STORING: Feedback((OFF,) * 5),
    State.THANKS: Feedback((OFF,) * 5, ((150, 0),)),  # thank you — the same for every level
    State.REASONS: Feedback((BLINK,) * 5, ((40, 40), (40, 0))),  # which of these was it?
    State.OUT_OF_SERVICE: Feedback((OFF,) * 5, ((600, 200), (600, 0))),
}

REFUSED_BEEP: Final[Beep] = ((300, 0),)

# The pairing code on five LEDs, one digit at a time (a panel has no display): digits 1..5 light
# that key's LED; 6..9 light key 5's and that of digit - 5 (6 = keys 1 and 5); 0 blinks all five.
# Each digit shows for DIGIT_MS with DIGIT_GAP_MS dark after it, the whole code again after
# CODE_PAUSE_MS; one short beep says a code starts.
DIGIT_MS: Final = 1200
DIGIT_GAP_MS: Final = 400
CODE_PAUSE_MS: Final = 3000
CODE_BEEP: Final[Beep] = ((80, 0),)


def digit_leds(digit: str) -> tuple[LedState, ...]:
    """The LEDs of keys 1..5 that show one digit of a pairing code."""
    value = int(digit)
    if value == 0:
        return (BLINK,) * 5
    lit = {value} if value <= 5 else {value - 5, 5}
    return tuple(ON if key in lit else OFF for key in range(1, 6))


class CodePlayer:
    """Plays a pairing code on the panel's LEDs, over and over, on a thread of its own, until
    stopped (the terminal shows something else, or is paired)."""

    def __init__(
        self,
        show: Callable[[tuple[LedState, ...], Beep | None], None],
        *,
        digit_ms: int = DIGIT_MS,
        gap_ms: int = DIGIT_GAP_MS,
        pause_ms: int = CODE_PAUSE_MS,
    ) -> None:
        self._show = show
        self._times = (digit_ms / 1000, gap_ms / 1000, pause_ms / 1000)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.code: str | None = None

    def play(self, code: str) -> None:
        if code == self.code and self._thread is not None:
            return
        self.stop()
        self.code = code
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(code, self._stop), name="pj-code", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2)
        self._thread = None
        self.code = None

    def _run(self, code: str, stop: threading.Event) -> None:
        digit_s, gap_s, pause_s = self._times
        while not stop.is_set():
            for index, digit in enumerate(code):
                self._show(digit_leds(digit), CODE_BEEP if index == 0 else None)
                if stop.wait(digit_s):
                    return
                self._show((OFF,) * 5, None)
                if stop.wait(gap_s):
                    return
            if stop.wait(pause_s):
                return


class Debouncer:
    """One press per key-down edge: a key's down-edges closer than `window_ms` are contact bounce.

    Judged on the panel's own clock (`panel_ms`, wrapping at 2**32), which stamps each edge when
    it happens: when the host reads them says nothing about how far apart they were.
    """

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self._last_down: dict[int, int] = {}
        self.bounces = 0

    def press(self, key: int, panel_ms: int) -> bool:
        """True if a down-edge of `key` at `panel_ms` is a new press."""
        last = self._last_down.get(key)
        self._last_down[key] = panel_ms
        if last is not None and (panel_ms - last) % 2**32 < self.window_ms:
            self.bounces += 1
            return False
        return True


class KeyPanel:
    """The serial key panel as a terminal backend (see the module docstring)."""

    def __init__(self, *, port: str, debounce_ms: int) -> None:
        self.debouncer = Debouncer(debounce_ms)
        self._link = PanelLink(port=port, on_event=self._from_panel)
        self._code = CodePlayer(self._link.show)
        self._post: Post | None = None
        self._state = PanelState.DISCONNECTED
        self._fw: str | None = None

    def start(self, post: Post) -> None:
        self._post = post
        self._link.start()

    def stop(self) -> None:
        self._code.stop()
        self._link.stop()

    def show(self, screen: Screen) -> None:
        if screen.code is not None and screen.state is State.CLOSED:
            self._code.play(screen.code)
            return
        self._code.stop()
        feedback = FEEDBACK[screen.state]
        leds = feedback.leds
        if screen.state is State.REASONS and screen.reasons:
            leds = tuple(ON if key in screen.reasons else BLINK for key in range(1, 6))
        self._link.show(leds, feedback.beep or None)

    def configure(self, config: DeviceConfig) -> None:
        return None  # a key panel's LEDs and beeps take no settings

    def refuse(self) -> None:
        self._link.beep(REFUSED_BEEP)

    def status(self) -> IoStatus:
        return IoStatus(panel=self._state, fw=self._fw, dropped=sum(self._link.counters.dropped.values()))

    @property
    def bounces(self) -> int:
        return self.debouncer.bounces

    def _from_panel(self, event: object) -> None:
        """On the panel's reader thread: what the person did, as the terminal's inputs."""
        assert self._post is not None
        if isinstance(event, KeyPressed):
            if event.key == INVITE_KEY:
                self._post(Invite())
            elif self.debouncer.press(event.key, event.panel_ms):
                self._post(Press(event.key))
        elif isinstance(event, CardRead):
            self._post(CardTap(event.uid))
        elif isinstance(event, PanelUp):
            self._state, self._fw = PanelState.CONNECTED, event.fw
            self._post(IoUp(event.fw, event.serial))
        elif isinstance(event, PanelDown):
            self._state = PanelState.DISCONNECTED
            self._post(IoDown(event.reason))
        # A key's release is not an input: a press is its down-edge.
