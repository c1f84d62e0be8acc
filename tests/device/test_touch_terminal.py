"""The touchscreen through the whole terminal in this process: the real loop, flow, recorder and
uplink, the real pygame backend on SDL's dummy drivers (set for these tests only), a manual clock
and the in-memory broker. A test touches the centre of a control the screen drew, as a finger does,
and reads the records the outbox holds."""

from __future__ import annotations

from pathlib import Path

import pygame
import pytest

from device import identity
from device.clock import ManualClock
from device.config import DeviceConfig
from device.events import Refused, TerminalEvent, Thanked
from device.flow import Details, Invite
from device.io.touch import TouchScreen, TouchSettings
from device.io.voice import Voice
from device.state import StateDocument
from device.terminal import Terminal
from protocol import Kind, Rating, open_sealed
from runtime.fake import FakeBroker
from runtime.settings import from_assignments
from tests.device.counter import QUICK, HubEnd
from tests.helpers import HUB_KEYS

CARD = "04a1b2c3"
PHONE = "13912345678"
TAP_MS = 250  # between two touches: longer than the touch debounce, as a hand moves


@pytest.fixture(autouse=True)
def headless(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")


class TouchCounter:
    """A terminal with a touchscreen, turned by the test (as tests/device/counter.py's Counter)."""

    def __init__(self, folder: Path, *settings: str, paired: bool = True, size: tuple[int, int] = (800, 480)) -> None:
        if not (folder / identity.KEY_FILE).exists():
            identity.create(folder, "t01")
        state = StateDocument(folder / identity.STATE_FILE)
        state.update(cards={CARD: "E1024"})
        state.close()
        self.clock = ManualClock()
        config = from_assignments(DeviceConfig, [*QUICK, "keys=touch", *settings])
        self.touch = TouchScreen(
            settings=TouchSettings.of(config), size=size, threaded=False, clock=self.clock.mono_ms, voice=Voice()
        )
        self.events: list[TerminalEvent] = []
        self.broker = FakeBroker()
        self.hub = HubEnd(self.broker)
        self.terminal = Terminal(
            identity=identity.load(folder),
            config=config,
            clock=self.clock,
            broker=self.broker if paired else None,
            io=self.touch,
            report=self.events.append,
            hub_key=HUB_KEYS.sign.public if paired else None,
            hub_seal=HUB_KEYS.seal.public_hex if paired else None,
        )
        self.terminal.start()
        self.settle()

    def settle(self) -> None:
        """Turn the loop and draw frames until neither has anything left to do."""
        for _ in range(50):
            while True:
                self.terminal.turn(wait=False)
                if self.terminal.inbox.empty():
                    break
            self.touch.frame()
            if self.terminal.inbox.empty():
                return

    def after(self, ms: int) -> None:
        while ms > 0:
            step = min(ms, 100)
            self.clock.advance(step)
            ms -= step
            self.settle()

    def tap(self, ident: str) -> None:
        """A finger on the centre of the control `ident` as drawn now; then a hand's pause."""
        found = [control for control in self.touch.controls if control.id == ident]
        assert found, f"{ident} is not on the {self.touch.page} screen: {[c.id for c in self.touch.controls]}"
        x, y = found[0].box.center
        w, h = self.touch.size
        pygame.event.post(pygame.event.Event(pygame.FINGERDOWN, touch_id=1, finger_id=1, x=x / w, y=y / h))
        self.settle()
        self.after(TAP_MS)

    def type_card(self, uid: str) -> None:
        """A USB card reader: the uid's hex digits and Enter, as key presses."""
        for char in uid:
            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=ord(char), mod=0, unicode=char))
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_RETURN, mod=0, unicode="\r"))
        self.settle()

    def invite(self) -> None:
        self.terminal.post(Invite("A12"))
        self.settle()

    @property
    def records(self) -> list[Rating]:
        return self.terminal.recorder.outbox.records()

    @property
    def texts(self) -> list[str]:
        drawn = self.touch.drawn
        return [item.text for item in drawn.layout.texts] if drawn is not None else []

    def close(self) -> None:
        self.terminal.close()


@pytest.fixture
def counter(tmp_path: Path, request: pytest.FixtureRequest):
    marker = request.node.get_closest_marker("terminal_settings")
    made = TouchCounter(tmp_path / "t01", *(marker.args if marker else ()))
    yield made
    made.close()


def logged_in_and_invited(counter: TouchCounter) -> None:
    counter.type_card(CARD)
    assert counter.touch.page == "idle"
    counter.invite()
    assert counter.touch.page == "invite"


# -- the flows ------------------------------------------------------------------------------------------


def test_closed_shows_nothing_to_press_and_a_card_reader_logs_the_clerk_in(counter: TouchCounter) -> None:
    assert counter.touch.page == "closed"
    assert counter.touch.controls == ()
    assert "暂停服务" in counter.texts
    counter.type_card(CARD)
    assert counter.touch.page == "idle"
    assert "工号 E1024" in counter.texts
    assert counter.records == []


def test_a_touched_face_is_the_rating_and_the_thanks_is_the_same_for_every_level(counter: TouchCounter) -> None:
    logged_in_and_invited(counter)
    counter.tap("face:5")
    (press,) = counter.records
    assert (press.kind, press.score, press.staff) == (Kind.PRESS, 5, "E1024")
    assert counter.touch.page == "thanks"
    first = pygame.image.tobytes(counter.touch.drawn.surface, "RGB")  # type: ignore[union-attr]
    assert counter.touch.voice.played[-1] == ("thanks", "zh-CN")
    counter.after(3_000)
    assert counter.touch.page == "idle"
    counter.invite()
    counter.tap("face:3")
    assert counter.touch.page == "thanks"
    assert pygame.image.tobytes(counter.touch.drawn.surface, "RGB") == first  # type: ignore[union-attr]
    assert [record.score for record in counter.records] == [5, 3]
    assert len([event for event in counter.events if isinstance(event, Thanked)]) == 2


@pytest.mark.terminal_settings("thank_you_ms=3000", "amend_window_s=5")
def test_the_thanks_change_button_lets_the_customer_amend_within_the_window(counter: TouchCounter) -> None:
    logged_in_and_invited(counter)
    counter.tap("face:5")
    counter.tap("change")
    assert counter.touch.page == "amend"
    counter.tap("face:4")
    press, amend = counter.records
    assert (amend.kind, amend.score, amend.amends) == (Kind.AMEND, 4, press.seq)
    assert counter.touch.page == "thanks"  # thanked again, as for any rating


def test_an_invite_left_untouched_becomes_a_timeout(counter: TouchCounter) -> None:
    logged_in_and_invited(counter)
    counter.after(3_100)
    (timeout,) = counter.records
    assert timeout.kind is Kind.TIMEOUT
    assert counter.touch.page == "idle"


@pytest.mark.terminal_settings("subscores=true")
def test_sub_scores_are_one_tap_each_and_stored_with_the_rating(counter: TouchCounter) -> None:
    logged_in_and_invited(counter)
    counter.tap("face:4")
    assert counter.touch.page == "subscores"
    counter.tap("score:attitude:5")
    counter.tap("score:efficiency:4")
    counter.tap("score:competence:3")
    assert [c.id for c in counter.touch.controls if c.selected] == [
        "score:attitude:5",
        "score:efficiency:4",
        "score:competence:3",
    ]
    counter.tap("done")
    press, amend = counter.records
    assert (press.score, amend.kind, amend.amends, amend.score) == (4, Kind.AMEND, press.seq, 4)
    assert amend.subscores == (("attitude", 5), ("competence", 3), ("efficiency", 4))
    assert counter.touch.page == "idle"


@pytest.mark.terminal_settings("callback=false")
def test_reasons_are_toggled_and_stored_as_an_amend(counter: TouchCounter) -> None:
    logged_in_and_invited(counter)
    counter.tap("face:1")
    assert counter.touch.page == "reasons"
    assert counter.touch.voice.played[-1] == ("reasons", "zh-CN")
    assert [c.id for c in counter.touch.controls if c.id.startswith("reason:")] == [f"reason:{n}" for n in range(1, 7)]
    counter.tap("reason:1")
    counter.tap("reason:3")
    counter.tap("reason:6")
    counter.tap("reason:3")  # again: not this one after all
    counter.tap("done")
    press, amend = counter.records
    assert (press.score, amend.kind, amend.reasons) == (1, Kind.AMEND, (1, 6))


@pytest.mark.terminal_settings("callback=false", "reason_required=true")
def test_a_required_reason_is_asked_for_before_done(counter: TouchCounter) -> None:
    logged_in_and_invited(counter)
    counter.tap("face:2")
    counter.tap("done")
    assert counter.touch.page == "reasons"
    assert "请选择原因" in counter.texts
    counter.tap("skip")
    assert "请选择原因" in counter.texts
    assert len(counter.records) == 1
    counter.tap("reason:2")
    assert "请选择原因" not in counter.texts
    counter.tap("done")
    assert counter.records[-1].reasons == (2,)


def test_a_call_back_number_is_sealed_for_the_hub_and_kept_nowhere_in_clear(counter: TouchCounter) -> None:
    logged_in_and_invited(counter)
    counter.tap("face:1")
    counter.tap("reason:4")
    counter.tap("next")
    assert counter.touch.page == "callback"
    for digit in PHONE + "9":
        counter.tap(f"key:{digit}")
    counter.tap("delete")
    assert PHONE in counter.texts  # shown while it is typed, to be checked
    counter.tap("ok")
    _press, amend = counter.records
    assert (amend.kind, amend.reasons) == (Kind.AMEND, (4,))
    assert amend.contact is not None
    assert PHONE not in amend.contact
    assert open_sealed(HUB_KEYS.seal, amend.contact, b"t01") == PHONE.encode()
    assert counter.touch.page == "idle"
    assert PHONE not in repr(vars(counter.touch)) + repr(counter.touch._answers)
    assert PHONE not in repr(counter.events)


def test_skipping_every_page_stores_nothing_more(counter: TouchCounter) -> None:
    logged_in_and_invited(counter)
    counter.tap("face:1")
    counter.tap("reason:5")
    counter.tap("skip")  # skipping a page drops its answers
    assert counter.touch.page == "callback"
    counter.tap("key:1")
    counter.tap("skip")
    assert [record.kind for record in counter.records] == [Kind.PRESS]
    assert counter.touch.page == "idle"


@pytest.mark.terminal_settings("callback=false", "screen_timeout_s=5")
def test_questions_left_unfinished_are_stored_when_the_screen_times_out(counter: TouchCounter) -> None:
    logged_in_and_invited(counter)
    counter.tap("face:2")
    counter.tap("reason:3")
    counter.after(4_500)
    assert len(counter.records) == 1  # each answer started the wait again
    counter.after(1_000)
    assert counter.records[-1].reasons == (3,)
    assert counter.touch.page == "idle"


@pytest.mark.terminal_settings("positive_reasons=true", "callback=false")
def test_a_good_rating_gets_the_positive_list(counter: TouchCounter) -> None:
    logged_in_and_invited(counter)
    counter.tap("face:5")
    assert next(c.label for c in counter.touch.controls if c.id.startswith("reason:")) == "办理快捷"
    counter.tap("reason:52")
    counter.tap("done")
    assert counter.records[-1].reasons == (52,)


def test_the_language_button_is_for_this_customer_only(counter: TouchCounter) -> None:
    logged_in_and_invited(counter)
    counter.tap("lang")
    assert counter.touch.language == "en"
    assert "Please rate our service" in counter.texts
    assert counter.touch.voice.played[-1] == ("invite", "en")
    counter.tap("face:4")
    assert "Thank you" in counter.texts
    assert counter.touch.voice.played[-1] == ("thanks", "en")
    assert counter.records[-1].score == 4  # the language changes nothing of the record
    counter.after(3_000)
    assert counter.touch.page == "idle"
    assert counter.touch.language == "zh-CN"


@pytest.mark.terminal_settings("mode=open", "amend_window_s=0")
def test_out_of_service_shows_so_and_takes_no_touch(counter: TouchCounter) -> None:
    counter.type_card(CARD)
    assert counter.touch.page == "invite"  # open mode: the faces whenever a clerk is there
    counter.tap("face:5")
    counter.after(3_000)
    counter.terminal.recorder.outbox._db.execute("PRAGMA query_only = ON")  # a disk that takes no writes
    counter.tap("face:4")
    assert counter.terminal.flow.state.value == "out_of_service"
    assert counter.touch.page == "out_of_service"
    assert counter.touch.controls == ()
    assert "Out of service" in counter.texts  # in both languages
    assert len(counter.records) == 1
    counter.terminal.recorder.outbox._db.execute("PRAGMA query_only = OFF")


def test_an_unpaired_terminal_shows_its_pairing_code_large(tmp_path: Path) -> None:
    counter = TouchCounter(tmp_path / "t01", paired=False)
    try:
        assert counter.touch.page == "pairing"
        code = counter.terminal.pairer.shown_code(counter.clock.mono_ms())
        assert code is not None
        assert " ".join(code.digits) in counter.texts
        assert counter.touch.controls == ()
    finally:
        counter.close()


def test_a_late_touch_after_the_questions_closed_shows_not_taken(counter: TouchCounter) -> None:
    logged_in_and_invited(counter)
    counter.tap("face:1")
    counter.touch._say(Details(reasons=(1,), done=True))
    counter.settle()
    counter.touch._say(Details(reasons=(1,), done=True))
    counter.settle()
    assert [event.reason for event in counter.events if isinstance(event, Refused)] == ["no_follow_up"]


@pytest.mark.parametrize("size", [(480, 800), (1280, 800)], ids=["portrait-7", "landscape-10"])
def test_every_flow_works_the_same_on_the_other_panels(tmp_path: Path, size: tuple[int, int]) -> None:
    counter = TouchCounter(tmp_path / "t01", "subscores=true", size=size)
    try:
        logged_in_and_invited(counter)
        counter.tap("face:1")
        counter.tap("score:attitude:1")
        counter.tap("next")
        counter.tap("reason:1")
        counter.tap("next")
        for digit in PHONE:
            counter.tap(f"key:{digit}")
        counter.tap("ok")
        amend = counter.records[-1]
        assert (amend.reasons, amend.subscores, amend.contact is not None) == ((1,), (("attitude", 1),), True)
    finally:
        counter.close()
