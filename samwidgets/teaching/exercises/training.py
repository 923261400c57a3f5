"""Checkers for the exercises of ``02_losses_and_training.ipynb``: the focal : dice balance, the IoU head's loss
measured on the model of the setup cell, and the multi-output rule.

Each checker recomputes the losses, or runs the model, on the answer; see :mod:`samwidgets.teaching.exercises`
for the three outcomes of a check.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F

from ...data.masks import mask_iou
from ...data.scenes import SceneGenerator
from ...evaluation.clicks import interior_centre
from ...inference.predictor import SamPredictor
from ...training.losses import dice_loss, sam_loss, sigmoid_focal_loss
from . import not_answered, passed, require

__all__ = ["check_focal_weight", "check_iou_head_loss", "check_winning_target", "iou_head_errors"]

#: ``w x focal`` must lie within this factor of dice for the two terms to count as balanced.
BALANCE_TOLERANCE = 0.1
#: Logit of the added background, as in the notebook's cell that grows the image.
BACKGROUND_LOGIT = -10.0


def padded_losses(logits: torch.Tensor, target: torch.Tensor, side: int) -> tuple[float, float]:
    """(mean focal, dice) of the prediction placed in a ``side`` x ``side`` image of confident, right background.

    logits: H x W; target: H x W bool. The added pixels are background predicted at logit -10.
    """
    h, w = logits.shape[-2:]
    pad = (0, side - w, 0, side - h)  # more background to the right and below
    big_logits = F.pad(logits, pad, value=BACKGROUND_LOGIT)  # side x side
    big_target = F.pad(target, pad)  # side x side
    return float(sigmoid_focal_loss(big_logits, big_target)), float(dice_loss(big_logits, big_target))


def check_focal_weight(answer: float | None, logits: torch.Tensor, target: torch.Tensor, side: int = 384) -> bool:
    """Check a focal weight ``w`` that puts ``w x focal`` on dice's scale for the image grown to ``side`` pixels.

    The checker computes both losses of the notebook's prediction padded with easy background to ``side`` x
    ``side`` and compares ``w x focal`` with dice. Focal loss is a mean over all pixels, dice one number per
    mask, so the weight that balances them depends on the image size: 20 : 1 is not a law of nature.
    """
    if answer is None:
        return not_answered(f"give the focal weight w for which w x focal equals dice in the {side} x {side} image")
    require(isinstance(answer, int | float) and answer > 0, f"the answer {answer!r} is not a positive number",
            "write answer = w, a number such as 20")
    focal, dice = padded_losses(logits, target, side)
    ratio = answer * focal / dice
    small_focal, small_dice = padded_losses(logits, target, logits.shape[-1])
    hint = ("focal loss is a mean over every pixel: more easy background makes it smaller, dice hardly moves; "
            f"compute both for the {side} x {side} image as the cell above does")
    if abs(answer - 20) < 1e-9:
        hint = (f"20 x focal is {20 * small_focal:.3f} at {logits.shape[-1]} px, near dice ({small_dice:.3f}); "
                f"at {side} px the mean runs over {(side / logits.shape[-1]) ** 2:.0f} times more pixels")
    require(abs(ratio - 1) <= BALANCE_TOLERANCE,
            f"with w = {answer:g}, w x focal = {answer * focal:.4f} is {ratio:.2f} times dice ({dice:.4f})", hint)
    return passed(f"{answer:g} x focal = {answer * focal:.4f}, dice = {dice:.4f}: balanced at {side} px, "
                  f"where 20 x focal is only {20 * focal / dice:.2f} of dice")


def iou_head_errors(predictor: SamPredictor, scenes: SceneGenerator, seeds: Iterable[int]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Predicted and true IoU of SAM's three masks for one click at the centre of every whole object.

    Returns two K x 3 arrays (K whole objects over the scenes of ``seeds``): ``scores`` from ``predict`` and the
    true IoU of each mask with the object. The IoU head's training loss is the mean squared difference.
    """
    predicted, true = [], []
    for seed in seeds:
        scene = scenes(seed)
        predictor.set_image(scene.image)
        for j in np.flatnonzero(scene.levels == 0):  # whole objects
            masks, scores, _ = predictor.predict(point_coords=np.array([interior_centre(scene.masks[j])]),
                                                 point_labels=np.array([1]), multimask_output=True)
            predicted.append(scores)
            true.append([mask_iou(m, scene.masks[j]) for m in masks])
    return np.array(predicted, dtype=float), np.array(true, dtype=float)


def close(a: float, b: float) -> bool:
    """Equal within 0.003 or 3%: two honest computations of the same mean agree that well."""
    return abs(a - b) <= max(0.003, 0.03 * abs(b))


def check_iou_head_loss(answer: float | None, predictor: SamPredictor, scenes: SceneGenerator,
                        seeds: Iterable[int]) -> bool:
    """Check the IoU head's loss (the mean squared error of ``sam_loss``) measured on the model of ``predictor``.

    The checker clicks once at the centre of every whole object of the scenes of ``seeds`` and compares the three
    predicted IoUs with the true ones, over all three outputs, as ``sam_loss`` supervises the head. A small
    loss means the head's scores can be trusted to rank the masks; the toy head of section 4 scored 0.054.
    """
    if answer is None:
        return not_answered("give the mean squared error between the predicted and the true IoU of the three "
                            "masks, over the whole objects of the scenes")
    require(isinstance(answer, int | float | np.floating), f"the answer {answer!r} is not a number",
            "write answer = the mean squared error, a number")
    scores, true = iou_head_errors(predictor, scenes, list(seeds))
    errors = scores - true  # K x 3
    mse = float(np.mean(errors**2))
    best = np.argmax(scores, axis=1)  # K: the most confident output
    mistakes = {
        "the root of the mean squared error": float(np.sqrt(mse)),
        "the mean absolute error": float(np.mean(np.abs(errors))),
        "the squared error of the most confident mask only": float(np.mean(errors[np.arange(len(best)), best] ** 2)),
    }
    for name, value in mistakes.items():
        if close(float(answer), value) and not close(value, mse):
            require(False, f"{answer:.4f} is {name}", "sam_loss squares the difference for each of the three "
                    "outputs and averages over all of them: the losers are scored too")
    require(close(float(answer), mse), f"{answer:.4f} is not the IoU head's loss on these objects",
            f"{len(scores)} whole objects, one click each at interior_centre(mask), three masks per click: "
            "square (scores - true IoU) for every mask and take the mean")
    return passed(f"the IoU head's loss is {mse:.4f} on {len(scores)} whole objects (RMSE {np.sqrt(mse):.2f}); "
                  f"its most confident mask is the best of the three for "
                  f"{np.mean(best == np.argmax(true, axis=1)):.0%} of them")


def check_winning_target(answer: torch.Tensor | np.ndarray | None, candidate_logits: torch.Tensor,
                         learner: int = 2) -> bool:
    """Check a target for which candidate ``learner`` (by default 2, the too-large one) is the one that learns.

    candidate_logits: 1 x 3 x H x W, the notebook's three candidates. The checker runs ``sam_loss`` with the
    target and back-propagates: only the output with the lowest mask loss may receive gradient, so the right
    target is one that the learner fits better than the other two do.
    """
    if answer is None:
        return not_answered(f"give an H x W boolean target for which candidate {learner} gets the gradient")
    target = torch.as_tensor(np.asarray(answer)).bool()
    size = tuple(candidate_logits.shape[-2:])
    require(tuple(target.shape[-2:]) == size and target.numel() == size[0] * size[1],
            f"the target has shape {tuple(target.shape)}, the candidates are {size[0]} x {size[1]}",
            "give one boolean mask of the candidates' size, e.g. square(lo, hi).bool()")
    logits = candidate_logits.detach().clone().requires_grad_()  # 1 x 3 x H x W
    iou_pred = torch.full(logits.shape[:2], 0.5)  # 1 x 3
    out = sam_loss(logits, iou_pred, target.reshape(1, *size), multimask=True)
    out.total.backward()
    with torch.no_grad():
        expanded = target.reshape(1, 1, *size).expand_as(logits)  # 1 x 3 x H x W
        mask_losses = (20 * sigmoid_focal_loss(logits, expanded) + dice_loss(logits, expanded))[0]  # 3
    winner = int(out.best_index)
    losses = ", ".join(f"{v:.3f}" for v in mask_losses.tolist())
    require(winner == learner,
            f"with your target the mask losses are [{losses}]: candidate {winner} has the lowest and alone gets "
            "gradient", f"the rule keeps the output whose mask loss is lowest: which target would candidate "
            f"{learner} fit better than the other two?")
    grad = logits.grad  # 1 x 3 x H x W
    assert grad is not None, "the loss depends on the logits: backward() has filled their gradient"
    with_gradient = [m for m in range(logits.shape[1]) if float(grad[0, m].abs().sum()) > 0]
    require(with_gradient == [learner], f"outputs {with_gradient} received gradient", "this should not happen: "
            "the rule back-propagates the winner only; run the cell again")
    return passed(f"mask losses [{losses}]: candidate {learner} has the lowest, so only it receives gradient")
