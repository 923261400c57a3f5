"""A still picture of the whole SamCanvas widget, for notebook viewers that cannot run widgets.

GitHub, nbviewer or a notebook opened without a kernel show the ``image/png``
of a widget's output instead of the widget. That picture is drawn here with
Pillow to look like the live widget: the toolbar with its buttons (and whether
clicks are positive or negative), the image with its masks and the prompts,
the side panel with the object list (id, label, area, predicted IoU, colour),
the three candidate masks with their predicted IoU, and the status line with
the last error. It is a pure function of a :class:`WidgetView` (what the widget
shows) and costs a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import render, toolbar
from .state import ImageState

# -- look (ipywidgets 8 / JupyterLab defaults) ---------------------------------------------------------------
BACKGROUND = (255, 255, 255)
TEXT = (33, 33, 33)
MUTED = (130, 130, 130)
BUTTON = (238, 238, 238)  # --jp-layout-color2
BUTTON_PRESSED = (189, 189, 189)  # --jp-layout-color3, a toggle that is on
DANGER = (211, 47, 47)  # button_style="danger" (--jp-error-color1)
INFO = (0, 151, 167)  # button_style="info" (--jp-info-color1): the chosen candidate, a toggle that is on
BORDER = (189, 189, 189)
SELECTED_ROW = (33, 150, 243)  # the selected option of the object list
ERROR = (204, 0, 0)
PLACEHOLDER = (246, 246, 246)

FONT_SIZE = 13
STATUS_FONT_SIZE = 12
NOTE_FONT_SIZE = 11
BUTTON_HEIGHT = 28
GAP = 4  # between widgets
MARGIN = 4  # around the picture
PANEL_WIDTH = 260  # the object list and the label box (as in the widget)
LIST_ROWS = 10
ROW_HEIGHT = 20
STATUS_LINE_HEIGHT = 16
MAX_STATUS_LINES = 6
NOTE = "a picture of the widget: run the notebook to click on the image"


@dataclass(frozen=True)
class WidgetView:
    """Everything the snapshot shows; :meth:`SamCanvas.snapshot` fills it from the live widget."""

    picture: np.ndarray  # display-size RGB image (without the masks)
    grid: render.DisplayGrid  # image -> display mapping of the canvas
    state: ImageState  # objects, selection, prompts and the edited mask
    thumb_picture: np.ndarray  # thumbnail-size RGB image
    thumb_grid: render.DisplayGrid
    status: str  # the status line as plain text
    negative: bool = False  # negative clicks mode
    preview: bool = False  # the hover preview's toggle
    box_mode: bool = False  # the several-boxes toggle
    pan_mode: bool = False  # the pan toggle
    error: str | None = None  # the last action's error, shown in red after the status
    label_text: str = ""  # the label box's text


@dataclass(frozen=True)
class Snapshot:
    """The picture (H x W x 3 uint8) and where each part of the widget is in it (x0, y0, x1, y1), end exclusive."""

    pixels: np.ndarray
    regions: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)


# -- fonts -----------------------------------------------------------------------------------------------------
@cache
def font(size: int = FONT_SIZE, style: str = "regular") -> Any:
    """A font of this size: DejaVu where the system has it, else Pillow's bundled font (Pillow >= 10.1
    scales it), else Pillow's small bitmap font."""
    names = {"regular": "DejaVuSans.ttf", "bold": "DejaVuSans-Bold.ttf", "mono": "DejaVuSansMono.ttf",
             "mono-bold": "DejaVuSansMono-Bold.ttf"}
    for name in (names[style], names[style.split("-")[0]], names["regular"]):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            pass
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow < 10.1, or no FreeType
        return ImageFont.load_default()


def _text(text: str, fnt: Any) -> str:
    """Text the font can encode (the bitmap fallback font knows Latin-1 only)."""
    if isinstance(fnt, ImageFont.FreeTypeFont):
        return text
    return text.encode("latin-1", "replace").decode("latin-1")


def _width(text: str, fnt: Any) -> float:
    return fnt.getlength(_text(text, fnt))


def _fit(text: str, fnt: Any, width: float) -> str:
    """text, cut with '...' to fit in width pixels."""
    if _width(text, fnt) <= width:
        return text
    while text and _width(text + "...", fnt) > width:
        text = text[:-1]
    return text + "..."


def _draw_text(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, fnt: Any, fill, anchor: str = "lm"):
    if isinstance(fnt, ImageFont.FreeTypeFont):
        draw.text(xy, text, font=fnt, fill=fill, anchor=anchor)
    else:  # bitmap fonts have no anchors: centre by hand
        text = _text(text, fnt)
        x, y = xy
        w = fnt.getlength(text)
        x0, y0, x1, y1 = fnt.getbbox(text)
        x = x - w / 2 if anchor[0] == "m" else x - w if anchor[0] == "r" else x
        draw.text((x, y - (y1 + y0) / 2), text, font=fnt, fill=fill)


# -- widgets ----------------------------------------------------------------------------------------------------
def _icon(draw: ImageDraw.ImageDraw, name: str, cx: float, cy: float, color) -> None:
    """The few Font Awesome icons of the toolbar, drawn as lines (7 px half-size)."""
    if name == "plus":
        draw.line([(cx - 5, cy), (cx + 5, cy)], fill=color, width=2)
        draw.line([(cx, cy - 5), (cx, cy + 5)], fill=color, width=2)
    elif name in ("arrow-left", "arrow-right"):
        s = -1 if name == "arrow-left" else 1
        draw.line([(cx - 6 * s, cy), (cx + 6 * s, cy)], fill=color, width=2)
        draw.line([(cx + 6 * s, cy), (cx + 1 * s, cy - 5)], fill=color, width=2)
        draw.line([(cx + 6 * s, cy), (cx + 1 * s, cy + 5)], fill=color, width=2)
    elif name in ("undo", "repeat"):  # the upper part of a circle, the head at one end pointing down
        r, s = 5, -1 if name == "undo" else 1
        start, end = (180, 385) if s < 0 else (155, 360)
        draw.arc([cx - r, cy - r + 2, cx + r, cy + r + 2], start=start, end=end, fill=color, width=2)
        tx, ty = cx + s * r, cy + 2
        draw.polygon([(tx - 3.5, ty - 1), (tx + 3.5, ty - 1), (tx, ty + 4)], fill=color)
    elif name == "eraser":
        draw.polygon([(cx - 6, cy + 3), (cx - 1, cy - 5), (cx + 6, cy - 1), (cx + 1, cy + 6)], outline=color, width=2)
    elif name == "tag":
        draw.polygon([(cx - 6, cy - 5), (cx + 1, cy - 5), (cx + 6, cy), (cx + 1, cy + 5), (cx - 6, cy + 5)],
                     outline=color, width=2)
    elif name == "trash":
        draw.rectangle([cx - 4, cy - 3, cx + 4, cy + 6], outline=color, width=2)
        draw.line([(cx - 6, cy - 5), (cx + 6, cy - 5)], fill=color, width=2)
    elif name == "eye":
        draw.ellipse([cx - 7, cy - 4, cx + 7, cy + 4], outline=color, width=2)
        draw.ellipse([cx - 2, cy - 2, cx + 2, cy + 2], fill=color)
    elif name == "clone":
        draw.rectangle([cx - 6, cy - 6, cx + 2, cy + 2], outline=color, width=2)
        draw.rectangle([cx - 2, cy - 2, cx + 6, cy + 6], outline=color, width=2)
    elif name in ("search-plus", "search-minus"):
        draw.ellipse([cx - 6, cy - 6, cx + 3, cy + 3], outline=color, width=2)
        draw.line([(cx + 2, cy + 2), (cx + 6, cy + 6)], fill=color, width=2)
        draw.line([(cx - 4, cy - 1.5), (cx + 1, cy - 1.5)], fill=color, width=1)
        if name == "search-plus":
            draw.line([(cx - 1.5, cy - 4), (cx - 1.5, cy + 1)], fill=color, width=1)
    elif name == "expand":
        for sx, sy in ((-1, -1), (1, -1), (-1, 1), (1, 1)):
            draw.line([(cx + 6 * sx, cy + 6 * sy), (cx + 2 * sx, cy + 6 * sy)], fill=color, width=2)
            draw.line([(cx + 6 * sx, cy + 6 * sy), (cx + 6 * sx, cy + 2 * sy)], fill=color, width=2)
    elif name == "arrows":
        draw.line([(cx - 6, cy), (cx + 6, cy)], fill=color, width=2)
        draw.line([(cx, cy - 6), (cx, cy + 6)], fill=color, width=2)


@dataclass(frozen=True)
class _Button:
    text: str
    icon: str = ""
    width: int | None = None  # None: fits its text, as width="auto"
    fill: tuple[int, int, int] = BUTTON
    color: tuple[int, int, int] = TEXT

    def size(self) -> int:
        if self.width is not None:
            return self.width
        content = _width(self.text, font()) if self.text else 0
        return int(round(content + (18 if self.icon else 0) + (6 if self.icon and self.text else 0) + 24))

    def draw(self, draw: ImageDraw.ImageDraw, x: int, y: int, width: int | None = None) -> int:
        w = width if width is not None else self.size()
        draw.rectangle([x, y, x + w - 1, y + BUTTON_HEIGHT - 1], fill=self.fill)
        if self.fill == BUTTON_PRESSED:  # the inset shadow of a pressed toggle
            draw.line([(x, y), (x + w - 1, y)], fill=(150, 150, 150), width=2)
        content = (_width(self.text, font()) if self.text else 0) + (18 if self.icon else 0) \
            + (6 if self.icon and self.text else 0)
        cx, cy = x + (w - content) / 2, y + BUTTON_HEIGHT / 2
        if self.icon:
            _icon(draw, self.icon, cx + 8, cy, self.color)
            cx += 24 if self.text else 18
        if self.text:
            _draw_text(draw, (cx, cy), _fit(self.text, font(), w - 8), font(), self.color, "lm")
        return w


def _toolbar(view: WidgetView) -> list[_Button]:
    """The canvas's toolbar (the specification both share, ``widget/toolbar.py``), toggles coloured as they are."""
    mode_text = toolbar.MODE_TEXT[view.negative]
    mode = _Button(mode_text, width=toolbar.MODE_WIDTH, fill=DANGER, color=(255, 255, 255)) if view.negative \
        else _Button(mode_text, width=toolbar.MODE_WIDTH)
    on = {"preview": view.preview, "boxes": view.box_mode, "pan": view.pan_mode}  # each toggle's state
    return [mode] + [_Button(tool.text, tool.icon, fill=INFO, color=(255, 255, 255))
                     if tool.toggle and on[tool.name] else _Button(tool.text, tool.icon) for tool in toolbar.TOOLBAR]


def _draw_prompts(draw: ImageDraw.ImageDraw, view: WidgetView, ox: int, oy: int) -> None:
    """The prompts layer of the canvas: the box, then the clicks as green / red dots with a white ring."""
    prompt = view.state.edit.prompt
    if prompt.box is not None:
        x0, y0 = view.grid.to_display(*prompt.box[:2])
        x1, y1 = view.grid.to_display(*prompt.box[2:])
        draw.rectangle([ox + min(x0, x1), oy + min(y0, y1), ox + max(x0, x1), oy + max(y0, y1)],
                       outline=render.PROMPT_POSITIVE, width=2)
    for (x, y), label in zip(prompt.points, prompt.labels):
        dx, dy = view.grid.to_display(x, y)
        draw.ellipse([ox + dx - 6, oy + dy - 6, ox + dx + 6, oy + dy + 6],
                     fill=render.PROMPT_POSITIVE if label else render.PROMPT_NEGATIVE, outline=render.RING, width=2)


def _object_rows(state: ImageState) -> tuple[list, int]:
    """The (at most LIST_ROWS) objects the list shows, scrolled so that the selected one is visible,
    and the index of the first."""
    objects = list(state.objects)
    if len(objects) <= LIST_ROWS:
        return objects, 0
    ids = [o.id for o in objects]
    at = ids.index(state.selected) if state.selected in ids else 0
    start = min(max(0, at - LIST_ROWS + 1), len(objects) - LIST_ROWS)
    return objects[start:start + LIST_ROWS], start


def _draw_panel(draw: ImageDraw.ImageDraw, view: WidgetView, x: int, y: int) -> int:
    """The side panel: 'objects', the list, the label box, rename / delete. Returns its height."""
    state = view.state
    _draw_text(draw, (x + 2, y + 10), "objects", font(FONT_SIZE, "bold"), TEXT)
    top = y + 22
    list_h = LIST_ROWS * ROW_HEIGHT + 4
    draw.rectangle([x, top, x + PANEL_WIDTH - 1, top + list_h - 1], outline=BORDER, fill=BACKGROUND)
    rows, start = _object_rows(state)
    for i, obj in enumerate(rows):
        ry = top + 2 + i * ROW_HEIGHT
        selected = obj.id == state.selected
        if selected:
            draw.rectangle([x + 1, ry, x + PANEL_WIDTH - 2, ry + ROW_HEIGHT - 1], fill=SELECTED_ROW)
        draw.rectangle([x + 5, ry + 4, x + 16, ry + ROW_HEIGHT - 5], fill=tuple(obj.color),
                       outline=(255, 255, 255) if selected else (90, 90, 90))
        head, tail = f"{obj.id}: ", f" · {obj.area} px · IoU {obj.score:.2f}"  # a long label is cut, not these
        room = max(40.0, PANEL_WIDTH - 28 - _width(head + tail, font()))
        text = head + _fit(obj.label, font(), room) + tail
        _draw_text(draw, (x + 22, ry + ROW_HEIGHT / 2), _fit(text, font(), PANEL_WIDTH - 28), font(),
                   (255, 255, 255) if selected else TEXT)
    if not state.objects:
        _draw_text(draw, (x + 8, top + 2 + ROW_HEIGHT / 2), "none yet: click, then 'new object'", font(), MUTED)
    if len(rows) < len(state.objects):  # the list scrolls in the widget
        _draw_text(draw, (x + PANEL_WIDTH - 2, y + 10), f"{start + 1}-{start + len(rows)} of {len(state.objects)}",
                   font(NOTE_FONT_SIZE), MUTED, "rm")
    box_y = top + list_h + GAP
    draw.rectangle([x, box_y, x + PANEL_WIDTH - 1, box_y + BUTTON_HEIGHT - 1], outline=BORDER, fill=BACKGROUND)
    if view.label_text:
        _draw_text(draw, (x + 6, box_y + BUTTON_HEIGHT / 2), _fit(view.label_text, font(), PANEL_WIDTH - 12),
                   font(), TEXT)
    else:
        _draw_text(draw, (x + 6, box_y + BUTTON_HEIGHT / 2), "label of the selected object", font(), MUTED)
    buttons_y = box_y + BUTTON_HEIGHT + GAP
    bx = x
    for button in (_Button("rename", "tag"), _Button("delete", "trash")):
        bx += button.draw(draw, bx, buttons_y) + GAP
    return buttons_y + BUTTON_HEIGHT - y


def _panel_height() -> int:
    return 22 + LIST_ROWS * ROW_HEIGHT + 4 + GAP + BUTTON_HEIGHT + GAP + BUTTON_HEIGHT


def _status_lines(status: str, error: str | None, width: float) -> list[list[tuple[str, Any, tuple]]]:
    """The status (and the error in red, as in the widget) word-wrapped to width: lines of (text, font, colour)."""
    regular, bold = font(STATUS_FONT_SIZE, "mono"), font(STATUS_FONT_SIZE, "mono-bold")
    words = [(w, regular, TEXT) for w in status.split()]
    if error:
        words += [("·", regular, TEXT), ("error:", bold, ERROR)] + [(w, regular, ERROR) for w in error.split()]
    lines: list[list[tuple[str, Any, tuple]]] = [[]]
    used = 0.0
    space = _width(" ", regular)
    for word, fnt, color in words:
        w = _width(word, fnt)
        if lines[-1] and used + space + w > width:
            lines.append([])
            used = 0.0
        if not lines[-1] and w > width:  # a single word longer than the line
            word, w = _fit(word, fnt, width), width
        lines[-1].append((word, fnt, color))
        used += (space if len(lines[-1]) > 1 else 0) + w
    if len(lines) > MAX_STATUS_LINES:
        lines = lines[:MAX_STATUS_LINES]
        lines[-1].append(("...", regular, lines[-1][-1][2]))
    return lines


def _layout(view: WidgetView) -> tuple[int, dict[str, tuple[int, int, int, int]]]:
    """Width of the picture and the boxes of its parts (without the status's height, known later)."""
    buttons = _toolbar(view)
    toolbar_w = sum(b.size() for b in buttons) + GAP * (len(buttons) - 1)
    image_w, image_h = view.grid.width, view.grid.height
    thumb_w, thumb_h = view.thumb_grid.width, view.thumb_grid.height
    candidates_w = 3 * thumb_w + 2 * GAP
    width = MARGIN * 2 + max(toolbar_w, image_w + 2 * GAP + PANEL_WIDTH, candidates_w)
    y = MARGIN
    regions = {"toolbar": (MARGIN, y, MARGIN + toolbar_w, y + BUTTON_HEIGHT)}
    y += BUTTON_HEIGHT + 2 * GAP
    main_h = max(image_h, _panel_height())
    regions["image"] = (MARGIN, y, MARGIN + image_w, y + image_h)
    panel_x = MARGIN + image_w + 2 * GAP
    regions["objects"] = (panel_x, y, panel_x + PANEL_WIDTH, y + _panel_height())
    y += main_h + 2 * GAP
    regions["candidates"] = (MARGIN, y, MARGIN + candidates_w, y + thumb_h + GAP + BUTTON_HEIGHT)
    y = regions["candidates"][3] + 2 * GAP
    regions["status"] = (MARGIN, y, width - MARGIN, y)  # height filled in by render_view
    return width, regions


def render_view(view: WidgetView) -> Snapshot:
    """Draw the widget as it looks in view: a :class:`Snapshot` (pixels and the regions of the parts)."""
    width, regions = _layout(view)
    x0, y0, x1, _ = regions["status"]
    lines = _status_lines(view.status, view.error, x1 - x0)
    status_bottom = y0 + len(lines) * STATUS_LINE_HEIGHT
    regions["status"] = (x0, y0, x1, status_bottom)
    height = status_bottom + GAP + 16 + MARGIN  # + the grey note

    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)

    # the toolbar
    x, y = regions["toolbar"][:2]
    for button in _toolbar(view):
        x += button.draw(draw, x, y) + GAP

    # the image with the masks (exactly the canvas's two lower layers) and the prompts above them
    ix, iy = regions["image"][:2]
    picture = render.blend(view.picture, render.overlay(view.state, view.grid))
    canvas.paste(Image.fromarray(picture), (ix, iy))
    _draw_prompts(draw, view, ix, iy)

    # the side panel
    _draw_panel(draw, view, *regions["objects"][:2])

    # SAM's three candidates after a single click (empty frames otherwise: the widget hides the row then)
    cx, cy = regions["candidates"][:2]
    tw, th = view.thumb_grid.width, view.thumb_grid.height
    prediction = view.state.edit.prediction
    ambiguous = prediction is not None and prediction.is_ambiguous
    for k in range(3):
        x = cx + k * (tw + GAP)
        if ambiguous:
            assert prediction is not None  # ambiguous implies a prediction
            thumb = render.candidate_picture(view.thumb_picture, prediction.masks[k], view.thumb_grid)
            canvas.paste(Image.fromarray(thumb), (x, cy))
            chosen = k == prediction.chosen
            if chosen:
                draw.rectangle([x - 1, cy - 1, x + tw, cy + th], outline=INFO, width=2)
            button = _Button(f"mask {k + 1} · IoU {prediction.scores[k]:.2f}", width=tw,
                             fill=INFO if chosen else BUTTON, color=(255, 255, 255) if chosen else TEXT)
        else:
            draw.rectangle([x, cy, x + tw - 1, cy + th - 1], fill=PLACEHOLDER, outline=(225, 225, 225))
            button = _Button(f"mask {k + 1}", width=tw, fill=PLACEHOLDER, color=MUTED)
        button.draw(draw, x, cy + th + GAP)
    if not ambiguous:
        hint = "a single click shows SAM's three masks here" if prediction is None \
            else "one mask: SAM proposes three after a single click"
        _draw_text(draw, (cx + (3 * tw + 2 * GAP) / 2, cy + th / 2),
                   _fit(hint, font(NOTE_FONT_SIZE), 3 * tw), font(NOTE_FONT_SIZE), MUTED, "mm")

    # the status line, and the error in red
    for i, line in enumerate(lines):
        x, y = x0, y0 + i * STATUS_LINE_HEIGHT + STATUS_LINE_HEIGHT / 2
        runs: list[tuple[str, Any, tuple]] = []  # words of one font and colour drawn at once
        for word, fnt, color in line:
            if runs and runs[-1][1:] == (fnt, color):
                runs[-1] = (f"{runs[-1][0]} {word}", fnt, color)
            else:
                runs.append((word, fnt, color))
        for text, fnt, color in runs:
            _draw_text(draw, (x, y), text, fnt, color)
            x += _width(text + " ", fnt)

    _draw_text(draw, (width - MARGIN, height - MARGIN - 8), NOTE, font(NOTE_FONT_SIZE), (170, 170, 170), "rm")
    return Snapshot(np.asarray(canvas), regions)


def widget_snapshot(canvas: Any) -> Snapshot:
    """The snapshot of a :class:`~samwidgets.widget.canvas.SamCanvas` as it is now (reads it, changes nothing)."""
    return render_view(canvas.widget_view())


__all__: Sequence[str] = ("Snapshot", "WidgetView", "render_view", "widget_snapshot")
