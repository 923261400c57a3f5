"""What the labelled fast mode costs: bf16 against the exact fp32 path, in speed and in mask IoU.

``python -m samwidgets.bench --precision`` prints, per configuration, the
encoder seconds per image in each precision and how much the masks move:
the mean (and worst) IoU between the fp32 and the bf16 masks over a fixed
set of held-out scenes and point prompts, and the largest difference of the
low-res logits. Every fast mode here is reported this way, beside its speed.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch

from .build import build_sam
from .default_model import DEFAULT_MODEL_NAME, load_default
from .modeling import CONFIGS, Sam
from .predictor import SamPredictor
from .training.datasets import HELD_OUT_SEED_START

#: Held-out scenes of the precision check (fixed seeds, so every run measures the same prompts).
PRECISION_SEED_START = HELD_OUT_SEED_START + 40_000


@dataclass
class PrecisionRow:
    config: str
    weights: str  # "bundled" or "random"
    encode_fp32_s: float
    encode_bf16_s: float
    mean_iou: float  # fp32 vs bf16 masks, over images x points x 3 outputs
    min_iou: float
    max_logit_diff: float
    masks: int

    def cells(self) -> list[str]:
        return [self.config, self.weights, f"{self.encode_fp32_s:.2f}", f"{self.encode_bf16_s:.2f}",
                f"{self.encode_fp32_s / self.encode_bf16_s:.2f}", f"{self.mean_iou:.4f}", f"{self.min_iou:.4f}",
                f"{self.max_logit_diff:.3g}", str(self.masks)]


HEADER = ["config", "weights", "fp32 encoder s", "bf16 encoder s", "speed-up", "mean mask IoU bf16 vs fp32",
          "worst mask IoU", "max abs low-res logit diff", "masks"]


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def check_images(size: int, count: int) -> list[np.ndarray]:
    """``count`` held-out procedural scenes at size x size (the same on every machine)."""
    from .data import SceneGenerator

    generator = SceneGenerator(image_size=size)
    return [generator(PRECISION_SEED_START + i).image for i in range(count)]


def grid_points(height: int, width: int, per_side: int) -> np.ndarray:
    """per_side**2 points (x, y) at the centres of a regular grid over the image."""
    offsets = (np.arange(per_side) + 0.5) / per_side
    xs, ys = np.meshgrid(offsets * width, offsets * height)
    return np.stack([xs.ravel(), ys.ravel()], axis=1)  # P x 2


def _encode_seconds(predictor: SamPredictor, image: np.ndarray) -> float:
    start = time.perf_counter()
    predictor.set_image(image)
    return time.perf_counter() - start


def compare_precisions(model: Sam, images: list[np.ndarray], points_per_side: int = 3, config: str = "",
                       weights: str = "") -> PrecisionRow:
    """Encode each image in fp32 and in bf16 and compare the 3 masks of every grid point."""
    exact = SamPredictor(model, cache_size=0, precision="fp32")
    fast = SamPredictor(model, cache_size=0, precision="bf16")
    seconds: dict[str, list[float]] = {"fp32": [], "bf16": []}
    ious, logit_diff = [], 0.0
    with torch.no_grad():
        for image in images:
            seconds["fp32"].append(_encode_seconds(exact, image))
            seconds["bf16"].append(_encode_seconds(fast, image))
            for point in grid_points(*image.shape[:2], points_per_side):
                prompt = {"point_coords": point[None], "point_labels": np.array([1]), "multimask_output": True}
                masks_a, _, low_a = exact.predict(**prompt)  # 3 x H x W, 3, 3 x s x s
                masks_b, _, low_b = fast.predict(**prompt)
                ious += [_mask_iou(a, b) for a, b in zip(masks_a, masks_b)]
                logit_diff = max(logit_diff, float(np.abs(low_a - low_b).max()))
    return PrecisionRow(config=config, weights=weights, encode_fp32_s=statistics.median(seconds["fp32"]),
                        encode_bf16_s=statistics.median(seconds["bf16"]), mean_iou=float(np.mean(ious)),
                        min_iou=float(np.min(ious)), max_logit_diff=logit_diff, masks=len(ious))


def precision_table(configs: list[str], num_images: int = 3, points_per_side: int = 3, seed: int = 0) -> str:
    """The markdown table of :func:`compare_precisions` for each configuration.

    The bundled model is used with its trained weights (its masks mean
    something); other configurations get seeded random weights (timing and
    numerical agreement only).
    """
    rows = []
    for name in configs:
        if name == DEFAULT_MODEL_NAME:
            model, weights = load_default("cpu"), "bundled"
        else:
            torch.manual_seed(seed)
            model, weights = build_sam(CONFIGS[name]).eval(), "random"
        images = check_images(model.config.image_size, num_images)
        rows.append(compare_precisions(model, images, points_per_side, config=name, weights=weights))
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(lines)
