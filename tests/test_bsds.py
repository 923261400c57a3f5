"""BSDS500 on a tiny fixture in the official layout: the reader, the training source and the photo evaluation.

The fixture (built with scipy.io.savemat, read back exactly as the real .mat files are) has
two val photos and one train photo, 48 x 64, each segmented by two annotators at different
granularities, plus a folder with one GrabCut mask. Nothing here needs /work/shared or a GPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from bsds_fixture import write_bsds_photo
from PIL import Image
from scipy.io import loadmat
from small_configs import SMALL

from samwidgets import build_sam
from samwidgets.cli.evaluate import main
from samwidgets.data.bsds import BsdsDataset, evaluation_segments, load_grabcut_masks
from samwidgets.errors import UserInputError
from samwidgets.evaluation.clicks import POINT_COUNTS
from samwidgets.evaluation.photos import (
    NOC_MAX_CLICKS,
    BsdsEvalResult,
    evaluate_bsds,
    filled_box_mask,
    grabcut_box_mask,
    noc,
    tight_box,
    write_bsds_outputs,
)
from samwidgets.training.photos import BsdsSource

H, W = 48, 64


def _ellipse(cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    """H x W bool ellipse."""
    yy, xx = np.mgrid[:H, :W]
    return ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0


def _annotations(shift: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Two annotators' label images (coarse: a rectangle and an ellipse; fine: the rectangle in two
    halves, the ellipse and a small square) and the H x W x 3 photo they segment."""
    coarse = np.ones((H, W), np.uint16)  # 1 = background
    coarse[6:30, 8 + shift:36 + shift] = 2  # a rectangle, 24 x 28
    ellipse = _ellipse(50, 38, 9, 7)  # clear of the rectangle
    coarse[ellipse] = 3
    fine = coarse.copy()
    fine[18:30, 8 + shift:36 + shift] = 4  # the rectangle's lower half: a part of it
    fine[38:44, 2:10] = 5  # a small square only the fine annotator drew (48 px, 1.6% of the photo)
    colours = np.array([[0, 0, 0], [40, 90, 40], [200, 60, 50], [50, 60, 210], [230, 200, 60], [240, 240, 240]],
                       np.float32)
    rng = np.random.default_rng(shift)
    image = colours[fine] + rng.normal(0, 6, (H, W, 3))  # H x W x 3, a little texture
    return [coarse, fine], np.clip(image, 0, 255).astype(np.uint8)


def _write_photo(root: Path, split: str, image_id: str, shift: int) -> None:
    """One photo in the official layout: images/<split>/<id>.jpg and groundTruth/<split>/<id>.mat."""
    segmentations, image = _annotations(shift)
    write_bsds_photo(root, split, image_id, image, segmentations)


@pytest.fixture(scope="module")
def bsds(tmp_path_factory) -> Path:
    """tmp/bsds (the BSDS root: val 1000 and 2000, train 3000) and tmp/grabcut/ground-truth/1000.png."""
    base = tmp_path_factory.mktemp("datasets")
    root = base / "bsds"
    _write_photo(root, "val", "1000", shift=0)
    _write_photo(root, "val", "2000", shift=4)
    _write_photo(root, "train", "3000", shift=2)
    gc = base / "grabcut" / "ground-truth"
    gc.mkdir(parents=True)
    png = np.zeros((H, W), np.uint8)
    png[6:30, 8:36] = 255  # the rectangle of photo 1000
    png[5, 8:36] = 128  # an "unknown" band: background
    Image.fromarray(png).save(gc / "1000.png")
    Image.fromarray(png).save(gc / "9999.png")  # a photo of no split here: ignored
    return root


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_sam(SMALL).eval()


# -- the reader ---------------------------------------------------------------------------------

def test_fixture_mat_reads_like_the_real_files(bsds):
    gt = loadmat(str(bsds / "groundTruth" / "val" / "1000.mat"))["groundTruth"]
    assert gt.shape == (1, 2)
    assert gt[0, 1]["Segmentation"][0, 0].shape == (H, W)


def test_reader(bsds):
    val = BsdsDataset(bsds, "val")
    assert val.ids == ["1000", "2000"] and len(val) == 2
    assert BsdsDataset(bsds, "train").ids == ["3000"]
    photo = val[0]
    assert photo.image_id == "1000" and photo.image.shape == (H, W, 3) and photo.image.dtype == np.uint8
    assert len(photo.segmentations) == 2
    assert len(photo.segments(0)) == 3 and len(photo.segments(1)) == 5 and len(photo.segments()) == 8
    inside_top = photo.segments_at(20, 10)  # x, y in the rectangle's upper half
    assert len(inside_top) == 2
    assert inside_top[0].sum() == 24 * 28 and inside_top[1].sum() == 12 * 28  # whole rectangle, its half
    assert BsdsDataset(bsds, "val", ids=["2000"]).ids == ["2000"]


def test_evaluation_segments_bounds_and_determinism(bsds):
    for photo in BsdsDataset(bsds, "val"):
        segments = evaluation_segments(photo)
        assert len(segments) == 4
        for mask in segments:
            assert 0.01 <= mask.mean() <= 0.5
        again = evaluation_segments(BsdsDataset(bsds, "val").load(photo.image_id))
        assert all(np.array_equal(a, b) for a, b in zip(segments, again))


def test_load_grabcut_masks(bsds):
    folder = bsds.parent / "grabcut" / "ground-truth"
    masks = load_grabcut_masks(folder, ["1000", "2000"])
    assert list(masks) == ["1000"]
    assert masks["1000"].dtype == bool and masks["1000"].sum() == 24 * 28  # the 128 band is background
    assert set(load_grabcut_masks(folder)) == {"1000", "9999"}
    with pytest.raises(FileNotFoundError, match="GrabCut"):
        load_grabcut_masks(bsds / "nowhere")


def test_clear_errors(bsds, tmp_path):
    with pytest.raises(FileNotFoundError, match="images/val"):
        BsdsDataset(tmp_path, "val")
    with pytest.raises(ValueError, match="unknown BSDS500 split"):
        BsdsDataset(bsds, "valid")
    with pytest.raises(ValueError, match="evaluation split"):
        BsdsSource(bsds, image_size=64, split="val")


def test_bsds_source_batch(bsds):
    source = BsdsSource(bsds, image_size=64)
    assert len(source) == 1
    batch = source.batch(step=0, num_images=2, masks_per_image=3)
    assert tuple(batch.images.shape) == (2, 3, 64, 64)
    assert tuple(batch.targets.shape) == (6, 64, 64) and batch.targets.dtype == torch.bool
    assert batch.image_index.tolist() == [0, 0, 0, 1, 1, 1]
    assert batch.targets.flatten(1).any(1).all()
    again = source.batch(step=0, num_images=2, masks_per_image=3)
    assert torch.equal(batch.images, again.images) and torch.equal(batch.targets, again.targets)


# -- the evaluation -----------------------------------------------------------------------------

def test_pieces():
    assert noc([0.5, 0.86, 0.95], 0.85) == 2 and noc([0.5, 0.86, 0.95], 0.90) == 3
    assert noc([0.1] * NOC_MAX_CLICKS, 0.85) == NOC_MAX_CLICKS
    mask = np.zeros((10, 12), bool)
    mask[2:5, 3:9] = True
    assert tight_box(mask).tolist() == [3, 2, 9, 5]
    assert np.array_equal(filled_box_mask(tight_box(mask), mask.shape), mask)


@pytest.fixture(scope="module")
def result(bsds, model) -> BsdsEvalResult:
    """evaluate_bsds on the fixture as if OpenCV were missing (the baseline must then be left out)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("samwidgets.evaluation.photos._import_cv2", lambda: None)
        return evaluate_bsds(model, bsds, "val", grabcut_dir=bsds.parent / "grabcut" / "ground-truth")


def test_evaluate_bsds_numbers(result, capsys):
    assert result.split == "val" and result.photos == 2 and result.segments == 8
    for n in POINT_COUNTS:
        assert 0.0 <= result.miou_confident[n] <= 1.0 and 0.0 <= result.miou_oracle[n] <= 1.0
        assert result.miou_confident[n] <= result.miou_oracle[n] + 1e-9
    for value in (result.miou_box, result.ambiguity_score, result.baseline_filled_box):
        assert 0.0 <= value <= 1.0
    # any annotator's segment under the click includes the target itself: never below the oracle
    assert result.ambiguity_score >= result.miou_oracle[1] - 1e-9
    assert result.noc_photos == 1 and set(result.noc_curves) == {"1000"}
    assert len(result.noc_curves["1000"]) == NOC_MAX_CLICKS and len(result.noc_mean_curve) == NOC_MAX_CLICKS
    assert 1 <= result.noc85 <= result.noc90 <= NOC_MAX_CLICKS and result.noc90_failures in (0, 1)
    assert result.calibration_point.pairs == 3 * 8 and result.calibration_all.pairs == 4 * 8
    assert np.isfinite(result.calibration_all.mae) and result.calibration_all.mae >= 0
    assert np.isfinite(result.calibration_all.spearman) and -1 <= result.calibration_all.spearman <= 1
    assert result.baseline_grabcut is None and any("opencv-python-headless" in n for n in result.notes)
    table = result.markdown()
    assert "| most confident |" in table and "| best of 3 (oracle) |" in table and "NoC@85 / NoC@90" in table
    assert "skipped" in table  # the GrabCut baseline


def test_filled_box_baseline_by_hand(bsds, result):
    """The filled box's IoU is area(segment) / area(box) (the segment lies inside its box); 1.0 for a rectangle."""
    by_hand = []
    for photo in BsdsDataset(bsds, "val"):
        for mask in evaluation_segments(photo):
            ys, xs = np.nonzero(mask)
            box_area = (xs.max() - xs.min() + 1) * (ys.max() - ys.min() + 1)
            by_hand.append(mask.sum() / box_area)
    assert np.allclose(result.per_segment["filled_box_iou"], by_hand)
    assert result.baseline_filled_box == pytest.approx(np.mean(by_hand))
    rectangles = [[8, 6, 36, 30], [8, 6, 36, 18], [8, 18, 36, 30], [2, 38, 10, 44]]  # photo 1000's (XYXY)
    chosen = [i for i, (photo, box) in enumerate(zip(result.per_segment["photo"], result.per_segment["box"]))
              if photo == "1000" and box in rectangles]
    assert len(chosen) >= 3  # 4 of its 5 candidate segments, only one of which is not a rectangle
    assert all(result.per_segment["filled_box_iou"][i] == 1.0 for i in chosen)


def test_grabcut_baseline(bsds):
    pytest.importorskip("cv2")
    photo = BsdsDataset(bsds, "val")[0]
    target = photo.segmentations[0] == 2  # the rectangle, 24 x 28
    cut = grabcut_box_mask(photo.image, np.array([6, 4, 38, 32]))  # a loose box around it
    assert cut.shape == (H, W) and cut.dtype == bool
    assert (cut & target).sum() / (cut | target).sum() > 0.8  # a flat-coloured rectangle: easy for GrabCut
    assert np.array_equal(cut, grabcut_box_mask(photo.image, np.array([6, 4, 38, 32])))  # repeatable
    assert grabcut_box_mask(photo.image, np.array([60, 44, 80, 60])).shape == (H, W)  # clipped, >= 2 px


def test_cli_writes_five_files(bsds, model, tmp_path, capsys):
    weights = tmp_path / "w.pt"
    torch.save(model.state_dict(), weights)
    (tmp_path / "config.json").write_text(json.dumps(SMALL.to_dict()))
    out = tmp_path / "eval"
    assert main(["--weights", str(weights), "--model", str(tmp_path / "config.json"), "--bsds", str(bsds),
                 "--max-photos", "1", "--out", str(out)]) == 0
    names = ["bsds_val.json", "bsds_val_summary.json", "bsds_val.md", "bsds_val_clicks.png",
             "bsds_val_calibration.png"]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    record = json.loads((out / "bsds_val.json").read_text())  # the default --grabcut: ROOT/../grabcut/ground-truth
    summary = json.loads((out / "bsds_val_summary.json").read_text())  # what the package ships for its model
    spot = summary.pop("spot_check")  # the first photo's rows, which a notebook recomputes live
    assert summary == {k: v for k, v in record.items() if k not in ("per_segment", "noc_curves")}
    first = record["per_segment"]["photo"][0]
    rows = [i for i, photo in enumerate(record["per_segment"]["photo"]) if photo == first]
    assert spot["photos"] == [first] and rows
    assert spot["rows"] == {k: [v[i] for i in rows] for k, v in record["per_segment"].items()}
    assert "per_segment" in record and "noc_curves" in record
    assert record["split"] == "val" and record["photos"] == 1 and record["noc_photos"] == 1
    assert str(weights) in record["model"]
    if record["baseline_grabcut"] is not None:  # OpenCV installed
        assert 0.0 <= record["baseline_grabcut"] <= 1.0
    assert (out / "bsds_val_clicks.png").stat().st_size > 1000
    assert "| most confident |" in capsys.readouterr().out


def test_spot_check_recomputes_the_records_first_photo(bsds, model, tmp_path):
    from samwidgets.teaching.records import SPOT_CHECK_TOLERANCE, spot_check_bsds

    result = evaluate_bsds(model, bsds, "val", grabcut_baseline=False)  # both photos: the record
    summary = json.loads(write_bsds_outputs(result, tmp_path / "eval")["summary"].read_text())
    assert summary["spot_check"]["photos"] == ["1000"] and len(summary["spot_check"]["rows"]["photo"]) == 4
    check = spot_check_bsds(model, bsds, summary)
    assert check.what == "BSDS500 photo 1000" and check.rows == 4
    assert check.agrees and max(check.largest_difference.values()) <= 5e-5, check.largest_difference  # 4 decimals
    assert "agrees" in str(check)

    other = build_sam(SMALL).eval()  # the same architecture, other weights: the record is not its
    with torch.no_grad():
        for p in other.mask_decoder.parameters():
            p.mul_(3.0)
    drifted = spot_check_bsds(other, bsds, summary)
    assert not drifted.agrees and max(drifted.largest_difference.values()) > SPOT_CHECK_TOLERANCE
    assert "DISAGREES" in str(drifted)

    summary["spot_check"]["rows"]["photo"][0] = "2000"  # a record of other photos cannot be checked silently
    with pytest.raises(ValueError, match="another split"):
        spot_check_bsds(model, bsds, summary)
    del summary["spot_check"]
    with pytest.raises(ValueError, match="no spot-check rows"):
        spot_check_bsds(model, bsds, summary)


def test_find_bsds500_is_an_error_only_where_the_data_is_required(bsds, tmp_path, monkeypatch):
    from samwidgets.teaching.records import BSDS_ENV, REQUIRE_DATA_ENV, find_bsds500

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(BSDS_ENV, raising=False)
    monkeypatch.delenv(REQUIRE_DATA_ENV, raising=False)
    assert find_bsds500([tmp_path / "nowhere"]) is None
    assert find_bsds500([tmp_path / "nowhere", bsds]) == bsds
    monkeypatch.setenv(BSDS_ENV, str(bsds))
    assert find_bsds500([tmp_path / "nowhere"]) == bsds
    monkeypatch.setenv(BSDS_ENV, str(tmp_path / "not_bsds"))
    monkeypatch.setenv(REQUIRE_DATA_ENV, "1")
    with pytest.raises(FileNotFoundError, match=f"{BSDS_ENV} to its data folder"):
        find_bsds500([tmp_path / "nowhere"])


# -- training on photos ---------------------------------------------------------------------------

def test_mixed_source_draws_both_sources_reproducibly(bsds):
    from samwidgets.training.datasets import MixedSource, ProceduralSource

    mixed = MixedSource([BsdsSource(bsds, image_size=64), ProceduralSource(64)], [0.5, 0.5], seed=0)
    batch = mixed.batch(step=0, num_images=8, masks_per_image=2)
    assert tuple(batch.images.shape) == (8, 3, 64, 64) and tuple(batch.targets.shape) == (16, 64, 64)
    assert batch.image_index.tolist() == [i for i in range(8) for _ in range(2)]
    photos = BsdsSource(bsds, image_size=64)  # image i of step s is source k's batch s * 8 + i (the docstring)
    from_photos = [torch.equal(batch.images[i], photos.batch(i, 1, 2).images[0]) for i in range(8)]
    from_scenes = [torch.equal(batch.images[i], ProceduralSource(64).batch(i, 1, 2).images[0]) for i in range(8)]
    assert all(p != s for p, s in zip(from_photos, from_scenes)) and 0 < sum(from_photos) < 8
    again = mixed.batch(step=0, num_images=8, masks_per_image=2)
    assert torch.equal(batch.images, again.images) and torch.equal(batch.targets, again.targets)
    with pytest.raises(ValueError, match="non-negative weight"):
        MixedSource([ProceduralSource(64)], [0.5, 0.5])


def test_train_on_photos_from_a_trained_decoder(bsds, tmp_path):
    """python -m samwidgets train --bsds ROOT with a CNN config: photos and scenes mixed, the loss at low
    resolution, the prompt encoder and decoder started from another run's weights."""
    import csv

    from small_configs import CNN_SMALL

    from samwidgets.cli.train import main as train_main

    donor = build_sam(CNN_SMALL.replace(encoder_type="vit", patch_size=16, high_res_features=False,
                                        encoder_embed_dim=16, encoder_depth=1, encoder_num_heads=2,
                                        encoder_global_attn_indexes=(0,), window_size=0))
    torch.save(donor.state_dict(), tmp_path / "donor.pt")
    config_json = tmp_path / "cnn.json"
    config_json.write_text(json.dumps(CNN_SMALL.to_dict()))
    out = tmp_path / "run"
    assert train_main(["--model", str(config_json), "--bsds", str(bsds), "--bsds-fraction", "0.5",
                       "--init-decoder", str(tmp_path / "donor.pt"), "--loss-at-low-res", "--steps", "2",
                       "--images-per-step", "2", "--masks-per-image", "2", "--rounds", "2", "--warmup", "1",
                       "--out", str(out), "--no-progress"]) == 0
    rows = list(csv.DictReader((out / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2] and all(np.isfinite(float(r["loss"])) for r in rows)
    trained = build_sam(CNN_SMALL, out / "weights.pt")  # loads strictly
    assert any(k.startswith("image_encoder.stem") for k in trained.state_dict())
    donor_state, trained_state = donor.state_dict(), trained.state_dict()
    for k in donor_state:  # 2 small AdamW steps from the donor's decoder, not from a random one
        if k.startswith("mask_decoder.") and donor_state[k].is_floating_point():
            assert (trained_state[k] - donor_state[k]).abs().max() < 0.02, k
    with pytest.raises(UserInputError, match="--init-decoder"):  # a decoder of another width is refused by name
        wide = build_sam(SMALL.replace(prompt_embed_dim=64))
        torch.save(wide.state_dict(), tmp_path / "wide.pt")
        train_main(["--model", str(config_json), "--bsds", str(bsds), "--init-decoder", str(tmp_path / "wide.pt"),
                    "--steps", "1", "--out", str(tmp_path / "run2"), "--no-progress"])


def test_mask_facts_are_defined_once():
    """The evaluations use samwidgets.data.masks' functions (one definition of mask IoU and tight box)."""
    from samwidgets.data.masks import mask_iou
    from samwidgets.data.masks import tight_box as box_of
    from samwidgets.evaluation import clicks, photos, procedural

    assert clicks.mask_iou is mask_iou and procedural.mask_iou is mask_iou and photos.tight_box is box_of
    a = np.zeros((4, 5), bool)
    a[1:3, 1:4] = True
    b = np.zeros((4, 5), bool)
    b[2:4, 1:4] = True
    assert mask_iou(a, b) == 3 / 9 and mask_iou(a, a) == 1.0 and mask_iou(a & False, b & False) == 1.0
    with pytest.raises(ValueError, match="empty mask"):
        box_of(np.zeros((3, 3), bool))
