"""BSDS-style boundary metrics (ODS, OIS, AP, R50) of edge-strength maps against boundary maps.

:func:`edge_metrics` follows the BSDS500 benchmark (``evaluation_bdry_image`` / ``collect_eval_bdry``):
binarise each map at many thresholds, thin, match predicted to true boundary pixels within a
tolerance, and summarise the precision-recall curve. An image may have several annotators'
boundary maps, as every BSDS500 photo has. Kept apart from the detectors so any edge map (SAM's,
the Sobel baseline's, a file's) is scored by the same code.

The three steps are public, so a part of an evaluation can be recomputed and checked:
:func:`edge_match_counts` (one image -> T x 4 counts), :func:`metrics_from_counts` (counts of
many images -> ODS, OIS, AP, R50) and :func:`edge_metrics` (both).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._optional import scipy_distance_transform, skimage_thin

__all__ = ["BSDS_PAPER_TABLE3", "BSDS_SAM_VIT_H", "COUNT_COLUMNS", "edge_match_counts", "edge_metrics",
           "edge_thresholds", "metrics_from_counts"]

#: The paper's zero-shot numbers for SAM (ViT-H) on BSDS500 (Table 3). Real photos, human annotations:
#: not comparable with the procedural-scene numbers of :func:`samwidgets.tasks.edges.evaluate_edges`.
BSDS_SAM_VIT_H = {"ods": 0.768, "ois": 0.786, "ap": 0.794, "r50": 0.928}

#: The rows of the paper's Table 3 (zero-shot edge detection, BSDS500 test, 200 photos): ODS, OIS, AP,
#: R50; None where the paper gives no number. HED and EDETR were trained on BSDS500's train split; SAM
#: never saw BSDS500 (zero-shot); Sobel, Canny and Felzenszwalb-Huttenlocher learn nothing.
BSDS_PAPER_TABLE3: dict[str, dict[str, float | None]] = {
    "Sobel filter": {"ods": 0.539, "ois": None, "ap": None, "r50": None},
    "Canny": {"ods": 0.600, "ois": 0.640, "ap": 0.580, "r50": None},
    "Felz-Hutt": {"ods": 0.610, "ois": 0.640, "ap": 0.560, "r50": None},
    "HED": {"ods": 0.788, "ois": 0.808, "ap": 0.840, "r50": 0.923},
    "EDETR": {"ods": 0.840, "ois": 0.858, "ap": 0.896, "r50": 0.930},
    "SAM (ViT-H)": dict(BSDS_SAM_VIT_H),
}

#: The four columns of the match counts (:func:`edge_match_counts`), as in BSDS's ``cntR, sumR, cntP, sumP``:
#: ground-truth boundary pixels matched (summed over annotators), ground-truth boundary pixels (summed over
#: annotators), predicted edge pixels matched (to any annotator), predicted edge pixels.
COUNT_COLUMNS = ("matched_gt", "gt", "matched_pred", "pred")


def edge_thresholds(thresholds: int | Sequence[float] | np.ndarray) -> np.ndarray:
    """An int n -> n thresholds evenly inside (0, 1) (BSDS uses 99); a sequence -> those thresholds, sorted."""
    if isinstance(thresholds, (int, np.integer)):
        if thresholds < 1:
            raise ValueError(f"thresholds must be >= 1 (or a sequence of values), got {thresholds}")
        return np.linspace(1.0 / (thresholds + 1), 1.0 - 1.0 / (thresholds + 1), int(thresholds))
    values = np.sort(np.asarray(thresholds, dtype=np.float64).ravel())
    if values.size == 0:
        raise ValueError("thresholds is empty")
    return values


def _annotator_maps(gt: Any, what: str) -> np.ndarray:
    """One image's ground truth -> A x H x W bool: an H x W map (one annotator), an A x H x W array, or a
    sequence of A maps of one size."""
    if isinstance(gt, np.ndarray) or not isinstance(gt, Sequence):
        maps = np.asarray(gt, dtype=bool)
    else:
        if len(gt) == 0:
            raise ValueError(f"{what}: the ground truth has no annotator's map")
        shapes = {np.shape(g) for g in gt}
        if len(shapes) != 1:
            raise ValueError(f"{what}: the annotators' maps must be the same H x W, got {sorted(shapes)}")
        maps = np.stack([np.asarray(g, dtype=bool) for g in gt])
    if maps.ndim == 2:
        maps = maps[None]
    if maps.ndim != 3 or maps.shape[0] == 0:
        raise ValueError(f"{what}: the ground truth must be an H x W map or A x H x W maps, got shape {maps.shape}")
    return maps


def edge_match_counts(pred: np.ndarray, gt: Any, thresholds: int | Sequence[float] | np.ndarray = 99,
                      max_dist: float = 0.0075) -> np.ndarray:
    """Match counts of one image at every threshold: T x 4 int64, the columns of :data:`COUNT_COLUMNS`.

    pred: H x W edge strengths. gt: the image's ground truth, one annotator's
    H x W bool boundary map, or several annotators' maps (A x H x W, or a
    sequence of H x W). At threshold t the prediction ``pred >= t`` is thinned;
    a predicted pixel is matched when a boundary pixel of ANY annotator lies
    within the tolerance (``max_dist`` times the image diagonal, as in BSDS);
    recall counts every annotator's boundary pixels: column 0 is the sum over
    annotators of their pixels with a predicted pixel within the tolerance,
    column 1 the sum of their boundary pixels (BSDS's ``cntR``, ``sumR``).
    """
    pred = np.asarray(pred, dtype=np.float32)
    gts = _annotator_maps(gt, "edge_match_counts")  # A x H x W
    if pred.ndim != 2 or pred.shape != gts.shape[1:]:
        raise ValueError(f"prediction {pred.shape} and ground truth {gts.shape[1:]} must be the same H x W")
    return _match_counts(pred, gts, edge_thresholds(thresholds), max_dist)


def _match_counts(pred: np.ndarray, gts: np.ndarray, thresholds: np.ndarray, max_dist: float) -> np.ndarray:
    """Matching counts of one image at every threshold: T x 4 int64 (matched gt, gt, matched pred, pred).

    pred: H x W edge strengths, gts: A x H x W bool boundaries, one map per
    annotator. The tolerance is ``max_dist`` times the image diagonal, as in BSDS.
    """
    distance_transform = scipy_distance_transform()
    tolerance = max_dist * float(np.hypot(*pred.shape))
    union = gts.any(axis=0)  # H x W: a boundary pixel of any annotator
    gt_count = int(gts.sum())  # every annotator's pixels count
    near_gt = distance_transform(~union) <= tolerance if union.any() else np.zeros(pred.shape, bool)  # H x W
    counts = np.zeros((len(thresholds), 4), dtype=np.int64)  # T x 4
    for i, t in enumerate(thresholds):
        edges = skimage_thin()(pred >= t)  # H x W bool, thinned as BSDS does
        n_pred = int(edges.sum())
        near_pred = distance_transform(~edges) <= tolerance if n_pred else np.zeros(pred.shape, bool)  # H x W
        counts[i] = (int((gts & near_pred[None]).sum()), gt_count, int((edges & near_gt).sum()), n_pred)
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


def metrics_from_counts(counts: Any, thresholds: int | Sequence[float] | np.ndarray = 99) -> dict[str, Any]:
    """ODS, OIS, AP, R50 (and the curve) from match counts: I x T x 4 (images x thresholds x
    :data:`COUNT_COLUMNS`), e.g. those :func:`edge_metrics` returns as ``counts``, or a subset of
    them. thresholds: the T thresholds the counts were taken at (for ``ods_threshold``)."""
    counts = np.asarray(counts, dtype=np.int64)
    t = edge_thresholds(thresholds)  # T
    if counts.ndim != 3 or counts.shape[2] != 4 or counts.shape[0] == 0:
        raise ValueError(f"counts must be images x thresholds x 4 (at least one image), got {counts.shape}")
    if counts.shape[1] != len(t):
        raise ValueError(f"counts have {counts.shape[1]} thresholds but {len(t)} thresholds were given")
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
        "best_per_image": best_per_image,
    }


def edge_metrics(pred_maps: Sequence[np.ndarray], gt_boundaries: Sequence[Any],
                 thresholds: int | Sequence[float] | np.ndarray = 99, max_dist: float = 0.0075) -> dict[str, Any]:
    """BSDS-style boundary metrics of edge maps against ground-truth boundaries.

    pred_maps: per image an H x W edge-strength map in [0, 1]; gt_boundaries:
    per image an H x W bool boundary map, or several annotators' maps of
    that image (an A x H x W array or a sequence of H x W maps; BSDS500 has
    4 to 9 per photo). For each threshold t the prediction is binarised
    (>= t) and thinned; predicted edge pixels are matched to ground-truth
    pixels within ``max_dist`` x the image diagonal (BSDS: 0.0075). With
    several annotators, as in the BSDS benchmark, a predicted pixel is
    correct when it matches ANY annotator's boundary, and recall pools every
    annotator's boundary pixels (matched pixels summed over annotators /
    boundary pixels summed over annotators), so a boundary that all
    annotators drew weighs more than one only one of them drew. Returns:

    - ``ods``: best F at one threshold for the whole dataset (counts pooled over images);
    - ``ois``: F at each image's own best threshold; as in the BSDS code, the
      counts at those thresholds are pooled before F is taken (close to the
      mean of the per-image best F when images have similar edge lengths);
    - ``ap``: area under the dataset precision-recall curve (BSDS's interpolation);
    - ``r50``: recall at 50% precision;
    - ``ods_threshold``, and the curve as ``thresholds``, ``precision``, ``recall``, ``f``;
    - ``best_per_image``: each image's threshold index of best F (OIS's choice), I int;
    - ``counts``: the per-image match counts, I x T x 4 int64 (:data:`COUNT_COLUMNS`), from which
      :func:`metrics_from_counts` recomputes all of the above for any subset of the images.

    Approximation: BSDS matches pixels one-to-one (a bipartite assignment,
    ``correspondPixels``, run once per annotator). Here a predicted pixel
    counts as correct when any ground-truth pixel (of any annotator) is within
    the tolerance, and an annotator's boundary pixel as recalled when any
    predicted pixel is (distance transforms, no assignment). This is the same
    for thin, single edges; it is more lenient for doubled edges (two
    parallel predictions near one true boundary both count as correct, and
    one predicted pixel may recall several nearby boundary pixels), so
    precision and recall here are upper bounds of BSDS's. The paper's
    BSDS500 numbers (ODS .768, OIS .786, AP .794, R50 .928) are on real
    photos with human annotations and are not comparable with numbers on
    procedural scenes.
    """
    if len(pred_maps) != len(gt_boundaries):
        raise ValueError(f"got {len(pred_maps)} prediction maps but {len(gt_boundaries)} ground-truth maps")
    if len(pred_maps) == 0:
        raise ValueError("edge_metrics needs at least one image")
    t = edge_thresholds(thresholds)  # T
    per_image = []
    for i, (pred, gt) in enumerate(zip(pred_maps, gt_boundaries)):
        pred, gts = np.asarray(pred, dtype=np.float32), _annotator_maps(gt, f"image {i}")  # H x W, A x H x W
        if pred.shape != gts.shape[1:] or pred.ndim != 2:
            raise ValueError(f"image {i}: prediction {pred.shape} and ground truth {gts.shape[1:]} must be the "
                             "same H x W")
        per_image.append(_match_counts(pred, gts, t, max_dist))  # T x 4
    counts = np.stack(per_image)  # I x T x 4
    return {**metrics_from_counts(counts, t), "counts": counts}
