"""The terminal's panel link (device/io/panel.py) against the panel emulator on a real pty.

The link's pyserial code runs as it does on a terminal: it opens the emulator's symlink, reads with
timeouts and sees EIO when the emulator pulls the cable. Short ping intervals keep each test well
under a second or two; every wait is on a condition with a timeout, never a sleep.
"""

from __future__ import annotations

import os
import queue
import select
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from device.io.panel import (
    WRITE_TIMEOUT_S,
    CardRead,
    KeyPressed,
    KeyReleased,
    PanelDown,
    PanelLink,
    PanelUp,
    _read_some,
    _write_all,
)
from protocol.panel import (
    FrameDecoder,
    FrameNak,
    Hello,
    LedState,
    NakCode,
    Pong,
    SetLeds,
    cobs_encode,
    crc16,
    encode_frame,
)
from protocol.panel import KeyDown as KeyDownFrame
from simulator.panel import PanelEmulator

OFF, ON, BLINK = LedState.OFF, LedState.ON, LedState.BLINK
PING_S = 0.05
TIMEOUT_S = 0.3
WAIT_S = 3.0  # generous: a loaded CI machine; a passing test waits for far less


def raw_frame(frame_type: int, seq: int, body: bytes) -> bytes:
    unencoded = bytes([frame_type, seq]) + body
    return cobs_encode(unencoded + crc16(unencoded).to_bytes(2, "big")) + b"\x00"


class Events:
    """What the link posted, taken in order."""

    def __init__(self) -> None:
        self.queue: queue.Queue[object] = queue.Queue()

    def put(self, event: object) -> None:
        self.queue.put(event)

    def next(self) -> object:
        try:
            return self.queue.get(timeout=WAIT_S)
        except queue.Empty:
            pytest.fail(f"the link posted no event within {WAIT_S} s")

    def none_pending(self) -> bool:
        return self.queue.empty()

    def press(self, key: int, hold_ms: int = 80) -> None:
        """The next two events are this key going down and, hold_ms later on the panel's clock, up."""
        down, up = self.next(), self.next()
        assert isinstance(down, KeyPressed), down
        assert up == KeyReleased(key, (down.panel_ms + hold_ms) & 0xFFFF_FFFF), (down, up)
        assert down.key == key


def eventually(predicate: Callable[[], bool], what: str) -> None:
    """Wait for a condition of the link, which has no condition variable of its own to wait on."""
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {WAIT_S} s")
        time.sleep(0.005)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[PanelEmulator]:
    folder = tmp_path / "serial" / "by-id"  # where udev would put it
    folder.mkdir(parents=True)
    with PanelEmulator(link=folder / "usb-pingjia_panel-if00", serial="PJP-000042") as panel:
        yield panel


def new_link(emulator: PanelEmulator, events: Events) -> PanelLink:
    return PanelLink(
        port=str(emulator.link),
        on_event=events.put,
        ping_interval_s=PING_S,
        ping_timeout_s=TIMEOUT_S,
        reopen_interval_s=PING_S,
    )


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def link(emulator: PanelEmulator, events: Events) -> Iterator[PanelLink]:
    made = new_link(emulator, events)
    made.start()
    try:
        yield made
    finally:
        made.stop()


@pytest.fixture
def up(link: PanelLink, events: Events) -> PanelLink:
    assert events.next() == PanelUp(fw="panel-1.0", serial="PJP-000042")
    return link


def test_the_panels_hello_brings_the_link_up(up: PanelLink, emulator: PanelEmulator) -> None:
    assert up.connected
    counters = up.counters
    assert counters.received["Hello"] >= 1
    assert counters.sent["Identify"] >= 1  # the host asks: the Hello at the panel's boot went to nobody
    assert sum(counters.dropped.values()) == 0


def test_presses_arrive_as_key_down_then_key_up_in_order(
    up: PanelLink, emulator: PanelEmulator, events: Events
) -> None:
    for key in (5, 1, 3):
        assert emulator.press(key, hold_ms=120)
    seen = [events.next() for _ in range(6)]
    assert [(type(e).__name__, e.key) for e in seen if isinstance(e, KeyPressed | KeyReleased)] == [
        ("KeyPressed", 5),
        ("KeyReleased", 5),
        ("KeyPressed", 1),
        ("KeyReleased", 1),
        ("KeyPressed", 3),
        ("KeyReleased", 3),
    ]
    down, key_up = seen[0], seen[1]
    assert isinstance(down, KeyPressed)
    assert isinstance(key_up, KeyReleased)
    assert key_up.panel_ms - down.panel_ms == 120
    assert up.counters.seq_gaps == 0


def test_set_leds_reaches_the_panel_at_once_and_is_acked(up: PanelLink, emulator: PanelEmulator) -> None:
    states = (ON, OFF, BLINK, OFF, OFF)
    before = time.monotonic()
    up.set_leds(states)
    emulator.wait_for(lambda: emulator.leds == states, WAIT_S, "LEDs set")
    at, logged = emulator.led_log[-1]
    assert logged == states
    assert at >= before
    eventually(lambda: up.counters.acks == 1, "ack")
    assert up.counters.sent["SetLeds"] == 1


def test_a_key_down_can_light_its_led_in_one_write(up: PanelLink, emulator: PanelEmulator, events: Events) -> None:
    emulator.key_down(4)
    event = events.next()
    assert isinstance(event, KeyPressed)
    up.set_leds(tuple(ON if key == event.key else OFF for key in range(1, 6)))
    emulator.wait_for(lambda: emulator.leds == (OFF, OFF, OFF, ON, OFF), WAIT_S, "key 4 lit")


def test_beep_reaches_the_panel(up: PanelLink, emulator: PanelEmulator) -> None:
    up.beep([(100, 50), (200, 0)])
    up.beep([])
    emulator.wait_for(lambda: len(emulator.beeps) == 2, WAIT_S, "two beeps")
    assert emulator.beeps == [((100, 50), (200, 0)), ()]
    eventually(lambda: up.counters.acks == 2, "two acks")


def test_show_sets_the_leds_and_sounds_the_buzzer_together(up: PanelLink, emulator: PanelEmulator) -> None:
    up.show((BLINK,) * 5, [(60, 40), (60, 0)])
    emulator.wait_for(lambda: emulator.leds == (BLINK,) * 5 and len(emulator.beeps) == 1, WAIT_S, "LEDs and beep")
    assert emulator.beeps == [((60, 40), (60, 0))]
    eventually(lambda: up.counters.acks == 2, "two acks")
    assert (up.counters.sent["SetLeds"], up.counters.sent["Beep"]) == (1, 1)
    up.show((ON,) * 5)  # no beep: the LEDs alone
    emulator.wait_for(lambda: emulator.leds == (ON,) * 5, WAIT_S, "LEDs on")
    assert len(emulator.beeps) == 1


def test_a_bad_command_is_refused_before_anything_is_written(up: PanelLink) -> None:
    with pytest.raises(ValueError, match=r"SetLeds\.states"):
        up.set_leds((ON, ON))
    with pytest.raises(ValueError, match=r"Beep\.pattern"):
        up.beep([(1, 1)] * 9)
    with pytest.raises(ValueError, match=r"Beep\.pattern"):  # the good LEDs are not sent either
        up.show((ON,) * 5, [(1, 1)] * 9)
    assert "SetLeds" not in up.counters.sent
    assert up.counters.write_failures == 0


def test_pings_and_pongs_keep_a_quiet_panel_up(up: PanelLink, emulator: PanelEmulator, events: Events) -> None:
    # Three ping timeouts' worth of pings with nothing else said: still up.
    enough = int(3 * TIMEOUT_S / PING_S)
    emulator.wait_for(lambda: emulator.pings >= enough, WAIT_S, f"{enough} pings")
    assert up.connected
    assert events.none_pending()
    assert up.counters.received["Pong"] >= enough - 2


def test_a_card_arrives_as_hex(up: PanelLink, emulator: PanelEmulator, events: Events) -> None:
    emulator.card(bytes.fromhex("04A1B2C3D4E5F6"))
    assert events.next() == CardRead("04a1b2c3d4e5f6")


def test_corrupt_frames_between_good_ones_are_counted_and_the_link_carries_on(
    up: PanelLink, emulator: PanelEmulator, events: Events
) -> None:
    emulator.press(1)
    events.press(1)
    before = up.counters.dropped
    frame = bytearray(encode_frame(KeyDownFrame(seq=200, key=2, panel_ms=99)))
    frame[3] ^= 0x04
    noise = (
        bytes(frame)  # crc
        + b"\x05\x11\x00"  # cobs
        + b"\x7f" * 80
        + b"\x00"  # oversize
        + b"\x00"  # empty
    )
    assert emulator.send_raw(noise)
    emulator.press(2)
    events.press(2)
    after = up.counters.dropped
    assert {reason: after[reason] - before[reason] for reason in after if after[reason] != before[reason]} == {
        "crc": 1,
        "cobs": 1,
        "oversize": 1,
        "empty": 1,
    }
    assert up.connected
    assert up.counters.seq_gaps == 0


def test_naks_are_counted(up: PanelLink, emulator: PanelEmulator) -> None:
    emulator.send_raw(encode_frame(FrameNak(seq=0, ref=3, code=NakCode.BAD_BODY)))
    eventually(lambda: up.counters.naks == 1, "nak")


def test_the_emulator_naks_what_the_firmware_cannot_use(emulator: PanelEmulator) -> None:
    # The emulator as the firmware, driven by hand: a panel -> host type is no command, and a good
    # CRC around a bad body is answered too; only damaged frames go unanswered.
    fd = os.open(emulator.link, os.O_RDWR | os.O_NOCTTY)
    try:
        os.write(fd, encode_frame(Pong(seq=9, token=1)) + raw_frame(SetLeds.TYPE, 10, b"\x00\x00\x00\x00\x03"))
        decoder = FrameDecoder()
        heard: list[object] = []
        deadline = time.monotonic() + WAIT_S
        while len([f for f in heard if isinstance(f, FrameNak)]) < 2 and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.05)[0]:
                heard += decoder.feed(os.read(fd, 4096))
    finally:
        os.close(fd)
    assert [f for f in heard if isinstance(f, FrameNak)] == [
        FrameNak(seq=1, ref=9, code=NakCode.UNKNOWN_TYPE),
        FrameNak(seq=2, ref=10, code=NakCode.BAD_BODY),
    ]
    assert emulator.commands == [Pong(seq=9, token=1)]
    assert emulator.dropped["bad_body"] == 1


def test_a_silent_panel_goes_down_once_and_comes_back_up(
    up: PanelLink, emulator: PanelEmulator, events: Events
) -> None:
    emulator.silence(True)
    assert events.next() == PanelDown("silent")
    assert not up.connected
    reconnects = up.counters.reconnects
    eventually(lambda: up.counters.reconnects >= reconnects + 2, "two more silent openings")
    emulator.silence(False)  # recovers without a reboot: the link's Identify brings the Hello
    assert events.next() == PanelUp(fw="panel-1.0", serial="PJP-000042")
    assert up.connected
    emulator.press(3)
    events.press(3)


def test_a_panel_that_recovers_while_the_port_is_open_is_asked_again(emulator: PanelEmulator, events: Events) -> None:
    # Each ping goes with an Identify until a Hello comes, so a panel that starts answering is up
    # by the next ping, without waiting for the port to be given up as silent and opened again.
    emulator.silence(True)
    link = PanelLink(port=str(emulator.link), on_event=events.put, ping_interval_s=PING_S, ping_timeout_s=10.0)
    link.start()
    try:
        eventually(lambda: link.counters.sent.get("Identify", 0) >= 2, "two unanswered Identify frames")
        emulator.silence(False)
        assert events.next() == PanelUp(fw="panel-1.0", serial="PJP-000042")
        assert link.counters.reconnects == 0
    finally:
        link.stop()


def test_a_panel_that_reboots_under_the_link_gets_its_leds_back_without_a_new_panel_up(
    up: PanelLink, emulator: PanelEmulator, events: Events
) -> None:
    up.set_leds((OFF, ON, OFF, ON, OFF))
    emulator.wait_for(lambda: emulator.leds == (OFF, ON, OFF, ON, OFF), WAIT_S, "LEDs set")
    emulator.reboot()
    emulator.wait_for(lambda: emulator.boots == 2 and emulator.leds == (OFF, ON, OFF, ON, OFF), WAIT_S, "LEDs back")
    assert [states for _, states in emulator.led_log[-3:]] == [
        (OFF, ON, OFF, ON, OFF),
        (OFF,) * 5,
        (OFF, ON, OFF, ON, OFF),
    ]
    emulator.press(5)
    events.press(5)  # nothing was posted before it: same panel, still up
    assert up.connected


def test_another_panel_saying_hello_is_news(up: PanelLink, emulator: PanelEmulator, events: Events) -> None:
    emulator.send_raw(encode_frame(Hello(seq=0, fw="panel-1.1", serial="PJP-000043")))
    assert events.next() == PanelUp(fw="panel-1.1", serial="PJP-000043")


def test_a_break_in_the_panels_seq_is_counted_as_lost_frames(
    up: PanelLink, emulator: PanelEmulator, events: Events
) -> None:
    assert up.counters.seq_gaps == 0
    emulator.send_raw(encode_frame(KeyDownFrame(seq=(emulator.next_seq + 100) % 256, key=4, panel_ms=7)))
    assert events.next() == KeyPressed(4, 7)  # still delivered: a lost frame before it is no reason to drop it
    assert up.counters.seq_gaps >= 1


def test_unplug_and_replug_the_same_link_carries_on(up: PanelLink, emulator: PanelEmulator, events: Events) -> None:
    up.set_leds((ON,) * 5)
    emulator.wait_for(lambda: emulator.leds == (ON,) * 5, WAIT_S, "LEDs on")
    emulator.unplug()
    assert events.next() == PanelDown("unplugged")
    assert not up.connected
    failures = up.counters.write_failures
    up.set_leds((BLINK, OFF, OFF, OFF, BLINK))  # never raises; kept for the panel's return
    up.beep([(50, 0)])
    assert up.counters.write_failures == failures + 2
    emulator.replug()
    assert events.next() == PanelUp(fw="panel-1.0", serial="PJP-000042")  # and no second PanelDown before it
    emulator.wait_for(lambda: emulator.leds == (BLINK, OFF, OFF, OFF, BLINK), WAIT_S, "LEDs restored")
    emulator.press(2)
    events.press(2)
    assert up.counters.reconnects >= 1
    assert emulator.boots == 2


def test_a_new_link_finds_a_panel_that_has_been_running_all_along(emulator: PanelEmulator, events: Events) -> None:
    for _ in range(2):  # the terminal software restarts; the panel does not
        link = new_link(emulator, events)
        link.start()
        try:
            assert events.next() == PanelUp(fw="panel-1.0", serial="PJP-000042")
        finally:
            link.stop()
        assert events.next() == PanelDown("closed")
    assert emulator.boots == 1
    assert emulator.identifies >= 2


def test_stop_posts_closed_once_and_the_link_is_down(up: PanelLink, events: Events) -> None:
    up.stop()
    assert events.next() == PanelDown("closed")
    assert not up.connected
    assert events.none_pending()
    failures = up.counters.write_failures
    up.set_leds((OFF,) * 5)
    assert up.counters.write_failures == failures + 1


def test_no_panel_at_all_is_quiet_and_never_raises(tmp_path: Path, events: Events) -> None:
    link = PanelLink(port=str(tmp_path / "nothing-here"), on_event=events.put, reopen_interval_s=0.01)
    link.start()
    try:
        link.set_leds((ON,) * 5)
        assert not link.connected
    finally:
        link.stop()
    assert events.none_pending()
    assert link.counters.write_failures == 1


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"port": ""}, "port"),
        ({"ping_interval_s": 1.0, "ping_timeout_s": 1.0}, "ping_timeout_s"),
        ({"reopen_interval_s": 0}, "reopen_interval_s"),
        ({"baudrate": 0}, "baudrate"),
    ],
)
def test_impossible_settings_are_refused(settings: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"port": "/dev/ttyACM0", "on_event": lambda _event: None, **settings}
    with pytest.raises(ValueError, match=message):
        PanelLink(**arguments)  # type: ignore[arg-type]


def fill(fd: int) -> int:
    """Write to a non-blocking descriptor until it takes no more; the bytes it took."""
    taken = 0
    while True:
        try:
            taken += os.write(fd, b"x" * 4096)
        except BlockingIOError:
            return taken


def test_a_port_that_takes_no_bytes_times_out_and_one_that_drains_slowly_gets_them_all() -> None:
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)  # as pyserial leaves a port
    try:
        filled = fill(write_end)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            _write_all(write_end, b"y" * 10)
        assert WRITE_TIMEOUT_S <= time.monotonic() - started < WRITE_TIMEOUT_S + 1.0
        data = bytes(range(1, 251)) * 1000  # more than the pipe holds: written in pieces as it drains
        received = bytearray()

        def drain() -> None:
            while len(received) < filled + len(data):
                received.extend(os.read(read_end, 65536))

        reader = threading.Thread(target=drain)
        reader.start()
        _write_all(write_end, data)
        reader.join(WAIT_S)
        assert bytes(received) == b"x" * filled + data
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_port_that_is_readable_but_gives_no_bytes_is_gone() -> None:
    read_end, write_end = os.pipe()
    try:
        assert _read_some(read_end, 0.01) == b""  # nothing yet: no bytes, no error
        os.write(write_end, b"abc")
        assert _read_some(read_end, 0.01) == b"abc"
        os.close(write_end)
        with pytest.raises(OSError, match="gives no bytes"):
            _read_some(read_end, 0.01)
    finally:
        os.close(read_end)
