"""What the terminal shows and sounds in each state of the flow (pure: a table).

The thank-you is the same for every level, and nothing here depends on the key pressed, so a clerk
cannot read the customer's choice from across the counter. LED states per key: 0 off, 1 on, 2 blink
(the panel protocol's values).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from device.flow import State
from protocol.panel import LedState

__all__ = ["FEEDBACK", "REFUSED_BEEP", "Feedback"]

OFF, ON, BLINK = LedState.OFF, LedState.ON, LedState.BLINK
Beep = tuple[tuple[int, int], ...]  # (on ms, off ms) pairs


@dataclass(frozen=True, slots=True)
class Feedback:
    leds: tuple[int, int, int, int, int]
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
