"""Pixels for the canvas layers and thumbnails: images and masks resampled for the display.

The canvas shows the image through a :class:`View` (zoom and pan over the
fit-to-width :class:`DisplayGrid`). Masks travel to the browser small: a
:class:`Patch` holds only the masks' bounding box, at most at image
resolution, and the browser scales it up (nearest neighbour) to the display.
A click's mask on a 256 px image shown at 512 px is then a patch of about
its own size, a millisecond to encode, instead of a 512 x 512 layer.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .state import ImageState, mask_bbox

EDIT_COLOR = (30, 144, 255)
#: The prompts, as the canvas draws them and its snapshot copies them: clicks (and the box) green, negative
#: clicks red, boxes waiting for Enter gold, rings white.
PROMPT_POSITIVE = (50, 205, 50)
PROMPT_NEGATIVE = (255, 48, 48)
PENDING_BOX = (255, 215, 0)
RING = (255, 255, 255)


def css_color(rgb: tuple[int, int, int]) -> str:
    """An RGB triple as the canvas's stroke and fill styles take it: "#rrggbb"."""
    return "#{:02x}{:02x}{:02x}".format(*rgb)
FILL_ALPHA = 100
SELECTED_ALPHA = 160
EDGE_ALPHA = 255
#: The hover preview: fainter than the mask being edited, with a softer outline.
PREVIEW_FILL_ALPHA = 70
PREVIEW_EDGE_ALPHA = 170


class DisplayGrid:
    """Maps an H x W image onto a display of width ``display_width`` (aspect kept)."""

    def __init__(self, image_hw: tuple[int, int], display_width: int) -> None:
        h, w = image_hw
        self.image_hw = (int(h), int(w))
        self.width = int(display_width)
        self.scale = self.width / w  # display pixels per image pixel
        self.height = max(1, round(h * self.scale))
        self._rows = np.minimum(((np.arange(self.height) + 0.5) / self.scale).astype(np.int64), h - 1)
        self._cols = np.minimum(((np.arange(self.width) + 0.5) / self.scale).astype(np.int64), w - 1)

    def to_image(self, x: float, y: float) -> tuple[float, float]:
        """Display coordinates -> image pixel coordinates (clamped to the image)."""
        h, w = self.image_hw
        return (min(max(x / self.scale, 0.0), float(w)), min(max(y / self.scale, 0.0), float(h)))

    def to_display(self, x: float, y: float) -> tuple[float, float]:
        return (x * self.scale, y * self.scale)

    def sample(self, array: np.ndarray) -> np.ndarray:
        """H x W (x C) array -> display-size array, nearest neighbour."""
        return array[self._rows][:, self._cols]

    def image(self, rgb: np.ndarray) -> np.ndarray:
        """The image at display size (bilinear through Pillow, nicer than nearest for photos)."""
        return np.asarray(Image.fromarray(rgb).resize((self.width, self.height), Image.Resampling.BILINEAR))


class View:
    """The part of the image the canvas shows: zoom and pan on top of the fit-to-width grid.

    The canvas keeps the fit's size (``width`` x ``height`` display pixels); ``zoom`` (1 = the whole image)
    enlarges the image about a point and ``origin`` is the image point at the canvas's top-left corner.
    Prompts are always stored in image pixels: :meth:`to_image` and :meth:`to_display` convert at any zoom.
    """

    MAX_ZOOM = 16.0

    def __init__(self, image_hw: tuple[int, int], display_width: int) -> None:
        self.fit = DisplayGrid(image_hw, display_width)
        self.image_hw = self.fit.image_hw
        self.width, self.height = self.fit.width, self.fit.height
        self.zoom = 1.0
        self.origin = (0.0, 0.0)  # image (x, y) at the canvas's top-left corner

    @property
    def scale(self) -> float:
        """Display pixels per image pixel."""
        return self.fit.scale * self.zoom

    @property
    def key(self) -> tuple[float, float, float, int, int]:
        """Equal for two views that show the same pixels (a layer drawn for one is right for the other)."""
        return (self.zoom, *self.origin, self.width, self.height)

    def to_image(self, x: float, y: float) -> tuple[float, float]:
        """Display coordinates -> image pixel coordinates (clamped to the image)."""
        h, w = self.image_hw
        ix, iy = self.origin[0] + x / self.scale, self.origin[1] + y / self.scale
        return (min(max(ix, 0.0), float(w)), min(max(iy, 0.0), float(h)))

    def contains(self, x: float, y: float) -> bool:
        """Whether display point (x, y) shows a pixel of the image (not the margin beyond it)."""
        h, w = self.image_hw
        ix, iy = self.origin[0] + x / self.scale, self.origin[1] + y / self.scale
        return 0 <= x < self.width and 0 <= y < self.height and 0 <= ix < w and 0 <= iy < h

    def to_display(self, x: float, y: float) -> tuple[float, float]:
        """Image pixel coordinates -> display coordinates (outside the canvas when not in view)."""
        return ((x - self.origin[0]) * self.scale, (y - self.origin[1]) * self.scale)

    def visible(self) -> tuple[float, float, float, float]:
        """The image region in view, XYXY image pixels."""
        h, w = self.image_hw
        x0, y0 = self.origin
        return (x0, y0, min(float(w), x0 + self.width / self.scale), min(float(h), y0 + self.height / self.scale))

    def zoom_at(self, factor: float, x: float, y: float) -> None:
        """Zoom by ``factor`` (clamped to 1..MAX_ZOOM) keeping the image point under display (x, y) in place."""
        ix, iy = self.origin[0] + x / self.scale, self.origin[1] + y / self.scale
        self.zoom = min(max(self.zoom * factor, 1.0), self.MAX_ZOOM)
        self.origin = (ix - x / self.scale, iy - y / self.scale)
        self._clamp()

    def pan(self, dx: float, dy: float) -> None:
        """Move the image by (dx, dy) display pixels (as a hand dragging it would), within the image."""
        self.origin = (self.origin[0] - dx / self.scale, self.origin[1] - dy / self.scale)
        self._clamp()

    def reset(self) -> None:
        """Back to the whole image."""
        self.zoom, self.origin = 1.0, (0.0, 0.0)

    def _clamp(self) -> None:
        h, w = self.image_hw
        x0 = min(max(self.origin[0], 0.0), max(0.0, w - self.width / self.scale))
        y0 = min(max(self.origin[1], 0.0), max(0.0, h - self.height / self.scale))
        self.origin = (x0, y0)

    def image(self, rgb: np.ndarray) -> np.ndarray:
        """The region in view at display size: bilinear while an image pixel is smaller than two display
        pixels (the fit view is exactly ``DisplayGrid.image``), nearest beyond (pixels show as squares)."""
        if self.zoom == 1.0:
            return self.fit.image(rgb)
        x0, y0 = self.origin
        box = (x0, y0, x0 + self.width / self.scale, y0 + self.height / self.scale)
        resample = Image.Resampling.NEAREST if self.scale >= 2 else Image.Resampling.BILINEAR
        return np.asarray(Image.fromarray(rgb).resize((self.width, self.height), resample, box=box))


@dataclass(frozen=True)
class MaskStyle:
    """One mask to draw on a layer: its pixels, colour, fill alpha and outline alpha (None: no outline)."""

    mask: np.ndarray  # H x W bool
    color: tuple[int, int, int]
    fill_alpha: int
    edge_alpha: int | None = None
    bbox: tuple[int, int, int, int] | None = None  # mask_bbox(mask) when known (None: computed)


@dataclass(frozen=True)
class Patch:
    """RGBA pixels of a layer's masks, cropped to their bounding box at (at most) image resolution.

    The browser draws ``rgba`` with its top-left corner at display (x, y), each pixel ``sx`` x ``sy`` display
    pixels large (nearest neighbour).
    """

    rgba: np.ndarray  # h x w x 4 uint8
    x: float
    y: float
    sx: float
    sy: float


def mask_patch(styles: Sequence[MaskStyle], view: View) -> Patch | None:
    """The masks of ``styles`` (drawn in order, later ones on top) as one small :class:`Patch`, or None when no
    mask pixel is in view.

    The patch covers the masks' bounding box (one pixel more for the outline) within the region in view, at
    image resolution when the display enlarges the image and at display resolution when it shrinks it: what
    goes to the browser is never larger than what it shows, nor than the image.
    """
    h, w = view.image_hw
    boxes = [s.bbox if s.bbox is not None else mask_bbox(s.mask) for s in styles]
    boxes = [b for b in boxes if b is not None]
    if not boxes:
        return None
    vx0, vy0, vx1, vy1 = view.visible()
    x0 = max(min(b[0] for b in boxes) - 1, 0, math.floor(vx0))
    y0 = max(min(b[1] for b in boxes) - 1, 0, math.floor(vy0))
    x1 = min(max(b[2] for b in boxes) + 1, w, math.ceil(vx1))
    y1 = min(max(b[3] for b in boxes) + 1, h, math.ceil(vy1))
    if x0 >= x1 or y0 >= y1:
        return None
    f = min(1.0, view.scale)  # patch pixels per image pixel
    rows = _samples(y0, y1, f)
    cols = _samples(x0, x1, f)
    rgba = np.zeros((len(rows), len(cols), 4), dtype=np.uint8)
    for style in styles:
        m = style.mask[np.ix_(rows, cols)]
        rgba[m] = (*style.color, style.fill_alpha)
        if style.edge_alpha is not None:
            rgba[edges(m)] = (*style.color, style.edge_alpha)
    x, y = view.to_display(x0, y0)
    return Patch(rgba, x, y, sx=(x1 - x0) * view.scale / len(cols), sy=(y1 - y0) * view.scale / len(rows))


def _samples(start: int, stop: int, f: float) -> np.ndarray:
    """Pixel indices in [start, stop) sampled at ``f`` samples per pixel (f <= 1), nearest neighbour."""
    if f >= 1.0:
        return np.arange(start, stop)
    n = max(1, round((stop - start) * f))
    return np.minimum(start + ((np.arange(n) + 0.5) * (stop - start) / n).astype(np.int64), stop - 1)


def edges(mask: np.ndarray) -> np.ndarray:
    """Pixels of mask with a 4-neighbour outside it."""
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return mask & ~inner


def overlay(state: ImageState, grid: DisplayGrid, show_edit: bool = True) -> np.ndarray:
    """The mask layer: committed objects in their colours, the edited mask on top with its outline.

    Returns display-size RGBA uint8 (transparent where there is no mask).
    """
    rgba = np.zeros((grid.height, grid.width, 4), dtype=np.uint8)
    for obj in state.objects:
        m = grid.sample(obj.mask)
        alpha = SELECTED_ALPHA if obj.id == state.selected else FILL_ALPHA
        rgba[m] = (*obj.color, alpha)
        if obj.id == state.selected:
            rgba[edges(m)] = (*obj.color, EDGE_ALPHA)
    prediction = state.edit.prediction
    if show_edit and prediction is not None:
        m = grid.sample(prediction.mask)
        rgba[m] = (*EDIT_COLOR, FILL_ALPHA + 20)
        rgba[edges(m)] = (*EDIT_COLOR, EDGE_ALPHA)
    return rgba


def blend(rgb: np.ndarray, rgba: np.ndarray) -> np.ndarray:
    """Alpha-composite an RGBA layer over an RGB image of the same size."""
    a = rgba[..., 3:4].astype(np.float32) / 255
    return (rgb.astype(np.float32) * (1 - a) + rgba[..., :3].astype(np.float32) * a).astype(np.uint8)


def png_bytes(array: np.ndarray, compress_level: int = 6) -> bytes:
    """An RGB(A) uint8 array as PNG bytes (compress_level 1 for pictures sent to the browser at every click:
    about three times faster to write, a little larger)."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def candidate_picture(thumb_rgb: np.ndarray, mask: np.ndarray, thumb_grid: DisplayGrid) -> np.ndarray:
    """One candidate mask over the image, both at thumbnail size (thumb_grid): RGB uint8."""
    rgba = np.zeros((thumb_grid.height, thumb_grid.width, 4), dtype=np.uint8)
    m = thumb_grid.sample(mask)
    rgba[m] = (*EDIT_COLOR, 140)
    rgba[edges(m)] = (*EDIT_COLOR, 255)
    return blend(thumb_rgb, rgba)


def candidate_thumbnail(thumb_rgb: np.ndarray, mask: np.ndarray, thumb_grid: DisplayGrid) -> bytes:
    """PNG of one candidate mask over the image, both at thumbnail size (thumb_grid)."""
    return png_bytes(candidate_picture(thumb_rgb, mask, thumb_grid), compress_level=1)


def static_figure(rgb: np.ndarray, state: ImageState, title: str = ""):
    """A matplotlib figure of the image with its objects, prompts and the edited mask.

    The fallback where widgets cannot render (a static notebook viewer, an
    exported HTML page): the same picture, without interaction.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    grid = DisplayGrid(rgb.shape[:2], rgb.shape[1])
    width = 9.5 if grid.width >= grid.height else 7.0  # inches: at 100 dpi, large enough to project
    fig, ax = plt.subplots(figsize=(width, width * grid.height / grid.width), layout="constrained")
    ax.imshow(blend(rgb, overlay(state, grid)))
    prompt = state.edit.prompt
    for (x, y), label in zip(prompt.points, prompt.labels):
        ax.scatter([x], [y], marker="*", s=220, c="lime" if label else "red", edgecolors="white", linewidths=1.2)
    if prompt.box is not None:
        x0, y0, x1, y1 = prompt.box
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="lime", lw=2))
    for obj in state.objects:
        ys, xs = np.nonzero(obj.mask)
        if len(xs):
            ax.text(xs.mean(), ys.mean(), obj.label, color="white", fontsize=9, ha="center", va="center",
                    bbox=dict(facecolor=np.array(obj.color) / 255, alpha=0.8, pad=1.5, lw=0))
    ax.set_title(title, fontsize=10)
    ax.axis("off")
    return fig
