"""Single-point valid mask (paper section 7.1): one click at an object's centre, how good is the mask?

The protocol itself lives in :mod:`samwidgets.evaluation.procedural` (first click at the
maximum of the interior distance transform, further clicks at the centre of
the largest error region, mIoU after 1, 2, 3, 5, 9 clicks); this module only
gives it the task-style interface of :mod:`samwidgets.tasks` and reuses it.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import numpy as np

from ..data.seeds import EVALUATE_SEED_START
from ..evaluation.clicks import interior_centre
from ..evaluation.procedural import evaluate
from ..inference.predictor import SamPredictor
from ..modeling import Sam


def segment_from_point(predictor: SamPredictor, point: tuple[float, float] | np.ndarray) -> tuple[np.ndarray, float]:
    """The most confident of SAM's 3 masks for one positive click at ``point`` = (x, y) in image pixels.

    The predictor must already hold the image (``predictor.set_image``).
    Returns (H x W bool mask, its predicted IoU).
    """
    coords = np.asarray(point, dtype=np.float64).reshape(1, 2)  # 1 x 2
    masks, scores, _ = predictor.predict(coords, np.array([1]), multimask_output=True)  # 3 x H x W, 3
    best = int(np.argmax(scores))
    return masks[best], float(scores[best])


def segment_object_centre(predictor: SamPredictor, target: np.ndarray) -> tuple[np.ndarray, float]:
    """:func:`segment_from_point` at the protocol's first click for ``target`` (H x W bool): its interior centre."""
    return segment_from_point(predictor, interior_centre(target))


def single_point_miou(model: Sam, num_scenes: int = 50, seed_start: int = EVALUATE_SEED_START,
                      max_masks_per_scene: int | None = 8) -> dict[str, Any]:
    """The protocol of :func:`samwidgets.evaluation.procedural.evaluate` on ``num_scenes`` held-out scenes, as a dict.

    Same defaults (and so the same scenes and numbers) as ``python -m samwidgets evaluate``.
    Keys: those of :class:`samwidgets.evaluation.procedural.EvalResult` (``miou_confident`` / ``miou_oracle``
    by number of clicks, ``miou_box``, ``ambiguity_score``...) plus ``seconds`` (wall time).
    """
    start = time.perf_counter()
    result = evaluate(model, num_scenes=num_scenes, seed_start=seed_start, max_masks_per_scene=max_masks_per_scene)
    return {**asdict(result), "seconds": time.perf_counter() - start}


def evaluate_single_point(model: Sam | None = None, num_scenes: int = 20, **kwargs: Any) -> dict[str, Any]:
    """:func:`single_point_miou` with the bundled model by default (``samwidgets.load_default()``)."""
    if model is None:
        from ..hub.default_model import load_default

        model = load_default()
    return single_point_miou(model, num_scenes=num_scenes, **kwargs)
