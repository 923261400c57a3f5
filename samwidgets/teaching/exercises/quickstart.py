"""Checkers for the exercises of ``00_quickstart.ipynb``: one click and its three masks, and the canvas's COCO file.

Each checker measures the answer (runs the model on the click, reads the saved file) and compares the measurement
with the goal; see :mod:`samwidgets.teaching.exercises` for the three outcomes of a check.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ...data.masks import mask_iou
from ...data.scenes import Scene
from ...evaluation.clicks import interior_centre
from ...inference.predictor import SamPredictor
from ...widget.export import read_coco
from . import ExerciseFailed, not_answered, passed, require

__all__ = ["check_one_click", "check_saved_objects"]

#: A click may give a worse best mask than a click in the object's middle by this much, no more.
MIDDLE_CLICK_SLACK = 0.1
#: The chosen mask may be this much below the best of the three (two masks can be nearly equal).
CHOICE_SLACK = 0.02


def whole_object(scene: Scene, name: str) -> int:
    """Index of the scene's first whole object (level 0) called ``name``."""
    for j, (n, level) in enumerate(zip(scene.names, scene.levels)):
        if n == name and level == 0:
            return j
    raise ValueError(f"the scene has no whole object called {name!r}; its objects: "
                     f"{[n for n, level in zip(scene.names, scene.levels) if level == 0]}")


def one_click_masks(predictor: SamPredictor, image: np.ndarray, xy: tuple[float, float]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """SAM's three masks (3 x H x W bool) and their predicted IoUs (3) for one positive click at ``xy``."""
    predictor.set_image(image)  # from the predictor's cache when it has seen the image
    masks, scores, _ = predictor.predict(point_coords=np.array([xy], dtype=float), point_labels=np.array([1]))
    return masks, scores


def check_one_click(answer: tuple[float, float, int] | None, predictor: SamPredictor, scene: Scene,
                    name: str = "die") -> bool:
    """Check one click on the object ``name`` of ``scene`` and the choice of one of SAM's three masks.

    answer: ``(x, y, k)``, a click at pixel (x, y) and the index k (0, 1 or 2) of the mask that is the object.
    The click must lie on the object and give a mask of it about as good as a click in its middle does, and
    ``masks[k]`` must be the best of the three by true IoU: the predicted IoU is the model's guess, and the
    point of the exercise is to look at the three masks instead of trusting it.
    """
    if answer is None:
        return not_answered(f"give (x, y, k): a click on the {name} and the index k of the mask that is the {name}")
    require(isinstance(answer, Sequence) and len(answer) == 3,
            f"the answer {answer!r} is not three numbers", "write answer = (x, y, k), e.g. (120, 80, 1)")
    x, y, k = answer
    target_index = whole_object(scene, name)
    target = scene.masks[target_index]  # H x W bool
    h, w = target.shape
    col, row = int(round(float(x))), int(round(float(y)))
    require(0 <= col < w and 0 <= row < h, f"the click ({x}, {y}) lies outside the {w} x {h} image",
            "x counts columns from the left, y rows from the top, both from 0")
    if not target[row, col]:
        swapped = 0 <= row < w and 0 <= col < h and target[col, row]
        require(not swapped, f"the click (x={x}, y={y}) is not on the {name}, but (x={y}, y={x}) would be",
                "points are (x, y) = (column, row), the opposite order of a NumPy index mask[row, col]")
        require(False, f"the click ({x}, {y}) is not on the {name}",
                f"look at scene.masks[{target_index}] (the {name}'s ground truth) and click where it is True")
    require(k in (0, 1, 2), f"k = {k!r} is not the index of one of the three masks", "k is 0, 1 or 2")

    masks, scores = one_click_masks(predictor, scene.image, (float(x), float(y)))
    ious = np.array([mask_iou(m, target) for m in masks])  # 3
    middle_masks, _ = one_click_masks(predictor, scene.image, interior_centre(target))
    middle_best = max(mask_iou(m, target) for m in middle_masks)
    require(ious.max() >= middle_best - MIDDLE_CLICK_SLACK,
            f"your click gives the {name} with IoU {ious.max():.2f} at best, a click in its middle with "
            f"{middle_best:.2f}", "near an edge a click is ambiguous: click where the object is thickest")
    best = int(np.argmax(ious))
    require(ious[k] >= ious[best] - CHOICE_SLACK,
            f"masks[{k}] has IoU {ious[k]:.2f} with the {name}, but masks[{best}] has {ious[best]:.2f}",
            f"the scores are the model's guesses, not the truth: compare each mask with the {name}'s ground truth "
            "(mask_iou), or look at the three masks")
    confident = int(np.argmax(scores))
    note = ("the most confident one too" if confident == k else
            f"the model was most confident of masks[{confident}] (true IoU {ious[confident]:.2f})")
    return passed(f"masks[{k}] is the {name}, true IoU {ious[k]:.2f}; {note}")


def check_saved_objects(answer: str | os.PathLike | None, scene: Scene, image_name: str = "scene_c.png",
                        min_objects: int = 2, min_iou: float = 0.8) -> bool:
    """Check a COCO file written by ``SamCanvas.to_coco``: at least ``min_objects`` objects on ``image_name``.

    Each object kept on that image must be one of the scene's whole objects (IoU at least ``min_iou`` with
    its ground truth), a different one each, labelled with its name, because a saved annotation is only
    useful if the mask is right and says what it is.
    """
    if answer is None:
        return not_answered(f"keep {min_objects} objects of {image_name} with the canvas, then give the path "
                            "that canvas.to_coco(...) returned")
    try:
        saved = read_coco(answer)
    except ValueError as error:
        raise ExerciseFailed(f"{answer} cannot be read as a COCO file: {error}\n"
                             "Hint: canvas.to_coco(path) writes the file and returns its path") from error
    names = [s.file_name for s in saved]
    entry = next((s for s in saved if s.file_name == image_name), None)
    require(entry is not None, f"the file holds no image called {image_name}; its images are {names}",
            "the canvas names its images with names=[...]; go to the scene with canvas.go_to(index)")
    assert entry is not None  # require() has raised otherwise
    objects = entry.objects
    require(len(objects) >= min_objects, f"{image_name} has {len(objects)} saved object(s), not {min_objects}",
            "after each object, canvas.new_object(label) keeps it; then write the file again with to_coco")
    wholes = [j for j in range(len(scene)) if scene.levels[j] == 0]
    matched: list[int] = []
    for obj in objects:
        require(obj.mask.shape == scene.masks.shape[1:],
                f"the object {obj.label!r} is {obj.mask.shape[1]} x {obj.mask.shape[0]} pixels, not the scene's",
                f"annotate {image_name}, the scene the exercise names")
        ious = [mask_iou(obj.mask, scene.masks[j]) for j in wholes]
        j = wholes[int(np.argmax(ious))]
        require(max(ious) >= min_iou,
                f"the object {obj.label!r} overlaps the {scene.names[j]} best, with IoU {max(ious):.2f} "
                f"(at least {min_iou} needed)",
                "refine it before keeping it: click again where the mask is wrong (negative clicks where it "
                "spills over), or drag a box around the object (canvas.set_box)")
        require(obj.label.strip().lower() == scene.names[j].lower(),
                f"the mask of the {scene.names[j]} is labelled {obj.label!r}",
                "canvas.new_object(label) names the object; scene.names has the name of every mask")
        require(j not in matched, f"two saved objects are the same {scene.names[j]}",
                "keep the first object, then start the second one on another object")
        matched.append(j)
    kept = ", ".join(f"{scene.names[j]} (IoU {mask_iou(o.mask, scene.masks[j]):.2f})" for o, j in zip(objects, matched))
    return passed(f"{len(objects)} objects saved on {image_name}: {kept}")
