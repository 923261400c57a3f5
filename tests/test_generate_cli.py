"""``python -m samwidgets generate``: SA-1B JSON per image, resume, unreadable images reported."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from small_configs import SMALL

from samwidgets import build_sam
from samwidgets.cli.folders import clashing_stems, collect_images
from samwidgets.cli.generate import image_id_for, main, thresholds_for
from samwidgets.data import SceneGenerator
from samwidgets.data.seeds import HELD_OUT_SEED_START
from samwidgets.hub.registry import WEIGHTS_DIR
from samwidgets.io.sa1b import read_sa1b, sa1b_masks

FAST = ["--points-per-side", "4", "--pred-iou-thresh", "0.2", "--stability-score-thresh", "0", "--no-progress"]


@pytest.fixture()
def image_dir(tmp_path):
    """Two scenes (PNG and JPEG), a file that is not an image, and a text file that is ignored."""
    folder = tmp_path / "images"
    folder.mkdir()
    scenes = SceneGenerator(image_size=96)
    Image.fromarray(scenes(HELD_OUT_SEED_START).image).save(folder / "scene_1.png")
    Image.fromarray(scenes(HELD_OUT_SEED_START + 1).image[:80]).save(folder / "scene_2.jpg")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_collect_images_expands_directories_sorted(image_dir):
    found = collect_images([image_dir, image_dir / "scene_2.jpg"])
    assert [p.name for p in found] == ["broken.png", "scene_1.png", "scene_2.jpg"]
    assert clashing_stems([image_dir / "a.png", image_dir / "b.png", image_dir / "a.jpg"]) == \
        [[image_dir / "a.png", image_dir / "a.jpg"]]
    assert image_id_for(image_dir / "sa_123.jpg") == 123
    assert image_id_for(image_dir / "cat.jpg") == image_id_for(image_dir / "cat.png") >= 0


def test_writes_sa1b_reports_broken_images_and_resumes(image_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(image_dir), "--out", str(out), *FAST]) == 1  # broken.png failed
    captured = capsys.readouterr()
    assert "broken.png" in captured.err and "2 written, 0 skipped" in captured.out
    assert sorted(p.name for p in out.iterdir()) == ["scene_1.json", "scene_2.json"]

    data = read_sa1b(out / "scene_2.json")
    assert data["image"] == {"image_id": 2, "width": 96, "height": 80, "file_name": "scene_2.jpg"}
    assert len(data["annotations"]) > 0
    masks = sa1b_masks(data)
    assert masks.shape[1:] == (80, 96) and masks.reshape(len(masks), -1).any(1).all()

    # a second run skips what is done; a deleted JSON is made again, the other is left alone
    kept = (out / "scene_1.json").stat().st_mtime_ns
    (out / "scene_2.json").unlink()
    assert main([str(image_dir), "--out", str(out), *FAST]) == 1
    assert "1 written, 1 skipped" in capsys.readouterr().out
    assert (out / "scene_1.json").stat().st_mtime_ns == kept
    assert read_sa1b(out / "scene_2.json") == data  # deterministic: the same file again

    (image_dir / "broken.png").unlink()
    assert main([str(image_dir), "--out", str(out), *FAST]) == 0
    assert "0 written, 2 skipped (JSON already there), 0 failed, 0 redone" in capsys.readouterr().out

    # a JSON that does not parse (cut short) or is not SA-1B is never trusted: it is made again, and said
    text = (out / "scene_2.json").read_text()
    (out / "scene_2.json").write_text(text[: len(text) // 2])
    (out / "scene_1.json").write_text('{"image": {}, "annotations": []}')
    assert main([str(image_dir), "--out", str(out), *FAST]) == 0
    captured = capsys.readouterr()
    assert "2 written, 0 skipped (JSON already there), 0 failed, 2 redone" in captured.out
    assert "scene_2.json is broken (" in captured.err and "generating it again" in captured.err
    assert read_sa1b(out / "scene_2.json") == data and read_sa1b(out / "scene_1.json")["annotations"]


def test_thresholds_default_per_model(image_dir, tmp_path, capsys):
    # the bundled model's IoU head is under-confident: the reference's 0.88 / 0.95 would keep nothing; its own are
    # what `samwidgets calibrate-generator` recorded beside its weights
    record = json.loads((WEIGHTS_DIR / "generator_thresholds.json").read_text())
    bundled = {"pred_iou_thresh": record["pred_iou_thresh"], "stability_score_thresh": record["stability_score_thresh"]}
    assert thresholds_for(True, None, None) == bundled
    assert thresholds_for(False, None, None) == {"pred_iou_thresh": 0.88, "stability_score_thresh": 0.95}
    assert thresholds_for(True, 0.5, None) == {"pred_iou_thresh": 0.5, "stability_score_thresh": 0.0}
    out = tmp_path / "out"
    assert main([str(image_dir / "scene_1.png"), "--out", str(out), "--points-per-side", "4", "--no-progress"]) == 0
    assert f"pred_iou_thresh {bundled['pred_iou_thresh']:g}, stability_score_thresh 0" in capsys.readouterr().out
    assert read_sa1b(out / "scene_1.json")["annotations"]


def test_clashing_names_and_missing_files(image_dir, tmp_path, capsys):
    Image.new("RGB", (8, 8)).save(image_dir / "scene_1.bmp")
    assert main([str(image_dir), "--out", str(tmp_path / "out"), *FAST]) == 2
    assert "same JSON file" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert main([str(tmp_path / "nowhere.png"), "--out", str(tmp_path / "out"), *FAST]) == 1
    assert "nowhere.png" in capsys.readouterr().err


def test_model_from_config_and_weights(image_dir, tmp_path, capsys):
    torch.manual_seed(0)
    torch.save(build_sam(SMALL).state_dict(), tmp_path / "small.pt")
    (tmp_path / "small.json").write_text(json.dumps(SMALL.to_dict()))
    out = tmp_path / "out"
    args = [str(image_dir / "scene_1.png"), "--out", str(out), "--model", str(tmp_path / "small.json"),
            "--weights", str(tmp_path / "small.pt"), "--points-per-side", "2", "--pred-iou-thresh", "0",
            "--stability-score-thresh", "0", "--no-progress"]
    assert main(args) == 0
    assert read_sa1b(out / "scene_1.json")["image"]["width"] == 96
    assert main(args[:-1] + ["--no-progress", "--weights", str(tmp_path / "missing.pt")]) == 0  # done: skipped
    (out / "scene_1.json").unlink()
    bad = args[:5] + ["--weights", str(tmp_path / "missing.pt"), "--no-progress"]
    assert main(bad) == 2
    assert "could not load the model" in capsys.readouterr().err


@pytest.mark.slow
def test_command_line_entry_point(image_dir, tmp_path):
    result = subprocess.run([sys.executable, "-m", "samwidgets", "generate", str(image_dir / "broken.png"),
                             str(image_dir / "scene_1.png"), "--out", str(tmp_path / "out"), *FAST],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "failed images:" in result.stderr and "broken.png" in result.stderr
    assert np.asarray(sa1b_masks(read_sa1b(tmp_path / "out" / "scene_1.json"))).ndim == 3
