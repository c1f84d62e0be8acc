"""The touchscreen backend (pygame): the same terminal as the key panel's, with a screen to touch.

`TouchScreen` is a terminal backend (device.io.Io). The terminal's loop calls `show` with a
`Screen`; that only hands the screen over. One render thread owns pygame (its display, events and
mixer want one thread): each frame it takes the latest screen, reads touches and keys, and draws.
What a person does goes to the terminal as its inputs, as the key panel's do:

- a face touched is `Press(level)` (5 非常满意 ... 1 非常不满意), highlighted in the very frame that
  reads the touch; the same `Debouncer` as the keys judges it, per control, on a window fit for a
  finger (`TOUCH_DEBOUNCE_MS`), so a shaky finger gives one press, and a touch that SDL also
  reports as an emulated mouse click counts once. Amends and misuse stay the flow's rules: the
  thank-you's change button only shows the faces again.
- the follow-up pages (`Screen.follow_up.pages`: sub-scores, reasons, call-back) post `Details`
  with the answers so far at every answer (which restarts the flow's deadline), and `done=True`
  when the customer finishes or skips the last page. A page that needs a reason (`reason_required`)
  says so (请选择原因) rather than go on without one; the flow refuses such a done in any case.
- the call-back keypad keeps the digits only until OK: they go out once inside a `Phone` (which the
  terminal seals at once) and the buffer is cleared; they are never logged.
- a USB card reader types the card's hex digits and Enter: that is a `CardTap`.
- there is no way out by touch; a technician leaves with Ctrl+Alt+Q (or SIGTERM): `Quit`.
- after `dim_after_s` without a touch or a new screen, an idle or closed screen dims; a touch wakes
  it and is not taken as a press.

The language button switches the screen's language (and the voice's) for this customer; when a
service ends (idle or closed again) it is the site's (`Screen.language`) again.

`render(screen, size, language)` draws a screen without a terminal; `python -m device.io.touch
render docs/screens` writes every screen at both panel sizes in both languages, and fails if a
label overflows its box.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Final

# pygame greets on stdout when imported, where a terminal may be writing JSON lines (--events jsonl).
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame

from device.config import DeviceConfig
from device.flow import Details, Phone, Press, State
from device.io import CardTap, IoDown, IoStatus, IoUp, Post, Quit, Screen
from device.io.catalogue import LANGUAGES, text
from device.io.fonts import FontFile, find_cjk_font
from device.io.keypanel import Debouncer
from device.io.touch_draw import Drawn, Painter
from device.io.touch_layout import Control, View, page_of
from device.io.touch_render import Answers, TouchSettings, render, view_of
from device.io.voice import Voice
from protocol import PanelState, limits

__all__ = ["FPS", "TOUCH_DEBOUNCE_MS", "TouchScreen", "TouchSettings", "render", "view_of"]

log = logging.getLogger("pingjia.device.touch")

FPS: Final = 60
TOUCH_DEBOUNCE_MS: Final = 200  # a finger's repeated touches of one control within this are one touch
PRESSED_MS: Final = 300  # a touched control stays lit this long (a face: until the thank-you, which comes sooner)
TOAST_MS: Final = 1500  # how long "not taken" shows after a refusal
CARD_GAP_MS: Final = 500  # a card reader types a uid in one burst; a slower key starts a new one
PROMPTS: Final = {"invite": "invite", "amend": "invite", "reasons": "reasons", "thanks": "thanks"}


class TouchScreen:
    """The touchscreen as a terminal backend (see the module docstring).

    `size`: the window's size in px (the layout scales to any); None: full screen at the panel's
    own size. `threaded=False` (tests, the simulator): `start` opens the display on the calling
    thread and nothing runs until the caller calls `frame()`. FontMissing from the constructor, before the
    terminal starts, when the CJK font is not installed.
    """

    def __init__(
        self,
        *,
        settings: TouchSettings | None = None,
        size: tuple[int, int] | None = (800, 480),
        fullscreen: bool = False,
        threaded: bool = True,
        font: FontFile | None = None,
        voice: Voice | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.font = font or find_cjk_font()
        self.settings = settings or TouchSettings()
        self.size = size or (0, 0)  # (0, 0): the panel's own size, known once the display is open
        self.fullscreen = fullscreen or size is None
        self.threaded = threaded
        self.voice = voice if voice is not None else Voice()
        self.debouncer = Debouncer(TOUCH_DEBOUNCE_MS)
        self._clock = clock or (lambda: time.monotonic_ns() // 1_000_000)
        self._post: Post | None = None
        self._lock = threading.Lock()
        self._incoming: Screen | None = None
        self._refusals = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._state = PanelState.DISCONNECTED
        # What only the render thread touches:
        self._display: pygame.Surface | None = None
        self._painter: Painter | None = None
        self._screen: Screen | None = None
        self._language = self.settings.language
        self._answers = Answers()
        self._drawn: Drawn | None = None
        self._dirty = True
        self._dimmed = False
        self._last_input_ms = 0
        self._toast_until = 0
        self._pressed_at = 0
        self._card = ""
        self._card_at = 0
        self._keys: dict[str, int] = {}
        self._overflows_said: set[str] = set()
        self.frames = 0
        self._early: list[pygame.event.Event] = []  # what woke the wait for the next frame

    # -- what the terminal asks ---------------------------------------------------------------------

    def start(self, post: Post) -> None:
        self._post = post
        self._stop.clear()
        if not self.threaded:
            self._open()
            return
        self._thread = threading.Thread(target=self._run, name="pj-touch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        elif self._display is not None:
            self._close()

    def show(self, screen: Screen) -> None:
        """Hand the screen to the render thread (the latest one wins); never blocks on drawing."""
        with self._lock:
            self._incoming = screen

    def configure(self, config: DeviceConfig) -> None:
        """The settings in force (the hub may change the middle label, the mode, the language and
        when to dim): swapped whole, drawn again at the next frame."""
        self.settings = TouchSettings.of(config)
        self._dirty = True

    def refuse(self) -> None:
        with self._lock:
            self._refusals += 1

    def status(self) -> IoStatus:
        return IoStatus(panel=self._state, fw=f"touch {self.size[0]}x{self.size[1]}", dropped=0)

    @property
    def bounces(self) -> int:
        return self.debouncer.bounces

    # -- what a test or the simulator reads ---------------------------------------------------------

    @property
    def controls(self) -> tuple[Control, ...]:
        """What can be touched on the screen drawn last, with its box in screen pixels."""
        return tuple(self._drawn.layout.controls) if self._drawn is not None else ()

    @property
    def page(self) -> str | None:
        """The name of the screen drawn last (closed, idle, invite, reasons, ...)."""
        return self._drawn.layout.kind if self._drawn is not None else None

    @property
    def drawn(self) -> Drawn | None:
        """The screen drawn last: its surface, layout (controls and texts) and any overflow."""
        return self._drawn

    @property
    def language(self) -> str:
        return self._language

    @property
    def dimmed(self) -> bool:
        return self._dimmed

    @property
    def overflows(self) -> list[str]:
        return list(self._drawn.overflows) if self._drawn is not None else []

    # -- the render thread --------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._open()
        except pygame.error as exc:
            self._state = PanelState.DISCONNECTED
            self._say(IoDown(f"the screen cannot be opened: {exc}"))
            return
        period = 1 / FPS
        next_frame = time.monotonic()
        try:
            while not self._stop.is_set():
                self.frame()
                next_frame = max(next_frame + period, time.monotonic())
                self.wait_input(next_frame - time.monotonic())
        finally:
            self._close()

    def wait_input(self, timeout_s: float) -> None:
        """Wait for the next frame, at most `timeout_s`, or less if input comes: a touch is drawn at
        once, not at the next frame's turn (pygame waits with the interpreter's lock released)."""
        if timeout_s <= 0:
            return
        event = pygame.event.wait(max(1, int(timeout_s * 1000)))
        if event.type != pygame.NOEVENT:
            self._early.append(event)

    def _open(self) -> None:
        pygame.display.init()
        flags = pygame.FULLSCREEN if self.fullscreen else 0
        self._display = pygame.display.set_mode(self.size, flags)
        self.size = self._display.get_size()  # what the panel gave (its native size, asked for (0, 0))
        pygame.display.set_caption("pingjia")
        pygame.mouse.set_visible(not self.fullscreen)  # a kiosk shows no pointer
        self._painter = Painter(self.font)
        self._state = PanelState.CONNECTED
        self._last_input_ms = self._clock()
        self._say(IoUp(f"touch {self.size[0]}x{self.size[1]}", "screen"))

    def _close(self) -> None:
        self.voice.close()
        pygame.display.quit()
        self._display = None
        self._state = PanelState.DISCONNECTED

    def frame(self) -> None:
        """One frame: take the latest screen, read what was touched or typed, draw if anything
        changed. On the render thread (or the caller's, unthreaded)."""
        now = self._clock()
        with self._lock:
            incoming, self._incoming = self._incoming, None
            refusals, self._refusals = self._refusals, 0
        if incoming is not None:
            self._take(incoming, now)
        if refusals:
            self._toast_until = now + TOAST_MS
            self._dirty = True
        events, self._early = self._early, []
        for event in (*events, *pygame.event.get()):
            self._event(event, now)
        if self._answers.pressed is not None and now - self._pressed_at >= PRESSED_MS:
            self._answers = replace(self._answers, pressed=None)
            self._dirty = True
        if self._toast_until and now >= self._toast_until:
            self._toast_until = 0
            self._dirty = True
        self._dim(now)
        if self._dirty and self._display is not None and self._painter is not None and self._screen is not None:
            self._dirty = False
            self._draw(now)
        self.frames += 1

    def _draw(self, now: int) -> None:
        assert self._display is not None
        assert self._painter is not None
        assert self._screen is not None
        view = view_of(self._screen, self._language, self.settings, self._answers)
        toast = text("refused", self._language) if self._toast_until > now else None
        card = self._screen.card
        self._drawn = self._painter.draw(
            view,
            self.size,
            photo=card.photo if card is not None else None,
            target=self._display,
            dimmed=self._dimmed,
            toast=toast,
        )
        for overflow in self._drawn.overflows:
            if overflow not in self._overflows_said:
                self._overflows_said.add(overflow)
                log.warning("touchscreen: %s", overflow)
        pygame.display.flip()

    def _take(self, screen: Screen, now: int) -> None:
        before = self._screen
        self._screen = screen
        self._dirty = True
        self._last_input_ms = now  # a new screen wakes a dimmed one
        self._dimmed = False
        moved = before is None or before.state is not screen.state
        if before is None or (moved and screen.state in (State.IDLE, State.CLOSED, State.OUT_OF_SERVICE)):
            self._language = screen.language  # a service ended: the site's language again
        if moved or screen.state is State.THANKS:  # each thank-you is a new one (an amend's too)
            self._answers = Answers()  # the digits of an unfinished number go with the page
            self._speak()
        elif screen.state is State.REASONS and screen.follow_up is not None and screen.follow_up.refused:
            pages = screen.follow_up.pages
            if "reasons" in pages:
                self._answers = replace(self._answers, page=pages.index("reasons"), pressed=None)

    def _speak(self) -> None:
        """The page's voice prompt, if it has one (the thank-you: one sound for every level)."""
        if self._screen is None:
            return
        view = view_of(self._screen, self._language, self.settings, self._answers)
        kind = page_of(view)
        if self._screen.state is State.REASONS and self._answers.page == 0:
            kind = "reasons"  # one prompt as the questions start, whatever their first page
        prompt = PROMPTS.get(kind)
        if prompt is not None:
            self.voice.play(prompt, self._language)

    def _dim(self, now: int) -> None:
        after_ms = self.settings.dim_after_s * 1000
        quiet = self._screen is not None and self._screen.state in (State.IDLE, State.CLOSED)
        if after_ms > 0 and quiet and not self._dimmed and now - self._last_input_ms >= after_ms:
            self._dimmed = True
            self._dirty = True

    # -- what a person does -------------------------------------------------------------------------

    def _event(self, event: pygame.event.Event, now: int) -> None:
        if event.type == pygame.QUIT:
            self._say(Quit("the screen was closed"))
        elif event.type == pygame.KEYDOWN:
            self._key(event, now)
        elif event.type == pygame.FINGERDOWN:
            self._touch(event.x * self.size[0], event.y * self.size[1], now)
        elif event.type == pygame.MOUSEBUTTONDOWN and event.button == 1 and not getattr(event, "touch", False):
            # SDL also reports a finger as a mouse click (touch=True): the finger was taken already.
            self._touch(event.pos[0], event.pos[1], now)

    def _key(self, event: pygame.event.Event, now: int) -> None:
        """The technician's way out, and a USB card reader typing a uid and Enter."""
        mods = event.mod
        if event.key == pygame.K_q and mods & pygame.KMOD_CTRL and mods & pygame.KMOD_ALT:
            self._say(Quit("Ctrl+Alt+Q"))
            return
        if event.key in (pygame.K_RETURN, pygame.K_KP_ENTER):
            uid, self._card = self._card, ""
            if 4 <= len(uid) <= 32:
                self._say(CardTap(uid))
            return
        char = (event.unicode or "").lower()
        if len(char) == 1 and char in "0123456789abcdef":
            if now - self._card_at > CARD_GAP_MS:
                self._card = ""
            self._card = (self._card + char)[-32:]
            self._card_at = now

    def _touch(self, x: float, y: float, now: int) -> None:
        self._last_input_ms = now
        if self._dimmed:  # a wake touch is not a press
            self._dimmed = False
            self._dirty = True
            return
        control = next((c for c in self.controls if c.box.contains(x, y)), None)
        if control is None:
            return
        key = self._keys.setdefault(control.id, len(self._keys) + 1)
        if not self.debouncer.press(key, now % 2**32):
            return
        self._dirty = True
        self._answers = replace(self._answers, pressed=control.id)  # drawn in this very frame
        self._pressed_at = now
        self._act(control)

    def _act(self, control: Control) -> None:
        ident, answers = control.id, self._answers
        kind, _, rest = ident.partition(":")
        if ident == "lang":
            self._language = LANGUAGES[(LANGUAGES.index(self._language) + 1) % len(LANGUAGES)]
            self._speak()
        elif kind == "face":
            self._say(Press(int(rest)))
        elif ident == "change":
            self._answers = replace(answers, amending=True)
        elif kind == "score":
            indicator, _, level = rest.partition(":")
            scores = dict(answers.scores)
            scores[indicator] = int(level)
            self._answers = replace(answers, scores=tuple(scores.items()))
            self._details(done=False)
        elif kind == "reason":
            code = int(rest)
            chosen = tuple(c for c in answers.chosen if c != code)
            if code not in answers.chosen and len(chosen) < limits.MAX_REASONS:
                chosen = (*chosen, code)
            self._answers = replace(answers, chosen=chosen, refused=False)
            self._details(done=False)
        elif kind == "key":
            if len(answers.digits) < 20:
                self._answers = replace(answers, digits=answers.digits + rest)
        elif ident == "delete":
            self._answers = replace(answers, digits=answers.digits[:-1])
        elif ident == "ok":
            self._callback()
        elif ident in ("skip", "next", "done"):
            self._leave_page(skip=ident == "skip")

    def _leave_page(self, *, skip: bool) -> None:
        """Skip, Next or Done: on to the next page, or done after the last."""
        answers, view = self._answers, self._view()
        if view is None:
            return
        if view.page == "reasons" and self._reason_needed(answers.chosen if not skip else ()):
            self._answers = replace(answers, refused=True)
            return
        if skip and view.page == "subscores":
            answers = replace(answers, scores=())
        elif skip and view.page == "reasons":
            answers = replace(answers, chosen=())
        self._answers = replace(answers, digits="")
        if view.last_page:
            self._details(done=True)
        else:
            self._answers = replace(self._answers, page=self._answers.page + 1, pressed=None)
            self._details(done=False)

    def _callback(self) -> None:
        """OK on the keypad: the number goes out once, inside a Phone, and is forgotten here."""
        digits = self._answers.digits
        if not Phone.accepts(digits):
            self._toast_until = self._clock() + TOAST_MS
            return
        self._answers = replace(self._answers, digits="")
        view = self._view()
        last = view is None or view.last_page
        self._details(done=last, phone=Phone(digits))
        if not last:
            self._answers = replace(self._answers, page=self._answers.page + 1, pressed=None)

    def _reason_needed(self, chosen: tuple[int, ...]) -> bool:
        follow_up = self._screen.follow_up if self._screen is not None else None
        return follow_up is not None and follow_up.reason_required and not chosen

    def _details(self, *, done: bool, phone: Phone | None = None) -> None:
        answers = self._answers
        scores = tuple(sorted(answers.scores))
        self._say(Details(reasons=answers.chosen, subscores=scores, phone=phone, done=done))

    def _view(self) -> View | None:
        if self._screen is None:
            return None
        return view_of(self._screen, self._language, self.settings, self._answers)

    def _say(self, item: object) -> None:
        if self._post is not None:
            self._post(item)


if __name__ == "__main__":
    from device.io.touch_render import main

    sys.exit(main(sys.argv[1:]))
