"""The stdin backend: a terminal without a panel, driven by lines on standard input (`--keys stdin`).

    1 .. 5            a customer presses that key (5 = 非常满意 ... 1 = 非常不满意)
    invite [ticket]   the clerk asks the customer to rate (请评价), optionally naming the service ticket
    login <staff>     a clerk logs in at this terminal
    logout            the clerk logs out
    card <uid>        a staff card (hex uid) is held to the reader
    quit              stop the terminal cleanly (end of input does the same)

With a key panel, the same lines are a second source of input (a technician's, a test's). Nothing
is shown: the events the terminal reports say what a screen would.
"""

from __future__ import annotations

import threading

from device.config import DeviceConfig
from device.flow import Event, Invite, Login, Logout, Press
from device.io import BadInput, CardTap, IoStatus, Post, Quit, Screen
from runtime.lifeline import read_lines
from runtime.threads import name_this_thread

__all__ = ["StdinKeys", "parse_line"]


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
    """Reads lines on a daemon thread and posts what they say; end of input posts Quit (if asked to)."""

    def __init__(self, fd: int, *, quit_at_end: bool = True) -> None:
        self._fd = fd
        self._quit_at_end = quit_at_end
        self._post: Post | None = None
        self._thread = threading.Thread(target=self._run, name="keys-stdin", daemon=True)

    def start(self, post: Post) -> None:
        self._post = post
        self._thread.start()

    def stop(self) -> None:
        return None  # the thread ends with its input; it is a daemon

    def show(self, screen: Screen) -> None:
        return None

    def configure(self, config: DeviceConfig) -> None:
        return None

    def refuse(self) -> None:
        return None

    def status(self) -> IoStatus:
        return IoStatus()

    @property
    def bounces(self) -> int:
        return 0

    def _run(self) -> None:
        name_this_thread("pj-stdin")
        assert self._post is not None
        for line in read_lines(self._fd):
            parsed = parse_line(line)
            if parsed is not None:
                self._post(parsed)
        if self._quit_at_end:
            self._post(Quit("end of input"))
