"""The pairing code on a key panel's five LEDs (no display): one digit at a time, over and over."""

from __future__ import annotations

import threading

from device.io.keypanel import CODE_BEEP, CodePlayer, digit_leds
from protocol.panel import LedState

OFF, ON, BLINK = LedState.OFF, LedState.ON, LedState.BLINK


def test_each_digit_has_its_own_leds() -> None:
    assert digit_leds("1") == (ON, OFF, OFF, OFF, OFF)
    assert digit_leds("5") == (OFF, OFF, OFF, OFF, ON)
    assert digit_leds("6") == (ON, OFF, OFF, OFF, ON)
    assert digit_leds("9") == (OFF, OFF, OFF, ON, ON)
    assert digit_leds("0") == (BLINK,) * 5
    assert len({digit_leds(str(d)) for d in range(10)}) == 10


def test_the_code_is_played_digit_by_digit_with_a_beep_at_its_start_until_stopped() -> None:
    frames: list[tuple[tuple[LedState, ...], object]] = []
    enough = threading.Event()

    def show(leds: tuple[LedState, ...], beep: object) -> None:
        frames.append((leds, beep))
        if len(frames) >= 14:
            enough.set()

    player = CodePlayer(show, digit_ms=1, gap_ms=1, pause_ms=1)
    player.play("602913")
    assert enough.wait(10)
    player.stop()
    shown = [leds for leds, _beep in frames[:12:2]]
    assert shown == [digit_leds(d) for d in "602913"]
    assert all(leds == (OFF,) * 5 for leds, _beep in frames[1:12:2])  # dark between digits
    assert [beep for _leds, beep in frames[:12]].count(CODE_BEEP) == 1
    assert frames[12] == (digit_leds("6"), CODE_BEEP)  # and again from the start
    count = len(frames)
    assert len(frames) == count  # stopped: nothing more
