"""BSDS-style boundary metrics (ODS, OIS, AP, R50) of edge-strength maps against boundary maps.

:func:`edge_metrics` follows the BSDS500 benchmark (``edgesEvalImg`` / ``collect_eval_bdry``):
binarise each map at many thresholds, thin, match predicted to true boundary pixels within a
tolerance, and summarise the precision-recall curve. Kept apart from the detectors so any edge
map (SAM's, the Sobel baseline's, a file's) is scored by the same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._optional import scipy_distance_transform, skimage_thin

__all__ = ["BSDS_SAM_VIT_H", "edge_metrics"]

#: The paper's zero-shot numbers for SAM (ViT-H) on BSDS500 (Table 3). Real photos, human annotations:
#: not comparable with the procedural-scene numbers of :func:`samwidgets.tasks.edges.evaluate_edges`.
BSDS_SAM_VIT_H = {"ods": 0.768, "ois": 0.786, "ap": 0.794, "r50": 0.928}


def _threshold_values(thresholds: int | Sequence[float]) -> np.ndarray:
    """An int n -> n thresholds evenly inside (0, 1) (BSDS uses 99); a sequence -> those thresholds, sorted."""
    if isinstance(thresholds, (int, np.integer)):
        if thresholds < 1:
            raise ValueError(f"thresholds must be >= 1 (or a sequence of values), got {thresholds}")
        return np.linspace(1.0 / (thresholds + 1), 1.0 - 1.0 / (thresholds + 1), int(thresholds))
    values = np.sort(np.asarray(thresholds, dtype=np.float64).ravel())
    if values.size == 0:
        raise ValueError("thresholds is empty")
    return values


def _match_counts(pred: np.ndarray, gt: np.ndarray, thresholds: np.ndarray, max_dist: float) -> np.ndarray:
    """Matching counts of one image at every threshold: T x 4 int64 (matched gt, gt, matched pred, pred).

    pred: H x W edge strengths, gt: H x W bool boundaries. The tolerance is
    ``max_dist`` times the image diagonal, as in BSDS.
    """
    distance_transform = scipy_distance_transform()
    tolerance = max_dist * float(np.hypot(*gt.shape))
    gt_count = int(gt.sum())
    near_gt = distance_transform(~gt) <= tolerance if gt_count else np.zeros(gt.shape, bool)  # H x W
    counts = np.zeros((len(thresholds), 4), dtype=np.int64)  # T x 4
    for i, t in enumerate(thresholds):
        edges = skimage_thin()(pred >= t)  # H x W bool, thinned as BSDS does
        n_pred = int(edges.sum())
        near_pred = distance_transform(~edges) <= tolerance if n_pred else np.zeros(gt.shape, bool)  # H x W
        counts[i] = (int((gt & near_pred).sum()), gt_count, int((edges & near_gt).sum()), n_pred)
    return counts


def _prf(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """counts ... x 4 -> precision, recall, F (each ...); 0 where undefined, as in BSDS."""
    recall = counts[..., 0] / np.maximum(counts[..., 1], 1)
    precision = counts[..., 2] / np.maximum(counts[..., 3], 1)
    total = precision + recall
    f = np.where(total > 0, 2 * precision * recall / np.where(total > 0, total, 1), 0.0)
    return precision, recall, f


def _average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """Area under the P-R curve (trapezoids on the points of every threshold), from recall 0 to the largest.

    As BSDS's ``collect_eval_bdry`` (precision interpolated along recall),
    except that below the smallest recall reached (the highest threshold)
    precision is held at its value there, where BSDS counts 0. BSDS's choice
    barely matters for continuous edge maps (recall goes to ~0 at high
    thresholds) but scores near-binary maps, such as a perfect prediction,
    close to 0; here a perfect map gets AP 1.
    """
    order = np.argsort(recall, kind="stable")
    r_sorted, p_sorted = recall[order], precision[order]  # T each, by increasing recall
    r_unique, starts = np.unique(r_sorted, return_index=True)  # U, U
    p_unique = np.maximum.reduceat(p_sorted, starts)  # U: the best precision at each recall
    if r_unique[-1] <= 0:
        return 0.0
    r_curve = np.concatenate([[0.0], r_unique])  # U + 1
    p_curve = np.concatenate([[p_unique[0]], p_unique])  # U + 1, held flat down to recall 0
    return float(np.sum(np.diff(r_curve) * (p_curve[1:] + p_curve[:-1]) / 2))


def _recall_at_half_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """R50: the recall where precision falls to 0.5, moving from high to low thresholds (interpolated).

    precision, recall: T, ordered by increasing threshold. If precision never
    reaches 0.5 this is 0; if it stays above 0.5 it is the highest recall.
    """
    above = precision >= 0.5
    if not above.any():
        return 0.0
    best = float(recall[above].max())
    for i in range(len(precision) - 1):  # a crossing between threshold i (below 0.5) and i+1 (above)
        p0, p1, r0, r1 = precision[i], precision[i + 1], recall[i], recall[i + 1]
        if p0 < 0.5 <= p1:
            best = max(best, float(r0 + (0.5 - p0) / (p1 - p0) * (r1 - r0)))
    return best


def edge_metrics(pred_maps: Sequence[np.ndarray], gt_boundaries: Sequence[np.ndarray],
                 thresholds: int | Sequence[float] = 99, max_dist: float = 0.0075) -> dict[str, Any]:
    """BSDS-style boundary metrics of edge maps against ground-truth boundaries.

    pred_maps: per image an H x W edge-strength map in [0, 1]; gt_boundaries:
    per image an H x W bool boundary map. For each threshold t the prediction
    is binarised (>= t) and thinned; predicted edge pixels are matched to
    ground-truth pixels within ``max_dist`` x the image diagonal (BSDS:
    0.0075). Returns:

    - ``ods``: best F at one threshold for the whole dataset (counts pooled over images);
    - ``ois``: F at each image's own best threshold; as in the BSDS code, the
      counts at those thresholds are pooled before F is taken (close to the
      mean of the per-image best F when images have similar edge lengths);
    - ``ap``: area under the dataset precision-recall curve (BSDS's interpolation);
    - ``r50``: recall at 50% precision;
    - ``ods_threshold``, and the curve as ``thresholds``, ``precision``, ``recall``, ``f``.

    Approximation: BSDS matches pixels one-to-one (a bipartite assignment,
    ``correspondPixels``). Here a predicted pixel counts as correct when any
    ground-truth pixel is within the tolerance, and a ground-truth pixel as
    recalled when any predicted pixel is (two distance transforms). This is
    the same for thin, single edges; it is more lenient for doubled edges
    (two parallel predictions near one true boundary both count as correct).
    The paper's BSDS500 numbers (ODS .768, OIS .786, AP .794, R50 .928) are
    on real photos with human annotations and are not comparable with numbers
    on procedural scenes.
    """
    if len(pred_maps) != len(gt_boundaries):
        raise ValueError(f"got {len(pred_maps)} prediction maps but {len(gt_boundaries)} ground-truth maps")
    if len(pred_maps) == 0:
        raise ValueError("edge_metrics needs at least one image")
    t = _threshold_values(thresholds)  # T
    per_image = []
    for i, (pred, gt) in enumerate(zip(pred_maps, gt_boundaries)):
        pred, gt = np.asarray(pred, dtype=np.float32), np.asarray(gt, dtype=bool)
        if pred.shape != gt.shape or pred.ndim != 2:
            raise ValueError(f"image {i}: prediction {pred.shape} and ground truth {gt.shape} must be the same H x W")
        per_image.append(_match_counts(pred, gt, t, max_dist))  # T x 4
    counts = np.stack(per_image)  # I x T x 4
    precision, recall, f = _prf(counts.sum(axis=0))  # T each
    best_per_image = _prf(counts)[2].argmax(axis=1)  # I
    ois_counts = counts[np.arange(len(counts)), best_per_image].sum(axis=0)  # 4
    best = int(f.argmax())
    return {
        "ods": float(f[best]),
        "ois": float(_prf(ois_counts)[2]),
        "ap": _average_precision(precision, recall),
        "r50": _recall_at_half_precision(precision, recall),
        "ods_threshold": float(t[best]),
        "thresholds": t,
        "precision": precision,
        "recall": recall,
        "f": f,
    }
