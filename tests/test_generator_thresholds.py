"""The generator's threshold calibration: counts by hand on made-up candidates, and the command end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from bsds_fixture import write_bsds_photo
from small_configs import CNN_SMALL

from samwidgets import build_sam
from samwidgets.cli.calibrate_generator import main
from samwidgets.errors import UserInputError
from samwidgets.evaluation.generator_thresholds import Candidates, calibrate_thresholds, counts_at


def _photo(pred, stab, pair):
    pair = np.asarray(pair, dtype=float)
    best = pair.max(axis=1) if pair.shape[1] else np.zeros(len(pair))
    return Candidates(np.asarray(pred, float), np.asarray(stab, float), best, pair)


# Photo A: 3 candidates, 2 segments. Candidate 0 finds segment 0, candidate 2 finds segment 1, candidate 1 is junk.
A = _photo([0.9, 0.6, 0.3], [0.97, 0.9, 0.5], [[0.8, 0.0], [0.2, 0.1], [0.0, 0.55]])
# Photo B: 2 candidates, 1 segment; both match it (a duplicate), only the first is confident.
B = _photo([0.7, 0.2], [0.8, 0.95], [[0.6], [0.51]])


def test_counts_by_hand():
    everything = counts_at([A, B], 0.0, 0.0)  # kept 5, right 4 (A0, A2, B0, B1), found 3 of 3
    assert everything["masks_per_photo"] == 2.5
    assert everything["precision"] == pytest.approx(4 / 5) and everything["recall"] == 1.0
    confident = counts_at([A, B], 0.5, 0.0)  # kept A0, A1, B0: right 2 of 3; found A's segment 0 and B's
    assert confident["precision"] == pytest.approx(2 / 3) and confident["recall"] == pytest.approx(2 / 3)
    stable = counts_at([A, B], 0.0, 0.85)  # kept A0, A1, B1: right 2, found 2 of 3
    assert stable["precision"] == pytest.approx(2 / 3) and stable["recall"] == pytest.approx(2 / 3)
    assert counts_at([A, B], 0.95, 0.0) == {"pred_iou_thresh": 0.95, "stability_score_thresh": 0.0, "precision": 0.0,
                                            "recall": 0.0, "f1": 0.0, "masks_per_photo": 0.0}


def test_the_best_f1_wins_and_ties_go_to_the_higher_pair():
    choice = calibrate_thresholds([A, B], iou_grid=(0.0, 0.25, 0.5), stability_grid=(0.0, 0.85))
    # no filtering: P 0.8, R 1 -> F1 0.889; iou >= 0.25 keeps A0 A1 A2 B0: P 0.75, R 1 -> 0.857
    assert (choice.pred_iou_thresh, choice.stability_score_thresh) == (0.0, 0.0)
    assert choice.f1 == pytest.approx(2 * 0.8 / 1.8)
    assert len(choice.grid) == 6 and choice.photos == 2 and choice.segments == 3
    tie = calibrate_thresholds([B], iou_grid=(0.0, 0.5), stability_grid=(0.0,))  # both: 1 segment found, P 1
    assert tie.pred_iou_thresh == 0.5
    with pytest.raises(ValueError, match="no human segments"):
        calibrate_thresholds([_photo([0.5], [0.5], np.zeros((1, 0)))])


def test_command_on_a_bsds_fixture(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(2):
        image = rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)
        labels = 1 + (np.arange(96)[None, :] >= 48).repeat(64, 0).astype(np.uint16)
        write_bsds_photo(tmp_path / "bsds", "train", f"{10 + i}", image, [labels])
    torch.manual_seed(0)
    torch.save(build_sam(CNN_SMALL).state_dict(), tmp_path / "w.pt")
    (tmp_path / "cnn.json").write_text(json.dumps(CNN_SMALL.to_dict()))
    out = tmp_path / "out"
    assert main(["--model", str(tmp_path / "cnn.json"), "--weights", str(tmp_path / "w.pt"), "--bsds",
                 str(tmp_path / "bsds"), "--photos", "2", "--points-per-side", "4", "--out", str(out)]) == 0
    record = json.loads((out / "generator_thresholds.json").read_text())
    assert record["photos"] == 2 and record["segments"] == 4 and record["points_per_side"] == 4
    assert 0 <= record["pred_iou_thresh"] < 1 and len(record["grid"]) == 20 * 8
    assert "| chosen (best F1) |" in (out / "generator_thresholds.md").read_text()
    with pytest.raises(UserInputError):
        main(["--bsds", str(tmp_path / "nope"), "--out", str(out)])


def test_the_bundled_thresholds_are_the_recorded_calibration():
    """BUNDLED_MODEL_THRESHOLDS are what `samwidgets calibrate-generator` chose for the bundled model."""
    from samwidgets.hub.registry import BUNDLED_MODEL_NAME, WEIGHTS_DIR
    from samwidgets.inference.automatic_mask_generator import BUNDLED_MODEL_THRESHOLDS

    record = json.loads((WEIGHTS_DIR / "generator_thresholds.json").read_text())
    assert record["model"] == f"the bundled {BUNDLED_MODEL_NAME}" and record["split"] == "train"
    assert BUNDLED_MODEL_THRESHOLDS == {"pred_iou_thresh": record["pred_iou_thresh"],
                                       "stability_score_thresh": record["stability_score_thresh"]}
    best = max(r["f1"] for r in record["grid"])
    assert record["f1"] == best
