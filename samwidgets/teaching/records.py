"""Recorded evaluations the notebooks show: results of the kit's own evaluation commands, shipped with the package.

They are measurements, not claims: each file is the JSON that ``samwidgets evaluate --bsds`` wrote for the
bundled model (BSDS500 is not shipped, so a notebook cannot recompute it offline), trimmed of its per-segment
rows but those of its first photo (and the held-out scenes' record keeps its first scene's). The spot checks
recompute those with the bundled weights and compare them value by value with the record
(:func:`spot_check_scenes` offline, :func:`spot_check_bsds` where BSDS500 is on the machine): the record is then
shown to be what the shipped model does, not only what it once did.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UserInputError
from ..hub.registry import BUNDLED_MODEL_NAME, WEIGHTS_DIR

if TYPE_CHECKING:  # the evaluation modules (scenes, SciPy) load only when a check runs
    from ..evaluation.procedural import EvalResult
    from ..modeling import Sam

__all__ = ["BSDS_ENV", "BSDS_RECORD", "REQUIRE_DATA_ENV", "SCENES_RECORD", "SPOT_CHECK_TOLERANCE", "SpotCheck",
           "bsds_summary",
           "find_bsds500", "recorded_bsds_evaluation", "recorded_scene_evaluation", "spot_check_bsds",
           "spot_check_scenes"]

#: Where BSDS500 is (its ``BSDS500/data`` folder, holding ``images/`` and ``groundTruth/``), when not found nearby.
BSDS_ENV = "SAMWIDGETS_BSDS500"
#: Set to 1 where a live check against the data set must run (continuous integration): a missing set is an error.
REQUIRE_DATA_ENV = "SAMWIDGETS_REQUIRE_DATA"
#: Largest difference a live recomputation may show from the record, per value (IoUs and predicted IoUs): another
#: CPU's float rounding may move a few pixels of a mask, never more.
SPOT_CHECK_TOLERANCE = 0.02

#: ``samwidgets evaluate --bsds BSDS500/data --split val`` for the bundled model (see weights/MODEL_CARD.md).
BSDS_RECORD = WEIGHTS_DIR / "default_cnn_bsds500_val.json"
#: ``samwidgets evaluate --scenes 50`` for the bundled model: held-out procedural scenes.
SCENES_RECORD = WEIGHTS_DIR / f"{BUNDLED_MODEL_NAME}_eval.json"


def recorded_bsds_evaluation() -> dict[str, Any]:
    """The bundled model's recorded BSDS500 val evaluation, as the evaluation command wrote it."""
    return json.loads(BSDS_RECORD.read_text())


def bsds_summary(record: dict[str, Any]) -> dict[str, float]:
    """The headline mIoUs of a record: one point (most confident, best of three), box, and the baselines."""
    summary = {
        "1 point, most confident": record["miou_confident"]["1"],
        "1 point, best of three": record["miou_oracle"]["1"],
        "box": record["miou_box"],
        "baseline: the box itself, filled": record["baseline_filled_box"],
    }
    if record.get("baseline_grabcut") is not None:
        summary["baseline: OpenCV GrabCut from the box"] = record["baseline_grabcut"]
    return summary


def find_bsds500(candidates: list[str | Path] | None = None) -> Path | None:
    """The BSDS500 ``data`` folder: ``$SAMWIDGETS_BSDS500``, else the first of ``candidates`` that holds it.

    Default candidates: ``BSDS500/data`` and the project's ``shared/datasets/bsds500`` seen from the working folder
    or its parent (a notebook runs in ``notebooks/``). Returns None when none does, unless
    ``$SAMWIDGETS_REQUIRE_DATA`` is 1: then a missing data set is a ``FileNotFoundError`` naming where it looked.
    """
    if candidates is None:
        candidates = ["BSDS500/data", "../shared/datasets/bsds500", "../../shared/datasets/bsds500"]
    looked = [os.environ.get(BSDS_ENV, ""), *map(str, candidates)]
    found = next((Path(p) for p in looked if p and (Path(p) / "groundTruth").is_dir()), None)
    if found is None and os.environ.get(REQUIRE_DATA_ENV) == "1":
        raise FileNotFoundError(f"BSDS500 is not in any of {[p for p in looked if p]} (from {Path.cwd()}), and "
                                f"${REQUIRE_DATA_ENV}=1 asks for the live check: set ${BSDS_ENV} to its data folder")
    return found


@dataclass
class SpotCheck:
    """A live recomputation of a record's first photo or scene, compared value by value with the record."""

    what: str  # e.g. "BSDS500 photo 101085"
    rows: int  # segments or masks recomputed
    largest_difference: dict[str, float]  # column -> largest |live - recorded| over its values

    @property
    def agrees(self) -> bool:
        """Every value within :data:`SPOT_CHECK_TOLERANCE` of the record."""
        return max(self.largest_difference.values()) <= SPOT_CHECK_TOLERANCE

    def __str__(self) -> str:
        worst = max(self.largest_difference, key=lambda column: self.largest_difference[column])
        return (f"live check, {self.what} ({self.rows} masks) recomputed: largest difference from the record "
                f"{self.largest_difference[worst]:.4f} ({worst}); " + ("agrees" if self.agrees else "DISAGREES"))


def _largest_differences(live: dict[str, list], recorded: dict[str, list], columns: tuple[str, ...]) -> dict:
    return {column: float(np.max(np.abs(np.asarray(live[column], dtype=float)
                                        - np.asarray(recorded[column], dtype=float)), initial=0.0))
            for column in columns}


#: The per-segment columns a spot check compares: every IoU and predicted IoU the record's figures come from.
SPOT_CHECK_COLUMNS = ("confident", "oracle", "point_scores", "point_ious", "ambiguity", "box_score", "box_iou",
                      "filled_box_iou")


def spot_check_bsds(model: Sam, root: str | Path, record: dict[str, Any] | None = None) -> SpotCheck:
    """Recompute the record's spot-check photos with ``model`` and compare every per-segment value with the record.

    record: a summary written by ``samwidgets evaluate --bsds`` (default: the bundled model's). The segments and
    clicks are the record's own: the same photos, the same protocol (``evaluate_bsds``), without GrabCut.
    """
    from ..evaluation.photos import evaluate_bsds  # OpenCV and the BSDS reader: only when asked

    record = record if record is not None else recorded_bsds_evaluation()
    spot = record.get("spot_check")
    if not spot or not spot.get("photos"):
        raise UserInputError("this record has no spot-check rows: re-make it with `samwidgets evaluate --bsds`")
    live = evaluate_bsds(model, root, record["split"], max_photos=len(spot["photos"]), grabcut_baseline=False)
    rows = live.per_segment
    if rows["photo"] != spot["rows"]["photo"]:
        raise UserInputError(f"the live run scored photos {sorted(set(rows['photo']))} ({len(rows['photo'])} "
                             f"segments), the record {spot['photos']} ({len(spot['rows']['photo'])}): another split "
                             "or another BSDS500 copy")
    return SpotCheck(what=f"BSDS500 photo {', '.join(spot['photos'])}", rows=len(rows["photo"]),
                     largest_difference=_largest_differences(rows, spot["rows"], SPOT_CHECK_COLUMNS))


def recorded_scene_evaluation() -> EvalResult:
    """The bundled model's recorded evaluation on held-out procedural scenes (``samwidgets evaluate --scenes 50``)."""
    from ..evaluation.procedural import EvalResult

    raw = json.loads(SCENES_RECORD.read_text())
    return EvalResult(**{**raw, "miou_confident": {int(n): v for n, v in raw["miou_confident"].items()},
                         "miou_oracle": {int(n): v for n, v in raw["miou_oracle"].items()}})


def spot_check_scenes(model: Sam, record: EvalResult | None = None) -> SpotCheck:
    """Recompute the first held-out scene of a scenes record with ``model``; compare every mask's IoUs with it.

    The scene, the masks and the clicks are the record's own (``evaluate`` with the same seeds): a few seconds,
    offline, so every notebook that shows the record can show that it is still what the bundled weights do.
    """
    from ..evaluation.procedural import evaluate

    record = record if record is not None else recorded_scene_evaluation()
    if not record.spot_check:
        raise UserInputError("this record has no spot-check rows: re-make it with `samwidgets evaluate --scenes N`")
    masks = len(record.spot_check["box_iou"])  # min(the scene's masks, the record's --masks-per-scene)
    live = evaluate(model, num_scenes=1, max_masks_per_scene=masks).spot_check  # the same masks, in the same order
    if len(live["box_iou"]) != masks:
        raise UserInputError(f"the live run scored {len(live['box_iou'])} masks of the first scene, the record "
                             f"{masks}: the record was made at another image size or with another scene generator")
    return SpotCheck(what="held-out scene 0", rows=len(live["box_iou"]),
                     largest_difference=_largest_differences(live, record.spot_check, ("confident", "oracle",
                                                                                       "box_iou")))
