"""Recorded evaluations the notebooks show: results of the kit's own evaluation commands, shipped with the package.

They are measurements, not claims: each file is the JSON that ``samwidgets evaluate --bsds`` wrote for the
bundled model (BSDS500 is not shipped, so a notebook cannot recompute it offline), trimmed of its per-segment
rows.
"""

from __future__ import annotations

import json
from typing import Any

from ..hub.registry import WEIGHTS_DIR

__all__ = ["BSDS_RECORD", "bsds_summary", "recorded_bsds_evaluation"]

#: ``samwidgets evaluate --bsds BSDS500/data --split val`` for the bundled model (see weights/MODEL_CARD.md).
BSDS_RECORD = WEIGHTS_DIR / "default_cnn_bsds500_val.json"


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
