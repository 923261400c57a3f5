"""A simulated annotator for the data engine's assisted-manual stage.

It plays the paper's annotators (section 4): it knows which object it wants
(the ground-truth mask), clicks its centre, picks the best of SAM's three
candidates as a person would from the thumbnails, then adds corrective
clicks (positive in missed regions, negative in spurious ones, each at the
point farthest from the error's boundary, the protocol of
:mod:`samwidgets.evaluation.procedural`) until the mask reaches ``target_iou``. When
``max_clicks`` are not enough it finishes the mask with the brush and eraser
(the paper's annotators had both), which costs ``brush_cost`` clicks' worth
of time. Time per image is limited (``budget_per_image``, in clicks), so a
better model, needing fewer clicks per mask, gets more masks per image
annotated: the paper's stage 1 went from 34 to 14 s per mask and from 20 to
44 masks per image as SAM was retrained.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.masks import mask_iou
from ..evaluation.clicks import interior_centre, next_click
from ..inference.amg_utils import stability_score
from ..inference.predictor import SamPredictor


@dataclass(frozen=True)
class AnnotatorConfig:
    """How the simulated annotator works; effort is counted in clicks."""

    target_iou: float = 0.9  # a mask is done at this IoU with the intended object
    max_clicks: int = 10  # then the brush finishes it
    brush_cost: int = 10  # a brush fix takes as long as this many clicks
    budget_per_image: int = 60  # time per image, in clicks

    def __post_init__(self) -> None:
        if not 0 < self.target_iou <= 1:
            raise ValueError(f"target_iou must be in (0, 1], got {self.target_iou}")
        if self.max_clicks < 1 or self.brush_cost < 0 or self.budget_per_image < 1:
            raise ValueError("max_clicks and budget_per_image must be at least 1 and brush_cost at least 0, got "
                             f"{self.max_clicks}, {self.budget_per_image} and {self.brush_cost}")


@dataclass
class Annotation:
    """One annotated object: the final mask, the clicks spent, whether the brush was needed.

    ``model_iou`` is the IoU of SAM's last proposal with the intended object
    (the final mask is that proposal unless ``brushed``); ``predicted_iou``
    and ``stability_score`` are the model's own scores of that proposal
    (SA-1B files carry both).
    """

    mask: np.ndarray  # H x W bool
    clicks: int
    brushed: bool
    effort: int  # clicks, plus brush_cost when brushed
    model_iou: float
    points: np.ndarray  # N x 2 (x, y) clicks
    labels: np.ndarray  # N: 1 positive, 0 negative
    predicted_iou: float
    stability_score: float


class SimulatedAnnotator:
    """Clicks until IoU >= target_iou with the object it has in mind; the brush finishes what clicks cannot."""

    def __init__(self, predictor: SamPredictor, config: AnnotatorConfig | None = None) -> None:
        self.predictor = predictor
        self.config = config or AnnotatorConfig()

    def annotate(self, target: np.ndarray) -> Annotation:
        """Annotate ``target`` (H x W bool) on the predictor's current image."""
        x, y = interior_centre(target)
        coords, labels = [[x, y]], [1]
        masks, predicted, low_res = self.predictor.predict(np.array(coords), np.array(labels), multimask_output=True)
        ious = [mask_iou(m, target) for m in masks]
        best = int(np.argmax(ious))  # a person picks the candidate that looks right
        mask, prompt, score, model_score = masks[best], low_res[best][None], ious[best], float(predicted[best])
        target_iou, max_clicks = self.config.target_iou, self.config.max_clicks
        while score < target_iou and len(coords) < max_clicks:
            click = next_click(mask, target)
            if click is None:
                break
            coords.append([click[0], click[1]])
            labels.append(click[2])
            refined, predicted, refined_low = self.predictor.predict(
                np.array(coords), np.array(labels), mask_input=prompt, multimask_output=False)
            mask, prompt = refined[0], refined_low
            score, model_score = mask_iou(refined[0], target), float(predicted[0])
        stability = stability_score(torch.from_numpy(prompt), self.predictor.model.mask_threshold, 1.0)
        brushed = score < target_iou
        return Annotation(mask=target.copy() if brushed else mask, clicks=len(coords), brushed=brushed,
                          effort=len(coords) + self.config.brush_cost * brushed, model_iou=score,
                          points=np.array(coords, dtype=np.float32), labels=np.array(labels, dtype=np.int64),
                          predicted_iou=model_score, stability_score=float(stability[0]))
