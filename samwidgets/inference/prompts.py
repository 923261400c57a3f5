"""Validation of prompts given to :class:`~samwidgets.inference.predictor.SamPredictor`.

Every check raises ValueError naming what was received and what is expected,
so a wrong prompt never surfaces as an obscure shape error deep in the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import UserInputError


def _as_float_array(x: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise UserInputError(f"{name} must be numeric, got {type(x).__name__} ({e})") from None
    if not np.isfinite(arr).all():
        raise UserInputError(f"{name} contains NaN or infinite values")
    return arr


def check_points(point_coords: Any, point_labels: Any, image_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Validate N x 2 (x, y) pixel coordinates inside an image of (H, W) and N labels in {0, 1}.

    Returns float64 N x 2 coordinates and int64 N labels.
    """
    if point_labels is None:
        raise UserInputError("point_labels must be given with point_coords (1 = foreground, 0 = background)")
    coords = _as_float_array(point_coords, "point_coords")
    if coords.ndim == 1 and coords.shape == (2,):
        coords = coords[None]
    if coords.ndim != 2 or coords.shape[1] != 2 or coords.shape[0] == 0:
        raise UserInputError(f"point_coords must have shape N x 2 with N >= 1 (x, y in pixels), got {coords.shape}")
    labels = _as_float_array(point_labels, "point_labels").reshape(-1) if np.ndim(point_labels) <= 1 else None
    if labels is None or labels.shape[0] != coords.shape[0]:
        shape = np.shape(point_labels)
        raise UserInputError(f"point_labels must have shape ({coords.shape[0]},), one label per point, got {shape}")
    if not np.isin(labels, (0, 1)).all():
        raise UserInputError(f"point_labels must be 1 (foreground) or 0 (background), got {np.unique(labels).tolist()}")
    h, w = image_hw
    outside = (coords[:, 0] < 0) | (coords[:, 0] > w) | (coords[:, 1] < 0) | (coords[:, 1] > h)
    if outside.any():
        x, y = coords[np.argmax(outside)]
        raise UserInputError(
            f"point ({x:g}, {y:g}) lies outside the image of width {w} and height {h}; "
            "point_coords are (x, y) pixel coordinates of the original image, x in [0, W], y in [0, H]"
        )
    return coords, labels.astype(np.int64)


def check_box(box: Any, image_hw: tuple[int, int]) -> np.ndarray:
    """Validate one XYXY box (shape 4 or 1 x 4) inside an image of (H, W). Returns a 1 x 4 float64 array."""
    arr = _as_float_array(box, "box")
    if arr.size != 4 or arr.ndim > 2:
        raise UserInputError(
            f"box must be one XYXY box of shape (4,) or (1, 4), got shape {arr.shape}; "
            "for several boxes use predict_torch with a B x 4 tensor"
        )
    arr = arr.reshape(1, 4)
    x0, y0, x1, y1 = arr[0]
    if not (x0 < x1 and y0 < y1):
        raise UserInputError(f"box must be [x0, y0, x1, y1] with x0 < x1 and y0 < y1, got {arr[0].tolist()}")
    h, w = image_hw
    if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
        raise UserInputError(
            f"box {arr[0].tolist()} reaches outside the image of width {w} and height {h}; "
            "clip it first, e.g. np.clip(box, 0, [W, H, W, H])"
        )
    return arr


def check_mask_input(mask_input: Any, size: int) -> np.ndarray:
    """Validate a low-res mask prompt of shape 1 x S x S (or S x S). Returns float32 1 x S x S."""
    arr = _as_float_array(mask_input, "mask_input")
    if arr.shape == (size, size):
        arr = arr[None]
    if arr.shape != (1, size, size):
        raise UserInputError(
            f"mask_input must have shape 1 x {size} x {size} (the low_res_logits of an earlier predict), "
            f"got {arr.shape}"
        )
    return arr.astype(np.float32)
