"""Exercises of ``08_segment_everything.ipynb``: the stability score by hand, thresholds tuned for F1, an RLE
decoded by hand.

Each checker runs the student's answer (a function on the model's logits, generator settings on the
notebook's scenes, a decoder on the generator's records) and compares the outcome with what the generator
itself gives, or with its own baselines for the loaded model, so that the exercises hold for any model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ...inference.automatic_mask_generator import SamAutomaticMaskGenerator
from ...modeling import Sam
from . import not_answered, passed, require

__all__ = ["F1_GRID", "TUNABLE", "check_f1_thresholds", "check_rle_decoder", "check_stability_function",
           "f1_at_iou_half"]

#: Exercise 2 runs the generator with this grid (points per side) on the notebook's two scenes.
F1_GRID = 8
#: The generator settings that exercise 2 lets the student tune.
TUNABLE = ("pred_iou_thresh", "stability_score_thresh", "box_nms_thresh")


# ----------------------------------------------------------------------------------------------
# Exercise 1: the stability score by hand
# ----------------------------------------------------------------------------------------------


def record_logits(generator: SamAutomaticMaskGenerator, image: np.ndarray, record: dict[str, Any]) -> np.ndarray:
    """The low-res logits of the mask behind ``record``, over the part that covers the image (h x w float32).

    The record's point is decoded again (three masks); its mask is the one whose predicted IoU is the
    record's. The generator scores stability on the decoder's low-res logits, cut to the image (the rest of
    the square input is padding).
    """
    predictor = generator.predictor
    predictor.set_image(image)  # the generator resets its predictor after each image
    _, predicted, low_res = predictor.predict(np.array(record["point_coords"], dtype=np.float64), np.array([1]),
                                              multimask_output=True)  # 3, 3 x S x S
    which = int(np.argmin(np.abs(predicted - record["predicted_iou"])))
    size = low_res.shape[-1]
    full = predictor.model.image_encoder.img_size
    assert predictor.input_size is not None, "the image was set above"
    in_h, in_w = predictor.input_size
    return low_res[which, : -(-in_h * size // full), : -(-in_w * size // full)]  # h x w (ceil)


def check_stability_function(answer: Callable[[np.ndarray], float] | None, generator: SamAutomaticMaskGenerator,
                             image: np.ndarray, records: Sequence[dict[str, Any]]) -> bool:
    """Check a function that computes a mask's stability score from its logits, as the generator does.

    The checker decodes the point of each of the first three records again, gives the mask's low-res logits
    (h x w float32 numpy) to ``answer`` and compares the result with the record's ``stability_score``
    (within 0.002). Why: the stability score is the IoU of the mask cut at logit +1 and at logit -1; writing
    it shows why soft logits (a wide band between -1 and +1) make unstable masks.
    """
    if answer is None:
        return not_answered("a function stability(logits) -> float that gives a mask's stability score from its "
                            "logits (the IoU of the mask cut at logit +1 and at logit -1)")
    require(callable(answer), f"your answer {answer!r} is not a function", "define def stability(logits): ... "
            "and set answer = stability (the function itself, not its result)")
    require(len(records) > 0, "there are no records to check against", "run the generator on the scene first")
    for k, record in enumerate(records[:3]):
        logits = record_logits(generator, image, record)
        value = float(answer(logits.copy()))
        expected = float(record["stability_score"])
        if abs(value - expected) <= 0.002:
            continue
        require(value <= 1.0,
                f"your function gives {value:.3f} for record {k}: a stability score is an IoU, at most 1",
                "the mask cut at +1 lies inside the mask cut at -1: divide the smaller pixel count by the larger")
        require(False,
                f"your function gives {value:.4f} for record {k}; the generator recorded {expected:.4f}",
                "cut the logits at mask_threshold + 1 and at mask_threshold - 1 (the threshold is 0), and take the "
                "IoU of the two masks (intersection pixels over union pixels)")
    return passed(f"your function reproduces the generator's stability scores of {min(3, len(records))} records. "
                  "A mask whose logits cross the band from -1 to +1 in a few pixels keeps its outline at either "
                  "cut: stable; soft logits spread that band over many pixels.")


# ----------------------------------------------------------------------------------------------
# Exercise 2: tune the generator's thresholds for F1
# ----------------------------------------------------------------------------------------------


def best_ious(truth: np.ndarray, masks: Sequence[np.ndarray], axis: int) -> np.ndarray:
    """Best IoU of each ground-truth mask with any mask (axis=1: M values) or of each mask with any ground
    truth (axis=0: K values); zeros when there are no masks."""
    if len(masks) == 0:
        return np.zeros(len(truth) if axis == 1 else 0)
    t = torch.from_numpy(np.asarray(truth).reshape(len(truth), -1)).float()  # M x pixels
    f = torch.from_numpy(np.stack(masks).reshape(len(masks), -1)).float()  # K x pixels
    inter = t @ f.T  # M x K
    union = t.sum(1)[:, None] + f.sum(1)[None] - inter
    return (inter / union).amax(dim=axis).numpy()


def f1_at_iou_half(scenes: Sequence[Any], masks_per_scene: Sequence[Sequence[np.ndarray]]) -> dict[str, float]:
    """Precision (kept masks that match a ground-truth mask at IoU >= 0.5), recall (ground-truth masks, of
    every level, that a kept mask matches) and their F1, pooled over the scenes."""
    matched = np.concatenate([best_ious(s.masks, m, 0) >= 0.5 for s, m in zip(scenes, masks_per_scene)])
    found = np.concatenate([best_ious(s.masks, m, 1) >= 0.5 for s, m in zip(scenes, masks_per_scene)])
    precision = float(matched.mean()) if matched.size else 0.0
    recall = float(found.mean())
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "masks": int(matched.size)}


def generator_f1(sam: Sam, scenes: Sequence[Any], settings: dict[str, Any]) -> dict[str, float]:
    """F1 at IoU 0.5 of the generator (an F1_GRID x F1_GRID grid) with ``settings`` on ``scenes``."""
    generator = SamAutomaticMaskGenerator(sam, points_per_side=F1_GRID, **settings)
    masks = [[r["segmentation"] for r in generator.generate(s.image)] for s in scenes]
    return f1_at_iou_half(scenes, masks)


def check_f1_thresholds(answer: dict[str, float] | None, sam: Sam, scenes: Sequence[Any],
                        thresholds: dict[str, float]) -> bool:
    """Check generator settings whose masks score a higher F1 on ``scenes`` than both of the notebook's.

    The generator runs an 8 x 8 grid with ``answer`` (any of ``TUNABLE``), and its masks are matched with the
    ground truth at IoU 0.5: F1 of precision (kept masks that match something) and recall (ground-truth
    masks found). The goal: at least 0.01 more than the better of two baselines, no filtering at all and
    ``thresholds`` (section 2's: the bundled model's, or the reference defaults). Why: each filter trades
    recall for precision, and only a measurement says where the trade pays off for a given model.
    """
    if answer is None:
        return not_answered(f"generator settings (a dict of {', '.join(TUNABLE)}) whose masks reach a higher F1 "
                            "than no filtering and than the thresholds of section 2")
    require(isinstance(answer, dict), f"your answer {answer!r} is not a dict of generator settings",
            "e.g. answer = {'pred_iou_thresh': 0.2, 'box_nms_thresh': 0.5}")
    other = sorted(set(answer) - set(TUNABLE))
    require(not other, f"{other} cannot be tuned in this exercise", f"tune only {', '.join(TUNABLE)}")
    unfiltered = generator_f1(sam, scenes, {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0})
    notebook = generator_f1(sam, scenes, dict(thresholds))
    goal = max(unfiltered["f1"], notebook["f1"]) + 0.01
    yours = generator_f1(sam, scenes, dict(answer))
    require(yours["f1"] >= goal,
            f"your settings keep {yours['masks']} masks: precision {yours['precision']:.3f}, recall "
            f"{yours['recall']:.3f}, F1 {yours['f1']:.3f}; the goal is {goal:.3f} (no filtering: F1 "
            f"{unfiltered['f1']:.3f}, section 2's thresholds: {notebook['f1']:.3f})",
            ("precision is your weak side: filter harder (a higher IoU threshold, or a lower box_nms_thresh "
             "to drop near-duplicates)" if yours["precision"] < yours["recall"] else
             "recall is your weak side: filter less, so that the masks that match objects survive"))
    return passed(f"your settings keep {yours['masks']} masks: precision {yours['precision']:.3f}, recall "
                  f"{yours['recall']:.3f}, F1 {yours['f1']:.3f}, against {unfiltered['f1']:.3f} without filtering "
                  f"and {notebook['f1']:.3f} with section 2's thresholds.")


# ----------------------------------------------------------------------------------------------
# Exercise 3: decode an RLE by hand
# ----------------------------------------------------------------------------------------------


def check_rle_decoder(answer: Callable[[dict[str, Any]], np.ndarray] | None,
                      rle_records: Sequence[dict[str, Any]], binary_records: Sequence[dict[str, Any]]) -> bool:
    """Check a function that decodes an uncompressed COCO RLE into its H x W bool mask.

    The checker decodes every ``"uncompressed_rle"`` record with ``answer`` and compares the result, pixel for
    pixel, with the same record in ``"binary_mask"`` mode. Why: COCO run lengths alternate background and
    mask, start with background and run down the columns; getting any of the three wrong scrambles the mask.
    """
    if answer is None:
        return not_answered("a function decode(rle) -> H x W bool array for uncompressed COCO RLEs, with numpy "
                            "alone")
    require(callable(answer), f"your answer {answer!r} is not a function",
            "define def decode(rle): ... and set answer = decode (the function itself)")
    require(len(rle_records) == len(binary_records) and len(rle_records) > 0,
            "the two lists of records do not match", "pass the same generator's records in both output modes")
    for k, (rle, binary) in enumerate(zip(rle_records, binary_records)):
        expected = binary["segmentation"]
        mask = np.asarray(answer(rle["segmentation"]))
        require(mask.shape == expected.shape,
                f"for record {k} your mask is {mask.shape}, the image is {expected.shape}",
                "rle['size'] is [height, width]")
        wrong = int((mask.astype(bool) != expected).sum())
        if wrong == 0:
            continue
        transposed = mask.shape[0] == mask.shape[1] and np.array_equal(mask.T.astype(bool), expected)
        inverted = np.array_equal(~mask.astype(bool), expected)
        require(False,
                f"for record {k} your mask differs from the generator's in {wrong} of {expected.size} pixels",
                "the runs go down the columns, not along the rows (Fortran order)" if transposed else
                "the first run counts background pixels (0 when the first pixel is set)" if inverted else
                "the counts alternate: background run, mask run, background run, ...; they run down the columns")
    return passed(f"your decoder gives back all {len(rle_records)} masks pixel for pixel: a run-length code "
                  "stores only where the mask starts and stops, column after column.")
