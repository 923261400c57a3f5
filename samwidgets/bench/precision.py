"""What the labelled fast modes cost: bf16 and torch.compile against the exact fp32 path, in speed and mask IoU.

``python -m samwidgets bench --precision`` prints, per configuration, the
encoder seconds per image of the exact path and of the fast mode and how
much the masks move: the mean (and worst) IoU between the fp32 and the fast
mode's masks over a fixed set of held-out scenes and point prompts, and the
largest difference of the low-res logits. Every fast mode here is reported
this way, beside its speed; ``--compile`` adds the torch.compile one.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
import torch

from ..data.masks import mask_iou
from ..data.seeds import PRECISION_SEED_START
from ..hub.build import build_sam
from ..hub.default_model import BUNDLED_MODEL_NAME, load_default
from ..inference.predictor import SamPredictor
from ..modeling import CONFIGS, Sam


class FastModeArgs(TypedDict, total=False):
    """The SamPredictor arguments that switch on a fast mode."""

    precision: str
    compile: bool


#: The fast modes measured against the exact path: their SamPredictor arguments.
FAST_MODES: dict[str, FastModeArgs] = {
    "bf16": {"precision": "bf16"},
    "fp32 + torch.compile": {"compile": True},
}


@dataclass
class PrecisionRow:
    config: str
    weights: str  # "bundled" or "random"
    mode: str  # a key of FAST_MODES
    encode_fp32_s: float
    encode_fast_s: float  # the compiled mode's without its first, compiling call
    mean_iou: float  # fp32 vs fast-mode masks, over images x points x 3 outputs
    min_iou: float
    max_logit_diff: float
    masks: int

    def cells(self) -> list[str]:
        return [self.config, self.weights, self.mode, f"{self.encode_fp32_s:.2f}", f"{self.encode_fast_s:.2f}",
                f"{self.encode_fp32_s / self.encode_fast_s:.2f}", f"{self.mean_iou:.4f}", f"{self.min_iou:.4f}",
                f"{self.max_logit_diff:.3g}", str(self.masks)]


HEADER = ["config", "weights", "fast mode", "fp32 encoder s", "fast mode encoder s", "speed-up",
          "mean mask IoU vs fp32", "worst mask IoU", "max abs low-res logit diff", "masks"]


def check_images(size: int, count: int) -> list[np.ndarray]:
    """``count`` held-out procedural scenes at size x size (the same on every machine)."""
    from ..data import SceneGenerator

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
                       weights: str = "", mode: str = "bf16") -> PrecisionRow:
    """Encode each image with the exact path and in the fast ``mode`` (a key of :data:`FAST_MODES`) and
    compare the 3 masks of every grid point. A compiled encoder is first run once, untimed: that call compiles."""
    exact = SamPredictor(model, cache_size=0, precision="fp32")
    fast = SamPredictor(model, cache_size=0, **FAST_MODES[mode])
    seconds: dict[str, list[float]] = {"fp32": [], "fast": []}
    ious, logit_diff = [], 0.0
    with torch.no_grad():
        if fast.compile:
            fast.set_image(images[0])
        for image in images:
            seconds["fp32"].append(_encode_seconds(exact, image))
            seconds["fast"].append(_encode_seconds(fast, image))
            h, w = image.shape[:2]
            for point in grid_points(h, w, points_per_side):
                coords, labels = point[None], np.array([1])  # 1 x 2, 1
                masks_a, _, low_a = exact.predict(coords, labels, multimask_output=True)  # 3 x H x W, 3, 3 x s x s
                masks_b, _, low_b = fast.predict(coords, labels, multimask_output=True)
                ious += [mask_iou(a, b) for a, b in zip(masks_a, masks_b)]
                logit_diff = max(logit_diff, float(np.abs(low_a - low_b).max()))
    return PrecisionRow(config=config, weights=weights, mode=mode, encode_fp32_s=statistics.median(seconds["fp32"]),
                        encode_fast_s=statistics.median(seconds["fast"]), mean_iou=float(np.mean(ious)),
                        min_iou=float(np.min(ious)), max_logit_diff=logit_diff, masks=len(ious))


def precision_table(configs: list[str], num_images: int = 3, points_per_side: int = 3, seed: int = 0,
                    modes: tuple[str, ...] = ("bf16",)) -> str:
    """The markdown table of :func:`compare_precisions` for each configuration and fast mode.

    The bundled model is used with its trained weights (its masks mean
    something); other configurations get seeded random weights (timing and
    numerical agreement only).
    """
    rows = []
    for name in configs:
        if name == BUNDLED_MODEL_NAME:
            model, weights = load_default("cpu"), "bundled"
        else:
            torch.manual_seed(seed)
            model, weights = build_sam(CONFIGS[name]).eval(), "random"
        images = check_images(model.config.image_size, num_images)
        rows += [compare_precisions(model, images, points_per_side, config=name, weights=weights, mode=mode)
                 for mode in modes]
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(lines)
