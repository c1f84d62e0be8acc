"""Threads the OS can name (runtime/threads.py)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from runtime.threads import name_this_thread


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="names are set through Linux's /proc")
def test_a_thread_is_shown_by_its_name_cut_to_what_linux_keeps() -> None:
    seen: list[str] = []

    def run() -> None:
        name_this_thread("pj-a-rather-long-name")
        seen.append(Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip())

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == ["pj-a-rather-lon"]
