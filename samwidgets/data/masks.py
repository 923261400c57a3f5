"""Two small facts about binary masks that evaluation, data sets and checks all need: the IoU of two
masks and a mask's tight box. One definition each, so every number in the kit means the same."""

from __future__ import annotations

import numpy as np

__all__ = ["mask_iou", "tight_box"]


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two H x W bool masks; 1.0 when both are empty (they agree)."""
    union = np.count_nonzero(np.logical_or(a, b))
    return 1.0 if union == 0 else np.count_nonzero(np.logical_and(a, b)) / union


def tight_box(mask: np.ndarray) -> np.ndarray:
    """The tight box of a non-empty H x W bool mask as XYXY floats (x0, y0, x1 + 1, y1 + 1): the box
    prompt, in pixel edges as SAM's boxes are."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise ValueError("an empty mask has no box")
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=float)
