"""A terminal's input and output, behind one small interface, one backend per kind of hardware.

A backend turns what a person does into inputs it posts to the terminal (flow events such as
`Press`, `Invite` and a screen's follow-up answers `Details`, a `CardTap`, a `Quit`, `BadInput`, or
its own coming and going as `IoUp` / `IoDown`), and shows what the terminal asks (`show` a screen,
`refuse` a press). It never decides anything: the rules are the flow's. Backends: the serial key
panel (keypanel.py, over panel.py), lines on standard input (stdin.py), the touchscreen, and an
in-memory one for tests (fake.py).

A call-back number goes to the terminal as a `Phone` inside `Details`: the terminal seals it to
the hub's key before anything else sees it. A backend keeps no copy, never shows it again, and
never sets `Details.contact` (the sealed form) itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from device.config import DeviceConfig
from device.flow import Details, FollowUp, Phone, State
from protocol import PanelState
from protocol.card import ClerkCard

__all__ = [
    "BadInput",
    "CardTap",
    "Details",
    "FollowUp",
    "Io",
    "IoDown",
    "IoStatus",
    "IoUp",
    "Phone",
    "Post",
    "Quit",
    "Screen",
]

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
    """What to show: the flow's state, the clerk, in the reasons state the codes chosen so far, the
    labels of keys 1..5 and the follow-up questions open, while the terminal is not paired its
    pairing code, the clerk's card and the site's language."""

    state: State
    staff: str | None
    reasons: tuple[int, ...] = ()
    labels: Sequence[str] = field(default=())
    code: str | None = None  # not paired: the one-time pairing code to show (a screen writes it; a panel plays it)
    # REASONS: the questions to ask; "callback" is among the pages only if the terminal can seal a
    # number (it is paired: it holds the hub's seal key).
    follow_up: FollowUp | None = None
    card: ClerkCard | None = None  # the logged-in clerk's card from the hub; None: none yet (a placeholder)
    language: str = "zh-CN"  # the site's language for screens and voice (the `language` setting): zh-CN or en


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

    def configure(self, config: DeviceConfig) -> None:
        """The terminal's settings now in force: at start (a stored hub document included) and
        after every configuration document the hub sends. Called from the terminal's loop."""
        ...

    def status(self) -> IoStatus: ...

    @property
    def bounces(self) -> int:
        """Key contacts that bounced and were taken as one press, since start."""
        ...
