"""Crops of masked objects, as SAM's text-prompt training takes them (paper, appendix D.5).

Each mask's bounding box is squared and expanded by a random factor in
[1, 2] (context around the object), and half of the time the pixels outside
the mask are zeroed (the object alone). The same function makes the crops on
which the tiny CLIP pair is trained and the crops whose embeddings prompt SAM
during training, so both see one distribution.

A crop is cut as an integer window (zeros beyond the image) and resized by
Pillow, which low-pass filters when it shrinks, so the stripes and checks of
a large object do not alias. Per crop this is a fraction of a millisecond,
several times faster than sampling whole images with ``grid_sample``.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ..training.simulation import mask_boxes

#: The paper's range of box expansion.
EXPAND_RANGE = (1.0, 2.0)
#: Fraction of crops whose pixels outside the mask are zeroed, as in the paper.
MASK_OUT_PROB = 0.5


def mask_box(mask: np.ndarray) -> np.ndarray:
    """H x W bool -> XYXY box in pixel edges (x1 = last column + 1), float32; zeros for an empty mask."""
    return mask_boxes(torch.from_numpy(np.ascontiguousarray(mask, dtype=bool))[None])[0].numpy()


def square_window(box: np.ndarray, expand: float) -> tuple[int, int, int]:
    """(x0, y0, side) of the integer square on the box's centre, side = longer side x expand."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    side = max(int(round(max(box[2] - box[0], box[3] - box[1], 1.0) * expand)), 1)
    return int(round(cx - side / 2)), int(round(cy - side / 2)), side


def crop_object(image: np.ndarray, mask: np.ndarray, size: int, expand: float = 1.5,
                zero_outside: bool = False) -> np.ndarray:
    """The square crop of one object: H x W x 3 uint8 image, H x W bool mask -> size x size x 3 uint8."""
    x0, y0, side = square_window(mask_box(mask), expand)
    h, w = mask.shape
    window = np.zeros((side, side, 3), np.uint8)  # zeros beyond the image
    ys, xs = slice(max(y0, 0), min(y0 + side, h)), slice(max(x0, 0), min(x0 + side, w))
    if ys.stop > ys.start and xs.stop > xs.start:
        part = image[ys, xs]
        if zero_outside:
            part = part * mask[ys, xs, None]
        window[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0] = part
    if side == size:
        return window
    return np.array(Image.fromarray(window).resize((size, size), Image.Resampling.BILINEAR))  # writable, as torch wants


def mask_crops(images: np.ndarray, masks: np.ndarray, image_index: np.ndarray, size: int, *,
               expand: float | tuple[float, float] = EXPAND_RANGE, mask_out: float = MASK_OUT_PROB,
               rng: np.random.Generator | None = None) -> torch.Tensor:
    """Crops of B masked objects, B x 3 x size x size float (0..255).

    images: Bi x H x W x 3 uint8; masks: B x H x W bool; image_index: B, the
    image of each mask. expand: a fixed factor or a (low, high) range drawn
    uniformly per crop; mask_out: probability of zeroing the pixels outside
    the mask (0 never, 1 always).
    """
    if masks.ndim != 3 or masks.shape[1:] != images.shape[1:3]:
        raise ValueError(f"masks must be B x {images.shape[1]} x {images.shape[2]}, got {tuple(masks.shape)}")
    rng = rng or np.random.default_rng(0)
    b = masks.shape[0]
    factors = rng.uniform(*expand, size=b) if isinstance(expand, tuple) else np.full(b, float(expand))
    zero = rng.random(b) < mask_out
    out = np.stack([crop_object(images[image_index[i]], masks[i], size, factors[i], bool(zero[i]))
                    for i in range(b)]) if b else np.zeros((0, size, size, 3), np.uint8)
    return torch.from_numpy(out).permute(0, 3, 1, 2).float()  # B x 3 x size x size
