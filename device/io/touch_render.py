"""The touchscreen's screens without a terminal: what the customer sees, and the docs' pictures.

`view_of` joins the terminal's `Screen` with what the customer did on it (`Answers`: the follow-up
page, answers not yet final, the control just touched) into the `View` the layout lays out;
`render(screen, size, language)` draws one without a display (the backend draws the same views on
its display). `python -m device.io.touch render docs/screens` (`main`) writes every screen in
`samples()` at both panel sizes and both languages to <screen>-<w>x<h>-<lang>.png, and fails if a
label overflows its box.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

# pygame greets on stdout when imported, where a terminal may be writing JSON lines (--events jsonl).
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame

from device.flow import FollowUp, State
from device.io import Screen
from device.io.catalogue import LANGUAGES
from device.io.fonts import FontFile, FontMissing, find_cjk_font
from device.io.touch_draw import Drawn, Painter
from device.io.touch_layout import View
from protocol.card import ClerkCard

__all__ = ["SIZES", "Answers", "TouchSettings", "draw", "main", "render", "render_all", "samples", "view_of"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TouchSettings:
    """The settings the screen itself needs (device.config.DeviceConfig has them all)."""

    middle_label: str = "一般"
    dim_after_s: float = 60.0
    mode: str = "invited"  # open: the faces show whenever a clerk is logged in
    language: str = "zh-CN"  # until the terminal's first screen says the site's

    @classmethod
    def of(cls, config: object) -> TouchSettings:
        """From a DeviceConfig (or anything with those attributes; missing ones keep defaults)."""
        defaults = cls()
        return cls(
            middle_label=getattr(config, "middle_label", defaults.middle_label),
            dim_after_s=getattr(config, "dim_after_s", defaults.dim_after_s),
            mode=getattr(config, "mode", defaults.mode),
            language=getattr(config, "language", defaults.language),
        )


@dataclass(frozen=True, slots=True)
class Answers:
    """What the customer did on the screen since it came: never the level (that is the flow's)."""

    page: int = 0  # index into follow_up.pages
    chosen: tuple[int, ...] = ()
    scores: tuple[tuple[str, int], ...] = ()
    digits: str = ""
    refused: bool = False  # a reason is needed before going on
    amending: bool = False  # the thank-you's change button: the faces again
    pressed: str | None = None


def view_of(screen: Screen, language: str, settings: TouchSettings, answers: Answers | None = None) -> View:
    """The view of a terminal's screen with what the customer did on it."""
    done = answers or Answers()
    follow_up = screen.follow_up or _key_panel_follow_up(screen)
    card: ClerkCard | None = screen.card
    pages = follow_up.pages
    page = None
    if screen.state is State.REASONS and pages:
        page = pages[min(done.page, len(pages) - 1)]
    elif screen.state is State.THANKS and done.amending:
        page = "amend"
    elif screen.state is State.IDLE and settings.mode == "open":
        page = "invite"  # every press while a clerk is logged in is a rating
    return View(
        state=screen.state,
        language=language,
        staff=card.staff if card is not None else screen.staff,
        code=screen.code,
        name=card.name if card is not None else None,
        department=card.department if card is not None else None,
        counter=card.counter if card is not None else None,
        middle_label=settings.middle_label,
        page=page,
        last_page=done.page >= len(pages) - 1,
        group=follow_up.group,
        tags=follow_up.codes,
        site_labels=tuple(screen.labels),
        chosen=done.chosen,
        scores=done.scores,
        digits=done.digits,
        refused=done.refused or (follow_up.refused and page == "reasons"),
        pressed=done.pressed,
    )


def _key_panel_follow_up(screen: Screen) -> FollowUp:
    """A REASONS screen without questions (a terminal set up for keys): the key panel's reasons."""
    return FollowUp(group="negative", pages=("reasons",), reason_required=False, codes=tuple(range(1, 6)))


def render(
    screen: Screen,
    size: tuple[int, int],
    language: str,
    *,
    settings: TouchSettings | None = None,
    page: int = 0,
    font: FontFile | None = None,
) -> pygame.Surface:
    """Draw `screen` (its follow-up at page index `page`) at `size` px in `language`, without a
    terminal or a display. FontMissing without the CJK font."""
    return draw(screen, size, language, settings=settings, page=page, font=font).surface


def draw(
    screen: Screen,
    size: tuple[int, int],
    language: str,
    *,
    settings: TouchSettings | None = None,
    page: int = 0,
    font: FontFile | None = None,
) -> Drawn:
    """As `render`, with what was drawn: the layout's controls and any label that overflowed."""
    painter = _painter(font or find_cjk_font())
    view = view_of(screen, language, settings or TouchSettings(), Answers(page=page))
    return painter.draw(view, size, photo=screen.card.photo if screen.card else None)


_PAINTERS: dict[FontFile, Painter] = {}


def _painter(font: FontFile) -> Painter:
    if font not in _PAINTERS:
        _PAINTERS[font] = Painter(font)
    return _PAINTERS[font]


# -- `python -m device.io.touch render FOLDER` ---------------------------------------------------------


def samples() -> list[tuple[str, Screen, int]]:
    """Every screen, as the docs show it: (name, screen, follow-up page index)."""
    card = ClerkCard(staff="E1024", name="李晓梅", department="社会保障科", counter="3号窗口", photo=None)
    negative = FollowUp(group="negative", pages=("subscores", "reasons", "callback"), reason_required=True)
    negative = replace(negative, codes=(1, 2, 3, 4, 5, 6))
    labels = ("等候时间长", "服务态度差", "业务不熟练", "流程繁琐", "其他")
    reasons = Screen(State.REASONS, "E1024", labels=labels, follow_up=negative, card=card)
    return [
        ("closed", Screen(State.CLOSED, None), 0),
        ("pairing", Screen(State.CLOSED, None, code="482913"), 0),
        ("idle", Screen(State.IDLE, "E1024", card=card), 0),
        ("invite", Screen(State.INVITED, "E1024", card=card), 0),
        ("subscores", reasons, 0),
        ("reasons", reasons, 1),
        ("reasons-required", replace(reasons, follow_up=replace(negative, refused=True)), 1),
        ("callback", reasons, 2),
        ("thanks", Screen(State.THANKS, "E1024", card=card), 0),
        ("out_of_service", Screen(State.OUT_OF_SERVICE, "E1024"), 0),
    ]


SIZES: Final = ((800, 480), (1280, 800))


def render_all(folder: Path) -> list[str]:
    """Write docs/screens/<screen>-<w>x<h>-<lang>.png for every sample; return the overflows."""
    folder.mkdir(parents=True, exist_ok=True)
    font = find_cjk_font()
    problems = []
    for name, screen, page in samples():
        for size in SIZES:
            for language in LANGUAGES:
                drawn = draw(screen, size, language, page=page, font=font)
                problems.extend(drawn.overflows)
                pygame.image.save(drawn.surface, str(folder / f"{name}-{size[0]}x{size[1]}-{language}.png"))
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "render":
        print("usage: python -m device.io.touch render FOLDER", file=sys.stderr)  # noqa: T201
        return 2
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # drawing to files needs no screen
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        problems = render_all(Path(argv[1]))
    except FontMissing as exc:
        print(f"render: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    for problem in problems:
        print(f"render: a label overflows: {problem}", file=sys.stderr)  # noqa: T201
    return 1 if problems else 0
