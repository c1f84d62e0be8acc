"""The key-panel backend: five keys, an invite key and a card reader in; LEDs and a buzzer out.

`KeyPanel` makes a terminal backend (device.io.Io) of the serial driver (device.io.panel.PanelLink):
a key's down-edge is a press once the `Debouncer` has judged it (the invite key is an Invite), a
card is a CardTap, and the panel coming and going is IoUp / IoDown. What each state of the flow
looks and sounds like is a table (`FEEDBACK`): the thank-you is the same for every level, and
nothing shown depends on the key pressed, so a clerk cannot read the customer's choice from across
the counter. LED states per key: 0 off, 1 on, 2 blink (the panel protocol's values).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from device.flow import Invite, Press, State
from device.io import CardTap, IoDown, IoStatus, IoUp, Post, Screen
from device.io.panel import CardRead, KeyPressed, PanelDown, PanelLink, PanelUp
from protocol import PanelState
from protocol.panel import INVITE_KEY, LedState

__all__ = ["FEEDBACK", "REFUSED_BEEP", "Debouncer", "Feedback", "KeyPanel"]

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
        self._post: Post | None = None
        self._state = PanelState.DISCONNECTED
        self._fw: str | None = None

    def start(self, post: Post) -> None:
        self._post = post
        self._link.start()

    def stop(self) -> None:
        self._link.stop()

    def show(self, screen: Screen) -> None:
        feedback = FEEDBACK[screen.state]
        leds = feedback.leds
        if screen.state is State.REASONS and screen.reasons:
            leds = tuple(ON if key in screen.reasons else BLINK for key in range(1, 6))
        self._link.show(leds, feedback.beep or None)

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
