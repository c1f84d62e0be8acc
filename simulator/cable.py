"""The USB cable between a technician's laptop and a terminal's console port, as two ptys joined by
a relay thread: the tool opens `tool_port`, the terminal the other end through `link` (a symlink,
so that the terminal's end can be unplugged and plugged in again, as a cable is)."""

from __future__ import annotations

import contextlib
import os
import queue
import select
import threading
import tty
from pathlib import Path

__all__ = ["Cable"]

WAIT_S = 5.0


class Cable:
    """Two ptys and a relay between their masters; the terminal's end is at `link` (a symlink)."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self._tool = os.openpty()
        tty.setraw(self._tool[1])
        self.tool_port = os.ttyname(self._tool[1])
        self._terminal: tuple[int, int] | None = None
        self._wake = os.pipe()
        self._orders: queue.Queue[str] = queue.Queue()
        self._done = threading.Event()
        self._plug()
        self._thread = threading.Thread(target=self._relay, name="cable", daemon=True)
        self._thread.start()

    def unplug(self) -> None:
        self._order("unplug")

    def replug(self) -> None:
        self._order("replug")

    def close(self) -> None:
        self._order("close")
        self._thread.join(WAIT_S)
        for fd in (*self._tool, *self._wake):
            os.close(fd)

    def _order(self, what: str) -> None:
        self._done.clear()
        self._orders.put(what)
        os.write(self._wake[1], b"x")
        assert self._done.wait(WAIT_S), f"the cable did not {what}"

    def _plug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        staging = self.link.with_name(self.link.name + ".new")
        staging.symlink_to(os.ttyname(slave))
        staging.replace(self.link)
        self._terminal = (master, slave)

    def _unplug(self) -> None:
        if self._terminal is not None:
            self.link.unlink()
            for fd in self._terminal:
                os.close(fd)
            self._terminal = None

    def _relay(self) -> None:
        while True:
            ends = [self._tool[0], self._wake[0]] + ([self._terminal[0]] if self._terminal else [])
            ready = select.select(ends, [], [])[0]
            if self._wake[0] in ready:
                os.read(self._wake[0], 64)
                order = self._orders.get()
                if order in ("unplug", "close"):
                    self._unplug()
                if order == "replug":
                    self._plug()
                self._done.set()
                if order == "close":
                    return
                continue
            if self._terminal is None:
                continue
            pairs = ((self._tool[0], self._terminal[0]), (self._terminal[0], self._tool[0]))
            for source, sink in pairs:
                if source in ready:
                    with contextlib.suppress(OSError):  # nobody at an end: the bytes are lost, as on a wire
                        os.write(sink, os.read(source, 4096))
