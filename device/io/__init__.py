"""A terminal's input and output, behind one small interface, one backend per kind of hardware.

A backend turns what a person does into inputs it posts to the terminal (flow events such as
`Press` and `Invite`, a `CardTap`, a `Quit`, `BadInput`, or its own coming and going as `IoUp` /
`IoDown`), and shows what the terminal asks (`show` a screen, `refuse` a press). It never decides
anything: the rules are the flow's. Backends: the serial key panel (keypanel.py, over panel.py),
lines on standard input (stdin.py), and an in-memory one for tests (fake.py); the touchscreen is
the next.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from device.flow import State
from protocol import PanelState

__all__ = ["BadInput", "CardTap", "Io", "IoDown", "IoStatus", "IoUp", "Post", "Quit", "Screen"]

Post = Callable[[object], None]


@dataclass(frozen=True, slots=True)
class Quit:
    """Stop the terminal cleanly."""

    reason: str


@dataclass(frozen=True, slots=True)
class CardTap:
    """A staff card was held to the reader: the clerk logs in (or out, if it is theirs)."""

    uid: str  # lowercase hex


@dataclass(frozen=True, slots=True)
class BadInput:
    """Input a backend could not read as anything (a mistyped line)."""

    line: str
    detail: str


@dataclass(frozen=True, slots=True)
class IoUp:
    """The hardware is there (again): a panel said Hello."""

    fw: str
    serial: str


@dataclass(frozen=True, slots=True)
class IoDown:
    """The hardware is gone: unplugged, silent, or closed."""

    reason: str


@dataclass(frozen=True, slots=True)
class Screen:
    """What to show: the flow's state, the clerk, in the reasons state the codes chosen so far and
    the labels of keys 1..5, and while the terminal is not paired its pairing code."""

    state: State
    staff: str | None
    reasons: tuple[int, ...] = ()
    labels: Sequence[str] = field(default=())
    code: str | None = None  # not paired: the one-time pairing code to show (a screen writes it; a panel plays it)


@dataclass(frozen=True, slots=True)
class IoStatus:
    """What health says of the hardware."""

    panel: PanelState = PanelState.NONE
    fw: str | None = None
    dropped: int | None = None  # frames from the hardware dropped as damaged, since start


class Io(Protocol):
    def start(self, post: Post) -> None:
        """Begin taking input; everything is posted with `post` (from any thread)."""
        ...

    def stop(self) -> None: ...

    def show(self, screen: Screen) -> None:
        """Show a state. Called from the terminal's loop; must not block for long."""
        ...

    def refuse(self) -> None:
        """Tell the person at the counter that what they pressed was not taken."""
        ...

    def status(self) -> IoStatus: ...

    @property
    def bounces(self) -> int:
        """Key contacts that bounced and were taken as one press, since start."""
        ...
