"""The edge benchmark of this kit: SAM's zero-shot edges and the Sobel baseline on held-out scenes.

Generates held-out procedural scenes (seeds never used in training), draws their ground truth
(:func:`.ground_truth.scene_boundaries`), runs both detectors and scores them with the same
BSDS-style metrics (:func:`.metrics.edge_metrics`), so the two numbers are directly comparable
with each other, though not with the paper's BSDS500 numbers (``BSDS_SAM_VIT_H``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...inference.predictor import SamPredictor
from ...modeling import Sam
from .detect import detect_edges
from .filters import sobel_baseline
from .ground_truth import scene_boundaries
from .metrics import edge_metrics

__all__ = ["evaluate_edges"]


def evaluate_edges(model: Sam | None = None, num_scenes: int = 12, seed_start: int | None = None,
                   image_size: int = 256, level: str | int = "subpart", points_per_side: int = 16,
                   thresholds: int | Sequence[float] = 99, max_dist: float = 0.0075) -> dict[str, Any]:
    """SAM's zero-shot edges and the Sobel baseline on held-out procedural scenes, with the BSDS metrics.

    model: default the bundled model (``samwidgets.load_default()``).
    seed_start: the first scene seed; default ``samwidgets.data.seeds.EDGES_SEED_START``
    (held out: never used in training). level: the
    ground truth (see :func:`scene_boundaries`).

    Returns {"sam": metrics, "sobel": metrics, "num_scenes", "image_size",
    "level", "seeds", "sam_seconds", "sobel_seconds"} where metrics is the
    dict of :func:`edge_metrics` without its curves, and the seconds are the
    wall time of computing the edge maps (not the metrics).
    """
    from ...data.scenes import SceneGenerator
    from ...data.seeds import EDGES_SEED_START
    from ...hub.default_model import load_default

    if num_scenes < 1:
        raise ValueError(f"num_scenes must be >= 1, got {num_scenes}")
    model = load_default() if model is None else model
    start = EDGES_SEED_START if seed_start is None else int(seed_start)
    seeds = list(range(start, start + num_scenes))
    generator = SceneGenerator(image_size=image_size)
    predictor = SamPredictor(model)
    scenes = [generator(seed) for seed in seeds]
    gts = [scene_boundaries(scene, level) for scene in scenes]  # H x W bool each

    tic = time.perf_counter()
    sam_maps = [detect_edges(predictor, scene.image, points_per_side=points_per_side) for scene in scenes]
    sam_seconds = time.perf_counter() - tic
    tic = time.perf_counter()
    sobel_maps = [sobel_baseline(scene.image) for scene in scenes]
    sobel_seconds = time.perf_counter() - tic

    def summary(maps: list[np.ndarray]) -> dict[str, float]:
        m = edge_metrics(maps, gts, thresholds=thresholds, max_dist=max_dist)
        return {k: m[k] for k in ("ods", "ois", "ap", "r50", "ods_threshold")}

    return {
        "sam": summary(sam_maps),
        "sobel": summary(sobel_maps),
        "num_scenes": num_scenes,
        "image_size": image_size,
        "level": level,
        "seeds": seeds,
        "sam_seconds": sam_seconds,
        "sobel_seconds": sobel_seconds,
    }
