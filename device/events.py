"""Everything a terminal reports as it runs, declared once as types.

`pingjia device run --events jsonl` writes each as one JSON line, `{"event": NAME, ...fields}`;
the simulator's harness and the tests read them back with `from_json` and match on types, not on
strings. A field that is None is written as null (readers tell "no clerk" from "not said").
Adding a field is compatible; renaming or removing one is a change of this interface.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, ClassVar

__all__ = [
    "EVENTS",
    "Acked",
    "BadInput",
    "ClockJumped",
    "Configured",
    "ControlRefused",
    "Error",
    "GapResent",
    "HealthReported",
    "HubBehind",
    "Identified",
    "JsonLines",
    "Misuse",
    "Offline",
    "Online",
    "PairedWith",
    "PairingCodeShown",
    "PanelChanged",
    "Ready",
    "Recorded",
    "Refused",
    "Report",
    "Shown",
    "Stopped",
    "TerminalEvent",
    "Thanked",
    "UnpairedEvent",
    "from_json",
]


@dataclass(frozen=True, slots=True)
class TerminalEvent:
    name: ClassVar[str] = ""

    def to_json(self) -> dict[str, Any]:
        return {"event": self.name, **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)}}


@dataclass(frozen=True, slots=True)
class Ready(TerminalEvent):
    """The terminal has started: its newest seq, the hub's watermark, and the flow's state."""

    name: ClassVar[str] = "ready"
    device: str
    head: int
    acked: int
    state: str
    config_version: int = 0  # the hub's configuration document in force (0: none)
    paired: bool = False


@dataclass(frozen=True, slots=True)
class Recorded(TerminalEvent):
    """A record is durable in the outbox (before any thanks)."""

    name: ClassVar[str] = "recorded"
    seq: int
    kind: str
    staff: str | None
    flags: list[str]
    amends: int | None
    reasons: list[int]


@dataclass(frozen=True, slots=True)
class Thanked(TerminalEvent):
    """The customer was thanked for the rating stored as `seq`."""

    name: ClassVar[str] = "thanked"
    seq: int
    hash: str
    staff: str | None


@dataclass(frozen=True, slots=True)
class Refused(TerminalEvent):
    """A press or an invitation was refused (closed, out_of_service, bad_key)."""

    name: ClassVar[str] = "refused"
    reason: str
    key: int | None


@dataclass(frozen=True, slots=True)
class Shown(TerminalEvent):
    """What the terminal now shows: the flow's state, the clerk, the reasons chosen (and their labels)."""

    name: ClassVar[str] = "display"
    state: str
    staff: str | None
    reasons: list[int]
    labels: list[str] | None = None  # in the reasons state: what a screen shows and a voice reads for keys 1..5

    def to_json(self) -> dict[str, Any]:
        shown = TerminalEvent.to_json(self)
        if self.labels is None:
            del shown["labels"]
        return shown


@dataclass(frozen=True, slots=True)
class Misuse(TerminalEvent):
    name: ClassVar[str] = "misuse"
    detail: str


@dataclass(frozen=True, slots=True)
class Acked(TerminalEvent):
    """The hub holds every seq up to `upto`; `depth` records are still waiting for it."""

    name: ClassVar[str] = "acked"
    upto: int
    depth: int


@dataclass(frozen=True, slots=True)
class HubBehind(TerminalEvent):
    """The hub holds less than it acked (restored from an older backup): sending from `resend_from` again."""

    name: ClassVar[str] = "hub_behind"
    upto: int
    acked: int
    resend_from: int


@dataclass(frozen=True, slots=True)
class Online(TerminalEvent):
    name: ClassVar[str] = "online"
    protocol: str
    session: int


@dataclass(frozen=True, slots=True)
class Offline(TerminalEvent):
    name: ClassVar[str] = "offline"
    reason: str


@dataclass(frozen=True, slots=True)
class PanelChanged(TerminalEvent):
    """The key panel came (with its firmware) or went (with the reason)."""

    name: ClassVar[str] = "panel"
    connected: bool
    fw: str | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        if self.connected:
            return {"event": self.name, "connected": True, "fw": self.fw}
        return {"event": self.name, "connected": False, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class ClockJumped(TerminalEvent):
    name: ClassVar[str] = "clock_jump"
    ms: int


@dataclass(frozen=True, slots=True)
class HealthReported(TerminalEvent):
    """The health message just published (its fields, as on the wire)."""

    name: ClassVar[str] = "health"
    fields: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"event": self.name, **self.fields}


@dataclass(frozen=True, slots=True)
class Error(TerminalEvent):
    """Something went wrong; the same text is the health's `last_error`."""

    name: ClassVar[str] = "error"
    detail: str


@dataclass(frozen=True, slots=True)
class BadInput(TerminalEvent):
    """A line of input that is not a command (stdin keys)."""

    name: ClassVar[str] = "bad_input"
    line: str
    detail: str


@dataclass(frozen=True, slots=True)
class ControlRefused(TerminalEvent):
    """A control message (ack, command, configuration, hub status) was refused and changed
    nothing: unsigned, signed by another key, for another terminal, replayed, rolled back, stale,
    or arriving before the terminal was paired. `reason` is a protocol reason code."""

    name: ClassVar[str] = "control_refused"
    what: str
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class Configured(TerminalEvent):
    """A configuration document from the hub is in force (`version`), with these settings."""

    name: ClassVar[str] = "configured"
    version: int
    settings: dict[str, str]


@dataclass(frozen=True, slots=True)
class GapResent(TerminalEvent):
    """The hub holds records past a gap: seqs `first`..`last` are sent again at once."""

    name: ClassVar[str] = "gap_resent"
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class PairingCodeShown(TerminalEvent):
    """Not paired: the one-time code a technician confirms (valid `left_s` more seconds)."""

    name: ClassVar[str] = "pairing_code"
    code: str
    left_s: int


@dataclass(frozen=True, slots=True)
class PairedWith(TerminalEvent):
    """A technician paired the terminal with a hub (its key's first 16 hex digits)."""

    name: ClassVar[str] = "paired"
    hub_key: str
    broker: str
    department: str
    counter: str
    tech: str


@dataclass(frozen=True, slots=True)
class UnpairedEvent(TerminalEvent):
    """A technician unpaired the terminal: it takes nothing from a hub until paired again."""

    name: ClassVar[str] = "unpaired"


@dataclass(frozen=True, slots=True)
class Identified(TerminalEvent):
    """A technician asked the terminal to show itself (blink and beep)."""

    name: ClassVar[str] = "identified"


@dataclass(frozen=True, slots=True)
class Stopped(TerminalEvent):
    name: ClassVar[str] = "stopped"
    head: int
    acked: int
    resends: int  # times the hub was silent too long
    bounces: int  # key contacts that bounced


EVENTS: dict[str, type[TerminalEvent]] = {
    cls.name: cls
    for cls in (
        Ready,
        Recorded,
        Thanked,
        Refused,
        Shown,
        Misuse,
        Acked,
        HubBehind,
        Online,
        Offline,
        PanelChanged,
        ClockJumped,
        HealthReported,
        Error,
        BadInput,
        ControlRefused,
        Configured,
        GapResent,
        PairingCodeShown,
        PairedWith,
        UnpairedEvent,
        Identified,
        Stopped,
    )
}


def from_json(line: dict[str, Any]) -> TerminalEvent | None:
    """The event a JSON line holds; None for a line of an unknown kind (a newer terminal's)."""
    cls = EVENTS.get(line.get("event", ""))
    if cls is None:
        return None
    fields = {key: value for key, value in line.items() if key != "event"}
    if cls is HealthReported:
        return HealthReported(fields=fields)
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{key: value for key, value in fields.items() if key in known})


Report = Callable[[TerminalEvent], None]


class JsonLines:
    """Writes events as JSON lines to a stream, buffered; `flush` once per turn of the terminal's loop."""

    def __init__(self, stream: IO[str] = sys.stdout) -> None:
        self.stream = stream

    def __call__(self, event: TerminalEvent) -> None:
        self.stream.write(json.dumps(event.to_json(), ensure_ascii=False) + "\n")

    def flush(self) -> None:
        self.stream.flush()
