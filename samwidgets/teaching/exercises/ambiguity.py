"""Checkers for the exercises of ``04_ambiguity.ipynb``: choosing the whole object among the three masks without
the ground truth, and where the three outputs must start for the minimum-loss rule to find three levels.

Each checker runs the answer (the student's rule on the model's masks, or a training from the student's starting
point) and measures the result; see :mod:`samwidgets.teaching.exercises` for the three outcomes of a check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch

from ...data.masks import mask_iou
from ...data.scenes import Scene, SceneGenerator
from ...evaluation.clicks import interior_centre
from ...inference.predictor import SamPredictor
from ...training.losses import sam_loss
from . import not_answered, passed, require

__all__ = ["check_starting_radii", "check_whole_picker", "train_from_discs"]

#: The rule must reach this share of the oracle's mean IoU with the whole object.
SHARE_OF_ORACLE = 0.9
#: A level counts as found when an output, thresholded at 0.5, has at least this IoU with it.
FOUND_IOU = 0.9

Picker = Callable[[np.ndarray, np.ndarray], int]


def whole_object_picks(picker: Picker, predictor: SamPredictor, scenes: SceneGenerator, seeds: Iterable[int]
                       ) -> np.ndarray:
    """IoU with the whole object of three picks, for one click at the centre of every subpart of the scenes.

    Returns K x 3: the mask ``picker(masks, scores)`` chose, the most confident mask (the IoU head's pick) and
    the best of the three (the oracle, which needs the ground truth).
    """
    rows = []
    for seed in seeds:
        scene = scenes(seed)
        predictor.set_image(scene.image)
        for j in np.flatnonzero(scene.levels == 2):  # subparts
            chain = scene.chain(int(j))  # [subpart, part, whole]
            if len(chain) != 3:
                continue
            masks, scores, _ = predictor.predict(np.array([interior_centre(scene.masks[j])]), np.array([1]))
            whole = [mask_iou(m, scene.masks[chain[2]]) for m in masks]  # 3
            pick = picker(masks.copy(), scores.copy())
            require(isinstance(pick, int | np.integer) and 0 <= pick <= 2,
                    f"your function returned {pick!r} for a click on a {scene.names[j]}",
                    "it must return the index of one of the three masks: 0, 1 or 2")
            rows.append((whole[int(pick)], whole[int(np.argmax(scores))], max(whole)))
    return np.array(rows)


def check_whole_picker(answer: Picker | None, predictor: SamPredictor, scenes: SceneGenerator,
                       seeds: Iterable[int]) -> bool:
    """Check a rule that picks, from SAM's three masks and their scores alone, the one that is the whole object.

    answer: a function ``(masks, scores) -> index``, masks 3 x H x W bool and scores 3. The checker clicks at the
    centre of every subpart of the scenes of ``seeds`` and measures the mean IoU of the picked mask with the whole
    object; the rule must reach 90% of the oracle's (the best of the three, known only with the ground truth).
    The IoU head ranks by its guess of what the user meant; an application that wants whole objects knows
    more, and can use it.
    """
    if answer is None:
        return not_answered("give a function (masks, scores) -> index that picks the whole object among the three")
    require(callable(answer), f"the answer {answer!r} is not a function",
            "write answer = pick, with def pick(masks, scores): ... return index")
    picks = whole_object_picks(answer, predictor, scenes, list(seeds))
    rule, head, oracle = picks.mean(axis=0)
    require(rule >= SHARE_OF_ORACLE * oracle,
            f"your picks have mean IoU {rule:.3f} with the whole object, the best of the three {oracle:.3f} "
            f"(the most confident: {head:.3f})", "what does a whole object have that its parts do not? Look at "
            "the masks themselves, not only at the scores")
    return passed(f"your picks reach {rule:.3f} mean IoU with the whole object on {len(picks)} clicks, the best of "
                  f"the three {oracle:.3f}; the IoU head's pick only {head:.3f}")


def train_from_discs(radii: Sequence[float], targets: torch.Tensor, point: tuple[float, float],
                     steps: int = 400, seed: int = 0) -> tuple[torch.Tensor, list[int]]:
    """Train free logits (one map per output) with the minimum-loss rule, starting from discs around ``point``.

    targets: 3 x H x W, the valid answers (subpart, part, whole); at every step one of them, drawn at random,
    is the target, as in section 3 of the notebook (Adam, learning rate 0.1, ``sam_loss`` with
    ``multimask=True``). Returns the M x H x W probabilities at the end and how many steps each output won.
    """
    h, w = targets.shape[-2:]
    yy, xx = np.mgrid[:h, :w]
    distance = np.hypot(xx - point[0], yy - point[1])  # H x W, pixels from the point
    start = np.stack([np.where(distance < r, 2.0, -2.0) for r in radii])[None]  # 1 x M x H x W
    logits = torch.from_numpy(start).float().requires_grad_()
    iou_pred = torch.zeros(1, len(radii))  # 1 x M: no IoU head here
    optimizer = torch.optim.Adam([logits], lr=0.1)
    generator = torch.Generator().manual_seed(seed)
    wins = [0] * len(radii)
    for _ in range(steps):
        level = torch.randint(0, targets.shape[0], (1,), generator=generator)  # the level the user meant
        out = sam_loss(logits, iou_pred, targets[level].float(), multimask=True)
        wins[int(out.best_index)] += 1
        optimizer.zero_grad()
        out.total.backward()
        optimizer.step()
    return torch.sigmoid(logits.detach()[0]), wins


def check_starting_radii(answer: Sequence[float] | None, scene: Scene, chain: Sequence[int],
                         point: tuple[float, float], steps: int = 400) -> bool:
    """Check three starting radii from which the minimum-loss rule finds all three levels of ``chain``.

    The checker trains the three outputs from discs of the given radii around ``point`` (:func:`train_from_discs`)
    and counts the levels that some output, thresholded at 0.5, matches with IoU 0.9 or more. Under the rule an
    output learns only in the rounds it wins, so where the outputs start decides which levels they can find.
    """
    if answer is None:
        return not_answered("give three radii (pixels) for the starting discs of the three outputs")
    require(isinstance(answer, Sequence | np.ndarray) and len(answer) == 3 and all(float(r) > 0 for r in answer),
            f"the answer {answer!r} is not three positive radii", "write answer = (r1, r2, r3), in pixels")
    targets = torch.from_numpy(scene.masks[list(chain)])  # 3 x H x W bool
    probs, wins = train_from_discs([float(r) for r in answer], targets, point, steps)
    best = [max(mask_iou(p.numpy() > 0.5, scene.masks[j]) for p in probs) for j in chain]  # per level
    found = sum(v >= FOUND_IOU for v in best)
    levels = ", ".join(f"{scene.names[j]} {v:.2f}" for j, v in zip(chain, best))
    idle = [k for k, n in enumerate(wins) if n == 0]
    hint = ("under the minimum-loss rule an output learns only in the rounds it wins: start each output close to "
            "one of the answers (how large is each level around the point?)")
    if idle:
        hint = f"output(s) {idle} won no round, so they never learned; " + hint
    require(found == len(chain), f"from radii {tuple(answer)} the outputs find {found} of the {len(chain)} levels "
            f"(best IoU per level: {levels}); rounds won per output: {wins}", hint)
    return passed(f"all {len(chain)} levels found (best IoU: {levels}); rounds won per output: {wins}")
