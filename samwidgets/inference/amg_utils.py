"""Building blocks of automatic mask generation: point grids, crops, scores, NMS, RLE, clean-up.

Each function does one step of :class:`samwidgets.SamAutomaticMaskGenerator`
and can be used (and tested) on its own. The conventions are those of the
reference ``segment_anything.utils.amg``, so the generator's numbers match it:

- points are (x, y) = (column, row);
- a mask's box is XYXY in *pixel indices*: (first column, first row, last
  column, last row), so a mask of one pixel at (3, 5) has the box (3, 5, 3, 5);
  an empty mask has the box (0, 0, 0, 0);
- a crop box is XYXY in *pixel edges*: (x0, y0, x1, y1) covers columns x0..x1-1;
- RLE is COCO's, through pycocotools: column-major runs starting with a run of
  zeros. "Compressed" RLE has ``counts`` as bytes (pycocotools) or str (JSON);
  "uncompressed" RLE has ``counts`` as a list of ints.

torchvision is deliberately not used: NMS is written here in a few lines of torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from itertools import product
from typing import Any, cast

import numpy as np
import torch

# The RLE step: in io/rle.py, which the annotation files (COCO, SA-1B) use too; the generator's callers find it here
from ..io.rle import (  # noqa: F401
    decode_rle,
    encode_rle,
    mask_to_rle_json,
    mask_to_uncompressed_rle,
    rle_area,
    rle_boxes,
    rle_to_json,
    to_pycocotools_rle,
)

# ----------------------------------------------------------------------------------------------
# point grids and crops
# ----------------------------------------------------------------------------------------------


def build_point_grid(n_per_side: int) -> np.ndarray:
    """An n x n grid of points in [0, 1] x [0, 1], at the centres of n x n equal cells.

    Returns (n * n) x 2 float64 (x, y), row by row (x varies fastest).
    """
    if n_per_side < 1:
        raise ValueError(f"a point grid needs at least 1 point per side, got {n_per_side}")
    half_cell = 1.0 / (2 * n_per_side)
    one_side = np.linspace(half_cell, 1.0 - half_cell, n_per_side)  # n
    xs, ys = np.meshgrid(one_side, one_side)  # n x n each, xs varies along columns
    return np.stack([xs, ys], axis=-1).reshape(-1, 2)  # (n * n) x 2


def build_all_layer_point_grids(n_per_side: int, n_layers: int, scale_per_layer: int) -> list[np.ndarray]:
    """One normalised point grid per crop layer (layer 0 is the whole image).

    Layer i has ``int(n_per_side / scale_per_layer**i)`` points per side, so
    the smaller crops of deeper layers can be sampled more sparsely.
    """
    return [build_point_grid(int(n_per_side / (scale_per_layer ** i))) for i in range(n_layers + 1)]


def generate_crop_boxes(image_size: tuple[int, int], n_layers: int,
                        overlap_ratio: float) -> tuple[list[list[int]], list[int]]:
    """Crop boxes (XYXY pixel edges) of every layer, and the layer of each.

    Layer 0 is the whole image; layer i >= 1 tiles the image with
    2**i x 2**i overlapping crops. Neighbouring crops of layer 1 overlap by
    ``overlap_ratio`` of the image's short side; deeper layers overlap
    proportionally less. Crops are listed column by column (x0 outer, y0 inner).
    """
    im_h, im_w = image_size
    short_side = min(im_h, im_w)
    boxes: list[list[int]] = [[0, 0, im_w, im_h]]
    layers: list[int] = [0]
    for layer in range(1, n_layers + 1):
        n_per_side = 2 ** layer
        overlap = int(overlap_ratio * short_side * (2 / n_per_side))
        crop_w = _crop_length(im_w, n_per_side, overlap)
        crop_h = _crop_length(im_h, n_per_side, overlap)
        x0s = [int((crop_w - overlap) * i) for i in range(n_per_side)]
        y0s = [int((crop_h - overlap) * i) for i in range(n_per_side)]
        for x0, y0 in product(x0s, y0s):
            boxes.append([x0, y0, min(x0 + crop_w, im_w), min(y0 + crop_h, im_h)])
            layers.append(layer)
    return boxes, layers


def _crop_length(full_length: int, n_crops: int, overlap: int) -> int:
    """Length of each of n_crops crops that tile full_length with the given overlap between neighbours."""
    return int(math.ceil((overlap * (n_crops - 1) + full_length) / n_crops))


def batch_slices(total: int, batch_size: int) -> Iterator[slice]:
    """Consecutive slices of at most batch_size covering range(total)."""
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    for start in range(0, total, batch_size):
        yield slice(start, min(start + batch_size, total))


# ----------------------------------------------------------------------------------------------
# mask quality
# ----------------------------------------------------------------------------------------------


def stability_score(logits: torch.Tensor, mask_threshold: float, offset: float) -> torch.Tensor:
    """IoU between the masks thresholded at ``mask_threshold + offset`` and ``mask_threshold - offset``.

    logits: ... x H x W -> ... (float32). The high-threshold mask lies inside
    the low-threshold one, so the IoU is a ratio of two pixel counts. A mask
    that is empty even at the low threshold scores 0.
    """
    inner = (logits > mask_threshold + offset).flatten(-2).sum(-1, dtype=torch.int32)  # ...
    outer = (logits > mask_threshold - offset).flatten(-2).sum(-1, dtype=torch.int32)  # ...
    return torch.where(outer > 0, inner.float() / outer.clamp(min=1).float(), torch.zeros((), device=logits.device))


# ----------------------------------------------------------------------------------------------
# boxes
# ----------------------------------------------------------------------------------------------


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Areas of XYXY boxes, (x1 - x0) * (y1 - y0): N x 4 -> N (float32)."""
    boxes = boxes.float()
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(box: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """IoU of one XYXY box (4) with each of N boxes (N x 4) -> N; 0 where the union is empty."""
    box, boxes = box.float(), boxes.float()
    top_left = torch.maximum(box[:2], boxes[:, :2])  # N x 2
    bottom_right = torch.minimum(box[2:], boxes[:, 2:])  # N x 2
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=1)  # N
    union = box_area(box[None])[0] + box_area(boxes) - inter  # N
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(torch.float32).tiny), torch.zeros_like(inter))


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression: indices of the kept boxes, best score first.

    boxes: N x 4 XYXY, scores: N. Boxes are visited from the highest score
    down (ties keep their input order); a box is dropped when its IoU with an
    already kept box exceeds ``iou_threshold``. Only one row of IoUs exists at
    a time, so memory stays O(N) however many boxes there are.
    """
    order = torch.sort(scores, descending=True, stable=True).indices  # N
    boxes = boxes[order]  # N x 4, best first
    suppressed = torch.zeros(len(order), dtype=torch.bool, device=boxes.device)  # N
    kept = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        kept.append(i)
        suppressed[i + 1:] |= box_iou(boxes[i], boxes[i + 1:]) > iou_threshold
    return order[torch.as_tensor(kept, dtype=torch.int64, device=order.device)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, categories: torch.Tensor,
                iou_threshold: float) -> torch.Tensor:
    """NMS within each category independently: indices of the kept boxes, best score first.

    boxes: N x 4 XYXY, scores: N, categories: N integers. Boxes of different
    categories never suppress one another: each category is moved to its own
    region of the plane (an offset larger than every coordinate) before one NMS.
    """
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    boxes = boxes.float()
    span = boxes.max() - boxes.min() + 1
    offsets = categories.to(boxes) * span  # N
    return nms(boxes + offsets[:, None], scores, iou_threshold)


def box_xyxy_to_xywh(box: list[int] | torch.Tensor | np.ndarray) -> list:
    """XYXY -> [x0, y0, x1 - x0, y1 - y0] as a list."""
    values = cast(Iterable[Any], box)  # Python numbers, numpy scalars or 0-d tensors
    x0, y0, x1, y1 = (v.item() if hasattr(v, "item") else v for v in values)
    return [x0, y0, x1 - x0, y1 - y0]


def is_box_near_crop_edge(boxes: torch.Tensor, crop_box: list[int], image_box: list[int],
                          atol: float = 20.0) -> torch.Tensor:
    """Which boxes (N x 4 XYXY, image frame) come within atol of an edge of the crop that is not an image edge.

    Such a mask was probably cut by the crop: a larger crop (or the whole
    image) sees the whole object. Returns N bool.
    """
    crop = torch.as_tensor(crop_box, dtype=torch.float, device=boxes.device)  # 4
    image = torch.as_tensor(image_box, dtype=torch.float, device=boxes.device)  # 4
    near_crop = torch.isclose(boxes.float(), crop[None], atol=atol, rtol=0)  # N x 4
    near_image = torch.isclose(boxes.float(), image[None], atol=atol, rtol=0)  # N x 4
    return (near_crop & ~near_image).any(dim=1)


def uncrop_points(points: torch.Tensor, crop_box: list[int]) -> torch.Tensor:
    """N x 2 (x, y) points in a crop's frame -> the image frame."""
    x0, y0 = crop_box[:2]
    return points + torch.tensor([x0, y0], dtype=points.dtype, device=points.device)


def uncrop_masks(masks: torch.Tensor, crop_box: list[int], image_h: int, image_w: int) -> torch.Tensor:
    """K x h x w masks of a crop -> K x H x W masks of the image, zero outside the crop."""
    x0, y0, x1, y1 = crop_box
    if (x0, y0, x1, y1) == (0, 0, image_w, image_h):
        return masks
    pad = (x0, image_w - x1, y0, image_h - y1)  # left, right, top, bottom
    return torch.nn.functional.pad(masks, pad, value=0)


# ----------------------------------------------------------------------------------------------
# clean-up of small regions
# ----------------------------------------------------------------------------------------------


def remove_small_regions(mask: np.ndarray, min_area: float, mode: str) -> tuple[np.ndarray, bool]:
    """Fill small holes or drop small islands of an H x W bool mask; returns (mask, changed).

    mode "holes": every connected region of the background (the pixels not
    in the mask, 8-connected) smaller than min_area is added to the mask;
    as in the reference, this includes background regions touching the image
    border. mode "islands": every connected region of the mask smaller than
    min_area is removed, except that the largest one stays when all are small.
    Uses scipy.ndimage (no OpenCV).
    """
    if mode not in ("holes", "islands"):
        raise ValueError(f"mode must be 'holes' or 'islands', got {mode!r}")
    ndimage = scipy_ndimage()
    mask = np.asarray(mask, dtype=bool)
    regions_of = ~mask if mode == "holes" else mask
    eight_connected = np.ones((3, 3), dtype=bool)
    # H x W int, 0 = not a region; (labels, n) as no output array is given (scipy's return type is not annotated)
    labels, n = cast(tuple[np.ndarray, int], ndimage.label(regions_of, structure=eight_connected))
    if n == 0:
        return mask, False
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]  # n: pixels of regions 1..n
    small = np.flatnonzero(sizes < min_area) + 1  # labels of the small regions
    if small.size == 0:
        return mask, False
    if mode == "holes":
        return mask | np.isin(labels, small), True
    large = np.flatnonzero(sizes >= min_area) + 1
    if large.size == 0:
        large = np.array([int(np.argmax(sizes)) + 1])
    return np.isin(labels, large), True


def scipy_ndimage():
    """scipy.ndimage, or an ImportError that says how to install it."""
    try:
        from scipy import ndimage
    except ImportError as e:
        raise ImportError(
            "removing small mask regions (min_mask_region_area > 0) needs scipy: "
            "`pip install scipy` (or `pip install samwidgets[train]`), or set min_mask_region_area=0"
        ) from e
    return ndimage
