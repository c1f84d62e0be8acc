"""Give the terminal's threads names the OS shows (`top -H`, `ps -L`), so that an operator, and
the benchmark, can tell which one is busy: pj-panel, pj-mqtt, pj-stdin. The main thread keeps the
process's name."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

__all__ = ["name_this_thread"]

_COMM_BYTES = 15  # Linux keeps 15 bytes of a thread's name


def name_this_thread(name: str) -> None:
    """Name the calling thread for the OS (Linux; elsewhere, or if /proc is not there, nothing)."""
    with contextlib.suppress(OSError):
        Path(f"/proc/self/task/{threading.get_native_id()}/comm").write_text(name[:_COMM_BYTES])
