"""Drawing the touchscreen's layouts (device.io.touch_layout) with pygame: colours, faces, text.

Every colour is drawn as one of the pairs in `PAIRS` (a foreground on a background), so a test can
compute the WCAG contrast of each pair the screen uses (≥ 4.5:1 for text and controls). Faces are
told apart by shape, not colour: the mouth curves up for 5 and 4 (5 open and wide), is straight for
3, and curves down for 2 and 1 (1 with slanted brows), always with the label beside or under it.

A label is drawn at its layout size, else on two lines, else smaller down to `MIN_SHARE` of its
size; one that still does not fit its box is an overflow, listed in `Drawn.overflows` (the render
command and the tests fail on it; a running terminal logs it once).
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Final

import pygame
import pygame.freetype

from device.io.fonts import FontFile
from device.io.touch_layout import Box, Control, Layout, Text, View, layout

__all__ = ["MIN_SHARE", "PAIRS", "Drawn", "Painter", "contrast"]

log = logging.getLogger("pingjia.device.touch")

Colour = tuple[int, int, int]

BG: Final[Colour] = (16, 22, 31)
INK: Final[Colour] = (255, 255, 255)
NOTE: Final[Colour] = (206, 214, 224)
WARN: Final[Colour] = (255, 179, 128)
BUTTON: Final[Colour] = (36, 52, 73)
EDGE: Final[Colour] = (150, 176, 204)
LIT: Final[Colour] = (255, 208, 64)  # chosen or just touched: lit up, with dark ink
DARK: Final[Colour] = (16, 22, 31)
FACE: Final[Colour] = (255, 224, 120)

# (foreground, background) pairs: everything drawn is one of these.
PAIRS: Final[dict[str, tuple[Colour, Colour]]] = {
    "text": (INK, BG),
    "note": (NOTE, BG),
    "warn": (WARN, BG),
    "button_text": (INK, BUTTON),
    "button_edge": (EDGE, BG),
    "button_edge_on_fill": (EDGE, BUTTON),
    "lit_text": (DARK, LIT),
    "lit_edge": (LIT, BG),
    "face_on_button": (FACE, BUTTON),
    "face_features": (DARK, FACE),
    "face_edge_on_lit": (DARK, LIT),
    "photo_placeholder": (EDGE, BUTTON),
}

MIN_SHARE: Final = 0.6  # a label may shrink to this share of its size to fit, no further
MIN_PX: Final = 14
PHOTO_MAX_BYTES: Final = 512 * 1024  # larger photos are not decoded: the placeholder shows
DIM_ALPHA: Final = 200  # the dark veil of a dimmed screen (0..255)


def _luminance(colour: Colour) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: Colour, bg: Colour) -> float:
    """WCAG 2 contrast ratio of two colours (1..21)."""
    high, low = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@dataclass(slots=True)
class Drawn:
    """One drawn screen: the surface, the layout drawn on it (its controls are what can be
    touched), and the labels that did not fit their boxes."""

    surface: pygame.Surface
    layout: Layout
    overflows: list[str] = field(default_factory=list)


class Painter:
    """Draws views; keeps the font and a few decoded photos. pygame must be initialised."""

    def __init__(self, font: FontFile) -> None:
        if not pygame.freetype.get_init():
            pygame.freetype.init()
        self.font = pygame.freetype.Font(str(font.path), size=0, font_index=font.index)
        self.font.antialiased = True
        self._photos: OrderedDict[str, pygame.Surface | None] = OrderedDict()

    def draw(
        self,
        view: View,
        size: tuple[int, int],
        *,
        photo: bytes | None = None,
        target: pygame.Surface | None = None,
        dimmed: bool = False,
        toast: str | None = None,
    ) -> Drawn:
        """Draw `view` at `size` (px) onto `target` (a new surface if None)."""
        surface = target if target is not None else pygame.Surface(size)
        plan = layout(view, size)
        drawn = Drawn(surface, plan)
        surface.fill(BG)
        if plan.photo is not None:
            self._photo(surface, plan.photo, photo)
        for item in plan.texts:
            self._text(drawn, item)
        for control in plan.controls:
            self._control(drawn, control)
        if toast:
            w, h = size
            short = min(w, h)
            box = Box(w // 4, h - round(short * 0.2), w // 2, round(short * 0.14))
            pygame.draw.rect(surface, LIT, _rect(box), border_radius=box.h // 4)
            self._label(drawn, toast, box.inset(box.h // 8), round(short * 0.055), "lit_text", name="toast")
        if dimmed:
            veil = pygame.Surface(size, pygame.SRCALPHA)
            veil.fill((0, 0, 0, DIM_ALPHA))
            surface.blit(veil, (0, 0))
        return drawn

    # -- pieces -------------------------------------------------------------------------------------

    def _text(self, drawn: Drawn, item: Text) -> None:
        pair = {"note": "note", "warn": "warn"}.get(item.role, "text")
        self._label(drawn, item.text, item.box, item.size, pair, name=item.text, strong=item.role in ("title", "big"))

    def _control(self, drawn: Drawn, control: Control) -> None:
        surface, box = drawn.surface, control.box
        radius = max(4, min(box.w, box.h) // 8)
        lit = control.selected
        fill, edge = (LIT, LIT) if lit else (BUTTON, EDGE)
        pygame.draw.rect(surface, fill, _rect(box), border_radius=radius)
        pygame.draw.rect(surface, edge, _rect(box), width=max(2, min(box.w, box.h) // 40), border_radius=radius)
        ink = "lit_text" if lit else "button_text"
        inner = box.inset(max(4, min(box.w, box.h) // 12))
        if control.level is not None:
            if control.kind == "score" or not control.label:
                face, label_box = inner, None
            elif inner.wide:
                face, label_box = inner.cols(inner.h, inner.w - inner.h, gap=inner.h // 5)
            else:
                face, label_box = inner.rows(0.68, 0.32, gap=inner.h // 20)
            _face(surface, face, control.level, lit)
            if label_box is not None:
                self._label(drawn, control.label, label_box, control.size, ink, name=control.id, strong=True)
            return
        if control.kind == "tag" and lit:
            # A chosen tag carries a tick as well as its colour.
            tick, inner = inner.cols(inner.h * 0.6, inner.w - inner.h * 0.6, gap=inner.h // 8)
            _tick(surface, tick)
        if control.label:
            self._label(drawn, control.label, inner, control.size, ink, name=control.id, strong=True)

    def _label(
        self, drawn: Drawn, text: str, box: Box, size: int, pair: str, *, name: str, strong: bool = False
    ) -> None:
        fitted = self.fit(text, box, size, strong=strong)
        if fitted is None:
            drawn.overflows.append(f"{drawn.layout.kind}: {name!r} does not fit {box.w}x{box.h} px at {size} px")
            fitted = ([text], max(MIN_PX, round(size * MIN_SHARE)))
        lines, px = fitted
        fg, _ = PAIRS[pair]
        style = pygame.freetype.STYLE_STRONG if strong else pygame.freetype.STYLE_DEFAULT
        line_h = self.font.get_sized_height(px)
        ascender = self.font.get_sized_ascender(px)
        top = box.y + (box.h - line_h * len(lines)) // 2
        for index, line in enumerate(lines):
            rect = self.font.get_rect(line, size=px, style=style)
            x = box.x + (box.w - rect.w) // 2
            y = top + index * line_h + ascender - rect.y
            self.font.render_to(drawn.surface, (x, y), line, fg, size=px, style=style)

    def fit(self, text: str, box: Box, size: int, *, strong: bool = False) -> tuple[list[str], int] | None:
        """The lines and type size (px) that fit `text` in `box`, or None."""
        style = pygame.freetype.STYLE_STRONG if strong else pygame.freetype.STYLE_DEFAULT
        floor = max(MIN_PX, round(size * MIN_SHARE))
        for px in range(size, floor - 1, -2):
            for lines in _ways_to_break(text):
                widest = max(self.font.get_rect(line, size=px, style=style).w for line in lines)
                if widest <= box.w and self.font.get_sized_height(px) * len(lines) <= box.h:
                    return lines, px
        return None

    def _photo(self, surface: pygame.Surface, box: Box, photo: bytes | None) -> None:
        picture = self._decoded(photo)
        if picture is None:
            _placeholder(surface, box)
            return
        scale = min(box.w / picture.get_width(), box.h / picture.get_height())
        size = (max(1, round(picture.get_width() * scale)), max(1, round(picture.get_height() * scale)))
        scaled = pygame.transform.smoothscale(picture, size)
        surface.blit(scaled, (box.x + (box.w - size[0]) // 2, box.y + (box.h - size[1]) // 2))

    def _decoded(self, photo: bytes | None) -> pygame.Surface | None:
        """The clerk's photo (PNG or JPEG), decoded once; None (the placeholder) if absent, too
        large or unreadable."""
        if not photo or len(photo) > PHOTO_MAX_BYTES:
            return None
        key = hashlib.sha256(photo).hexdigest()
        if key not in self._photos:
            try:
                picture = pygame.image.load(io.BytesIO(photo))
                # In the display's pixel format, drawn fast; without a display (render) as it is.
                self._photos[key] = picture.convert() if pygame.display.get_surface() is not None else picture
            except pygame.error as exc:
                log.warning("the clerk's photo cannot be shown: %s", exc)
                self._photos[key] = None
            while len(self._photos) > 4:
                self._photos.popitem(last=False)
        return self._photos[key]


def _ways_to_break(text: str) -> list[list[str]]:
    """The text on one line, then on two (at the space nearest the middle, or between CJK
    characters when it has no spaces)."""
    ways = [[text]]
    if " " in text:
        spaces = [i for i, ch in enumerate(text) if ch == " "]
        cut = min(spaces, key=lambda i: abs(i - len(text) / 2))
        ways.append([text[:cut], text[cut + 1 :]])
    elif len(text) >= 4 and not text.isascii():
        half = (len(text) + 1) // 2
        ways.append([text[:half], text[half:]])
    return ways


def _rect(box: Box) -> pygame.Rect:
    return pygame.Rect(box.x, box.y, box.w, box.h)


def _square(box: Box) -> tuple[int, int, int]:
    side = min(box.w, box.h)
    cx, cy = box.center
    return cx, cy, side // 2


def _face(surface: pygame.Surface, box: Box, level: int, lit: bool) -> None:
    """A face for level 1..5, told apart by its mouth (and brows), not by colour."""
    cx, cy, r = _square(box)
    line = max(2, r // 10)
    pygame.draw.circle(surface, FACE, (cx, cy), r)
    # A dark rim: the face stands out on a lit (touched) control as on a plain one.
    pygame.draw.circle(surface, DARK, (cx, cy), r, width=line if lit else max(1, line // 2))
    eye_dx, eye_y, eye_r = round(r * 0.35), cy - round(r * 0.25), max(2, round(r * 0.11))
    for side in (-1, 1):
        pygame.draw.circle(surface, DARK, (cx + side * eye_dx, eye_y), eye_r)
    if level == 1:  # slanted brows: cross
        for side in (-1, 1):
            inner = (cx + side * round(r * 0.15), eye_y - round(r * 0.2))
            outer = (cx + side * round(r * 0.55), eye_y - round(r * 0.38))
            pygame.draw.line(surface, DARK, inner, outer, line)
    # The mouth: a parabola whose depth says the level (up for 5 and 4, flat for 3, down for 2 and 1).
    depth = {5: 0.32, 4: 0.16, 3: 0.0, 2: -0.16, 1: -0.3}[level] * r
    half = r * (0.5 if level == 5 else 0.42)
    mouth_y = cy + r * (0.3 if level >= 3 else 0.42)
    points = []
    for step in range(21):
        t = step / 10 - 1  # -1 .. 1
        points.append((cx + t * half, mouth_y + depth * (1 - t * t)))
    if level == 5:  # an open, wide smile
        pygame.draw.polygon(surface, DARK, [*points, (cx + half, mouth_y), (cx - half, mouth_y)])
    else:
        width = max(2, round(line * 1.4))
        pygame.draw.lines(surface, DARK, False, points, width)
        for point in points:  # round joints: a thick polyline alone shows notches
            pygame.draw.circle(surface, DARK, point, width / 2)


def _tick(surface: pygame.Surface, box: Box) -> None:
    cx, cy, r = _square(box)
    points = [(cx - r * 0.7, cy), (cx - r * 0.2, cy + r * 0.5), (cx + r * 0.7, cy - r * 0.5)]
    pygame.draw.lines(surface, DARK, False, points, max(3, r // 4))


def _placeholder(surface: pygame.Surface, box: Box) -> None:
    """A silhouette where the clerk's photo would be."""
    pygame.draw.rect(surface, BUTTON, _rect(box), border_radius=min(box.w, box.h) // 12)
    cx, _, _ = _square(box)
    r = min(box.w, box.h) // 5
    head_y = box.y + box.h * 2 // 5
    pygame.draw.circle(surface, EDGE, (cx, head_y), r)
    shoulders = pygame.Rect(cx - round(r * 1.8), head_y + round(r * 1.2), round(r * 3.6), round(r * 2.4))
    clip = surface.get_clip()
    surface.set_clip(_rect(box))
    pygame.draw.ellipse(surface, EDGE, shoulders)
    surface.set_clip(clip)
