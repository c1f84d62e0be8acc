"""The whole terminal with its key-panel backend, driven through the pty panel emulator.

Every flow of the counter as the panel sees it: card log-in/out, invite and rate, amend, timeout,
misuse interval and burst, closed terminal, reasons, debounce, panel unplug/replug, corrupt frames.
The terminal is the real one (device.terminal with device.io.keypanel), running in this process,
its driver talking pyserial to a real pseudo-terminal; nothing is faked but the panel's firmware.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from device import identity
from device.clock import SystemClock
from device.config import DeviceConfig
from device.events import HealthReported, Misuse, PanelChanged, Recorded, Report, Shown, TerminalEvent
from device.io import Quit
from device.io.keypanel import KeyPanel
from device.state import StateDocument
from device.terminal import Terminal
from protocol.panel import INVITE_KEY, LedState
from runtime.settings import from_assignments
from simulator.panel import PanelEmulator
from simulator.processes import TerminalWatch
from tests.helpers import HUB_KEYS

pytestmark = pytest.mark.slow

BLINK = (LedState.BLINK,) * 5
ON = (LedState.ON,) * 5
OFF = (LedState.OFF,) * 5
CARD = bytes.fromhex("04a1b2c3")

FAST = [
    "thank_you_ms=300",
    "invite_window_s=3",
    "amend_window_s=1",
    "misuse_interval_s=2",
    "reasons_window_s=2",
    "burst_presses=5",
    "burst_window_s=10",
    "heartbeat_s=1",
]


class RunningTerminal(TerminalWatch):
    """The real terminal, its loop on a thread of this process, watched through what it reports."""

    def __init__(self, make: Callable[[Report], Terminal]) -> None:
        super().__init__("t01")
        self.terminal = make(self.take)
        self._thread = threading.Thread(target=self.terminal.run, name="terminal", daemon=True)
        self._thread.start()

    def _gone(self) -> str | None:
        return None if self._thread.is_alive() else "stopped"

    def quit(self) -> None:
        self.terminal.post(Quit("test"))
        self._thread.join(10)
        assert not self._thread.is_alive()


class Counter:
    """A terminal and its panel."""

    def __init__(self, tmp_path: Path, settings: list[str]) -> None:
        folder = tmp_path / "t01"
        identity.create(folder, "t01")
        cards = StateDocument(folder / identity.STATE_FILE)
        cards.update(cards={CARD.hex(): "E1024"})
        cards.close()
        self.panel = PanelEmulator(link=tmp_path / "panel")
        self.panel.start()
        config = from_assignments(DeviceConfig, ["keys=panel", f"panel_port={tmp_path / 'panel'}", *settings])
        self.terminal = RunningTerminal(
            lambda report: Terminal(
                identity=identity.load(folder),
                config=config,
                clock=SystemClock(),
                broker=None,
                io=KeyPanel(port=config.panel_port, debounce_ms=config.debounce_ms),
                report=report,
                hub_key=HUB_KEYS.sign.public,  # provisioned: no pairing code on the LEDs
            )
        )
        self.terminal.wait_for(lambda t: t.ready, 20, "the terminal to start")
        self.terminal.wait_for(lambda t: bool(t.of(PanelChanged)), 20, "the panel")

    def login(self) -> None:
        self.panel.card(CARD)
        self.terminal.wait_for(lambda t: t.state == "idle", 10, "the clerk's card log-in")

    def invite(self) -> None:
        self.panel.press(INVITE_KEY)
        self.terminal.wait_for(lambda t: t.state == "invited", 10, "the invitation")
        self.panel.wait_for(lambda: self.panel.leds == BLINK, 5, "the keys to blink")

    def records(self) -> list[Recorded]:
        return [self.terminal.recorded[seq] for seq in sorted(self.terminal.recorded)]

    def wait_records(self, count: int, timeout_s: float = 10) -> list[Recorded]:
        self.terminal.wait_for(lambda t: len(t.recorded) >= count, timeout_s, f"{count} records")
        return self.records()

    def events(self, kind: type[TerminalEvent]) -> list[TerminalEvent]:
        return list(self.terminal.of(kind))

    def close(self) -> None:
        self.terminal.quit()
        self.panel.stop()


@pytest.fixture
def counter(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Counter]:
    marker = request.node.get_closest_marker("terminal_settings")
    extra = list(marker.args) if marker else []
    made = Counter(tmp_path, [*FAST, *extra])
    try:
        yield made
    finally:
        made.close()


def test_card_log_in_invite_rate_and_a_neutral_thanks(counter: Counter) -> None:
    assert counter.panel.leds == OFF  # closed: nobody logged in
    counter.login()
    counter.panel.wait_for(lambda: counter.panel.leds == ON, 5, "ready LEDs")
    beeps_before = len(counter.panel.beeps)
    counter.invite()
    counter.panel.press(4)
    [record] = counter.wait_records(1)
    assert (record.kind, record.staff, record.flags) == ("press", "E1024", [])
    counter.terminal.wait_for(lambda t: t.thanked == [1], 5, "the thanks")
    counter.panel.wait_for(
        lambda: counter.panel.leds == OFF and len(counter.panel.beeps) >= beeps_before + 2, 5, "the thank-you"
    )
    thanks_for_4 = counter.panel.beeps[-1]
    counter.terminal.wait_for(lambda t: t.state == "idle", 5, "the thank-you to end")
    counter.invite()
    counter.panel.press(5)
    counter.terminal.wait_for(lambda t: t.thanked == [1, 2], 5, "the second thanks")
    counter.panel.wait_for(lambda: counter.panel.beeps[-1] == thanks_for_4, 5, "the same thank-you beep")
    # the card again: the clerk logs out
    counter.terminal.wait_for(lambda t: t.state == "idle", 5, "idle")
    counter.panel.card(CARD)
    counter.terminal.wait_for(lambda t: t.state == "closed", 5, "the card log-out")


def test_a_second_press_within_the_amend_window_amends(counter: Counter) -> None:
    counter.login()
    counter.invite()
    counter.panel.press(3)
    counter.wait_records(1)
    counter.panel.press(5)
    first, amend = counter.wait_records(2)
    assert (amend.kind, amend.amends) == ("amend", first.seq)
    counter.terminal.wait_for(lambda t: t.thanked == [1, 2], 5, "the amend thanked too")


def test_an_invite_with_no_press_becomes_a_timeout(counter: Counter) -> None:
    counter.login()
    counter.invite()
    [record] = counter.wait_records(1, timeout_s=10)
    assert (record.kind, record.staff) == ("timeout", "E1024")
    assert counter.terminal.thanked == []
    counter.terminal.wait_for(lambda t: t.state == "idle", 5, "idle after the timeout")


@pytest.mark.terminal_settings("amend_window_s=0")
def test_presses_within_the_misuse_interval_are_kept_flagged_and_not_thanked(counter: Counter) -> None:
    counter.login()
    counter.invite()
    counter.panel.press(5)
    counter.wait_records(1)
    counter.panel.press(5)
    _, misuse = counter.wait_records(2)
    assert misuse.flags == ["misuse"]
    assert counter.terminal.thanked == [1]


@pytest.mark.terminal_settings("mode=open", "amend_window_s=0", "misuse_interval_s=0", "thank_you_ms=0")
def test_a_burst_of_presses_raises_a_misuse_event(counter: Counter) -> None:
    counter.login()
    for _ in range(7):
        counter.panel.press(5, hold_ms=60)
        counter.wait_records(len(counter.terminal.recorded) + 1)
    counter.terminal.wait_for(lambda t: bool(t.of(Misuse)), 5, "the misuse event")
    assert len(counter.events(Misuse)) == 1
    assert len(counter.terminal.recorded) == 7  # every press kept


def test_a_closed_terminal_keeps_presses_for_no_one(counter: Counter) -> None:
    counter.panel.press(1)
    [record] = counter.wait_records(1)
    assert record.staff is None
    assert counter.terminal.thanked == []
    assert counter.terminal.state == "closed"


def test_a_low_rating_takes_reason_codes(counter: Counter) -> None:
    counter.login()
    counter.invite()
    counter.panel.press(2)
    counter.terminal.wait_for(lambda t: t.state == "reasons", 5, "the reasons window")
    shown = next(e for e in counter.terminal.of(Shown) if e.state == "reasons")
    assert shown.labels == ["等候时间长", "服务态度差", "业务不熟练", "流程繁琐", "其他"]
    counter.panel.press(1)
    counter.panel.press(4)
    counter.panel.wait_for(
        lambda: counter.panel.leds == (LedState.ON, LedState.BLINK, LedState.BLINK, LedState.ON, LedState.BLINK),
        5,
        "the chosen reasons lit",
    )
    rating, reasons = counter.wait_records(2, timeout_s=10)
    assert (reasons.kind, reasons.amends, reasons.reasons) == ("amend", rating.seq, [1, 4])
    assert counter.terminal.thanked == [1]


def test_key_bounce_is_one_press(counter: Counter) -> None:
    counter.login()
    counter.invite()
    counter.panel.key_down(5)
    counter.panel.key_up(5)
    counter.panel.key_down(5)  # a bouncing contact, within the debounce time
    counter.panel.key_up(5)
    counter.wait_records(1)
    counter.terminal.wait_for(lambda t: t.state == "idle", 5, "the thank-you to end")
    assert len(counter.terminal.recorded) == 1


def test_an_unknown_card_is_refused_and_reported(counter: Counter) -> None:
    beeps = len(counter.panel.beeps)
    counter.panel.card(bytes.fromhex("deadbeef"))
    counter.terminal.wait_for(lambda t: any("unknown staff card" in d for d in t.errors()), 5, "the error")
    counter.panel.wait_for(lambda: len(counter.panel.beeps) > beeps, 5, "the refusal beep")
    assert counter.terminal.state == "closed"


def test_the_panel_unplugged_and_back_without_restarting(counter: Counter) -> None:
    counter.login()
    counter.panel.unplug()
    counter.terminal.wait_for(lambda t: any(not e.connected for e in t.of(PanelChanged)), 10, "the terminal to notice")
    counter.terminal.wait_for(
        lambda t: any(e.fields["panel"] == "disconnected" for e in t.of(HealthReported)), 5, "health to say so"
    )
    counter.panel.replug()
    counter.terminal.wait_for(lambda t: sum(e.connected for e in t.of(PanelChanged)) >= 2, 10, "the panel back")
    counter.panel.wait_for(lambda: counter.panel.leds == ON, 5, "the LEDs restored after the replug")
    counter.invite()
    counter.panel.press(5)
    counter.terminal.wait_for(lambda t: t.thanked == [1], 5, "a rating after the replug")


def test_corrupt_frames_are_dropped_counted_and_the_keys_keep_working(counter: Counter) -> None:
    counter.login()
    counter.invite()
    counter.panel.send_raw(b"\x13\x37\xff\x00" + b"\x05\x85\x07\x05\x00" + b"\x7f" * 80 + b"\x00")
    counter.panel.press(5)
    [record] = counter.wait_records(1)
    assert record.kind == "press"
    counter.terminal.wait_for(
        lambda t: any((e.fields.get("panel_dropped") or 0) >= 3 for e in t.of(HealthReported)),
        5,
        "health to count the dropped frames",
    )
    assert len(counter.terminal.recorded) == 1
