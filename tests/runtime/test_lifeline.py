"""Standard input as a source of lines and as a lifeline (runtime.lifeline)."""

from __future__ import annotations

import os
import threading

from runtime.lifeline import hold_lifeline, read_lines


def test_lines_are_read_from_a_raw_descriptor_including_an_unterminated_last_one() -> None:
    read, write = os.pipe()
    os.write(write, "1\nlogin 王芳\n".encode() + b"\xff2")
    os.close(write)
    assert list(read_lines(read)) == ["1", "login 王芳", "\ufffd2"]
    os.close(read)


def test_the_lifeline_ends_when_its_input_closes() -> None:
    read, write = os.pipe()
    ended = threading.Event()
    thread = hold_lifeline(read, ended.set)
    os.write(write, b"anything at all\n")
    assert not ended.wait(0.05)  # input is not the end
    os.close(write)
    thread.join(5)
    assert ended.is_set()
    os.close(read)
