"""Evaluate a model on real photos (BSDS500): ``python -m samwidgets evaluate --bsds ROOT --split val``.

Procedural scenes say whether training worked; real photos say whether it
transfers. This module runs, on the human segments of one BSDS500 split
(:func:`samwidgets.data.bsds.evaluation_segments`: 4 segments per photo,
each covering 1-50% of it, the same for every model):

1. the paper's single-point protocol (:func:`samwidgets.evaluation.procedural.click_protocol`):
   mIoU after 1, 2, 3, 5 and 9 points, most confident mask and oracle;
2. the box prompt: the segment's tight box, one output;
3. an ambiguity-aware 1-point score: the best of the 3 outputs for the first
   point against ANY annotator's segment containing that point (people
   segment at different granularities; each of those is a valid answer);
4. two baselines on the very same segments: the filled box itself, and
   OpenCV's GrabCut (Rother et al. 2004) started from the same box;
5. the interactive-segmentation standard on the GrabCut benchmark's object
   masks of the photos of this split: NoC@85 / NoC@90 with RITM's click
   protocol (Sofiiuk et al. 2022), at most 20 clicks;
6. the calibration of the IoU head: predicted IoU (``scores``) against the
   true IoU, as mean absolute error and Spearman rank correlation.

Each photo is encoded once; every prompt on it reuses the cached embedding.
Nothing is random: the segments, the clicks and GrabCut's initialisation
(its RNG is seeded before every call) are the same on every run.

    >>> from samwidgets import load_default                                   # doctest: +SKIP
    >>> result = evaluate_bsds(load_default(), "BSDS500/data", "val")         # doctest: +SKIP
    >>> print(result.markdown())                                              # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.bsds import BsdsDataset, BsdsPhoto, evaluation_segments, load_grabcut_masks
from ..data.masks import mask_iou, tight_box
from ..inference.predictor import SamPredictor
from ..io.atomic import atomic_write, atomic_write_bytes
from ..modeling import Sam
from .clicks import POINT_COUNTS, click_protocol, interior_centre, next_click

__all__ = ["BsdsEvalResult", "CalibrationStats", "evaluate_bsds", "default_grabcut_dir", "filled_box_mask",
           "grabcut_box_mask", "noc", "noc_curve", "plot_bsds_clicks", "plot_bsds_calibration", "run_bsds",
           "summarize_bsds_json", "tight_box", "write_bsds_outputs", "NOC_MAX_CLICKS", "NOC_THRESHOLDS",
           "GRABCUT_ITERATIONS"]

#: The interactive-segmentation benchmarks' click budget and IoU targets (NoC@85, NoC@90).
NOC_MAX_CLICKS = 20
NOC_THRESHOLDS = (0.85, 0.90)
#: Iterations of OpenCV's grabCut in the baseline.
GRABCUT_ITERATIONS = 5
_CV2_HINT = "pip install opencv-python-headless (the samwidgets 'eval' extra) enables the GrabCut baseline"


# -- small pieces ---------------------------------------------------------------------------------

def filled_box_mask(box: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The baseline that answers a box with the box itself: H x W bool, True inside ``box`` (XYXY)."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    mask = np.zeros(shape, dtype=bool)
    mask[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = True
    return mask


def _import_cv2() -> Any | None:
    """OpenCV when it is installed, else None (the GrabCut baseline is optional)."""
    try:
        import cv2
    except ImportError:
        return None
    return cv2


def grabcut_box_mask(image: np.ndarray, box: np.ndarray, iterations: int = GRABCUT_ITERATIONS) -> np.ndarray | None:
    """OpenCV GrabCut started from ``box``: the classic non-learned answer to a box prompt.

    image: H x W x 3 uint8 RGB (converted to the BGR OpenCV expects); box: XYXY with an
    exclusive end, clipped to the image and widened to at least 2 px. Returns the H x W bool
    mask of the pixels GrabCut labels foreground or probably foreground, or None when GrabCut
    cannot run (a box covering the whole photo leaves no background pixels to model).
    Raises ImportError when OpenCV is missing.
    """
    import cv2

    h, w = image.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, y0 = min(max(x0, 0), w - 2), min(max(y0, 0), h - 2)  # leave room for a 2 px rect
    x1, y1 = min(max(x1, x0 + 2), w), min(max(y1, y0 + 2), h)
    rect = (x0, y0, x1 - x0, y1 - y0)  # x, y, width, height
    bgr = np.ascontiguousarray(image[:, :, ::-1])  # H x W x 3 uint8 BGR
    labels = np.zeros((h, w), np.uint8)  # H x W: GC_BGD / GC_FGD / GC_PR_BGD / GC_PR_FGD after the call
    bgd_model, fgd_model = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)  # GMM parameters
    cv2.setRNGSeed(0)  # GrabCut initialises its colour models with k-means: make it repeatable
    try:
        cv2.grabCut(bgr, labels, rect, bgd_model, fgd_model, iterations, cv2.GC_INIT_WITH_RECT)
    except cv2.error:
        return None
    return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)


def noc_curve(predictor: SamPredictor, target: np.ndarray, max_clicks: int = NOC_MAX_CLICKS) -> list[float]:
    """IoU after each of ``max_clicks`` simulated clicks, RITM's protocol, for one object mask.

    Click 1: a positive point at the object's interior centre, ``multimask_output=True``, the
    most confident output kept. Each later click: at the point of the larger error region
    farthest from its boundary (positive in a miss, negative in a spill: :func:`next_click`),
    ``multimask_output=False`` with the previous low-res logits as ``mask_input``. Once the
    prediction is perfect there is nothing left to click and the curve stays at 1.0.
    """
    x, y = interior_centre(target)
    coords, labels = [[x, y]], [1]
    masks, scores, low_res = predictor.predict(np.array(coords), np.array(labels), multimask_output=True)
    best = int(np.argmax(scores))
    pred, prompt = masks[best], low_res[best][None]  # H x W bool, 1 x S x S logits
    curve = [mask_iou(pred, target)]
    while len(curve) < max_clicks:
        click = next_click(pred, target)
        if click is None:
            curve.extend([curve[-1]] * (max_clicks - len(curve)))
            break
        coords.append([click[0], click[1]])
        labels.append(click[2])
        masks, _, low_res = predictor.predict(np.array(coords), np.array(labels), mask_input=prompt,
                                              multimask_output=False)
        pred, prompt = masks[0], low_res  # H x W, 1 x S x S
        curve.append(mask_iou(pred, target))
    return curve


def noc(curve: list[float], threshold: float) -> int:
    """Number of clicks at which the IoU first reaches ``threshold``; the curve's length if it never does."""
    for n, value in enumerate(curve, start=1):
        if value >= threshold:
            return n
    return len(curve)


def default_grabcut_dir(bsds_root: str | Path) -> Path | None:
    """``ROOT/../grabcut/ground-truth`` (the layout of a shared datasets folder) when it exists, else None."""
    candidate = Path(bsds_root).resolve().parent / "grabcut" / "ground-truth"
    return candidate if candidate.is_dir() else None


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


# -- calibration ----------------------------------------------------------------------------------

@dataclass
class CalibrationStats:
    """How well predicted IoUs (the IoU head's ``scores``) match the true IoUs of their masks.

    mae: mean |predicted - true|, whether the numbers can be read as IoUs; spearman: the rank
    correlation, whether a higher score means a better mask (what choosing the most confident
    output relies on). NaN when there are fewer than 2 pairs or one side is constant.
    """

    pairs: int
    mae: float
    spearman: float

    @classmethod
    def of(cls, predicted: list[float], true: list[float]) -> CalibrationStats:
        p, t = np.asarray(predicted, dtype=float), np.asarray(true, dtype=float)  # N, N
        if len(p) == 0:
            return cls(0, float("nan"), float("nan"))
        mae = float(np.abs(p - t).mean())
        if len(p) < 2 or np.ptp(p) == 0 or np.ptp(t) == 0:
            return cls(len(p), mae, float("nan"))
        from scipy.stats import spearmanr

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # scipy has no type stubs and pyright misreads its decorated spearmanr: it returns a SignificanceResult
            rho = float(spearmanr(p, t).statistic)  # pyright: ignore[reportAttributeAccessIssue]
        return cls(len(p), mae, rho)


# -- the result -----------------------------------------------------------------------------------

@dataclass
class BsdsEvalResult:
    """Every number of one BSDS500 evaluation, the per-segment arrays behind them, and a markdown table."""

    split: str
    model: str
    photos: int  # photos whose segments were scored
    segments: int
    miou_confident: dict[int, float] = field(default_factory=dict)  # points -> mIoU, most confident output
    miou_oracle: dict[int, float] = field(default_factory=dict)  # points -> mIoU, best output
    miou_box: float = float("nan")
    ambiguity_score: float = float("nan")  # best of 3 vs any annotator's segment at the first point
    baseline_filled_box: float = float("nan")
    baseline_grabcut: float | None = None  # None when skipped (no OpenCV, or --no-grabcut-baseline)
    grabcut_fallbacks: int = 0  # segments where grabCut could not run and the filled box stood in
    noc85: float | None = None  # None when there were no GrabCut masks
    noc90: float | None = None
    noc_photos: int = 0
    noc90_failures: int = 0  # photos that never reached 0.90 within NOC_MAX_CLICKS
    noc_mean_curve: list[float] = field(default_factory=list)  # NOC_MAX_CLICKS: mean IoU after each click
    noc_curves: dict[str, list[float]] = field(default_factory=dict)  # photo id -> IoU after each click
    calibration_all: CalibrationStats = field(default_factory=lambda: CalibrationStats(0, math.nan, math.nan))
    calibration_point: CalibrationStats = field(default_factory=lambda: CalibrationStats(0, math.nan, math.nan))
    calibration_box: CalibrationStats = field(default_factory=lambda: CalibrationStats(0, math.nan, math.nan))
    per_segment: dict[str, list] = field(default_factory=dict)  # column -> one entry per segment
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def markdown(self) -> str:
        """The results as a markdown table (3 decimals for mIoU, 2 for NoC) and a few lines under it."""
        def f3(v: float | None) -> str:
            return "n/a" if v is None or not math.isfinite(v) else f"{v:.3f}"

        blank = [""] * len(POINT_COUNTS)
        rows = [
            ("most confident", [f3(self.miou_confident.get(n)) for n in POINT_COUNTS], f3(self.miou_box)),
            ("best of 3 (oracle)", [f3(self.miou_oracle.get(n)) for n in POINT_COUNTS], ""),
            ("ambiguity-aware 1 pt (any annotator)", [f3(self.ambiguity_score)] + blank[1:], ""),
            ("baseline: filled box", blank, f3(self.baseline_filled_box)),
            (f"baseline: OpenCV GrabCut from the box ({GRABCUT_ITERATIONS} it.)", blank,
             "skipped" if self.baseline_grabcut is None else f3(self.baseline_grabcut)),
        ]
        lines = ["| | " + " | ".join(f"{n} pt" for n in POINT_COUNTS) + " | box |",
                 "|---" * (len(POINT_COUNTS) + 2) + "|"]
        lines += [f"| {name} | " + " | ".join(cells) + f" | {box} |" for name, cells, box in rows]
        lines.append("")
        if self.noc85 is None:
            lines.append(f"NoC@85 / NoC@90 on GrabCut {self.split} photos: skipped (no GrabCut masks)")
        else:
            lines.append(f"NoC@85 / NoC@90 on GrabCut {self.split} photos ({self.noc_photos} photos): "
                         f"{self.noc85:.2f} / {self.noc90:.2f} ({self.noc90_failures} never reached 0.90 "
                         f"within {NOC_MAX_CLICKS} clicks)")
        a, p = self.calibration_all, self.calibration_point
        lines.append(f"IoU head: MAE {f3(a.mae)}, Spearman {f3(a.spearman)} over {a.pairs} predictions "
                     f"(1-pt outputs and boxes); 1-pt outputs only: MAE {f3(p.mae)}, Spearman {f3(p.spearman)} "
                     f"({p.pairs})")
        lines.append(f"{self.segments} segments on {self.photos} BSDS500 {self.split} photos; model: {self.model}")
        if self.grabcut_fallbacks:
            lines.append(f"GrabCut could not run on {self.grabcut_fallbacks} boxes (no background left): "
                         "the filled box stands in there")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (NaN -> null, per-segment floats rounded to 4 decimals)."""
        return _json_safe(asdict(self))


def _json_safe(value: Any) -> Any:
    """NaN/inf -> None, numpy scalars -> Python, floats rounded to 4 decimals (keeps the file small)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return round(v, 4) if math.isfinite(v) else None
    return value


# -- the evaluation -------------------------------------------------------------------------------

def _describe(model: Sam) -> str:
    cfg = model.config
    params = sum(p.numel() for p in model.parameters())
    return f"Sam, image_size {cfg.image_size}, {params / 1e6:.2f} M parameters"


def evaluate_bsds(model: Sam, root: str | Path, split: str = "val", grabcut_dir: str | Path | None = None,
                  max_photos: int | None = None, grabcut_baseline: bool = True, progress: bool = False,
                  *, model_name: str | None = None) -> BsdsEvalResult:
    """Run every measurement of this module on one BSDS500 split.

    root: the folder holding ``images/`` and ``groundTruth/``; grabcut_dir: a folder of GrabCut
    ground-truth PNGs (NoC is measured on those whose id is a photo of this split; None skips
    NoC); max_photos: quick runs, the first N photos of the split for the segment measurements
    and the first N GrabCut photos of the split for NoC; grabcut_baseline: run OpenCV's grabCut
    (slow; skipped with a printed note when OpenCV is missing); model_name: how the result names
    the model (default: a short description of its size).
    """
    from tqdm import tqdm

    start = time.perf_counter()
    data = BsdsDataset(root, split)
    notes: list[str] = []
    scored_ids = data.ids[:max_photos] if max_photos is not None else list(data.ids)
    gc_masks = load_grabcut_masks(grabcut_dir, data.ids) if grabcut_dir is not None else {}
    gc_ids = sorted(gc_masks)[:max_photos] if max_photos is not None else sorted(gc_masks)
    if grabcut_dir is not None and not gc_ids:
        notes.append(f"no GrabCut mask in {grabcut_dir} belongs to a BSDS500 {split} photo: NoC skipped")
    if grabcut_baseline and _import_cv2() is None:
        notes.append(f"OpenCV is not installed: {_CV2_HINT}")
        print(f"note: {notes[-1]}")
        grabcut_baseline = False

    predictor = SamPredictor(model, cache_size=1)
    max_points = max(POINT_COUNTS)
    columns: dict[str, list] = {k: [] for k in (
        "photo", "area_fraction", "box", "centre", "confident", "oracle", "point_scores", "point_ious",
        "ambiguity", "box_score", "box_iou", "filled_box_iou", "grabcut_iou")}
    fallbacks = 0
    noc_curves: dict[str, list[float]] = {}
    wanted = set(scored_ids) | set(gc_ids)
    todo = [i for i in data.ids if i in wanted]  # split order: each photo encoded once
    with torch.inference_mode():
        for image_id in tqdm(todo, disable=not progress, desc=f"BSDS500 {split}"):
            photo = data.load(image_id)
            predictor.set_image(photo.image)  # H x W x 3 uint8 RGB, encoded once for every prompt below
            if image_id in gc_masks and image_id in gc_ids:
                target = gc_masks[image_id]  # H x W bool
                if target.shape != photo.image.shape[:2] or not target.any():
                    notes.append(f"GrabCut mask {image_id} is {target.shape} / empty, the photo "
                                 f"{photo.image.shape[:2]}: left out of NoC")
                else:
                    noc_curves[image_id] = noc_curve(predictor, target)
            if image_id in scored_ids:
                fallbacks += _score_photo(predictor, photo, max_points, grabcut_baseline, columns)

    if not grabcut_baseline:
        del columns["grabcut_iou"]  # all None
    n = len(columns["photo"])
    if n == 0:
        raise ValueError(f"no BSDS500 {split} photo had an evaluation segment (1-50% of the photo)")
    conf = np.array(columns["confident"])  # n x max_points
    orac = np.array(columns["oracle"])  # n x max_points
    pt_scores, pt_ious = np.array(columns["point_scores"]), np.array(columns["point_ious"])  # n x 3 each
    box_scores, box_ious = columns["box_score"], columns["box_iou"]
    curves = np.array(list(noc_curves.values())).reshape(len(noc_curves), NOC_MAX_CLICKS)  # photos x clicks
    noc85 = [noc(c, NOC_THRESHOLDS[0]) for c in noc_curves.values()]
    noc90 = [noc(c, NOC_THRESHOLDS[1]) for c in noc_curves.values()]
    return BsdsEvalResult(
        split=split,
        model=model_name or _describe(model),
        photos=len(set(columns["photo"])),
        segments=n,
        miou_confident={k: float(conf[:, k - 1].mean()) for k in POINT_COUNTS},
        miou_oracle={k: float(orac[:, k - 1].mean()) for k in POINT_COUNTS},
        miou_box=_mean(box_ious),
        ambiguity_score=_mean(columns["ambiguity"]),
        baseline_filled_box=_mean(columns["filled_box_iou"]),
        baseline_grabcut=_mean(columns["grabcut_iou"]) if grabcut_baseline else None,
        grabcut_fallbacks=fallbacks,
        noc85=_mean(noc85) if noc_curves else None,
        noc90=_mean(noc90) if noc_curves else None,
        noc_photos=len(noc_curves),
        noc90_failures=sum(1 for c in noc_curves.values() if max(c) < NOC_THRESHOLDS[1]),
        noc_mean_curve=curves.mean(axis=0).tolist() if noc_curves else [],
        noc_curves=noc_curves,
        calibration_all=CalibrationStats.of(pt_scores.ravel().tolist() + box_scores,
                                            pt_ious.ravel().tolist() + box_ious),
        calibration_point=CalibrationStats.of(pt_scores.ravel().tolist(), pt_ious.ravel().tolist()),
        calibration_box=CalibrationStats.of(box_scores, box_ious),
        per_segment=columns,
        notes=notes,
        seconds=time.perf_counter() - start,
    )


def _score_photo(predictor: SamPredictor, photo: BsdsPhoto, max_points: int, grabcut_baseline: bool,
                 columns: dict[str, list]) -> int:
    """Score every evaluation segment of one photo (its embedding already set); append to ``columns``.

    Returns how many times GrabCut could not run and the filled box stood in.
    """
    fallbacks = 0
    h, w = photo.image.shape[:2]
    for target in evaluation_segments(photo):  # H x W bool each
        # 1-point: the first click's 3 outputs, scored three ways, then the click protocol from them
        x, y = interior_centre(target)
        first = predictor.predict(np.array([[x, y]]), np.array([1]), multimask_output=True)
        masks, scores, _ = first  # 3 x H x W bool, 3 predicted IoUs
        point_ious = [mask_iou(m, target) for m in masks]
        valid = photo.segments_at(int(x), int(y))  # each annotator's segment under the click
        ambiguity = max(mask_iou(m, v) for m in masks for v in valid)
        confident, oracle = click_protocol(predictor, target, max_points, first=first)
        # box prompt, and the two baselines answering the very same box
        box = tight_box(target)  # XYXY, exclusive end
        box_masks, box_scores, _ = predictor.predict(box=box, multimask_output=False)  # 1 x H x W, 1
        filled = filled_box_mask(box, (h, w))
        grabcut_iou = None
        if grabcut_baseline:
            cut = grabcut_box_mask(photo.image, box)
            if cut is None:
                cut, fallbacks = filled, fallbacks + 1
            grabcut_iou = mask_iou(cut, target)
        row = {
            "photo": photo.image_id, "area_fraction": float(target.mean()), "box": [int(v) for v in box],
            "centre": [int(x), int(y)], "confident": confident, "oracle": oracle,
            "point_scores": scores.tolist(), "point_ious": point_ious, "ambiguity": ambiguity,
            "box_score": float(box_scores[0]), "box_iou": mask_iou(box_masks[0], target),
            "filled_box_iou": mask_iou(filled, target), "grabcut_iou": grabcut_iou,
        }
        for key, value in row.items():
            columns[key].append(value)
    return fallbacks


# -- figures --------------------------------------------------------------------------------------

def plot_bsds_clicks(result: BsdsEvalResult, path: str | Path) -> None:
    """mIoU against the number of clicks (confident and oracle; box and baselines as lines), and the
    GrabCut photos' mean IoU against clicks with the NoC thresholds, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax_noc) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=100)
    conf = np.array(result.per_segment["confident"])  # segments x 9
    orac = np.array(result.per_segment["oracle"])  # segments x 9
    clicks = np.arange(1, conf.shape[1] + 1)
    ax.plot(clicks, orac.mean(axis=0), "o-", label="best of 3 (oracle)")
    ax.plot(clicks, conf.mean(axis=0), "s-", label="most confident")
    ax.axhline(result.miou_box, color="gray", ls="--", label=f"box prompt ({result.miou_box:.3f})")
    ax.axhline(result.baseline_filled_box, color="tab:red", ls=":",
               label=f"filled box ({result.baseline_filled_box:.3f})")
    if result.baseline_grabcut is not None:
        ax.axhline(result.baseline_grabcut, color="tab:green", ls="-.",
                   label=f"GrabCut from box ({result.baseline_grabcut:.3f})")
    ax.set(xlabel="number of points", ylabel="mIoU", xticks=list(POINT_COUNTS), ylim=(0, 1),
           title=f"BSDS500 {result.split}: {result.segments} segments")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)

    if result.noc_curves:
        steps = np.arange(1, NOC_MAX_CLICKS + 1)
        for curve in result.noc_curves.values():
            ax_noc.plot(steps, curve, color="gray", alpha=0.3, lw=0.8)
        ax_noc.plot(steps, result.noc_mean_curve, "o-", ms=3, color="tab:blue", label="mean IoU")
        for t in NOC_THRESHOLDS:
            ax_noc.axhline(t, color="tab:red", ls=":", lw=1)
            ax_noc.text(NOC_MAX_CLICKS + 0.4, t, f"{t:.2f}", color="tab:red", va="center", ha="right", fontsize=7)
        ax_noc.set_title(f"GrabCut {result.split} photos ({result.noc_photos}): "
                         f"NoC@85 {result.noc85:.2f}, NoC@90 {result.noc90:.2f}", fontsize=10)
        ax_noc.legend(loc="lower right", fontsize=8)
    else:
        ax_noc.text(0.5, 0.5, "no GrabCut masks: NoC skipped", ha="center", va="center",
                    transform=ax_noc.transAxes)
    ax_noc.set(xlabel="number of clicks", ylabel="IoU", ylim=(0, 1), xlim=(0.5, NOC_MAX_CLICKS + 0.5),
               xticks=[1, 5, 10, 15, 20])
    ax_noc.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)


def plot_bsds_calibration(result: BsdsEvalResult, path: str | Path, bins: int = 10) -> None:
    """Predicted IoU against true IoU (1-point outputs and boxes), with the true IoU's mean in bins of
    predicted IoU: a calibrated head puts those means on the diagonal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seg = result.per_segment
    pt_pred, pt_true = np.ravel(seg["point_scores"]), np.ravel(seg["point_ious"])  # 3n, 3n
    box_pred, box_true = np.asarray(seg["box_score"]), np.asarray(seg["box_iou"])  # n, n
    pred, true = np.concatenate([pt_pred, box_pred]), np.concatenate([pt_true, box_true])
    fig, ax = plt.subplots(figsize=(4.6, 4.4), dpi=100)
    ax.scatter(pt_pred, pt_true, s=6, alpha=0.4, label="1-point outputs")
    ax.scatter(box_pred, box_true, s=6, alpha=0.5, marker="s", label="box")
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(np.clip(pred, 0.0, 1.0), edges) - 1, 0, bins - 1)  # bin of each prediction
    centres, means = [], []
    for b in range(bins):
        if np.any(which == b):
            centres.append(pred[which == b].mean())
            means.append(true[which == b].mean())
    ax.plot(centres, means, "k^-", label="binned mean true IoU")
    ax.plot([0, 1], [0, 1], color="gray", ls="--", lw=1)
    a = result.calibration_all
    ax.set(xlabel="predicted IoU (scores)", ylabel="true IoU", xlim=(-0.05, 1.05), ylim=(-0.05, 1.05),
           title=f"IoU head: MAE {a.mae:.3f}, Spearman {a.spearman:.3f}")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)


# -- the command line -----------------------------------------------------------------------------

#: What the summary file leaves out of the full JSON: the rows of every segment and every NoC curve.
SUMMARY_OMITS = ("per_segment", "noc_curves")
#: The summary keeps the per-segment rows of the split's first photo: a notebook recomputes them live
#: (``teaching.records.spot_check_bsds``) to show that the record is what the model does.
SPOT_CHECK_PHOTOS = 1


def summarize_bsds_json(full: dict[str, Any], spot_check_photos: int = SPOT_CHECK_PHOTOS) -> dict[str, Any]:
    """The summary of a full result's JSON: every figure, without :data:`SUMMARY_OMITS`, and a spot-check sample.

    ``spot_check``: the photos first scored (split order) and every per-segment column of their rows, so that
    ``evaluate_bsds(model, root, split, max_photos=len(photos), grabcut_baseline=False)`` can be compared row by
    row with the record.
    """
    summary = {k: v for k, v in full.items() if k not in SUMMARY_OMITS}
    rows = full.get("per_segment", {})
    photos = list(dict.fromkeys(rows.get("photo", [])))[:spot_check_photos]
    keep = [i for i, photo in enumerate(rows.get("photo", [])) if photo in photos]
    summary["spot_check"] = {"photos": photos,
                             "rows": {column: [values[i] for i in keep] for column, values in rows.items()}}
    return summary


def write_bsds_outputs(result: BsdsEvalResult, out: str | Path) -> dict[str, Path]:
    """Write ``bsds_<split>.json``, ``_summary.json``, ``.md``, ``_clicks.png`` and ``_calibration.png`` to ``out``.

    The summary is the full JSON without :data:`SUMMARY_OMITS`, with the first photo's rows kept as a spot-check
    sample (about 3 KB instead of 0.5 MB): what the package ships as the bundled model's record
    (``teaching.records``).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"bsds_{result.split}"
    paths = {"json": out / f"{stem}.json", "summary": out / f"{stem}_summary.json", "markdown": out / f"{stem}.md",
             "clicks": out / f"{stem}_clicks.png", "calibration": out / f"{stem}_calibration.png"}
    full = result.to_json()
    atomic_write_bytes(paths["json"], json.dumps(full, separators=(",", ":")).encode())
    summary = summarize_bsds_json(full)
    atomic_write_bytes(paths["summary"], json.dumps(summary, indent=1).encode())
    atomic_write_bytes(paths["markdown"], (result.markdown() + "\n").encode())
    plot_bsds_clicks(result, paths["clicks"])
    plot_bsds_calibration(result, paths["calibration"])
    return paths


def run_bsds(model: Sam, root: str | Path, out: str | Path, split: str = "val",
             grabcut_dir: str | Path | None = None, max_photos: int | None = None, grabcut_baseline: bool = True,
             model_name: str | None = None) -> int:
    """What ``python -m samwidgets evaluate --bsds ROOT`` does: evaluate, write the four files, print the table.

    grabcut_dir None means ``ROOT/../grabcut/ground-truth`` when that folder exists; otherwise NoC is
    skipped with a printed note.
    """
    if grabcut_dir is None:
        grabcut_dir = default_grabcut_dir(root)
        if grabcut_dir is None:
            print(f"note: no GrabCut masks at {Path(root).resolve().parent / 'grabcut' / 'ground-truth'} "
                  "(pass --grabcut DIR): NoC@85/90 skipped")
    result = evaluate_bsds(model, root, split, grabcut_dir=grabcut_dir, max_photos=max_photos,
                           grabcut_baseline=grabcut_baseline, progress=True, model_name=model_name)
    paths = write_bsds_outputs(result, out)
    print(result.markdown())
    print(f"\n{result.seconds:.0f} s; wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
