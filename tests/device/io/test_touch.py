"""The touchscreen's pieces without a terminal: every screen draws at every panel size, either way
round, in both languages, with every label inside its box; colours have the contrast the field
asks; every target is at least 12 mm on its panel; the font and the voice fail the way they must.
Headless: SDL's dummy video and audio drivers, set for these tests only."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pygame
import pytest

from device.flow import FollowUp, Press, State
from device.io import CardTap, Quit, Screen
from device.io.catalogue import LANGUAGES, PROMPTS, REASONS, SUBSCORES, TEXT
from device.io.fonts import FontMissing, find_cjk_font
from device.io.touch import TouchScreen, TouchSettings, render
from device.io.touch_draw import PAIRS, contrast
from device.io.touch_layout import MIN_TARGET_MM, PANELS, Box, View, layout, panel_for
from device.io.touch_render import SIZES, draw, samples
from device.io.voice import PROMPT_DIR, Voice, manifest_lines, prompt_file

ORIENTED = [size for panel in PANELS for size in (panel.size, panel.size[::-1])]
CARD_UID = "04a1b2c3"


@pytest.fixture(autouse=True)
def headless(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")


class Ticks:
    """A clock the test moves (ms)."""

    def __init__(self) -> None:
        self.now = 10_000

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def screen() -> Iterator[tuple[TouchScreen, list[object], Ticks]]:
    ticks = Ticks()
    touch = TouchScreen(settings=TouchSettings(dim_after_s=30), threaded=False, clock=ticks, voice=Voice())
    posted: list[object] = []
    touch.start(posted.append)
    yield touch, posted, ticks
    touch.stop()


def finger(touch: TouchScreen, ident: str) -> None:
    """A finger down at the centre of a drawn control, as SDL reports it (0..1 of the screen)."""
    (control,) = [c for c in touch.controls if c.id == ident]
    x, y = control.box.center
    w, h = touch.size
    pygame.event.post(pygame.event.Event(pygame.FINGERDOWN, touch_id=1, finger_id=1, x=x / w, y=y / h, dx=0, dy=0))


# -- every screen draws -----------------------------------------------------------------------------


def every_page() -> list[tuple[str, Screen, int]]:
    open_mode = ("invite-open", Screen(State.IDLE, "E1"), 0)
    positive = FollowUp(group="positive", pages=("reasons",), reason_required=False, codes=(51, 52, 53, 54, 55, 56))
    return [*samples(), open_mode, ("reasons-positive", Screen(State.REASONS, "E1", follow_up=positive), 0)]


@pytest.mark.parametrize("size", ORIENTED, ids=lambda size: f"{size[0]}x{size[1]}")
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_screen_draws_with_every_label_inside_its_box(size: tuple[int, int], language: str) -> None:
    for name, shown, page in every_page():
        settings = TouchSettings(mode="open" if name == "invite-open" else "invited", middle_label="基本满意")
        drawn = draw(shown, size, language, page=page, settings=settings)
        assert drawn.surface.get_size() == size
        assert drawn.overflows == [], name
        for control in drawn.layout.controls:  # inside the screen, and not on top of each other
            assert drawn.surface.get_rect().contains(pygame.Rect(control.box.x, control.box.y, control.box.w, 1))
        for item in drawn.layout.texts:  # no words under a control
            for control in drawn.layout.controls:
                assert not _overlap(item.box, control.box), f"{name}: {item.text!r} under {control.id}"
        boxes = [c.box for c in drawn.layout.controls]
        for index, box in enumerate(boxes):
            for other in boxes[index + 1 :]:
                assert not pygame.Rect(box.x, box.y, box.w, box.h).colliderect(other.x, other.y, other.w, other.h)


def _overlap(a: Box, b: Box) -> bool:
    return pygame.Rect(a.x, a.y, a.w, a.h).colliderect(pygame.Rect(b.x, b.y, b.w, b.h))


def test_the_render_command_writes_every_screen_at_both_sizes_in_both_languages(tmp_path: Path) -> None:
    from device.io.touch_render import main

    assert main(["render", str(tmp_path)]) == 0
    names = {path.name for path in tmp_path.glob("*.png")}
    assert len(names) == len(samples()) * len(SIZES) * len(LANGUAGES)
    assert "invite-1280x800-en.png" in names
    assert pygame.image.load(str(tmp_path / "invite-800x480-zh-CN.png")).get_size() == (800, 480)


def test_a_label_that_does_not_fit_is_an_overflow() -> None:
    long = Screen(State.INVITED, "E1")
    drawn = draw(long, (800, 480), "zh-CN", settings=TouchSettings(middle_label="一般" * 30))
    assert any("face:3" in overflow for overflow in drawn.overflows)


def test_the_thank_you_is_the_same_whatever_the_level() -> None:
    # The screen has no level to show: the flow's Screen carries none, so one drawing serves all.
    thanks = render(Screen(State.THANKS, "E1"), (800, 480), "zh-CN")
    again = render(Screen(State.THANKS, "E1", reasons=()), (800, 480), "zh-CN")
    assert pygame.image.tobytes(thanks, "RGB") == pygame.image.tobytes(again, "RGB")


# -- what a customer needs ----------------------------------------------------------------------------


@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_every_colour_pair_has_a_contrast_of_at_least_4_5(pair: str) -> None:
    fg, bg = PAIRS[pair]
    assert contrast(fg, bg) >= 4.5, f"{pair}: {contrast(fg, bg):.2f}"


def test_contrast_is_computed_as_wcag_does() -> None:
    assert contrast((0, 0, 0), (255, 255, 255)) == pytest.approx(21.0)
    assert contrast((118, 118, 118), (255, 255, 255)) == pytest.approx(4.54, abs=0.01)


@pytest.mark.parametrize("size", ORIENTED, ids=lambda size: f"{size[0]}x{size[1]}")
def test_every_touch_target_is_at_least_12_mm_on_its_panel(size: tuple[int, int]) -> None:
    panel = panel_for(size)
    for name, shown, page in every_page():
        drawn = draw(shown, size, "en", page=page, settings=TouchSettings(mode="open"))
        for control in drawn.layout.controls:
            smaller = min(control.box.w, control.box.h)
            assert panel.mm(smaller) >= MIN_TARGET_MM, f"{name} {control.id}: {panel.mm(smaller):.1f} mm"


def test_the_faces_differ_in_shape_not_only_in_colour() -> None:
    faces = draw(Screen(State.INVITED, "E1"), (800, 480), "zh-CN")
    grey = []
    for control in faces.layout.controls:
        if control.level is not None:
            box = control.box
            part = faces.surface.subsurface(pygame.Rect(box.x, box.y, box.w, box.h // 2))
            grey.append(pygame.image.tobytes(pygame.transform.grayscale(part), "RGB"))
    assert len(set(grey)) == 5  # five different drawings even in grey


def test_the_catalogue_says_everything_in_both_languages() -> None:
    for table in (TEXT, SUBSCORES, REASONS, PROMPTS):
        for key, entry in table.items():
            assert set(entry) == set(LANGUAGES), key
            assert all(said.strip() for said in entry.values()), key


def test_the_layout_needs_no_pygame_and_names_each_screen() -> None:
    kinds = {layout(View(state=state, language="en"), (800, 480)).kind for state in State}
    assert kinds == {"closed", "idle", "invite", "wait", "thanks", "reasons", "out_of_service"}


# -- the font -----------------------------------------------------------------------------------------


def test_the_cjk_font_is_found() -> None:
    font = find_cjk_font()
    assert "NotoSansCJK" in font.path.name.replace(" ", "") or "Noto" in str(font.path)


def test_a_missing_cjk_font_is_a_clear_error_naming_the_package(tmp_path: Path) -> None:
    with pytest.raises(FontMissing) as caught:
        find_cjk_font(fc_match=None, known=((tmp_path / "none.ttc", 0),))
    assert "fonts-noto-cjk" in str(caught.value)
    assert "apt-get install" in str(caught.value)
    with pytest.raises(FontMissing, match="fc-match is not installed"):
        find_cjk_font(fc_match="no-such-fc-match", known=())


# -- the voice ----------------------------------------------------------------------------------------


def test_the_committed_prompts_say_what_the_catalogue_says() -> None:
    assert (PROMPT_DIR / "MANIFEST").read_text(encoding="utf-8").splitlines() == manifest_lines()
    for prompt in PROMPTS:
        for language in LANGUAGES:
            with wave.open(str(prompt_file(prompt, language))) as wav:
                assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
                assert wav.getnframes() > wav.getframerate() // 4  # something is said


def test_without_an_audio_device_the_voice_is_silent_and_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDL_AUDIODRIVER", "no-such-driver")
    voice = Voice()
    assert voice.play("invite", "zh-CN") is False
    assert voice.play("thanks", "en") is False
    assert voice.silent_because is not None
    assert "audio" in voice.silent_because
    voice.close()


def test_without_prompt_files_the_voice_is_silent(tmp_path: Path) -> None:
    voice = Voice(tmp_path)
    assert voice.play("invite", "en") is False
    voice.close()


def test_with_the_dummy_audio_device_a_prompt_plays() -> None:
    voice = Voice()
    try:
        assert voice.play("invite", "zh-CN") is True
    finally:
        voice.close()


# -- touches and keys ---------------------------------------------------------------------------------


def test_a_face_is_lit_in_the_frame_that_reads_the_touch_and_a_shaky_finger_presses_once(screen) -> None:
    touch, posted, ticks = screen
    touch.show(Screen(State.INVITED, "E1"))
    touch.frame()
    finger(touch, "face:5")
    finger(touch, "face:5")  # the finger shook: a second down-edge 0 ms later
    touch.frame()
    assert [c.selected for c in touch.controls if c.id == "face:5"] == [True]
    assert [item for item in posted if isinstance(item, Press)] == [Press(5)]
    ticks.now += 50
    finger(touch, "face:5")
    touch.frame()
    assert [item for item in posted if isinstance(item, Press)] == [Press(5)]
    assert touch.bounces == 2


def test_a_finger_reported_also_as_a_mouse_click_is_one_touch(screen) -> None:
    touch, posted, _ticks = screen
    touch.show(Screen(State.INVITED, "E1"))
    touch.frame()
    (face,) = [c for c in touch.controls if c.id == "face:2"]
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=face.box.center, button=1, touch=True))
    touch.frame()
    assert posted == [item for item in posted if not isinstance(item, Press)]
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=face.box.center, button=1, touch=False))
    touch.frame()
    assert Press(2) in posted


def test_a_usb_card_reader_typing_hex_and_enter_is_a_card_tap(screen) -> None:
    touch, posted, ticks = screen
    touch.show(Screen(State.CLOSED, None))
    for char in CARD_UID.upper():
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=ord(char.lower()), mod=0, unicode=char))
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_RETURN, mod=0, unicode="\r"))
    touch.frame()
    assert CardTap(CARD_UID) in posted
    # A key typed long before is not part of the next card's uid.
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=ord("f"), mod=0, unicode="f"))
    touch.frame()
    ticks.now += 5_000
    for char in CARD_UID:
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=ord(char), mod=0, unicode=char))
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_KP_ENTER, mod=0, unicode="\r"))
    touch.frame()
    assert [item for item in posted if isinstance(item, CardTap)] == [CardTap(CARD_UID), CardTap(CARD_UID)]


def test_only_the_technicians_key_combination_or_a_quit_event_leaves(screen) -> None:
    touch, posted, _ticks = screen
    touch.show(Screen(State.IDLE, "E1"))
    touch.frame()
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_q, mod=pygame.KMOD_CTRL, unicode="q"))
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE, mod=0, unicode="\x1b"))
    touch.frame()
    assert not any(isinstance(item, Quit) for item in posted)
    mods = pygame.KMOD_LCTRL | pygame.KMOD_LALT
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_q, mod=mods, unicode="q"))
    touch.frame()
    assert Quit("Ctrl+Alt+Q") in posted
    pygame.event.post(pygame.event.Event(pygame.QUIT))  # SIGTERM, as SDL reports it
    touch.frame()
    assert sum(isinstance(item, Quit) for item in posted) == 2


def test_the_screen_dims_when_left_alone_and_a_wake_touch_is_not_a_press(screen) -> None:
    touch, posted, ticks = screen
    touch.show(Screen(State.IDLE, "E1"))
    touch.frame()
    ticks.now += 29_000
    touch.frame()
    assert not touch.dimmed
    ticks.now += 1_000
    touch.frame()
    assert touch.dimmed
    finger(touch, "lang")
    touch.frame()
    assert not touch.dimmed
    assert touch.language == "zh-CN"  # the wake touch did nothing else
    ticks.now += 30_000
    touch.frame()
    assert touch.dimmed
    touch.show(Screen(State.INVITED, "E1"))  # the clerk invites: the customer must see it
    touch.frame()
    assert not touch.dimmed
    assert posted == [item for item in posted if not isinstance(item, Press)]


def test_show_only_hands_the_screen_over_and_the_latest_wins(screen) -> None:
    touch, _posted, _ticks = screen
    touch.show(Screen(State.IDLE, "E1"))
    touch.show(Screen(State.INVITED, "E1"))
    assert touch.page is None  # nothing drawn until the render loop's next frame
    touch.frame()
    assert touch.page == "invite"


def test_the_backend_runs_its_own_render_thread() -> None:
    import time

    touch = TouchScreen(threaded=True)
    posted: list[object] = []
    touch.start(posted.append)
    touch.show(Screen(State.INVITED, "E1"))
    deadline = time.monotonic() + 5
    while touch.page != "invite" and time.monotonic() < deadline:
        time.sleep(0.01)
    touch.stop()
    assert touch.page == "invite"
    assert touch.frames > 0
    assert posted[0].__class__.__name__ == "IoUp"


def test_a_refused_answer_shows_not_taken_for_a_moment(screen) -> None:
    touch, _posted, ticks = screen
    touch.show(Screen(State.CLOSED, None))
    touch.refuse()
    touch.frame()
    assert touch.drawn is not None
    ticks.now += 2_000
    touch.frame()
    assert touch.drawn is not None


def test_the_language_button_switches_and_a_new_service_goes_back_to_the_sites(screen) -> None:
    touch, _posted, _ticks = screen
    touch.show(Screen(State.INVITED, "E1", language="zh-CN"))
    touch.frame()
    finger(touch, "lang")
    touch.frame()
    assert touch.language == "en"
    assert touch.voice.played[-1] == ("invite", "en")
    assert [c.label for c in touch.controls if c.id == "face:5"] == ["Very satisfied"]
    touch.show(Screen(State.THANKS, "E1", language="zh-CN"))
    touch.frame()
    assert touch.language == "en"  # the same customer still
    touch.show(Screen(State.IDLE, "E1", language="zh-CN"))
    touch.frame()
    assert touch.language == "zh-CN"


def test_a_photo_that_cannot_be_read_shows_the_placeholder() -> None:
    from protocol.card import ClerkCard

    card = ClerkCard(staff="E1", name="王芳", department="", counter="", photo=b"\x89PNG\r\n\x1a\nbroken")
    broken = render(Screen(State.IDLE, "E1", card=card), (800, 480), "zh-CN")
    none = render(Screen(State.IDLE, "E1", card=replace(card, photo=None)), (800, 480), "zh-CN")
    assert pygame.image.tobytes(broken, "RGB") == pygame.image.tobytes(none, "RGB")
    picture = pygame.Surface((30, 40))
    picture.fill((200, 40, 40))
    buffer = io.BytesIO()
    pygame.image.save(picture, buffer, "photo.png")
    shown = render(Screen(State.IDLE, "E1", card=replace(card, photo=buffer.getvalue())), (800, 480), "zh-CN")
    assert pygame.image.tobytes(shown, "RGB") != pygame.image.tobytes(none, "RGB")


def test_without_a_size_the_screen_takes_the_panels_own() -> None:
    touch = TouchScreen(size=None, threaded=False)
    touch.start(lambda _item: None)
    try:
        assert touch.fullscreen
        assert min(touch.size) > 0
        touch.show(Screen(State.INVITED, "E1"))
        touch.frame()
        assert touch.page == "invite"
    finally:
        touch.stop()
