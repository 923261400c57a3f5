"""The data engine in miniature: simulated annotator, the three stages, retraining and the report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from small_configs import SMALL

from samwidgets import SamPredictor, build_sam, load_default
from samwidgets.cli.data_engine import main as engine_main
from samwidgets.data import SceneGenerator
from samwidgets.data.masks import mask_iou
from samwidgets.data.seeds import HELD_OUT_SEED_START
from samwidgets.data_engine import (
    AnnotatorConfig,
    EngineConfig,
    SimulatedAnnotator,
    assisted_manual,
    run_engine,
    semi_automatic,
)
from samwidgets.data_engine.stages import COVERED_IOU
from samwidgets.io.sa1b import read_sa1b, sa1b_masks
from samwidgets.training.datasets import AnnotatedSource


@pytest.fixture(scope="module")
def bundled():
    return load_default("cpu")


@pytest.fixture(scope="module")
def scene():
    return SceneGenerator(image_size=256)(HELD_OUT_SEED_START + 3)


def _annotate(model, scene, target, config):
    predictor = SamPredictor(model, cache_size=1)
    predictor.set_image(scene.image)
    with torch.no_grad():
        return SimulatedAnnotator(predictor, config).annotate(target)


def test_annotator_stops_at_target_iou_or_finishes_with_the_brush(bundled, scene):
    target = scene.masks[int(np.argmax(scene.areas))]
    config = AnnotatorConfig(target_iou=0.9, max_clicks=6, brush_cost=7)
    result = _annotate(bundled, scene, target, config)
    assert 1 <= result.clicks <= config.max_clicks
    assert result.effort == result.clicks + config.brush_cost * result.brushed
    assert result.brushed == (result.model_iou < config.target_iou)
    if result.brushed:
        np.testing.assert_array_equal(result.mask, target)
    else:
        assert mask_iou(result.mask, target) == pytest.approx(result.model_iou) and result.model_iou >= 0.9
    assert result.points.shape == (result.clicks, 2) and result.labels[0] == 1
    assert 0 <= result.stability_score <= 1


def test_annotator_extremes(bundled, scene):
    target = scene.masks[int(np.argmax(scene.areas))]
    easy = _annotate(bundled, scene, target, AnnotatorConfig(target_iou=1e-3))
    assert (easy.clicks, easy.brushed, easy.effort) == (1, False, 1)  # any overlap will do: the first click
    strict = _annotate(bundled, scene, target, AnnotatorConfig(target_iou=1.0, max_clicks=1, brush_cost=5))
    if strict.brushed:  # a perfect mask from one click would be a surprise, but is allowed
        assert strict.effort == 6 and strict.mask.sum() == target.sum()


@pytest.mark.parametrize("kwargs", [{"target_iou": 0.0}, {"target_iou": 1.5}, {"max_clicks": 0},
                                    {"budget_per_image": 0}, {"brush_cost": -1}])
def test_annotator_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError, match="must be"):
        AnnotatorConfig(**kwargs)


def test_assisted_manual_goes_by_prominence_within_the_time_budget(bundled, scene):
    config = AnnotatorConfig(budget_per_image=12, max_clicks=4, brush_cost=4)
    with torch.no_grad():
        result = assisted_manual(bundled, [scene], config)
    image = result.images[0]
    assert set(image.sources) == {"manual"} and len(image.records) >= 2
    # effort stops growing once the budget is reached: the last object started below it
    assert image.effort - (image.clicks[-1] + config.brush_cost * image.brushed[-1]) < config.budget_per_image
    assert image.effort == sum(c + config.brush_cost * b for c, b in zip(image.clicks, image.brushed))
    order = np.argsort(-scene.areas, kind="stable")
    for record, j, brushed, quality in zip(image.records, order, image.brushed, image.quality):
        assert mask_iou(record["segmentation"], scene.masks[j]) >= (1.0 if brushed else config.target_iou)
        assert quality >= mask_iou(record["segmentation"], scene.masks[j]) - 1e-9
    summary = result.summary()
    assert summary["masks_per_image"] == len(image.records)
    assert summary["auto_masks_per_image"] == 0
    assert summary["clicks_per_manual_mask"] == pytest.approx(np.mean(image.clicks))


def test_semi_automatic_prefills_and_annotates_only_uncovered_objects(bundled, scene):
    config = AnnotatorConfig(budget_per_image=1000, max_clicks=3, brush_cost=1)
    generator = {"points_per_side": 8, "pred_iou_thresh": 0.2, "stability_score_thresh": 0.0}
    with torch.no_grad():
        result = semi_automatic(bundled, [scene], config, generator_kwargs=generator)
    image = result.images[0]
    auto = [r["segmentation"] for r, s in zip(image.records, image.sources) if s == "auto"]
    manual = [r["segmentation"] for r, s in zip(image.records, image.sources) if s == "manual"]
    assert auto, "the generator pre-filled nothing; the test needs a looser threshold"
    assert image.sources == ["auto"] * len(auto) + ["manual"] * len(manual)
    # with an unlimited budget every ground-truth object ends up covered by some mask
    for target in scene.masks:
        assert max(mask_iou(target, m) for m in auto + manual) >= min(COVERED_IOU, config.target_iou)
    # and the annotator never redid an object a pre-filled mask already covered
    for mask, brushed in zip(manual, image.brushed):
        if brushed:  # the mask is then exactly a ground-truth object
            assert max(mask_iou(mask, a) for a in auto) < COVERED_IOU
    for record in image.records:
        assert {"area", "bbox", "predicted_iou", "stability_score", "point_coords", "crop_box"} <= set(record)


def test_annotated_source_batches_and_errors():
    images = [np.full((64, 48, 3), i, np.uint8) for i in range(3)]
    masks = [[np.ones((64, 48), bool)], [], [np.zeros((64, 48), bool), np.eye(64, 48, dtype=bool)]]
    source = AnnotatedSource(images, masks, image_size=64, seed=1)
    assert len(source) == 2  # the image without masks is left out
    batch = source.batch(0, num_images=3, masks_per_image=2)
    assert batch.images.shape == (3, 3, 64, 64) and batch.targets.shape == (6, 64, 64)
    assert batch.image_index.tolist() == [0, 0, 1, 1, 2, 2]
    assert not batch.targets[:, :, 48:].any()  # padding is background
    again = source.batch(0, num_images=3, masks_per_image=2)
    assert torch.equal(batch.targets, again.targets)
    with pytest.raises(ValueError, match="long side of 32"):
        AnnotatedSource(images, masks, image_size=32)
    with pytest.raises(ValueError, match="no image has a mask"):
        AnnotatedSource(images[1:2], masks[1:2], image_size=64)


def test_run_engine_reports_each_stage_exports_sa1b_and_leaves_the_model_alone(tmp_path):
    torch.manual_seed(0)
    model = build_sam(SMALL).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    config = EngineConfig(images_per_stage=(1, 1, 2), steps_per_stage=2, images_per_step=2, masks_per_image=2,
                          rounds=2, eval_scenes=1, eval_masks_per_scene=2,
                          annotator=AnnotatorConfig(budget_per_image=8, max_clicks=2))
    rows = run_engine(model, config, out_dir=tmp_path)
    assert [r.stage for r in rows] == ["start", "assisted-manual", "semi-automatic", "fully-automatic"]
    assert all(len(r.train_loss) == 2 and np.isfinite(r.train_loss).all() for r in rows[1:])
    assert [r.total_masks for r in rows[1:]] == sorted(r.total_masks for r in rows[1:])
    assert all(0 <= r.heldout["1pt"] <= 1 for r in rows)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    report = json.loads((tmp_path / "report.json").read_text())
    assert len(report["rows"]) == 4 and report["config"]["steps_per_stage"] == 2
    assert report["image_size"] == model.config.image_size  # the scenes' size: what the notebook redraws
    assert (tmp_path / "report.md").read_text().count("\n") == 5
    trained = torch.load(tmp_path / "model_stage3.pt", weights_only=True)
    assert any(not torch.equal(before[k], trained[k]) for k in before if k.startswith("mask_decoder"))
    assert all(torch.equal(before[k], trained[k]) for k in before if k.startswith("image_encoder"))
    files = sorted((tmp_path / "stage1_assisted-manual").glob("*.json"))
    assert len(files) == 1 and files[0].with_suffix(".png").is_file()
    data = read_sa1b(files[0])
    assert data["image"]["width"] == SMALL.image_size
    assert len(data["annotations"]) == rows[1].data["masks"]
    assert sa1b_masks(data).any(axis=(1, 2)).all()


@pytest.mark.slow
def test_cli_runs_the_engine_from_the_bundled_model(tmp_path, capsys):
    code = engine_main(["--out", str(tmp_path), "--images", "1", "1", "1", "--steps", "1", "--rounds", "1",
                        "--eval-scenes", "1", "--budget", "4"])
    assert code == 0
    out = capsys.readouterr().out
    assert "| fully-automatic |" in out and (tmp_path / "report.md").read_text() in out
    assert (tmp_path / "model_stage3.pt").is_file()
