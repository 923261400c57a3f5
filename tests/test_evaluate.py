"""The single-point evaluation protocol: click placement rules and an end-to-end run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from small_configs import SMALL

from samwidgets import build_sam
from samwidgets.cli.evaluate import main
from samwidgets.evaluation.clicks import POINT_COUNTS, interior_centre, next_click
from samwidgets.evaluation.procedural import evaluate


def test_first_click_is_the_interior_centre():
    mask = np.zeros((20, 30), bool)
    mask[2:13, 4:25] = True  # 11 rows x 21 cols: centre row 7
    x, y = interior_centre(mask)
    assert y == 7 and 9 <= x <= 19 and mask[int(y), int(x)]


def test_next_click_is_farthest_inside_the_larger_error():
    target = np.zeros((40, 40), bool)
    target[5:35, 5:35] = True
    pred = target.copy()
    pred[5:35, 5:15] = False  # missed a 30 x 10 strip: a positive click in its middle
    x, y, label = next_click(pred, target)
    assert label == 1 and 9 <= x <= 10 and 9 <= y <= 30  # 5 px from every edge of the strip
    spill = target.copy()
    spill[0:3, :] = True  # a false-positive band: a negative click
    assert next_click(spill, target)[2] == 0
    assert next_click(target, target) is None


def test_evaluate_end_to_end(tmp_path, monkeypatch):
    cfg = SMALL.replace(image_size=128, window_size=8)
    torch.manual_seed(0)
    model = build_sam(cfg)
    result = evaluate(model, num_scenes=2, max_masks_per_scene=3)
    assert result.masks == 6 and set(result.miou_confident) == set(POINT_COUNTS)
    for n in POINT_COUNTS:
        assert 0.0 <= result.miou_confident[n] <= result.miou_oracle[n] + 1e-9 <= 1.0 + 1e-9
    assert 0.0 <= result.miou_box <= 1.0 and result.ambiguity_points > 0
    assert "| confident |" in result.markdown()

    weights = tmp_path / "w.pt"
    torch.save(model.state_dict(), weights)
    (tmp_path / "config.json").write_text(json.dumps(cfg.to_dict()))
    out = tmp_path / "eval"
    assert main(["--weights", str(weights), "--model", str(tmp_path / "config.json"), "--scenes", "1",
                 "--masks-per-scene", "2", "--out", str(out)]) == 0
    record = json.loads((out / "eval.json").read_text())
    assert record["masks"] == 2 and (out / "eval.png").stat().st_size > 1000


def test_spot_check_recomputes_the_first_scene_of_a_record():
    from samwidgets.teaching.records import spot_check_scenes

    cfg = SMALL.replace(image_size=128, window_size=8)
    torch.manual_seed(0)
    model = build_sam(cfg).eval()
    record = evaluate(model, num_scenes=2, max_masks_per_scene=3)
    first = record.spot_check
    assert len(first["box_iou"]) == 3 and len(first["confident"][0]) == max(POINT_COUNTS)
    check = spot_check_scenes(model, record)
    assert check.what == "held-out scene 0" and check.rows == 3
    assert check.agrees and max(check.largest_difference.values()) == 0.0, check.largest_difference

    # a record the model no longer gives: one mask's IoU after the fifth click 0.1 off
    import copy
    stale = copy.deepcopy(record)
    stale.spot_check["confident"][1][4] += 0.1
    check = spot_check_scenes(model, stale)
    assert not check.agrees and abs(check.largest_difference["confident"] - 0.1) < 1e-9
    assert check.largest_difference["box_iou"] == 0.0 and "DISAGREES" in str(check)
    stale.spot_check = {}
    with pytest.raises(ValueError, match="no spot-check rows"):
        spot_check_scenes(model, stale)
