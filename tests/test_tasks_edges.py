"""Zero-shot edge detection (samwidgets.tasks.edges): the BSDS metrics (one or several annotators), the
filters, SAM's edges, and the BSDS500 evaluation and its command on a tiny fixture in the official layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from bsds_fixture import label_boundaries, write_bsds_photo

pytest.importorskip("scipy")
pytest.importorskip("skimage")

from samwidgets.tasks import edges as E


def _disc(size: int = 128, radius: float = 40.0) -> np.ndarray:
    """size x size bool disc centred in the image."""
    yy, xx = np.mgrid[:size, :size]
    c = (size - 1) / 2
    return (xx - c) ** 2 + (yy - c) ** 2 < radius**2


def _boundary(mask: np.ndarray) -> np.ndarray:
    """One-pixel boundary of a mask (as scene_boundaries draws it)."""
    b = np.zeros_like(mask)
    b[:, :-1] |= mask[:, :-1] != mask[:, 1:]
    b[:-1] |= mask[:-1] != mask[1:]
    return b


# -- metric -----------------------------------------------------------------------------------------


def test_perfect_prediction_scores_one():
    gt = [_boundary(_disc()), _boundary(_disc(radius=25))]
    m = E.edge_metrics([g.astype(np.float32) for g in gt], gt)
    for key in ("ods", "ois", "ap", "r50"):
        assert m[key] == pytest.approx(1.0, abs=1e-6), key


def test_empty_prediction_scores_zero():
    gt = [_boundary(_disc())]
    m = E.edge_metrics([np.zeros(gt[0].shape, np.float32)], gt)
    assert m["ods"] == m["ois"] == m["ap"] == m["r50"] == 0.0


def test_shift_within_tolerance_matches_and_far_shift_does_not():
    gt = _boundary(_disc())  # 128 px: tolerance 0.0075 * 181 = 1.36 px
    near = E.edge_metrics([np.roll(gt, 1, axis=1).astype(np.float32)], [gt])
    far = E.edge_metrics([np.roll(gt, 10, axis=1).astype(np.float32)], [gt])
    assert near["ods"] > 0.99
    assert far["ods"] < 0.3  # only where the shifted circle happens to cross the original


def test_metric_interpolates_between_good_and_noisy_maps():
    rng = np.random.default_rng(0)
    gt = _boundary(_disc())
    noisy = np.where(gt, 0.9, 0.0) + 0.5 * (rng.random(gt.shape) < 0.02)  # true edges strong, noise weak
    m = E.edge_metrics([noisy.astype(np.float32)], [gt])
    assert m["ods"] == pytest.approx(1.0, abs=1e-6)  # a threshold above the noise separates them
    assert m["precision"][0] < 0.9  # low thresholds let the noise in...
    assert m["ap"] == pytest.approx(1.0, abs=1e-6)  # ...but AP uses the best precision at each recall
    assert m["ods_threshold"] > 0.5


def test_metric_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="same H x W"):
        E.edge_metrics([np.zeros((4, 4))], [np.zeros((4, 5), bool)])
    with pytest.raises(ValueError, match="2 prediction maps but 1"):
        E.edge_metrics([np.zeros((4, 4))] * 2, [np.zeros((4, 4), bool)])


# -- several annotators (hand-counted) ---------------------------------------------------------------
# On a 20 x 20 image the tolerance is 0.0075 * 28.3 = 0.21 px: only a pixel on the very same spot matches.


def _lines(*segments: tuple[int, int, int]) -> np.ndarray:
    """20 x 20 bool map with vertical one-pixel segments (column, first row, last row + 1)."""
    out = np.zeros((20, 20), bool)
    for col, r0, r1 in segments:
        out[r0:r1, col] = True
    return out


# annotator A: column 5 (20 px); annotator B: column 5, rows 0-9 (10 px) and column 14 (20 px)
A = _lines((5, 0, 20))
B = _lines((5, 0, 10), (14, 0, 20))
# prediction: column 5 (20 px, on A and B), column 14 rows 0-9 (10 px, on B only), column 10 rows 0-4 (5 px, on none)
PRED = _lines((5, 0, 20), (14, 0, 10), (10, 0, 5)).astype(np.float32)


def test_match_counts_with_two_annotators_by_hand():
    # predicted pixels matched to ANY annotator: 20 (column 5) + 10 (column 14) of 35.
    # recall over every annotator's pixels: A 20 of 20, B 10 (column 5) + 10 (column 14) of 30 -> 40 of 50.
    counts = E.edge_match_counts(PRED, np.stack([A, B]), thresholds=[0.5])
    assert counts.tolist() == [[40, 50, 30, 35]]
    assert E.COUNT_COLUMNS == ("matched_gt", "gt", "matched_pred", "pred")
    m = E.edge_metrics([PRED], [np.stack([A, B])])
    assert m["counts"].shape == (1, 99, 4) and (m["counts"] == [40, 50, 30, 35]).all()  # a binary map: same at all t
    # P = 30/35 = 6/7, R = 40/50 = 4/5, F = 2PR / (P + R) = 24/29
    assert m["ods"] == pytest.approx(24 / 29) and m["ois"] == pytest.approx(24 / 29)


def test_annotators_as_a_list_an_array_or_one_map():
    as_array = E.edge_metrics([PRED], [np.stack([A, B])])
    as_list = E.edge_metrics([PRED], [[A, B]])
    assert np.array_equal(as_array["counts"], as_list["counts"]) and as_array["ods"] == as_list["ods"]
    # one map: the single-annotator call, unchanged. A alone: 20 of 20 recalled; 20 of 35 predicted pixels on A.
    single = E.edge_metrics([PRED], [A], thresholds=[0.5])
    assert single["counts"].tolist() == [[[20, 20, 20, 35]]]
    assert np.array_equal(single["counts"], E.edge_metrics([PRED], [A[None]], thresholds=[0.5])["counts"])
    # P = 20/35 = 4/7, R = 1, F = 2 * (4/7) / (11/7) = 8/11
    assert single["ods"] == pytest.approx(8 / 11)


def test_a_prediction_between_two_annotators_matches_both_within_the_tolerance():
    # A at column 5, B at column 7, the prediction at column 6: one pixel from each
    left, right, middle = _lines((5, 0, 20)), _lines((7, 0, 20)), _lines((6, 0, 20)).astype(np.float32)
    tight = E.edge_match_counts(middle, [left, right], thresholds=[0.5])  # tolerance 0.21 px
    assert tight.tolist() == [[0, 40, 0, 20]]
    loose = E.edge_match_counts(middle, [left, right], thresholds=[0.5], max_dist=1.5 / np.hypot(20, 20))  # 1.5 px
    assert loose.tolist() == [[40, 40, 20, 20]]  # all 20 + 20 annotated pixels recalled, all 20 predicted correct


def test_metrics_from_counts_by_hand():
    counts = np.array([
        [[8, 10, 8, 16], [5, 10, 5, 5]],  # image 0: F 8/13 at t0 (R .8, P .5), F 2/3 at t1 (R .5, P 1)
        [[10, 10, 10, 10], [2, 10, 2, 2]],  # image 1: F 1 at t0, F 1/3 at t1 (R .2, P 1)
    ])
    m = E.metrics_from_counts(counts, thresholds=[0.3, 0.6])
    # pooled t0: R 18/20, P 18/26 -> F 2 * .9 * (9/13) / (.9 + 9/13) = 162/207; pooled t1: R 7/20, P 1 -> F 14/27
    assert m["ods"] == pytest.approx(162 / 207) and m["ods_threshold"] == pytest.approx(0.3)
    # OIS: image 0 at t1 (5, 10, 5, 5) + image 1 at t0 (10, 10, 10, 10) = (15, 20, 15, 15): R .75, P 1, F 6/7
    assert m["best_per_image"].tolist() == [1, 0]
    assert m["ois"] == pytest.approx(6 / 7)
    with pytest.raises(ValueError, match="thresholds"):
        E.metrics_from_counts(counts, thresholds=[0.5])


def test_metric_rejects_bad_annotator_maps():
    with pytest.raises(ValueError, match="same H x W"):
        E.edge_metrics([PRED], [[A, np.zeros((20, 21), bool)]])
    with pytest.raises(ValueError, match="no annotator"):
        E.edge_metrics([PRED], [[]])
    with pytest.raises(ValueError, match="same H x W"):
        E.edge_match_counts(PRED, np.zeros((2, 20, 21), bool))


# -- filters ----------------------------------------------------------------------------------------


def test_edge_nms_thins_a_blurred_step_to_one_pixel():
    x = np.arange(64, dtype=np.float32)
    step = 1 / (1 + np.exp(-(x - 31.5) / 2.0))  # a soft step over ~10 px
    image = torch.as_tensor(np.tile(step, (32, 1)))[None]  # 1 x 32 x 64
    gx, gy = E.sobel(image)
    magnitude = torch.hypot(gx, gy)[0].numpy()
    assert (magnitude[16] > 0.1 * magnitude.max()).sum() >= 5  # wide before
    thin = E.edge_nms(magnitude, gx[0].numpy(), gy[0].numpy())
    per_row = (thin > 0).sum(axis=1)
    assert (per_row == 1).all()
    assert set(np.nonzero(thin)[1]) <= {31, 32}


def test_sobel_responses_away_from_the_boundary_are_zeroed():
    mask = torch.as_tensor(_disc(64, 20))[None]  # 1 x 64 x 64
    band = E.mask_boundary_band(mask, radius=1)[0].numpy()
    yy, xx = np.mgrid[:64, :64]
    r = np.hypot(xx - 31.5, yy - 31.5)
    assert band[np.abs(r - 20) <= 0.5].all()  # the boundary itself is kept
    assert not band[np.abs(r - 20) > 3].any()  # nothing far from it
    # a probability map with a second, unrelated ramp: its Sobel response is removed
    ramp = 0.3 * torch.linspace(0, 1, 64)[None, None, :] * torch.as_tensor(yy < 8)  # 1 x 64 x 64, top rows only
    prob = torch.sigmoid((mask.float() - 0.5) * 8) + ramp
    gx, gy = E.sobel(prob)
    kept = torch.where(torch.as_tensor(band)[None], torch.hypot(gx, gy), torch.zeros(()))[0].numpy()
    assert torch.hypot(gx, gy)[0, :6].max() > 0  # the ramp does respond...
    assert kept[:6].max() == 0  # ...but away from the disc's boundary it is zeroed


def test_mask_touching_the_frame_gives_no_frame_edge():
    mask = torch.zeros(1, 16, 16, dtype=torch.bool)
    mask[:, :, :8] = True  # left half, touches the top, bottom and left frame
    band = E.mask_boundary_band(mask, radius=1)[0].numpy()
    assert not band[:, :6].any()
    assert band[:, 7:10].all()


# -- ground truth -----------------------------------------------------------------------------------


def test_scene_boundaries_levels():
    from samwidgets.data.scenes import SceneGenerator

    scene = SceneGenerator(image_size=96)(1_000_070_000)
    whole = E.scene_boundaries(scene, "whole")
    every = E.scene_boundaries(scene)
    assert whole.shape == every.shape == (96, 96) and whole.dtype == bool
    assert whole.any()
    assert (every >= whole).all()  # finer levels only add boundaries
    with pytest.raises(ValueError, match="level must be one of"):
        E.scene_boundaries(scene, "object")


# -- SAM's edges ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def disc_edges():
    from samwidgets import load_default

    disc = _disc(256, 60)
    image = np.where(disc[..., None], 220, 30).astype(np.uint8).repeat(3, axis=-1)  # 256 x 256 x 3
    return disc, E.detect_edges(load_default("cpu"), image, points_per_side=16)  # the paper's 768 masks


def test_detect_edges_output(disc_edges):
    _, edges = disc_edges
    assert edges.shape == (256, 256) and edges.dtype == np.float32
    assert edges.min() >= 0.0 and edges.max() == pytest.approx(1.0)


def test_detect_edges_finds_the_disc(disc_edges):
    # Measured with the bundled model (16 x 16 / 8 x 8 grid): the mean edge strength within 3 px of the disc's
    # boundary is 4.2x / 5.7x the mean elsewhere; an edge >= 0.2 lies within 2 px of 98% / 98% of the
    # boundary, >= 0.4 of 98% / 93%. The weak model also outlines many blob-shaped sub-regions of the disc
    # and the background, so the very strongest pixels are not all on the disc (precision is low).
    disc, edges = disc_edges
    yy, xx = np.mgrid[:256, :256]
    r = np.hypot(xx - 127.5, yy - 127.5)
    near, far = np.abs(r - 60) <= 3, np.abs(r - 60) > 6
    assert edges[near].mean() > 2.0 * edges[far].mean()
    from scipy.ndimage import distance_transform_edt

    distance = distance_transform_edt(~(edges >= 0.3))
    assert (distance[_boundary(disc)] <= 2).mean() > 0.85


def test_sobel_baseline_on_the_disc():
    disc = _disc(128, 40)
    image = np.where(disc[..., None], 220, 30).astype(np.uint8).repeat(3, axis=-1)
    edges = E.sobel_baseline(image)
    assert edges.shape == (128, 128) and edges.dtype == np.float32
    assert E.edge_metrics([edges], [_boundary(disc)])["ods"] > 0.95


def test_detect_edges_rejects_bad_settings(tiny_sam):
    image = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="points_per_side"):
        E.detect_edges(tiny_sam, image, points_per_side=0)
    with pytest.raises(ValueError, match="boundary_radius"):
        E.detect_edges(tiny_sam, image, boundary_radius=-1)


def test_detect_edges_with_a_predictor_and_a_non_square_image(tiny_sam):
    from samwidgets import SamPredictor

    image = np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8)
    edges = E.detect_edges(SamPredictor(tiny_sam), image, points_per_side=2)
    assert edges.shape == (40, 56) and edges.dtype == np.float32
    assert 0.0 <= edges.min() and edges.max() <= 1.0


# -- BSDS500: the evaluation and the command on a tiny fixture in the official layout -----------------

FIX_H, FIX_W = 96, 128  # diagonal 160 px: the tolerance is 1.2 px


def _fixture_labels(shift: int) -> list[np.ndarray]:
    """Two annotators' label images: coarse (background, a rectangle) and fine (the rectangle in two halves)."""
    coarse = np.ones((FIX_H, FIX_W), np.uint16)
    coarse[20:70, 24 + shift:90 + shift] = 2
    fine = coarse.copy()
    fine[45:70, 24 + shift:90 + shift] = 3
    return [coarse, fine]


def _write_bsds_photo(root: Path, split: str, image_id: str, shift: int) -> None:
    """images/<split>/<id>.jpg and groundTruth/<split>/<id>.mat, written as the BSDS500 files are."""
    labels = _fixture_labels(shift)
    colours = np.array([[0, 0, 0], [40, 90, 40], [200, 60, 50], [50, 60, 210]], np.uint8)
    write_bsds_photo(root, split, image_id, colours[labels[1]], labels)


@pytest.fixture(scope="module")
def bsds_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bsds")
    _write_bsds_photo(root, "val", "1000", shift=0)
    _write_bsds_photo(root, "val", "2000", shift=6)
    return root


def test_load_bsds_boundaries(bsds_root):
    maps = E.load_bsds_boundaries(bsds_root / "groundTruth" / "val" / "1000.mat")
    assert maps.shape == (2, FIX_H, FIX_W) and maps.dtype == bool
    for got, labels in zip(maps, _fixture_labels(0)):
        assert np.array_equal(got, label_boundaries(labels) > 0)
    with pytest.raises(ValueError, match="not a BSDS500 ground-truth file"):
        E.load_bsds_boundaries(bsds_root / "images" / "val" / "1000.jpg")


@pytest.fixture(scope="module")
def bsds_result(bsds_root):
    from small_configs import SMALL

    from samwidgets import build_sam

    torch.manual_seed(0)
    return E.evaluate_edges_bsds(build_sam(SMALL).eval(), bsds_root, "val", points_per_side=2)


def test_evaluate_edges_bsds_on_the_fixture(bsds_result):
    r = bsds_result
    assert r["ids"] == ["1000", "2000"] and r["num_photos"] == 2 and r["annotators"] == [2, 2]
    assert len(r["thresholds"]) == 99 and len(r["sam_seconds"]) == len(r["sobel_seconds"]) == 2
    for name in ("sam", "sobel"):
        counts = r["counts"][name]
        assert counts.shape == (2, 99, 4)
        # the gt column is every annotator's boundary pixels, summed
        for i, shift in enumerate((0, 6)):
            assert (counts[i, :, 1] == sum(int(label_boundaries(lab).sum()) for lab in _fixture_labels(shift))).all()
        assert (counts[..., 0] <= counts[..., 1]).all() and (counts[..., 2] <= counts[..., 3]).all()
        again = E.metrics_from_counts(counts, r["thresholds"])
        for key in ("ods", "ois", "ap", "r50"):
            assert 0.0 <= r[name][key] <= 1.0 and r[name][key] == pytest.approx(again[key])
    # flat colour regions: the image's Sobel is nearly the annotated boundary (the fine annotator's, all of it)
    assert r["sobel"]["ods"] > 0.8


def test_edges_bsds_record_recomputes_the_metrics(bsds_result):
    record = json.loads(json.dumps(E.edges_bsds_record(bsds_result)))  # JSON-ready
    assert record["sampled"] == list(range(0, 99, 4))
    for name in ("sam", "sobel"):
        again = E.metrics_from_record(record, name)
        for key in ("ods", "ois", "ap", "r50"):
            assert again[key] == pytest.approx(bsds_result[name][key])
        assert np.array_equal(np.array(record["image_counts"][name]), bsds_result["counts"][name][:, ::4])
    table = E.edges_bsds_markdown(record)
    assert "BSDS500 val, 2 photos" in table
    assert "| SAM (ViT-H) (paper, Table 3) | BSDS500 test, 200 photos | .768 | .786 | .794 | .928 |" in table


def test_evaluate_edges_bsds_resumes_from_its_work_dir(bsds_root, tmp_path, monkeypatch):
    from small_configs import SMALL

    from samwidgets import build_sam

    torch.manual_seed(0)
    model = build_sam(SMALL).eval()
    work = tmp_path / "photos"
    first = E.evaluate_edges_bsds(model, bsds_root, "val", points_per_side=2, work_dir=work)
    assert first["reused_photos"] == 0 and sorted(p.name for p in work.iterdir()) == ["1000.npz", "2000.npz"]

    monkeypatch.setattr(E.evaluation, "detect_edges", _never_called)
    again = E.evaluate_edges_bsds(model, bsds_root, "val", points_per_side=2, work_dir=work)
    assert again["reused_photos"] == 2
    for name in ("sam", "sobel"):
        assert np.array_equal(again["counts"][name], first["counts"][name]) and again[name] == first[name]
    monkeypatch.undo()

    (work / "2000.npz").write_bytes(b"cut short")  # a damaged file is scored again, never trusted
    mended = E.evaluate_edges_bsds(model, bsds_root, "val", points_per_side=2, work_dir=work)
    assert mended["reused_photos"] == 1
    assert np.array_equal(mended["counts"]["sam"], first["counts"]["sam"])
    other = E.evaluate_edges_bsds(model, bsds_root, "val", points_per_side=3, work_dir=work)  # other settings
    assert other["reused_photos"] == 0
    with torch.no_grad():
        next(model.parameters()).add_(1.0)  # other weights
    assert E.evaluate_edges_bsds(model, bsds_root, "val", points_per_side=3, work_dir=work)["reused_photos"] == 0


def _never_called(*args, **kwargs):
    raise AssertionError("a kept photo was scored again")


def test_evaluate_edges_bsds_refuses_a_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="images/val.*groundTruth/val"):
        E.evaluate_edges_bsds(None, tmp_path / "nowhere", "val")


def test_evaluate_edges_command(bsds_root, tmp_path, capsys):
    from small_configs import SMALL

    from samwidgets import build_sam
    from samwidgets.cli import main

    torch.manual_seed(0)
    weights = tmp_path / "w.pt"
    torch.save(build_sam(SMALL).state_dict(), weights)
    (tmp_path / "config.json").write_text(json.dumps(SMALL.to_dict()))
    out = tmp_path / "edges"
    assert main(["evaluate-edges", "--bsds", str(bsds_root), "--split", "val", "--limit", "1", "--points-per-side",
                 "2", "--model", str(tmp_path / "config.json"), "--weights", str(weights), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["edges_bsds500_val.json", "edges_bsds500_val.md",
                                                     "edges_bsds500_val_photos"]
    record = json.loads((out / "edges_bsds500_val.json").read_text())
    assert record["ids"] == ["1000"] and str(weights) in record["model"]
    assert 0.0 <= record["sobel"]["ods"] <= 1.0
    printed = capsys.readouterr().out
    assert "BSDS500 val, 1 photos" in printed and "| HED (paper, Table 3) |" in printed
    assert (out / "edges_bsds500_val.md").read_text().strip() in printed
    # the same command again resumes: the photo already scored is not scored again, the record is the same
    assert main(["evaluate-edges", "--bsds", str(bsds_root), "--split", "val", "--limit", "1", "--points-per-side",
                 "2", "--model", str(tmp_path / "config.json"), "--weights", str(weights), "--out", str(out)]) == 0
    assert "1 photos reused from" in capsys.readouterr().out
    again = json.loads((out / "edges_bsds500_val.json").read_text())
    assert again["sam"] == record["sam"] and again["image_counts"] == record["image_counts"]
    assert main(["evaluate-edges", "--bsds", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "groundTruth/val" in capsys.readouterr().err
