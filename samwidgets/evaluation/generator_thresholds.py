"""The automatic mask generator's filtering thresholds for a model, chosen on photos with human segments.

The reference's thresholds (predicted IoU >= 0.88, stability >= 0.95) suit the official models, whose
IoU head is calibrated on SA-1B. A small model's IoU head and stability scores sit elsewhere, so the
same numbers keep nothing or everything. This module measures instead of guessing
(``samwidgets calibrate-generator``):

1. the generator runs on each calibration photo with **no** filtering (both thresholds 0), so every
   candidate that survives duplicate removal is kept with its predicted IoU and stability score;
2. each candidate is matched to the human segments of that photo (every annotator's distinct
   segments, :func:`samwidgets.data.bsds.unique_segments`): a candidate is *right* when its IoU with
   some segment is at least 0.5, a segment is *found* when some kept candidate reaches 0.5 with it;
3. for every pair of thresholds on a grid, precision (right / kept) and recall (found / segments)
   are counted over all photos, and the pair with the best F1 is chosen (ties: the higher pair).

Filtering after duplicate removal is not quite what the generator does (it filters first), but it is
the same for the IoU threshold, which also orders the removal, and close for stability. Calibrate on
a split you do not evaluate on (BSDS500 train).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from ..data.bsds import BsdsPhoto, unique_segments
from ..inference.automatic_mask_generator import SamAutomaticMaskGenerator

__all__ = ["IOU_GRID", "STABILITY_GRID", "MATCH_IOU", "Candidates", "ThresholdChoice", "calibrate_thresholds",
           "counts_at", "photo_candidates", "threshold_table"]

IOU_GRID = tuple(round(0.05 * i, 2) for i in range(20))  # 0.0 .. 0.95
STABILITY_GRID = (0.0, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)
MATCH_IOU = 0.5


@dataclass
class Candidates:
    """One photo's unfiltered generator output against its human segments."""

    predicted_iou: np.ndarray  # K
    stability: np.ndarray  # K
    best_iou: np.ndarray  # K: each candidate's best IoU with any segment
    pair_iou: np.ndarray  # K x G: IoU of candidate k with segment g


@dataclass
class ThresholdChoice:
    pred_iou_thresh: float
    stability_score_thresh: float
    precision: float
    recall: float
    f1: float
    masks_per_photo: float
    photos: int
    segments: int
    grid: list[dict[str, float]] = field(default_factory=list)  # every pair's counts, for the record

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pairwise_iou(masks: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """K x P and G x P bool (flattened) -> K x G IoU, by matrix products."""
    a = torch.from_numpy(masks).float()  # K x P
    b = torch.from_numpy(segments).float()  # G x P
    inter = a @ b.T  # K x G
    union = a.sum(1, keepdim=True) + b.sum(1)[None, :] - inter
    return (inter / union.clamp(min=1)).numpy()


def photo_candidates(generator: SamAutomaticMaskGenerator, photo: BsdsPhoto, min_fraction: float = 0.005,
                     max_fraction: float = 0.9) -> Candidates:
    """Run ``generator`` (made with both thresholds 0) on a photo and match its masks to the human segments."""
    records = generator.generate(photo.image)
    segments = unique_segments(photo, min_fraction, max_fraction)
    h, w = photo.image.shape[:2]
    if generator.output_mode != "binary_mask":
        raise ValueError("calibration reads binary masks: make the generator with output_mode='binary_mask'")
    masks = (np.stack([r["segmentation"] for r in records]).reshape(len(records), h * w) if records
             else np.zeros((0, h * w), bool))
    truth = np.stack(segments).reshape(len(segments), h * w) if segments else np.zeros((0, h * w), bool)
    pair = _pairwise_iou(masks, truth) if len(records) and len(segments) else np.zeros((len(records), len(segments)))
    return Candidates(
        predicted_iou=np.array([r["predicted_iou"] for r in records], dtype=np.float64),
        stability=np.array([r["stability_score"] for r in records], dtype=np.float64),
        best_iou=pair.max(axis=1) if pair.shape[1] else np.zeros(len(records)),
        pair_iou=pair,
    )


def counts_at(photos: list[Candidates], pred_iou_thresh: float, stability_score_thresh: float) -> dict[str, float]:
    """Precision, recall, F1 and masks per photo when the candidates are filtered at this pair of thresholds."""
    segments = sum(c.pair_iou.shape[1] for c in photos)
    kept = right = found = 0
    for c in photos:
        keep = (c.predicted_iou >= pred_iou_thresh) & (c.stability >= stability_score_thresh)  # K
        kept += int(keep.sum())
        right += int((c.best_iou[keep] >= MATCH_IOU).sum())
        if c.pair_iou.shape[0]:
            found += int((c.pair_iou[keep] >= MATCH_IOU).any(axis=0).sum())
    precision = right / kept if kept else 0.0
    recall = found / segments if segments else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return dict(pred_iou_thresh=pred_iou_thresh, stability_score_thresh=stability_score_thresh,
                precision=precision, recall=recall, f1=f1, masks_per_photo=kept / max(len(photos), 1))


def calibrate_thresholds(photos: list[Candidates], iou_grid: tuple[float, ...] = IOU_GRID,
                         stability_grid: tuple[float, ...] = STABILITY_GRID) -> ThresholdChoice:
    """The threshold pair with the best F1 of masks against segments (see the module docstring)."""
    segments = sum(c.pair_iou.shape[1] for c in photos)
    if not photos or segments == 0:
        raise ValueError("no human segments to calibrate against: give photos with ground truth")
    grid = [counts_at(photos, t_iou, t_stab) for t_iou in iou_grid for t_stab in stability_grid]
    best = grid[0]
    for row in grid[1:]:
        if row["f1"] >= best["f1"]:  # ">=": among equal F1, the higher thresholds (later in the grid)
            best = row
    return ThresholdChoice(**best, photos=len(photos), segments=segments, grid=grid)


def threshold_table(photos: list[Candidates], choice: ThresholdChoice, reference: dict[str, float]) -> str:
    """Markdown: the chosen pair, the reference's pair and no filtering, with their precision and recall."""
    lines = ["| thresholds | predicted IoU >= | stability >= | masks per photo | precision@0.5 | recall@0.5 | F1 |",
             "|---|---|---|---|---|---|---|"]
    for label, t_iou, t_stab in (("chosen (best F1)", choice.pred_iou_thresh, choice.stability_score_thresh),
                                 ("the reference's", reference["pred_iou_thresh"], reference["stability_score_thresh"]),
                                 ("no filtering", 0.0, 0.0)):
        r = counts_at(photos, t_iou, t_stab)
        lines.append(f"| {label} | {t_iou:g} | {t_stab:g} | {r['masks_per_photo']:.1f} | {r['precision']:.3f} | "
                     f"{r['recall']:.3f} | {r['f1']:.3f} |")
    return "\n".join(lines)
