"""Drawing prompts and masks on matplotlib axes, as the reference notebooks do (``show_mask``, ``show_points``...).

Kept in one place so every notebook draws the same way: a mask is a translucent colour, a positive click a
green star, a negative click a red star, a box a green rectangle, and the automatic generator's masks one
random colour each, largest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["show_anns", "show_box", "show_mask", "show_points"]

#: The reference notebooks' mask colour (dodger blue, 60% opaque).
MASK_RGBA = (30 / 255, 144 / 255, 1.0, 0.6)


def show_mask(mask: np.ndarray, ax: Any, color: Sequence[float] | None = None, random_color: bool = False,
              seed: int | None = None) -> None:
    """Draw an H x W bool mask on ``ax`` as a translucent colour (RGBA in [0, 1]; default blue)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"show_mask needs an H x W mask, got shape {mask.shape}")
    if random_color:
        rgba = (*np.random.default_rng(seed).random(3), 0.6)
    else:
        rgba = MASK_RGBA if color is None else tuple(color)
        if len(rgba) == 3:
            rgba = (*rgba, 0.6)
    picture = np.zeros((*mask.shape, 4), dtype=np.float32)  # H x W x 4
    picture[mask] = rgba
    ax.imshow(picture)


def show_points(coords: np.ndarray, labels: np.ndarray, ax: Any, marker_size: int = 375) -> None:
    """Draw N x 2 (x, y) points: label 1 as green stars (foreground), 0 as red stars (background)."""
    coords, labels = np.asarray(coords, dtype=float).reshape(-1, 2), np.asarray(labels).reshape(-1)
    if len(coords) != len(labels):
        raise ValueError(f"got {len(coords)} points but {len(labels)} labels")
    for value, colour in ((1, "green"), (0, "red")):
        chosen = coords[labels == value]
        ax.scatter(chosen[:, 0], chosen[:, 1], color=colour, marker="*", s=marker_size,
                   edgecolor="white", linewidth=1.25)


def show_box(box: Sequence[float], ax: Any, color: str = "green") -> None:
    """Draw an [x0, y0, x1, y1] box as an outlined rectangle."""
    import matplotlib.patches

    x0, y0, x1, y1 = (float(v) for v in box)
    ax.add_patch(matplotlib.patches.Rectangle((x0, y0), x1 - x0, y1 - y0, edgecolor=color,
                                              facecolor=(0, 0, 0, 0), lw=2))


def show_anns(anns: Sequence[dict], ax: Any, seed: int = 0, alpha: float = 0.35) -> None:
    """Draw the automatic generator's records (``"segmentation"`` H x W bool), largest first, one colour each."""
    if len(anns) == 0:
        return
    ordered = sorted(anns, key=lambda a: a["area"], reverse=True)
    first = np.asarray(ordered[0]["segmentation"])
    if first.ndim != 2:
        raise ValueError("show_anns needs output_mode='binary_mask' records (an H x W bool 'segmentation')")
    rng = np.random.default_rng(seed)
    picture = np.zeros((*first.shape, 4), dtype=np.float32)  # H x W x 4
    for ann in ordered:
        picture[np.asarray(ann["segmentation"], dtype=bool)] = (*rng.random(3), alpha)
    ax.imshow(picture)
