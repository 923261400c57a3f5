"""Pixels for the canvas layers and thumbnails: images and masks resampled to the display size.

Masks are drawn at display resolution (nearest neighbour through index
arrays computed once per image), so a redraw costs a few milliseconds even
for a large photo.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from .state import ImageState

EDIT_COLOR = (30, 144, 255)
FILL_ALPHA = 100
SELECTED_ALPHA = 160
EDGE_ALPHA = 255


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
        return np.asarray(Image.fromarray(rgb).resize((self.width, self.height), Image.BILINEAR))


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


def png_bytes(array: np.ndarray) -> bytes:
    """An RGB(A) uint8 array as PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
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
    return png_bytes(candidate_picture(thumb_rgb, mask, thumb_grid))


def static_figure(rgb: np.ndarray, state: ImageState, title: str = ""):
    """A matplotlib figure of the image with its objects, prompts and the edited mask.

    The fallback where widgets cannot render (a static notebook viewer, an
    exported HTML page): the same picture, without interaction.
    """
    import matplotlib.pyplot as plt

    grid = DisplayGrid(rgb.shape[:2], rgb.shape[1])
    width = 9.5 if grid.width >= grid.height else 7.0  # inches: at 100 dpi, large enough to project
    fig, ax = plt.subplots(figsize=(width, width * grid.height / grid.width), layout="constrained")
    ax.imshow(blend(rgb, overlay(state, grid)))
    prompt = state.edit.prompt
    for (x, y), label in zip(prompt.points, prompt.labels):
        ax.scatter([x], [y], marker="*", s=220, c="lime" if label else "red", edgecolors="white", linewidths=1.2)
    if prompt.box is not None:
        x0, y0, x1, y1 = prompt.box
        ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="lime", lw=2))
    for obj in state.objects:
        ys, xs = np.nonzero(obj.mask)
        if len(xs):
            ax.text(xs.mean(), ys.mean(), obj.label, color="white", fontsize=9, ha="center", va="center",
                    bbox=dict(facecolor=np.array(obj.color) / 255, alpha=0.8, pad=1.5, lw=0))
    ax.set_title(title, fontsize=10)
    ax.axis("off")
    return fig
