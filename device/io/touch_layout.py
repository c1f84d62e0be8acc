"""Where everything goes on the touchscreen: one description, in relative boxes, for every panel.

The same code lays out 800×480 (7") and 1280×800 (10"), landscape and portrait: sizes are shares
of the screen (margins and type scale with its short side), and a few choices follow the shape of
the box being filled (five faces side by side in a wide box, one above the other in a tall one;
reason tags three or two across). Pure: no pygame, boxes in pixels; device.io.touch draws them and
hit-tests touches against the same `Control` boxes, so what is drawn is what is touched.

Touch targets must be at least `MIN_TARGET_MM` (12 mm) on the panel, at its DPI (`PANELS`); the
tests measure every control of every screen on every panel against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from device.flow import State
from device.io import catalogue
from device.io.catalogue import text

__all__ = [
    "MIN_TARGET_MM",
    "PANELS",
    "Box",
    "Control",
    "Layout",
    "Panel",
    "Text",
    "View",
    "layout",
    "page_of",
    "panel_for",
]

MIN_TARGET_MM: Final = 12.0


@dataclass(frozen=True, slots=True)
class Panel:
    """A counter panel: its native size (landscape) and its pixels per inch."""

    name: str
    size: tuple[int, int]
    dpi: float

    def mm(self, px: float) -> float:
        return px / self.dpi * 25.4


# 7" 800×480: a 154 mm × 86 mm active area ≈ 133 dpi; 10.1" 1280×800: 217 mm × 136 mm ≈ 149 dpi.
PANELS: Final = (Panel('7"', (800, 480), 133.0), Panel('10"', (1280, 800), 149.0))


def panel_for(size: tuple[int, int]) -> Panel:
    """The panel of a screen size, either way round (the densest panel for an unknown size, so a
    target test errs on the safe side)."""
    for panel in PANELS:
        if tuple(sorted(size)) == tuple(sorted(panel.size)):
            return panel
    return max(PANELS, key=lambda panel: panel.dpi)


@dataclass(frozen=True, slots=True)
class Box:
    x: int
    y: int
    w: int
    h: int

    @property
    def center(self) -> tuple[int, int]:
        return self.x + self.w // 2, self.y + self.h // 2

    @property
    def wide(self) -> bool:
        return self.w > self.h * 1.6

    def contains(self, x: float, y: float) -> bool:
        return self.x <= x < self.x + self.w and self.y <= y < self.y + self.h

    def inset(self, px: int) -> Box:
        return Box(self.x + px, self.y + px, max(1, self.w - 2 * px), max(1, self.h - 2 * px))

    def rows(self, *shares: float, gap: int = 0) -> list[Box]:
        """Cut top to bottom into boxes of these shares of the height (less the gaps)."""
        total = sum(shares)
        room = self.h - gap * (len(shares) - 1)
        boxes, y = [], self.y
        for share in shares:
            h = round(room * share / total)
            boxes.append(Box(self.x, y, self.w, h))
            y += h + gap
        return boxes

    def cols(self, *shares: float, gap: int = 0) -> list[Box]:
        """Cut left to right into boxes of these shares of the width (less the gaps)."""
        total = sum(shares)
        room = self.w - gap * (len(shares) - 1)
        boxes, x = [], self.x
        for share in shares:
            w = round(room * share / total)
            boxes.append(Box(x, self.y, w, self.h))
            x += w + gap
        return boxes

    def grid(self, count: int, columns: int, gap: int) -> list[Box]:
        """`count` equal cells, `columns` across, filled row by row."""
        lines = -(-count // columns)
        cells = []
        for row in self.rows(*([1.0] * lines), gap=gap):
            cells.extend(row.cols(*([1.0] * columns), gap=gap))
        return cells[:count]


@dataclass(frozen=True, slots=True)
class Control:
    """Something to touch. `id`: face:5, score:attitude:4, reason:12, key:7, delete, ok, skip,
    done, next, lang. `size`: the label's type size in px (the renderer shrinks it to fit, within
    limits). `level`: the face drawn in it (1..5), if any."""

    id: str
    box: Box
    label: str
    size: int
    kind: str  # face, score, tag, key, button, lang
    selected: bool = False
    level: int | None = None


@dataclass(frozen=True, slots=True)
class Text:
    box: Box
    text: str
    size: int
    role: str = "body"  # title, body, note, big, warn


@dataclass(frozen=True, slots=True)
class View:
    """What the touchscreen shows: the terminal's screen and what the customer did on it so far
    (the language chosen, the follow-up page, answers not yet final)."""

    state: State
    language: str
    staff: str | None = None
    code: str | None = None
    name: str | None = None
    department: str | None = None
    counter: str | None = None
    middle_label: str = "一般"
    page: str | None = None  # the follow-up page: subscores, reasons, callback
    last_page: bool = True
    group: str = "negative"
    tags: tuple[int, ...] = ()  # reason codes offered
    site_labels: tuple[str, ...] = ()
    chosen: tuple[int, ...] = ()  # reason codes chosen
    scores: tuple[tuple[str, int], ...] = ()
    subscores: tuple[str, ...] = tuple(catalogue.SUBSCORES)
    digits: str = ""  # the call-back number being typed (shown only while typed)
    refused: bool = False  # the flow wants a reason before it ends
    pressed: str | None = None  # the control touched last: highlighted for feedback


@dataclass(slots=True)
class Layout:
    kind: str  # the screen's name (closed, idle, invite, ..., as in docs/screens)
    controls: list[Control] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    photo: Box | None = None


def page_of(view: View) -> str:
    """The screen's name: closed, pairing, idle, invite, subscores, reasons, callback, thanks,
    amend (the faces again, from the thank-you's change button), out_of_service, wait."""
    state = view.state
    if state is State.CLOSED:
        return "pairing" if view.code else "closed"
    if state is State.REASONS:
        return view.page or "reasons"
    if state is State.THANKS and view.page == "amend":
        return "amend"
    if state is State.IDLE and view.page == "invite":
        return "invite"
    names = {
        State.IDLE: "idle",
        State.INVITED: "invite",
        State.THANKS: "thanks",
        State.OUT_OF_SERVICE: "out_of_service",
    }
    return names.get(state, "wait")


@dataclass(frozen=True, slots=True)
class _Scale:
    """Sizes in px, all shares of the screen's short side."""

    short: int
    gap: int
    title: int
    body: int
    note: int


def layout(view: View, size: tuple[int, int]) -> Layout:
    """The screen of `view` at `size` (px): what to draw and what can be touched."""
    w, h = size
    short = min(w, h)
    m = round(short * 0.04)  # margin
    s = _Scale(short, round(short * 0.02), round(short * 0.075), round(short * 0.055), round(short * 0.04))
    kind = page_of(view)
    out = Layout(kind)
    lang = view.language
    area = Box(m, m, w - 2 * m, h - 2 * m)
    if kind in ("closed", "out_of_service", "pairing", "thanks", "wait"):
        _message(out, view, area, short)
        return out

    header, body = area.rows(0.16 * short, area.h - 0.16 * short - s.gap, gap=s.gap)
    title_box, lang_box = header.cols(header.w - header.h, header.h, gap=s.gap)
    out.controls.append(Control("lang", lang_box, text("other_language", lang), s.body, "lang"))
    titles = {
        "idle": text("idle_title", lang),
        "invite": text("invite", lang),
        "amend": text("rate_again", lang),
        "subscores": text("subscores_title", lang),
        "reasons": text(f"reasons_title_{view.group}", lang),
        "callback": text("callback_title", lang),
    }
    out.texts.append(Text(title_box, titles[kind], s.title, "title"))
    if kind == "idle":
        _idle(out, view, body, s)
    elif kind in ("invite", "amend"):
        labels = catalogue.face_labels(view.middle_label, lang)
        for level, cell in zip((5, 4, 3, 2, 1), body.grid(5, 5 if body.wide else 1, s.gap), strict=True):
            ident = f"face:{level}"
            out.controls.append(Control(ident, cell, labels[level], s.body, "face", view.pressed == ident, level))
    else:
        _questions(out, view, body, s)
    return out


def _idle(out: Layout, view: View, body: Box, s: _Scale) -> None:
    """The clerk's card: photo (or placeholder), name, staff number, department, counter."""
    lang, g = view.language, s.gap
    photo, details = body.cols(0.3, 0.7, gap=2 * g) if body.wide else body.rows(0.55, 0.45, gap=2 * g)
    out.photo = photo
    lines = [
        (view.name or view.staff or "", s.title, "title"),
        (f"{text('staff_no', lang)} {view.staff or ''}", s.body, "body"),
        (f"{text('department', lang)} {view.department}" if view.department else "", s.body, "body"),
        (f"{text('counter', lang)} {view.counter}" if view.counter else "", s.body, "body"),
    ]
    present = [line for line in lines if line[0].strip()]
    for (said, px, role), box in zip(present, details.rows(*([1.0] * len(present)), gap=g), strict=True):
        out.texts.append(Text(box, said, px, role))


def _questions(out: Layout, view: View, body: Box, s: _Scale) -> None:
    """A follow-up page: its questions above, Skip and Next (or Done) below."""
    lang, g, kind = view.language, s.gap, out.kind
    if kind == "callback" and body.wide:
        _keypad(out, view, body, s)  # the keys take the full height; Skip goes under the privacy line
        return
    main, bar = body.rows(body.h - 0.16 * s.short, 0.16 * s.short, gap=g)
    if view.refused:
        warn, main = main.rows(0.1 * s.short, main.h - 0.1 * s.short - g, gap=g)
        out.texts.append(Text(warn, text("reason_required", lang), s.body, "warn"))
    if kind == "subscores":
        scored = dict(view.scores)
        for indicator, row in zip(view.subscores, main.rows(*([1.0] * len(view.subscores)), gap=g), strict=True):
            label_box, taps = row.cols(0.28, 0.72, gap=g) if row.w > row.h * 4 else row.rows(0.35, 0.65, gap=g // 2)
            out.texts.append(Text(label_box, catalogue.SUBSCORES[indicator][lang], s.body))
            for level, cell in zip((5, 4, 3, 2, 1), taps.grid(5, 5, g), strict=True):
                ident = f"score:{indicator}:{level}"
                out.controls.append(Control(ident, cell, "", s.body, "score", scored.get(indicator) == level, level))
    elif kind == "reasons":
        cells = main.grid(len(view.tags), 3 if main.wide else 2, g) if view.tags else []
        for code, cell in zip(view.tags, cells, strict=True):
            label = catalogue.reason_label(code, lang, view.site_labels)
            out.controls.append(Control(f"reason:{code}", cell, label, s.body, "tag", code in view.chosen))
    elif kind == "callback":
        _keypad(out, view, main, s)
    skip, finish = bar.cols(1.0, 1.0, gap=2 * g)
    out.controls.append(Control("skip", skip, text("skip", lang), s.body, "button", view.pressed == "skip"))
    if kind != "callback":  # the keypad's OK finishes that page
        ident = "done" if view.last_page else "next"
        out.controls.append(Control(ident, finish, text(ident, lang), s.body, "button", view.pressed == ident))


def _keypad(out: Layout, view: View, main: Box, s: _Scale) -> None:
    """The call-back number: what is typed (only while it is typed), the privacy line, the keys
    (and, side by side, Skip under the privacy line)."""
    lang, g = view.language, s.gap
    if main.wide:
        left, pad = main.cols(0.45, 0.55, gap=2 * g)
        number, privacy, skip = left.rows(0.3, 0.4, 0.3, gap=g)
        out.controls.append(Control("skip", skip, text("skip", lang), s.body, "button", view.pressed == "skip"))
    else:
        number, privacy, pad = main.rows(0.14, 0.14, 0.72, gap=g)
    out.texts.append(Text(number, view.digits or "—", s.title, "big"))
    out.texts.append(Text(privacy, text("callback_privacy", lang), s.note, "note"))
    keys = [*"123456789", "delete", "0", "ok"]
    for key, cell in zip(keys, pad.grid(12, 3, g), strict=True):
        if key.isdigit():
            out.controls.append(Control(f"key:{key}", cell, key, s.title, "key", view.pressed == f"key:{key}"))
        else:
            out.controls.append(Control(key, cell, text(key, lang), s.body, "button", view.pressed == key))


def _message(out: Layout, view: View, area: Box, short: int) -> None:
    """A screen with nothing to press: a headline and a note, in the shown language, with the
    other language beneath for the screens a customer may meet untouched."""
    lang = view.language
    other = "en" if lang == "zh-CN" else "zh-CN"
    head, note, second = {
        "closed": ("closed", "closed_note", True),
        "out_of_service": ("out_of_service", "out_of_service_note", True),
        "pairing": ("pairing", "pairing_note", False),
        "thanks": ("thanks", "thanks_note", False),
        "wait": ("wait", "wait", False),
    }[out.kind]
    if out.kind == "pairing":
        top, code, bottom = area.rows(0.2, 0.5, 0.3, gap=round(short * 0.02))
        out.texts.append(Text(top, text(head, lang), round(short * 0.08), "title"))
        out.texts.append(Text(code, " ".join(view.code or ""), round(short * 0.22), "big"))
        out.texts.append(Text(bottom, text(note, lang), round(short * 0.045), "note"))
        return
    shares = (0.3, 0.15, 0.12, 0.1) if second else (0.45, 0.2)
    above, below = (0.1, 0.4) if out.kind == "thanks" else (0.2, 0.2)  # room for the change button
    boxes = area.rows(above, *shares, below)[1:-1]
    if out.kind == "thanks":
        # The same for every level; within the amend window the customer may change their mind.
        bottom = area.rows(0.75, 0.25)[1]
        button = bottom.cols(1.0, 1.0, 1.0)[1]
        label = text("change", lang)
        out.controls.append(Control("change", button, label, round(short * 0.05), "button", view.pressed == "change"))
    out.texts.append(Text(boxes[0], text(head, lang), round(short * 0.12), "title"))
    out.texts.append(Text(boxes[1], text(note, lang), round(short * 0.055), "body"))
    if second:
        out.texts.append(Text(boxes[2], text(head, other), round(short * 0.06), "title"))
        out.texts.append(Text(boxes[3], text(note, other), round(short * 0.04), "note"))
