"""Exercises of ``06_data_engine.ipynb``: a better first click, a better pre-fill filter, how often retraining
showed each mask.

Each checker measures the student's answer (runs the model on a click, recomputes the pre-filled masks'
quality, recomputes the retraining's arithmetic from the recorded report) and compares it with a goal set by
what the loaded model itself does, so that the exercises hold for any model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...data.masks import mask_iou
from ...data_engine.stages import StageResult
from ...evaluation.clicks import interior_centre
from ...inference.predictor import SamPredictor
from . import not_answered, passed, require

__all__ = ["PREFILL_SCORES", "check_first_click", "check_prefill_filter", "check_times_seen"]

#: The scores of a generator record that a pre-fill filter may threshold.
PREFILL_SCORES = ("predicted_iou", "stability_score")


# ----------------------------------------------------------------------------------------------
# Exercise 1: a better first click
# ----------------------------------------------------------------------------------------------


def first_click_iou(predictor: SamPredictor, click: Sequence[float], target: np.ndarray) -> float:
    """IoU with ``target`` of the best of SAM's three masks for one positive click, as the annotator picks it."""
    masks, _, _ = predictor.predict(np.array([click], dtype=np.float64), np.array([1]), multimask_output=True)
    return max(mask_iou(m, target) for m in masks)  # masks: 3 x H x W


def check_first_click(answer: Sequence[float] | None, predictor: SamPredictor, image: np.ndarray,
                      target: np.ndarray) -> bool:
    """Check a first click (x, y) whose best mask beats the simulated annotator's first click on ``target``.

    The annotator clicks the object's interior centre (the pixel farthest from its outline) and picks the
    best of SAM's three masks. The goal: the best of the three masks for ``answer`` has an IoU with the object
    at least 0.005 higher. Why: where a click lands changes what the model answers, and a person who knows
    the model can start closer to the goal, which is what a better model or a better annotator buys in stage 1.
    """
    if answer is None:
        return not_answered("a first click (x, y) on the object whose best of SAM's three masks has a higher "
                            "IoU with the object than the annotator's click at its interior centre")
    require(np.shape(answer) == (2,), f"your answer {answer!r} is not one click (x, y)",
            "give the click as a pair of pixel coordinates, e.g. (120, 80)")
    x, y = (float(v) for v in answer)
    h, w = target.shape
    require(0 <= x < w and 0 <= y < h, f"the click ({x:g}, {y:g}) lies outside the {w} x {h} image",
            "x counts columns from the left, y rows from the top")
    predictor.set_image(image)  # the embedding cache makes this free when the image is already set
    annotators = first_click_iou(predictor, interior_centre(target), target)
    yours = first_click_iou(predictor, (x, y), target)
    inside = bool(target[min(int(round(y)), h - 1), min(int(round(x)), w - 1)])
    require(yours >= annotators + 0.005,
            f"the best of the three masks for your click ({x:g}, {y:g}) has IoU {yours:.3f} with the object; "
            f"the annotator's click at the interior centre gets {annotators:.3f}",
            ("your click is not on the object: SAM segments what lies under a positive click" if not inside else
             "try clicks all over the object (a coarse grid of its pixels) and keep the one whose best mask "
             "matches it best"))
    return passed(f"your click ({x:g}, {y:g}) gives a best mask with IoU {yours:.3f}, the annotator's interior "
                  f"centre {annotators:.3f}: the model answers some clicks better than others, and the centre "
                  "of the object is not always the best place to start.")


# ----------------------------------------------------------------------------------------------
# Exercise 2: which score should decide the pre-fill?
# ----------------------------------------------------------------------------------------------


def prefilled(stage: StageResult) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The automatic masks of a semi-automatic stage: their scores ({name: K}) and their quality (K)."""
    records = [(r, q) for im in stage.images for r, q, s in zip(im.records, im.quality, im.sources) if s == "auto"]
    scores = {name: np.array([r[name] for r, _ in records], dtype=np.float64) for name in PREFILL_SCORES}
    return scores, np.array([q for _, q in records], dtype=np.float64)


def best_filter(scores: dict[str, np.ndarray], quality: np.ndarray, at_least: int) -> tuple[str, float, float]:
    """(score, threshold, mean quality) of the filter ``score >= threshold`` that keeps at least ``at_least``
    masks with the highest mean quality: every score, every threshold that one of the masks sits at."""
    best = ("", 0.0, -1.0)
    for name, values in scores.items():
        for threshold in np.unique(values):
            kept = values >= threshold
            if kept.sum() >= at_least and quality[kept].mean() > best[2]:
                best = (name, float(threshold), float(quality[kept].mean()))
    return best


def check_prefill_filter(answer: tuple[str, float] | None, stage: StageResult) -> bool:
    """Check a filter (score name, threshold) on stage 2's pre-filled masks that keeps the best of them.

    A filter keeps the automatic masks whose ``score`` (``"predicted_iou"`` or ``"stability_score"``) is at
    least ``threshold``. The goal: it keeps at least a third of them (a pre-fill must pre-fill something),
    and their mean quality (best IoU with a ground-truth mask) is within 0.005 of the best that any threshold
    on either score reaches. Why: the generator can only keep or drop masks on the model's own scores, and
    which score tells good masks from bad ones is a property of the model, measured here.
    """
    if answer is None:
        return not_answered("a filter (score name, threshold) on the pre-filled masks that keeps at least a third "
                            "of them with the highest mean quality")
    require(isinstance(answer, (tuple, list)) and len(answer) == 2 and answer[0] in PREFILL_SCORES,
            f"your answer {answer!r} is not a pair (score name, threshold)",
            f"the score is one of {PREFILL_SCORES}, the keys of a generator record; e.g. ('stability_score', 0.8)")
    name, threshold = answer[0], float(answer[1])
    scores, quality = prefilled(stage)
    require(len(quality) >= 3, f"stage 2 pre-filled only {len(quality)} masks: too few to filter",
            "run the semi-automatic stage on the notebook's two images first")
    at_least = math.ceil(len(quality) / 3)
    kept = scores[name] >= threshold
    require(kept.sum() >= at_least,
            f"{name} >= {threshold:.3f} keeps {int(kept.sum())} of the {len(quality)} pre-filled masks, fewer than "
            f"a third ({at_least})",
            "lower the threshold: a pre-fill that keeps almost nothing saves the annotator no time")
    yours = float(quality[kept].mean())
    best_name, _, best_quality = best_filter(scores, quality, at_least)
    everything = float(quality.mean())
    require(yours >= best_quality - 0.005,
            f"{name} >= {threshold:.3f} keeps {int(kept.sum())} masks of mean quality {yours:.3f} (all "
            f"{len(quality)} pre-filled: {everything:.3f}); another filter keeping at least {at_least} does better",
            "sort the pre-filled masks by each score and look at the mean quality of the top ones: one score "
            "ranks the masks by quality better than the other")
    return passed(f"{name} >= {threshold:.3f} keeps {int(kept.sum())} of {len(quality)} pre-filled masks, of "
                  f"mean quality {yours:.3f} against {everything:.3f} for all of them. For this model "
                  f"{best_name} is the score that ranks its masks; the pre-fill filter should use it.")


# ----------------------------------------------------------------------------------------------
# Exercise 3: how often did retraining show each mask?
# ----------------------------------------------------------------------------------------------


def check_times_seen(answer: Sequence[float] | None, report: dict[str, Any]) -> bool:
    """Check, for each retraining of the recorded run, how many times it showed each mask collected so far.

    Each retraining step draws ``images_per_step`` images with ``masks_per_image`` masks each from everything
    collected so far, for ``steps_per_stage`` steps; on average a mask is shown steps x images x masks /
    (masks so far) times. The goal: the three numbers, within 2%. Why: the first retraining showed each of
    its few masks many times, which is how a model fits a few dozen masks and forgets the rest.
    """
    if answer is None:
        return not_answered("three numbers: how many times, on average, the retraining after each stage showed "
                            "each mask collected so far")
    rows = [r for r in report["rows"] if r["stage"] != "start"]
    require(np.shape(answer) == (len(rows),), f"your answer {answer!r} is not {len(rows)} numbers",
            "one number per retraining: after stage 1, after stage 2, after stage 3")
    config = report["config"]
    shown = config["steps_per_stage"] * config["images_per_step"] * config["masks_per_image"]  # masks per retraining
    for stage, (row, value) in enumerate(zip(rows, answer), start=1):
        measured = shown / row["total_masks"]
        require(abs(float(value) - measured) <= 0.02 * measured,
                f"for the retraining after stage {stage} you give {float(value):.2f} times; it trained on "
                f"{row['total_masks']} masks in all, and your number does not follow from the report",
                "one retraining step shows images_per_step x masks_per_image masks, drawn from every mask "
                "collected so far (total_masks), for steps_per_stage steps: report['config'] has the settings")
    return passed("each mask was shown " + ", ".join(f"{shown / r['total_masks']:.1f}" for r in rows)
                  + " times on average by the three retrainings: the few masks of stage 1 many times over (the "
                  "model can learn them by heart), those of stage 3 hardly more than once.")
