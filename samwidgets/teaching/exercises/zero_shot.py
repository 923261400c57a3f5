"""Exercises of ``05_zero_shot.ipynb``: a worse detector, the edge map's best threshold, enough proposals.

Each checker measures the student's answer with the notebook's own functions (``segment_instances`` and
``coco_mask_ap``, ``edge_match_counts``, ``mask_average_recall``) and compares the measurement with the goal,
which is set by what the loaded model itself does, so that the exercises hold for any model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...inference.predictor import SamPredictor
from ...tasks import coco_mask_ap, mask_average_recall, noisy_boxes, segment_instances
from ...tasks.edges import edge_match_counts, edge_thresholds, metrics_from_counts
from . import not_answered, passed, require

__all__ = ["NOISE_STEP", "NOTEBOOK_NOISE", "check_enough_proposals", "check_ods_threshold", "check_worst_detector"]

#: The box noise of the notebook's simulated detector (section 1).
NOTEBOOK_NOISE = 0.075
#: Exercise 1 searches the box noise in steps of this size.
NOISE_STEP = 0.025


# ----------------------------------------------------------------------------------------------
# Exercise 1: how bad may the detector be?
# ----------------------------------------------------------------------------------------------


def filled_boxes(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Each XYXY box (N x 4) painted as a mask: N x H x W bool, the trivial baseline of section 1."""
    out = np.zeros((len(boxes), *shape), dtype=bool)
    for i, (x0, y0, x1, y1) in enumerate(np.round(boxes).astype(int)):
        out[i, y0:y1, x0:x1] = True
    return out


def whole_object_ap(predictor: SamPredictor, scenes: Sequence[Any], noise: float, method: str) -> float:
    """COCO mask AP on the whole objects of ``scenes`` from boxes jittered by ``noise``, as in section 1.

    method: "sam" (SAM refined, two passes per box) or "filled" (the noisy box painted as the mask).
    The boxes of scene k are ``noisy_boxes(..., noise, seed=k)``, the notebook's detector.
    """
    gts, predictions = [], []
    for k, scene in enumerate(scenes):
        whole = scene.levels == 0
        boxes = noisy_boxes(scene.boxes()[whole], scene.image.shape[:2], noise=noise, seed=k)  # G x 4, XYXY
        gts.append(scene.masks[whole])  # G x H x W
        if method == "sam":
            predictions.append(segment_instances(predictor, scene.image, boxes, refine=True))
        else:
            predictions.append((filled_boxes(boxes, scene.image.shape[:2]), np.ones(len(boxes))))
    return coco_mask_ap(gts, predictions)["AP"]


def check_worst_detector(answer: float | None, predictor: SamPredictor, scenes: Sequence[Any]) -> bool:
    """Check the largest box noise (a multiple of ``NOISE_STEP``) at which SAM's masks still beat the good detector.

    The goal: SAM's refined masks from boxes jittered by ``answer`` reach at least the AP that the filled boxes
    of the notebook's detector (noise 0.075) reach, and one step more noise (``answer + NOISE_STEP``) falls
    below it. Why: a mask follows the object, not the box, so SAM tolerates a much worse detector than the
    box itself does; the exercise measures how much worse, for the loaded model.
    """
    if answer is None:
        return not_answered("the largest box noise (a multiple of 0.025) at which SAM's refined masks still "
                            "score at least the AP of the filled boxes at noise 0.075")
    require(isinstance(answer, (int, float)) and not isinstance(answer, bool),
            f"your answer {answer!r} is not a number", "give the noise as a float, e.g. 0.1")
    steps = answer / NOISE_STEP
    require(abs(steps - round(steps)) < 1e-6 and answer > 0,
            f"{answer} is not a positive multiple of {NOISE_STEP}",
            f"search the noise in steps of {NOISE_STEP}: 0.075, 0.1, 0.125, ...")
    goal = whole_object_ap(predictor, scenes, NOTEBOOK_NOISE, "filled")
    at_answer = whole_object_ap(predictor, scenes, answer, "sam")
    require(at_answer >= goal,
            f"at noise {answer:.3f} SAM's refined masks score AP {at_answer:.3f}, below the {goal:.3f} of the "
            f"filled boxes at noise {NOTEBOOK_NOISE}",
            "that detector is too bad: lower the noise, and measure SAM's AP at each step")
    one_step_worse = whole_object_ap(predictor, scenes, answer + NOISE_STEP, "sam")
    require(one_step_worse < goal,
            f"at noise {answer + NOISE_STEP:.3f}, one step worse than your answer, SAM's masks still score AP "
            f"{one_step_worse:.3f}, at least the {goal:.3f} of the filled boxes at noise {NOTEBOOK_NOISE}",
            "the detector may be worse still: raise the noise step by step until SAM's AP drops below the goal")
    return passed(f"with boxes jittered by {answer:.3f} (the notebook's detector: {NOTEBOOK_NOISE}) SAM's masks "
                  f"score AP {at_answer:.3f}, still at least the {goal:.3f} of the good detector's own boxes, "
                  f"filled; at {answer + NOISE_STEP:.3f} they score {one_step_worse:.3f}. A mask prompted by a "
                  "box follows the object's outline, so a much worse detector still gives good masks.")


# ----------------------------------------------------------------------------------------------
# Exercise 2: one threshold for the whole map
# ----------------------------------------------------------------------------------------------


def precision_recall_f(counts: np.ndarray) -> tuple[float, float, float]:
    """Precision, recall and F from one row of match counts (the 4 columns of ``COUNT_COLUMNS``)."""
    matched_gt, gt, matched_pred, pred = (float(c) for c in counts)
    precision = matched_pred / pred if pred else 0.0
    recall = matched_gt / gt if gt else 0.0
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f


def check_ods_threshold(answer: float | None, edge_map: np.ndarray, boundaries: np.ndarray) -> bool:
    """Check a threshold at which ``edge_map`` reaches its best F-score against ``boundaries`` (ODS's choice).

    The goal: the F-score at ``answer`` is within 0.005 of the best F over the benchmark's 99 thresholds.
    Why: ODS is the F-score at the one threshold that suits the data best; finding that threshold means
    trading precision (raise it: fewer, surer edge pixels) against recall (lower it: more of the outlines).
    """
    if answer is None:
        return not_answered("the threshold at which the edge map has its best F-score (precision and recall "
                            "against the ground-truth boundaries, as for ODS)")
    require(isinstance(answer, (int, float)) and not isinstance(answer, bool) and 0 < answer < 1,
            f"your answer {answer!r} is not a threshold between 0 and 1",
            "an edge map holds strengths in [0, 1]; a threshold keeps the pixels at or above it")
    thresholds = edge_thresholds(99)  # the benchmark's 99 levels
    best = metrics_from_counts(edge_match_counts(edge_map, boundaries, thresholds)[None], thresholds)
    precision, recall, f = precision_recall_f(edge_match_counts(edge_map, boundaries, [float(answer)])[0])
    if f < best["ods"] - 0.005:
        weaker = "precision" if precision < recall else "recall"
        direction = "raise" if weaker == "precision" else "lower"
        require(False,
                f"at threshold {answer:.3f} the map has precision {precision:.3f} and recall {recall:.3f}: F "
                f"{f:.3f}, below the best F of {best['ods']:.3f} that another threshold reaches",
                f"{weaker} is the weaker of the two here: {direction} the threshold, and sweep it with "
                "edge_match_counts to find where F peaks")
    return passed(f"at threshold {answer:.3f} the map has precision {precision:.3f} and recall {recall:.3f}: F "
                  f"{f:.3f}, the best the map reaches (ODS {best['ods']:.3f}). Below it more edge pixels count "
                  "but more of them match nothing; above it the outlines start to break up.")


# ----------------------------------------------------------------------------------------------
# Exercise 3: how many proposals are enough?
# ----------------------------------------------------------------------------------------------


def check_enough_proposals(answer: int | None, proposals: Sequence[tuple[Any, float]],
                           gt_masks: np.ndarray) -> bool:
    """Check the fewest top-ranked proposals that reach 90% of the average recall of all of them.

    The goal: AR@answer >= 0.9 x AR@(all proposals) and AR@(answer - 1) below that. Why: recall can only grow
    with k; how fast it grows says how well the ranking (mean of predicted IoU and stability) puts the
    proposals that match an object first.
    """
    if answer is None:
        return not_answered("the smallest k for which the top-k proposals reach 90% of the average recall "
                            "(AR) of all the proposals")
    require(isinstance(answer, (int, np.integer)) and not isinstance(answer, bool) and 1 <= answer,
            f"your answer {answer!r} is not a whole number of proposals (at least 1)", "k counts proposals: 1, 2, ...")
    every = len(proposals)
    require(answer <= every, f"there are only {every} proposals, fewer than your {answer}",
            "k can be at most the number of proposals")
    ks = sorted({max(1, int(answer) - 1), int(answer), every})
    ar = mask_average_recall(proposals, gt_masks, ks=ks)
    goal = 0.9 * ar[f"AR@{every}"]
    at_answer = ar[f"AR@{int(answer)}"]
    require(at_answer >= goal,
            f"the top {answer} proposals reach AR {at_answer:.4f}, short of 90% of the {ar[f'AR@{every}']:.4f} "
            f"that all {every} reach ({goal:.4f})",
            "recall grows with k: compute AR@k for larger k (mask_average_recall takes many ks at once)")
    if answer > 1:
        one_fewer = ar[f"AR@{int(answer) - 1}"]
        require(one_fewer < goal,
                f"the top {int(answer) - 1} proposals, one fewer than your answer, already reach AR "
                f"{one_fewer:.4f}, at least 90% of all ({goal:.4f})",
                "look for the smallest such k: compute AR@k for every k below yours")
    return passed(f"the top {answer} of {every} proposals reach AR {at_answer:.4f}, 90% of what all of them reach "
                  f"({ar[f'AR@{every}']:.4f}). The more proposals it takes, the more of the masks that match an "
                  "object the ranking has put late.")
