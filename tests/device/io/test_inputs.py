from __future__ import annotations

from device.flow import Login, Logout, Press
from device.io import BadInput, Quit
from device.io.stdin import parse_line


def test_input_lines() -> None:
    assert parse_line("3\n") == Press(3)
    assert parse_line("login E 1") == Login("E 1")
    assert parse_line("logout") == Logout()
    assert parse_line("quit") == Quit("quit command")
    assert parse_line("   ") is None
    assert isinstance(parse_line("7"), BadInput)
    assert isinstance(parse_line("login"), BadInput)
    assert isinstance(parse_line("login " + "x" * 65), BadInput)


def test_bounce_is_judged_on_the_panels_clock_across_its_wrap() -> None:
    from device.io.keypanel import Debouncer

    debouncer = Debouncer(40)
    assert debouncer.press(5, 1_000)
    assert not debouncer.press(5, 1_020)  # 20 ms later on the panel: a bounce
    assert debouncer.press(3, 1_021)  # another key
    assert debouncer.press(5, 1_100)
    assert debouncer.press(5, 2**32 - 10)
    assert not debouncer.press(5, 5)  # 15 ms later, across the wrap
    assert debouncer.bounces == 2
