"""Key input for a terminal without a panel: lines on standard input (`--keys stdin`).

    1 .. 5            a customer presses that key (5 = 非常满意 ... 1 = 非常不满意)
    invite [ticket]   the clerk asks the customer to rate (请评价), optionally naming the service ticket
    login <staff>     a clerk logs in at this terminal
    logout            the clerk logs out
    card <uid>        a staff card (hex uid) is held to the reader
    quit              stop the terminal cleanly (end of input does the same)

The serial key panel is another source of the same events; `Debouncer` turns its raw key edges
into presses.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from device.flow import Event, Invite, Login, Logout, Press
from device.threads import name_this_thread

__all__ = ["BadInput", "CardTap", "Debouncer", "Quit", "StdinKeys", "parse_line", "read_lines"]


@dataclass(frozen=True, slots=True)
class Quit:
    reason: str


@dataclass(frozen=True, slots=True)
class CardTap:
    uid: str  # lowercase hex


@dataclass(frozen=True, slots=True)
class BadInput:
    line: str
    detail: str


def parse_line(line: str) -> Event | CardTap | Quit | BadInput | None:  # noqa: PLR0911 - one return per command
    text = line.strip()
    if not text:
        return None
    word, _, rest = text.partition(" ")
    if word in ("1", "2", "3", "4", "5"):
        return Press(int(word))
    if word == "login":
        staff = rest.strip()
        if not staff or len(staff) > 64 or not staff.isprintable():
            return BadInput(text, "login needs a staff id of 1..64 printable characters")
        return Login(staff)
    if word == "logout" and not rest:
        return Logout()
    if word == "invite":
        ticket = rest.strip() or None
        if ticket is not None and (len(ticket) > 64 or not ticket.isprintable()):
            return BadInput(text, "an invite's ticket is 1..64 printable characters")
        return Invite(ticket)
    if word == "card":
        uid = rest.strip().lower()
        if not uid or len(uid) > 32 or any(ch not in "0123456789abcdef" for ch in uid):
            return BadInput(text, "card needs the card's uid in hex")
        return CardTap(uid)
    if word == "quit" and not rest:
        return Quit("quit command")
    return BadInput(text[:80], "expected 1..5, invite [ticket], login <staff>, logout, card <uid> or quit")


class StdinKeys:
    """Reads lines on a daemon thread and posts parsed events; end of input posts Quit (if asked to).

    Reads the raw file descriptor: a daemon thread blocked inside a buffered reader would hold its
    lock while the interpreter shuts down, which aborts the process.
    """

    def __init__(self, fd: int, post: Callable[[object], None], *, quit_at_end: bool = True) -> None:
        self._fd = fd
        self._post = post
        self._quit_at_end = quit_at_end
        self._thread = threading.Thread(target=self._run, name="keys-stdin", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        name_this_thread("pj-stdin")
        for line in read_lines(self._fd):
            parsed = parse_line(line)
            if parsed is not None:
                self._post(parsed)
        if self._quit_at_end:
            self._post(Quit("end of input"))


def read_lines(fd: int) -> Iterator[str]:
    """Lines from a file descriptor until end of input (undecodable bytes replaced)."""
    pending = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            chunk = b""
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.decode("utf-8", "replace")
    if pending:
        yield pending.decode("utf-8", "replace")


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
