"""The edge benchmarks: SAM's zero-shot edges and the Sobel baseline, scored alike.

- :func:`evaluate_edges`: held-out procedural scenes (seeds never used in training) against their
  exact region outlines (:func:`.ground_truth.scene_boundaries`); comparable between the two
  detectors, not with the paper's BSDS500 numbers;
- :func:`evaluate_edges_bsds`: BSDS500 photos against every annotator's boundaries, the paper's
  protocol (section 7.2, Table 3); :func:`edges_bsds_markdown` sets the result beside the paper's table.

Both score with the same BSDS metrics (:func:`.metrics.edge_metrics`).
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...inference.cache import model_fingerprint
from ...inference.predictor import SamPredictor
from ...io.atomic import atomic_write_bytes
from ...modeling import Sam
from .bsds import check_bsds_root, load_bsds_boundaries
from .detect import detect_edges
from .filters import sobel_baseline
from .ground_truth import scene_boundaries
from .metrics import BSDS_PAPER_TABLE3, COUNT_COLUMNS, edge_metrics, edge_thresholds, metrics_from_counts

__all__ = ["edges_bsds_markdown", "edges_bsds_record", "evaluate_edges", "evaluate_edges_bsds", "metrics_from_record"]

_SUMMARY_KEYS = ("ods", "ois", "ap", "r50", "ods_threshold")


def evaluate_edges(model: Sam | None = None, num_scenes: int = 12, seed_start: int | None = None,
                   image_size: int = 256, level: str | int = "subpart", points_per_side: int = 16,
                   thresholds: int | Sequence[float] | np.ndarray = 99, max_dist: float = 0.0075) -> dict[str, Any]:
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
        return {k: m[k] for k in _SUMMARY_KEYS}

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


def _settings_key(model: Sam, points_per_side: int, thresholds: np.ndarray, max_dist: float) -> str:
    """What a photo's counts depend on besides the photo: the weights and the protocol's settings."""
    text = json.dumps([model_fingerprint(model), points_per_side, [round(float(x), 9) for x in thresholds],
                       max_dist])
    return hashlib.sha256(text.encode()).hexdigest()


def _load_photo_counts(work_dir: str | Path | None, image_id: str, settings: str) -> dict[str, np.ndarray] | None:
    """A photo's kept counts, or None when there are none, they do not load, or other settings made them."""
    if work_dir is None:
        return None
    path = Path(work_dir) / f"{image_id}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path) as kept:
            loaded = {k: kept[k] for k in kept.files}
        if str(loaded["settings"]) != settings:
            return None
        for name in ("sam", "sobel"):
            if loaded[f"{name}_counts"].ndim != 2 or loaded[f"{name}_counts"].shape[1] != len(COUNT_COLUMNS):
                return None
        return loaded
    except (OSError, ValueError, KeyError, EOFError):  # a damaged file: score the photo again
        return None


def _save_photo_counts(work_dir: str | Path, image_id: str, settings: str, counts: dict[str, list[np.ndarray]],
                       seconds: dict[str, list[float]], annotators: int) -> None:
    """Keep the last scored photo's counts as ``<work_dir>/<id>.npz`` (atomically)."""
    buffer = io.BytesIO()
    np.savez(buffer, settings=np.array(settings), annotators=np.array(annotators),
             sam_counts=counts["sam"][-1], sobel_counts=counts["sobel"][-1],
             sam_seconds=np.array(seconds["sam"][-1]), sobel_seconds=np.array(seconds["sobel"][-1]))
    atomic_write_bytes(Path(work_dir) / f"{image_id}.npz", buffer.getvalue())


def evaluate_edges_bsds(model: Sam | None = None, root: str | Path = "BSDS500/data", split: str = "val",
                        limit: int | None = None, points_per_side: int = 16,
                        thresholds: int | Sequence[float] | np.ndarray = 99, max_dist: float = 0.0075,
                        ids: Sequence[str] | None = None,
                        progress: bool = False, work_dir: str | Path | None = None) -> dict[str, Any]:
    """SAM's zero-shot edges and the Sobel baseline on BSDS500 photos, scored against every annotator.

    The paper's protocol (section 7.2, Table 3): :func:`detect_edges` with a
    ``points_per_side`` grid on each photo at its own size, the Sobel baseline
    (:func:`sobel_baseline`), both scored with :func:`edge_metrics` against all
    the photo's human boundary maps (a predicted pixel is correct if it is near
    any annotator's boundary; recall pools every annotator's pixels).

    model: default the bundled model. root: the folder holding ``images/<split>``
    and ``groundTruth/<split>`` (BSDS500/data). limit: the first N photos (ids
    sorted); ids: these photos instead.

    work_dir: where each photo's counts are kept as it is scored
    (``<id>.npz``, written atomically), so that an interrupted run, started
    again with the same arguments, scores only the photos it has not done. A
    file is reused only when it loads and was made with the same model
    weights and settings; any other is scored again.

    Returns a dict: ``sam`` and ``sobel`` (ODS, OIS, AP, R50, ods_threshold),
    ``ids``, ``annotators`` (per photo), ``thresholds``, ``count_columns``,
    ``counts`` ({"sam", "sobel"}: I x T x 4 int64, per photo and threshold the
    match counts of :func:`edge_match_counts`, so a subset can be rescored
    with :func:`metrics_from_counts`), ``sam_seconds`` and ``sobel_seconds``
    (per photo, computing the edge maps), ``metric_seconds`` (scoring both),
    and the settings. :func:`edges_bsds_record` makes it a small JSON record.
    """
    from ...data.bsds import BsdsDataset
    from ...hub.default_model import load_default

    root = check_bsds_root(root, split)
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    data = BsdsDataset(root, split, ids=list(ids) if ids is not None else None)
    chosen = data.ids if limit is None else data.ids[:limit]
    model = load_default() if model is None else model
    predictor = SamPredictor(model)
    t = edge_thresholds(thresholds)  # T
    counts: dict[str, list[np.ndarray]] = {"sam": [], "sobel": []}
    seconds: dict[str, list[float]] = {"sam": [], "sobel": []}
    annotators, metric_seconds = [], 0.0
    settings = _settings_key(model, points_per_side, t, max_dist)
    reused = 0
    for n, image_id in enumerate(chosen):
        kept = _load_photo_counts(work_dir, image_id, settings)
        if kept is not None:
            for name in ("sam", "sobel"):
                counts[name].append(kept[f"{name}_counts"])
                seconds[name].append(float(kept[f"{name}_seconds"]))
            annotators.append(int(kept["annotators"]))
            reused += 1
            continue
        image = np.array(data.load(image_id).image)  # H x W x 3 uint8 (a writable copy for torch)
        gts = load_bsds_boundaries(data.truth_dir / f"{image_id}.mat")  # A x H x W bool
        if gts.shape[1:] != image.shape[:2]:
            raise ValueError(f"{image_id}: boundary maps are {gts.shape[1:]}, the photo {image.shape[:2]}")
        annotators.append(int(gts.shape[0]))
        tic = time.perf_counter()
        maps = {"sam": detect_edges(predictor, image, points_per_side=points_per_side)}
        seconds["sam"].append(time.perf_counter() - tic)
        tic = time.perf_counter()
        maps["sobel"] = sobel_baseline(image)
        seconds["sobel"].append(time.perf_counter() - tic)
        tic = time.perf_counter()
        for name, edge_map in maps.items():
            counts[name].append(edge_metrics([edge_map], [gts], thresholds=t, max_dist=max_dist)["counts"][0])
        metric_seconds += time.perf_counter() - tic
        if work_dir is not None:
            _save_photo_counts(work_dir, image_id, settings, counts, seconds, annotators[-1])
        if progress:
            print(f"[{n + 1}/{len(chosen)}] {image_id}: {gts.shape[0]} annotators, SAM edges "
                  f"{seconds['sam'][-1]:.1f} s", flush=True)
    result: dict[str, Any] = {
        "benchmark": f"BSDS500 {split}",
        "split": split,
        "num_photos": len(chosen),
        "ids": list(chosen),
        "annotators": annotators,
        "points_per_side": points_per_side,
        "max_dist": max_dist,
        "thresholds": [round(float(x), 6) for x in t],
        "count_columns": list(COUNT_COLUMNS),
    }
    stacked = {name: np.stack(c) for name, c in counts.items()}  # I x T x 4 each
    for name, c in stacked.items():
        m = metrics_from_counts(c, t)
        result[name] = {k: float(m[k]) for k in _SUMMARY_KEYS}
    result["sam_seconds"] = [round(x, 3) for x in seconds["sam"]]
    result["sobel_seconds"] = [round(x, 3) for x in seconds["sobel"]]
    result["metric_seconds"] = round(metric_seconds, 3)
    result["reused_photos"] = reused
    result["counts"] = stacked
    return result


def edges_bsds_record(result: dict[str, Any], every: int = 4) -> dict[str, Any]:
    """:func:`evaluate_edges_bsds`'s result as a small JSON-ready record (about 1 KB per photo).

    Per method it keeps what recomputes every metric: ``curve`` (the counts
    pooled over the photos at every threshold, T x 4: ODS, AP and R50),
    ``best`` (per photo, the index of its best threshold and its 4 counts
    there: OIS), and ``image_counts``, each photo's counts at every
    ``every``-th threshold (the indices in ``sampled``), so one photo can be
    recomputed and compared. :func:`metrics_from_record` recomputes the metrics.
    """
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    record = {k: v for k, v in result.items() if k != "counts"}
    counts = {name: np.asarray(c, dtype=np.int64) for name, c in result["counts"].items()}  # I x T x 4 each
    sampled = list(range(0, len(result["thresholds"]), every))
    record["curve"] = {name: c.sum(axis=0).tolist() for name, c in counts.items()}
    record["best"] = {}
    for name, c in counts.items():
        best = metrics_from_counts(c, result["thresholds"])["best_per_image"]  # I
        record["best"][name] = [[int(b), *map(int, c[i, b])] for i, b in enumerate(best)]
    record["sampled"] = sampled
    record["image_counts"] = {name: c[:, sampled].tolist() for name, c in counts.items()}
    return record


def metrics_from_record(record: dict[str, Any], method: str = "sam") -> dict[str, float]:
    """ODS, OIS, AP, R50 recomputed from an :func:`edges_bsds_record` (``method``: "sam" or "sobel")."""
    curve = np.asarray(record["curve"][method], dtype=np.int64)[None]  # 1 x T x 4: the pooled counts
    pooled = metrics_from_counts(curve, record["thresholds"])
    best = np.asarray(record["best"][method], dtype=np.int64)[:, 1:][:, None]  # I x 1 x 4
    ois = metrics_from_counts(best.sum(axis=0, keepdims=True), [0.5])["ods"]  # F of the pooled best counts
    return {"ods": pooled["ods"], "ois": ois, "ap": pooled["ap"], "r50": pooled["r50"]}


def edges_bsds_markdown(result: dict[str, Any], model_name: str = "the bundled default_cnn") -> str:
    """A markdown table of :func:`evaluate_edges_bsds`'s result with the paper's Table 3 beside it."""
    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}".lstrip("0") if value < 1 else f"{value:.3f}"

    ours = f"{result['benchmark']}, {result['num_photos']} photos"
    lines = ["| method | data | ODS | OIS | AP | R50 |", "|---|---|---|---|---|---|"]
    rows = [(f"SAM, {model_name} ({result['points_per_side']} x {result['points_per_side']} point grid)",
             ours, result["sam"]),
            ("Sobel of the image (this kit's baseline)", ours, result["sobel"])]
    rows += [(f"{name} (paper, Table 3)", "BSDS500 test, 200 photos", m) for name, m in BSDS_PAPER_TABLE3.items()]
    for name, data, m in rows:
        lines.append(f"| {name} | {data} | " + " | ".join(cell(m[k]) for k in ("ods", "ois", "ap", "r50")) + " |")
    lines += ["", f"Our rows: the {result['num_photos']} photos of {result['benchmark']} (the paper scores the 200 "
              "test photos, which this evaluation does not use), every annotator's boundaries, tolerance "
              f"{result['max_dist']} x the diagonal, {len(result['thresholds'])} thresholds; pixels are matched "
              "within the tolerance without BSDS's one-to-one assignment (see edge_metrics), a little more "
              "lenient than the benchmark's code. Every SAM row is zero-shot in the task (no SAM is trained to "
              "detect edges); a model trained on BSDS500 train's segments, as the bundled one is, is not "
              "zero-shot in the data."]
    return "\n".join(lines)
