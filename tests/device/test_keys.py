from __future__ import annotations

import os

from device.flow import Login, Logout, Press
from device.keys import BadInput, Quit, parse_line, read_lines


def test_input_lines() -> None:
    assert parse_line("3\n") == Press(3)
    assert parse_line("login E 1") == Login("E 1")
    assert parse_line("logout") == Logout()
    assert parse_line("quit") == Quit("quit command")
    assert parse_line("   ") is None
    assert isinstance(parse_line("7"), BadInput)
    assert isinstance(parse_line("login"), BadInput)
    assert isinstance(parse_line("login " + "x" * 65), BadInput)


def test_lines_are_read_from_a_raw_descriptor_including_an_unterminated_last_one() -> None:
    read, write = os.pipe()
    os.write(write, "1\nlogin 王芳\n".encode() + b"\xff2")
    os.close(write)
    assert list(read_lines(read)) == ["1", "login 王芳", "\ufffd2"]
    os.close(read)


def test_bounce_is_judged_on_the_panels_clock_across_its_wrap() -> None:
    from device.keys import Debouncer

    debouncer = Debouncer(40)
    assert debouncer.press(5, 1_000)
    assert not debouncer.press(5, 1_020)  # 20 ms later on the panel: a bounce
    assert debouncer.press(3, 1_021)  # another key
    assert debouncer.press(5, 1_100)
    assert debouncer.press(5, 2**32 - 10)
    assert not debouncer.press(5, 5)  # 15 ms later, across the wrap
    assert debouncer.bounces == 2
