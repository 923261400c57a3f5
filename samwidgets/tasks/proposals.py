"""Object proposals (paper section 7.3, appendix D.3) and their metric, mask average recall.

SAM proposes objects by segmenting everything from a dense grid of point
prompts, as in automatic mask generation, with the paper's changes for
proposals: no filtering by predicted IoU or stability (thresholds 0), NMS
at box IoU 0.9 instead of 0.7 (keep near-duplicates apart only when they are
nearly identical), and up to ``max_proposals`` masks ranked by the mean of
the predicted IoU ("confidence") and the stability score.

The grid loop is :class:`samwidgets.inference.automatic_mask_generator.SamAutomaticMaskGenerator`;
here only the ranking, the NMS and the cut to K masks are new.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..data.seeds import PROPOSALS_SEED_START
from ..inference import amg_utils as amg
from ..inference.automatic_mask_generator import SamAutomaticMaskGenerator
from ..inference.images import ImageLike, as_rgb_uint8
from ..inference.predictor import SamPredictor
from ..modeling import Sam

#: The paper's recall thresholds: IoU 0.5, 0.55, ..., 0.95 (as COCO / LVIS).
IOU_THRESHOLDS = np.round(np.arange(0.5, 1.0, 0.05), 2)

Proposal = tuple[Any, float]  # (H x W bool mask, or a COCO RLE dict), score


def object_proposals(model_or_predictor: Sam | SamPredictor, image: ImageLike, points_per_side: int = 16,
                     max_proposals: int = 1000, nms_thresh: float = 0.9, points_per_batch: int = 64,
                     output: str = "mask") -> list[Proposal]:
    """Up to ``max_proposals`` object masks for ``image``, best first, with their scores.

    points_per_side: the grid is points_per_side**2 point prompts (3 masks each).
        The paper uses 64 (12288 masks); the default 16 (768 masks) takes a
        few seconds on a CPU at the bundled model's 256 px, 32 about 4x longer.
    nms_thresh: box NMS threshold (the paper's 0.9), applied in score order.
    output: "mask" (H x W bool arrays) or "rle" (compressed COCO RLE dicts, for many or large masks).

    Score = (predicted IoU + stability score) / 2, both from the decoder's
    low-res logits. Only empty masks are dropped before NMS ("filtered lightly").
    Returns a list of (mask, score), scores non-increasing.
    """
    if output not in ("mask", "rle"):
        raise ValueError(f"output must be 'mask' or 'rle', got {output!r}")
    if max_proposals < 1:
        raise ValueError(f"max_proposals must be >= 1, got {max_proposals}")
    model = model_or_predictor.model if isinstance(model_or_predictor, SamPredictor) else model_or_predictor
    # box_nms_thresh=1.0: the generator's own NMS (ranked by predicted IoU alone) keeps everything;
    # ours below ranks by the paper's score.
    generator = SamAutomaticMaskGenerator(model, points_per_side=points_per_side, points_per_batch=points_per_batch,
                                          pred_iou_thresh=0.0, stability_score_thresh=0.0, box_nms_thresh=1.0)
    with torch.no_grad():
        candidates = generator.generate_candidates(as_rgb_uint8(image))
    if len(candidates) == 0:
        return []
    scores = (candidates.iou_preds.float() + candidates.stability.float()) / 2  # K
    keep = amg.nms(candidates.boxes.float(), scores, nms_thresh)[:max_proposals]  # <= max_proposals, best first
    kept = candidates.select(keep)
    kept_scores = scores[keep].tolist()
    if output == "rle":
        return list(zip(kept.rles, kept_scores))
    return [(amg.decode_rle(rle), s) for rle, s in zip(kept.rles, kept_scores)]


# ----------------------------------------------------------------------------------------------
# metric
# ----------------------------------------------------------------------------------------------


def _to_rles(masks: Sequence[Any]) -> list[dict[str, Any]]:
    """Masks (H x W bool arrays or COCO RLE dicts, mixed) -> pycocotools RLEs."""
    out = []
    for m in masks:
        if isinstance(m, dict):
            out.append(amg.to_pycocotools_rle(m))
        else:
            out.append(amg.to_pycocotools_rle(amg.encode_rle(np.asarray(m, dtype=bool)[None])[0]))
    return out


def _mask_ious(proposals: Sequence[Any], gt_masks: Sequence[Any]) -> np.ndarray:
    """D x G mask IoU between proposals and ground-truth masks (pycocotools)."""
    from pycocotools import mask as mask_utils

    if len(proposals) == 0 or len(gt_masks) == 0:
        return np.zeros((len(proposals), len(gt_masks)))
    # the ignore: _to_rles gives pycocotools' own RLEs, which its stubs type with a private TypedDict
    ious = mask_utils.iou(_to_rles(proposals), _to_rles(gt_masks),  # pyright: ignore[reportArgumentType]
                          [0] * len(gt_masks))
    return np.asarray(ious, dtype=np.float64).reshape(len(proposals), len(gt_masks))


def recall_hits(proposals: Sequence[Proposal], gt_masks: Sequence[Any] | np.ndarray,
                ks: Sequence[int] = (10, 100, 1000), iou_thresholds: Sequence[float] | np.ndarray = IOU_THRESHOLDS,
                matching: str = "best") -> np.ndarray:
    """T x len(ks) counts of ground-truth masks recalled by the top-k proposals at each IoU threshold.

    The building block of :func:`mask_average_recall`; counts (not fractions)
    so that several images can be pooled, as COCO pools all ground truths.
    """
    if matching not in ("best", "one_to_one"):
        raise ValueError(f"matching must be 'best' or 'one_to_one', got {matching!r}")
    order = np.argsort([-float(s) for _, s in proposals], kind="stable")  # D, best first
    ious = _mask_ious([proposals[i][0] for i in order], list(gt_masks))  # D x G
    d, g = ious.shape
    hits = np.zeros((len(iou_thresholds), len(ks)), dtype=np.int64)
    if d == 0 or g == 0:
        return hits
    never = np.iinfo(np.int64).max  # beyond every k
    for ti, t in enumerate(iou_thresholds):
        # rank (0-based) of the proposal that recalls each ground truth; `never` if none does
        if matching == "best":
            good = ious >= t  # D x G
            rank = np.where(good.any(0), good.argmax(0), never)  # G
        else:  # COCOeval: each proposal, best first, takes the unmatched GT it overlaps most (if >= t)
            rank = np.full(g, never)
            for r in range(d):
                free = np.where(rank == never, ious[r], -1.0)  # G
                j = int(np.argmax(free))
                if free[j] >= t:
                    rank[j] = r
        for ki, k in enumerate(ks):
            hits[ti, ki] = int((rank < k).sum())
    return hits


def mask_average_recall(proposals: Sequence[Proposal], gt_masks: Sequence[Any] | np.ndarray,
                        ks: Sequence[int] = (10, 100, 1000),
                        iou_thresholds: Sequence[float] | np.ndarray = IOU_THRESHOLDS,
                        matching: str = "best") -> dict[str, float]:
    """Mask AR@k: recall of ``gt_masks`` by the top-k ``proposals``, averaged over IoU thresholds.

    proposals: (mask, score) pairs, masks as H x W bool arrays or COCO RLEs;
        ranked here by score (highest first), so their order does not matter.
    gt_masks: G ground-truth masks (M x H x W array, or a list of masks / RLEs).
    matching: "best" (default): a ground truth is recalled at threshold t when
        *any* of the top-k proposals has mask IoU >= t with it (one proposal
        may recall several ground truths). "one_to_one": COCOeval's greedy
        matching, each proposal (best first) claims the unclaimed ground truth
        it overlaps most; never higher than "best".
    Returns {"AR@k": mean over thresholds of recalled / G} for each k
    (nan when there is no ground truth).
    """
    g = len(gt_masks)
    hits = recall_hits(proposals, gt_masks, ks, iou_thresholds, matching)  # T x len(ks)
    return {f"AR@{k}": (float(hits[:, i].mean() / g) if g else float("nan")) for i, k in enumerate(ks)}


# ----------------------------------------------------------------------------------------------
# held-out evaluation
# ----------------------------------------------------------------------------------------------


def evaluate_proposals(model: Sam | None = None, num_scenes: int = 20, seed_start: int = PROPOSALS_SEED_START,
                       levels: Sequence[int] = (0, 1, 2), points_per_side: int = 16,
                       ks: Sequence[int] = (10, 100, 1000), matching: str = "best") -> dict[str, Any]:
    """Mask AR@k of :func:`object_proposals` on ``num_scenes`` held-out procedural scenes.

    Ground truth: every mask of the scene whose level is in ``levels`` (default:
    wholes, parts and subparts, since proposals should find objects at every
    granularity). Recall is pooled over all ground truths of all scenes, as in
    COCO. Default model: the bundled one. Returns {"AR@k"..., "scenes",
    "gt_masks", "proposals_per_scene" (mean), "points_per_side", "seconds"}.
    """
    from ..data import SceneGenerator

    if model is None:
        from ..hub.default_model import load_default

        model = load_default()
    start = time.perf_counter()
    generator = SceneGenerator(image_size=model.config.image_size)
    hits = np.zeros((len(IOU_THRESHOLDS), len(ks)), dtype=np.int64)
    total_gt, total_props = 0, 0
    for s in range(num_scenes):
        scene = generator(seed_start + s)
        gt = scene.masks[np.isin(scene.levels, list(levels))]  # G x H x W
        props = object_proposals(model, scene.image, points_per_side=points_per_side, max_proposals=max(ks),
                                 output="rle")
        hits += recall_hits(props, gt, ks, IOU_THRESHOLDS, matching)
        total_gt += len(gt)
        total_props += len(props)
    out: dict[str, Any] = {f"AR@{k}": float(hits[:, i].mean() / max(total_gt, 1)) for i, k in enumerate(ks)}
    out.update(scenes=num_scenes, gt_masks=total_gt, proposals_per_scene=total_props / max(num_scenes, 1),
               points_per_side=points_per_side, matching=matching, seconds=time.perf_counter() - start)
    return out
