"""The paper's simulated clicks (section 7.1, appendix D.1) and the click protocol built on them.

The first click goes to the mask's "centre" (the maximum of the interior distance transform);
each further click to the point farthest from the boundary of the error region, positive where
the model missed the object, negative where it spilled over. Used by every evaluation
(procedural scenes, BSDS500 photos, text prompts) and by the data engine's simulated annotator.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..data.masks import mask_iou
from ..inference.predictor import SamPredictor

#: The numbers of clicks after which mIoU is reported.
POINT_COUNTS = (1, 2, 3, 5, 9)


def _distance_inside(mask: np.ndarray) -> np.ndarray:
    """H x W: each pixel's distance to the nearest pixel outside the mask (the image border counts as outside)."""
    dist = ndimage.distance_transform_edt(np.pad(mask, 1))
    assert isinstance(dist, np.ndarray)  # distances only: no indices were asked for
    return dist[1:-1, 1:-1]


def interior_centre(mask: np.ndarray) -> tuple[float, float]:
    """(x, y) of the pixel farthest from the mask's boundary (the image border counts as boundary)."""
    dist = _distance_inside(mask)
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(x), float(y)


def next_click(pred: np.ndarray, target: np.ndarray) -> tuple[float, float, int] | None:
    """The next simulated click: farthest from the error region's boundary, labelled by error type.

    Returns (x, y, label) or None when the prediction is perfect.
    """
    false_neg, false_pos = target & ~pred, pred & ~target
    if not (false_neg.any() or false_pos.any()):
        return None
    dist_fn = _distance_inside(false_neg)
    dist_fp = _distance_inside(false_pos)
    positive = dist_fn.max() >= dist_fp.max()
    dist = dist_fn if positive else dist_fp
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(x), float(y), int(positive)


def click_protocol(predictor: SamPredictor, target: np.ndarray, max_points: int,
                   first: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> tuple[list[float], list[float]]:
    """IoU after each click (confident, oracle) for one mask.

    first: the predictor's (masks, scores, low_res) for the first click alone (a positive point at
    ``interior_centre(target)``, ``multimask_output=True``) when the caller already has it (the
    BSDS evaluation scores those outputs too); computed here when None.
    """
    x, y = interior_centre(target)
    coords, labels = [[x, y]], [1]
    confident, oracle = [], []
    if first is None:
        first = predictor.predict(np.array(coords), np.array(labels), multimask_output=True)
    masks, scores, low_res = first  # 3 x H x W bool, 3, 3 x S x S
    ious = [mask_iou(m, target) for m in masks]
    best = int(np.argmax(scores))
    confident.append(ious[best])
    oracle.append(max(ious))
    chosen, prompt = masks[best], low_res[best][None]
    for _ in range(1, max_points):
        click = next_click(chosen, target)
        if click is not None:
            coords.append([click[0], click[1]])
            labels.append(click[2])
        single, _, single_low = predictor.predict(np.array(coords), np.array(labels), mask_input=prompt,
                                                  multimask_output=False)
        multi, _, _ = predictor.predict(np.array(coords), np.array(labels), mask_input=prompt,
                                        multimask_output=True)
        single_iou = mask_iou(single[0], target)
        confident.append(single_iou)
        oracle.append(max([single_iou] + [mask_iou(m, target) for m in multi]))
        chosen, prompt = single[0], single_low
    return confident, oracle
