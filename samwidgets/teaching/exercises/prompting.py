"""Checkers for the exercises of ``03_prompting.ipynb``: how loose a box may be, the fewest clicks to a good
mask, and many points in one ``predict_torch`` call.

Each checker runs the model on the answer and measures the masks against the scene's ground truth; see
:mod:`samwidgets.teaching.exercises` for the three outcomes of a check.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ...data.masks import mask_iou
from ...data.scenes import Scene
from ...evaluation.clicks import interior_centre, next_click
from ...inference.predictor import SamPredictor
from . import not_answered, passed, require

__all__ = ["check_batched_points", "check_box_margin", "check_fewest_clicks", "grown_box", "masks_after_clicks"]

#: A box counts as good while its mask's IoU stays within this much of the tight box's.
MARGIN_TOLERANCE = 0.05
#: Margins are tried up to this many pixels; a box this loose that still works is the answer.
MAX_MARGIN = 64
#: At most this many clicks, for the student and for the simulated user alike.
MAX_CLICKS = 10


def grown_box(box: np.ndarray, margin: int, height: int, width: int) -> np.ndarray:
    """The XYXY ``box`` grown by ``margin`` pixels on every side, kept inside the ``height`` x ``width`` image."""
    x0, y0, x1, y1 = np.asarray(box, dtype=float)
    return np.array([max(x0 - margin, 0), max(y0 - margin, 0), min(x1 + margin, width), min(y1 + margin, height)])


def box_iou(predictor: SamPredictor, box: np.ndarray, target: np.ndarray) -> float:
    """IoU with ``target`` of token 0's mask for the box prompt ``box`` (the predictor's image must be set)."""
    masks, _, _ = predictor.predict(box=box, multimask_output=False)
    return mask_iou(masks[0], target)


def check_box_margin(answer: int | None, predictor: SamPredictor, scene: Scene, index: int) -> bool:
    """Check the largest margin (pixels added on every side of the tight box) that still gives the object.

    The checker grows the tight box of ``scene.masks[index]`` one pixel at a time, from 0 to the answer plus one,
    and measures the IoU of the model's mask (token 0) with the object. The answer is right when every margin
    up to it keeps the IoU within 0.05 of the tight box's and one more pixel does not: a box from a detector or a
    quick drag is never tight, and how much slack a model tolerates depends on the object.
    """
    if answer is None:
        return not_answered("give the largest margin m (pixels) that keeps the mask's IoU within "
                            f"{MARGIN_TOLERANCE} of the tight box's")
    require(isinstance(answer, int | np.integer) and 0 <= answer <= MAX_MARGIN,
            f"the answer {answer!r} is not a whole number of pixels from 0 to {MAX_MARGIN}",
            "write answer = m, e.g. 5")
    target = scene.masks[index]  # H x W bool
    h, w = target.shape
    tight_box = scene.boxes()[index]
    predictor.set_image(scene.image)
    tight = box_iou(predictor, tight_box, target)
    floor = tight - MARGIN_TOLERANCE
    for margin in range(1, int(answer) + 1):
        iou = box_iou(predictor, grown_box(tight_box, margin, h, w), target)
        require(iou >= floor, f"with a margin of {margin} px the IoU is {iou:.2f}, more than {MARGIN_TOLERANCE} "
                f"below the tight box's {tight:.2f}", f"{answer} px is too loose already: try smaller margins, one "
                "pixel at a time, with predictor.predict(box=..., multimask_output=False)")
    if answer < MAX_MARGIN:
        iou = box_iou(predictor, grown_box(tight_box, int(answer) + 1, h, w), target)
        require(iou < floor, f"a margin of {answer + 1} px still gives IoU {iou:.2f}, within {MARGIN_TOLERANCE} of "
                f"the tight box's {tight:.2f}", "grow the margin until the IoU first drops more than "
                f"{MARGIN_TOLERANCE} below the tight box's; the answer is the margin just before")
    name = scene.names[index]
    return passed(f"the {name}'s box tolerates {answer} px on every side (IoU {tight:.2f} when tight); "
                  f"{answer + 1} px is too many")


def masks_after_clicks(predictor: SamPredictor, clicks: Sequence[Sequence[float]]) -> list[np.ndarray]:
    """The mask after each click of an interactive session, as in section 6 (the predictor's image must be set).

    clicks: (x, y, label) each, label 1 positive, 0 negative. The first click asks for three masks and keeps the
    most confident; every later one passes all the clicks so far with the previous mask's logits as
    ``mask_input`` and asks for token 0's single mask. Returns one H x W bool mask per click.
    """
    coords = np.array([c[:2] for c in clicks], dtype=float)  # N x 2
    labels = np.array([c[2] for c in clicks], dtype=int)  # N
    masks, scores, low_res = predictor.predict(coords[:1], labels[:1], multimask_output=True)
    best = int(np.argmax(scores))
    mask, logits = masks[best], low_res[best][None]  # H x W, 1 x s x s
    history = [mask]
    for n in range(2, len(clicks) + 1):
        masks, _, logits = predictor.predict(coords[:n], labels[:n], mask_input=logits, multimask_output=False)
        history.append(masks[0])
    return history


def clicks_of_the_simulated_user(predictor: SamPredictor, target: np.ndarray, goal: float) -> int | None:
    """How many clicks the evaluation's simulated user needs to reach IoU ``goal``, or None within MAX_CLICKS.

    Its first click is at the object's centre, every next one at the centre of the largest error
    (``next_click``), as in section 6.
    """
    clicks = [(*interior_centre(target), 1)]
    for n in range(1, MAX_CLICKS + 1):
        mask = masks_after_clicks(predictor, clicks)[-1]
        if mask_iou(mask, target) >= goal:
            return n
        click = next_click(mask, target)
        if click is None:
            return n
        clicks.append(click)
    return None


def check_fewest_clicks(answer: Sequence[Sequence[float]] | None, predictor: SamPredictor, scene: Scene,
                        index: int, goal: float = 0.9) -> bool:
    """Check a list of clicks that reaches IoU ``goal`` with ``scene.masks[index]`` in as few clicks as can be.

    The checker replays the clicks as section 6 does (:func:`masks_after_clicks`) and measures the IoU after
    each. The last click must reach the goal, no earlier one may (a click after the goal is wasted), and there
    must be no more clicks than the evaluation's simulated user (centre first, then the centre of the largest
    error) needs with the same model.
    """
    if answer is None:
        return not_answered(f"give a list of clicks (x, y, label) that reaches IoU {goal} in as few clicks as you can")
    require(isinstance(answer, Sequence) and 1 <= len(answer) <= MAX_CLICKS
            and all(isinstance(c, Sequence | np.ndarray) and len(c) == 3 for c in answer),
            f"the answer is not a list of 1 to {MAX_CLICKS} clicks (x, y, label)",
            "write answer = [(x, y, 1), ...], label 1 for a positive click and 0 for a negative one")
    require(all(int(c[2]) in (0, 1) for c in answer), "a label is neither 1 (positive) nor 0 (negative)",
            "each click is (x, y, label) with label 1 or 0")
    require(int(answer[0][2]) == 1, "the first click is negative", "the first click says where the object is: "
            "positive")
    target = scene.masks[index]  # H x W bool
    name = scene.names[index]
    predictor.set_image(scene.image)
    ious = [mask_iou(m, target) for m in masks_after_clicks(predictor, answer)]
    trace = " -> ".join(f"{v:.2f}" for v in ious)
    require(ious[-1] >= goal, f"after your {len(ious)} click(s) the IoU with the {name} is {ious[-1]:.2f} "
            f"(after each click: {trace})", "look at the mask after each click: put the next click on its largest "
            "mistake (positive where it misses the object, negative where it spills over), or try another first click")
    first = next(n for n, v in enumerate(ious, start=1) if v >= goal)
    require(first == len(ious), f"your clicks reach IoU {goal} after {first} click(s) already ({trace})",
            "the clicks after that are not needed")
    simulated = clicks_of_the_simulated_user(predictor, target, goal)
    if simulated is not None:
        require(len(answer) <= simulated, f"you need {len(answer)} clicks ({trace}); the simulated user of "
                f"section 6 needs {simulated}", "look at the IoU after each click: which click helped least? "
                "A different first click may give more of the object at once")
    rival = (f"the simulated user needs {simulated}" if simulated is not None
             else f"the simulated user does not get there in {MAX_CLICKS}")
    return passed(f"{len(answer)} click(s) give the {name} with IoU {ious[-1]:.2f} ({trace}); {rival}")


def check_batched_points(answer: torch.Tensor | np.ndarray | None, predictor: SamPredictor, scene: Scene) -> bool:
    """Check the masks of one ``predict_torch`` call with a click at the centre of every whole object.

    answer: B x 3 x H x W masks, the three multimask outputs of one positive click at ``interior_centre`` of each
    whole object, in index order. The checker asks ``predict`` for each click alone and compares: a batch is
    only a faster way to get the same masks, provided the points were mapped to the model's input frame.
    """
    if answer is None:
        return not_answered("give the B x 3 x H x W masks of one predict_torch call, one click per whole object")
    masks = answer.detach().cpu().numpy() if isinstance(answer, torch.Tensor) else np.asarray(answer)
    objects = np.flatnonzero(scene.levels == 0)
    h, w = scene.masks.shape[1:]
    require(masks.ndim == 4 and masks.shape[0] == len(objects),
            f"the masks have shape {masks.shape}: there are {len(objects)} whole objects, one prompt each",
            "points are B x N x 2 with labels B x N: one row per object, here with N = 1 click")
    require(masks.shape[1] == 3, f"{masks.shape[1]} mask(s) per prompt instead of three",
            "ask for the three multimask outputs: multimask_output=True")
    require(masks.shape[2:] == (h, w), f"the masks are {masks.shape[3]} x {masks.shape[2]}, the image {w} x {h}",
            "predict_torch returns masks at the original image size; do not resize them")
    predictor.set_image(scene.image)
    for k, j in enumerate(objects):
        one, _, _ = predictor.predict(np.array([interior_centre(scene.masks[j])]), np.array([1]),
                                      multimask_output=True)  # 3 x H x W
        differ = float(np.mean(one != masks[k].astype(bool)))
        require(differ < 1e-3, f"the masks of prompt {k} (the {scene.names[j]}) differ from predict()'s for the "
                f"same click on {differ:.1%} of the pixels", "predict_torch takes points in the model's resized "
                "frame: map them with predictor.transform.apply_coords_torch(points, predictor.original_size)")
    return passed(f"{len(objects)} prompts in one call give the same masks as {len(objects)} calls of predict()")
