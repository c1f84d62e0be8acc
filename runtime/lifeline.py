"""Standard input as a lifeline, and as a source of lines.

A process started by a supervisor, a test or the demo gets a pipe as its standard input; when the
parent dies, however it dies, the pipe closes. `hold_lifeline` stops the process then, so that a
killed test run or demo leaves no stray hubs or terminals behind. `read_lines` is the reader under
it, and under a terminal's stdin key source.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator

from runtime.threads import name_this_thread

__all__ = ["hold_lifeline", "read_lines"]


def read_lines(fd: int) -> Iterator[str]:
    """Lines from a file descriptor until end of input (undecodable bytes replaced).

    Reads the raw descriptor: a daemon thread blocked inside a buffered reader would hold its lock
    while the interpreter shuts down, which aborts the process.
    """
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


def hold_lifeline(fd: int, on_end: Callable[[], object]) -> threading.Thread:
    """Call `on_end` (from a daemon thread) when `fd` reaches end of input; what it reads is ignored."""

    def watch() -> None:
        name_this_thread("pj-lifeline")
        for _line in read_lines(fd):
            pass
        on_end()

    thread = threading.Thread(target=watch, name="lifeline", daemon=True)
    thread.start()
    return thread
