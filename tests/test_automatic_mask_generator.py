"""SamAutomaticMaskGenerator and its building blocks (samwidgets.inference.amg_utils).

The building blocks are checked against hand-computed values and brute-force
computations; the generator (with the bundled model, fast at 256 px) against
the reference's record format and against the ground truth of held-out
procedural scenes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils
from scipy import ndimage
from small_configs import SMALL

from samwidgets import build_sam, load_default
from samwidgets.data import SceneGenerator
from samwidgets.data.seeds import HELD_OUT_SEED_START
from samwidgets.hub.build import at_image_size
from samwidgets.inference import amg_utils as amg
from samwidgets.inference.automatic_mask_generator import (
    BUNDLED_MODEL_THRESHOLDS,
    SamAutomaticMaskGenerator,
    benchmark_generation,
)

RECORD_KEYS = {"segmentation", "area", "bbox", "predicted_iou", "point_coords", "stability_score", "crop_box"}
NO_FILTERS = dict(pred_iou_thresh=0.0, stability_score_thresh=0.0)


# ------------------------------------------------------------------------------------------------
# point grids and crops
# ------------------------------------------------------------------------------------------------

def test_point_grid_is_cell_centres_row_by_row():
    np.testing.assert_allclose(amg.build_point_grid(1), [[0.5, 0.5]])
    np.testing.assert_allclose(amg.build_point_grid(2), [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]])
    grid = amg.build_point_grid(4)
    assert grid.shape == (16, 2)
    np.testing.assert_allclose(grid[:4, 0], [0.125, 0.375, 0.625, 0.875])
    np.testing.assert_allclose(grid[::4, 1], [0.125, 0.375, 0.625, 0.875])


def test_layer_point_grids_shrink_by_the_downscale_factor():
    grids = amg.build_all_layer_point_grids(8, n_layers=2, scale_per_layer=2)
    assert [len(g) for g in grids] == [64, 16, 4]


def test_crop_boxes_match_hand_computation():
    # 100 x 200 image, one crop layer, overlap 0.2 of the short side (20 px):
    # crops are ceil((20 + 200) / 2) = 110 wide and ceil((20 + 100) / 2) = 60 high.
    boxes, layers = amg.generate_crop_boxes((100, 200), n_layers=1, overlap_ratio=0.2)
    assert boxes == [[0, 0, 200, 100], [0, 0, 110, 60], [0, 40, 110, 100], [90, 0, 200, 60], [90, 40, 200, 100]]
    assert layers == [0, 1, 1, 1, 1]
    boxes, layers = amg.generate_crop_boxes((64, 64), n_layers=2, overlap_ratio=0.25)
    assert len(boxes) == 1 + 4 + 16 and layers.count(2) == 16
    assert all(0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64 for x0, y0, x1, y1 in boxes)


# ------------------------------------------------------------------------------------------------
# stability, boxes, NMS
# ------------------------------------------------------------------------------------------------

def test_stability_score_matches_hand_computation():
    logits = torch.tensor([[[-2.0, -0.5, 0.5], [1.5, 2.0, 3.0], [-3.0, 0.9, 1.1]]])  # 1 x 3 x 3
    # above +1: 1.5, 2, 3, 1.1 (4 pixels); above -1: all but -2 and -3 (7 pixels)
    assert amg.stability_score(logits, 0.0, 1.0).tolist() == pytest.approx([4 / 7])
    # thresholds 0.5 +/- 0.5: above 1.0 -> 4 pixels, above 0.0 -> 6 pixels
    assert amg.stability_score(logits, 0.5, 0.5).tolist() == pytest.approx([4 / 6])
    assert amg.stability_score(torch.full((2, 4, 4), -5.0), 0.0, 1.0).tolist() == [0.0, 0.0]


def test_rle_boxes_against_numpy():
    rng = np.random.default_rng(0)
    masks = np.zeros((6, 20, 30), bool)
    masks[0, 3, 7] = True
    masks[1, 2:9, 4:25] = True
    masks[2] = rng.random((20, 30)) > 0.97
    masks[4, :, 29] = True  # masks[3] and [5] stay empty
    boxes = amg.rle_boxes(amg.encode_rle(masks))
    for mask, box in zip(masks, boxes.tolist()):
        ys, xs = np.nonzero(mask)
        expected = [xs.min(), ys.min(), xs.max(), ys.max()] if ys.size else [0, 0, 0, 0]
        assert box == expected
    assert boxes[0].tolist() == [7, 3, 7, 3]


def _brute_force_nms(boxes: np.ndarray, scores: np.ndarray, categories: np.ndarray, thresh: float) -> list[int]:
    def iou(a, b):
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = iw * ih
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union if union > 0 else 0.0

    order = sorted(range(len(boxes)), key=lambda i: -scores[i])
    kept: list[int] = []
    for i in order:
        if all(categories[i] != categories[j] or iou(boxes[i], boxes[j]) <= thresh for j in kept):
            kept.append(i)
    return kept


@pytest.mark.parametrize("thresh", [0.3, 0.5, 0.7])
def test_nms_matches_brute_force(thresh):
    rng = np.random.default_rng(int(thresh * 10))
    xy = rng.uniform(0, 50, (200, 2))
    wh = rng.uniform(5, 30, (200, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    scores = rng.permutation(200).astype(np.float32)  # distinct: the order is unambiguous
    categories = rng.integers(0, 3, 200)
    kept = amg.nms(torch.from_numpy(boxes), torch.from_numpy(scores), thresh).tolist()
    assert kept == _brute_force_nms(boxes, scores, np.zeros(200), thresh)
    kept = amg.batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(categories),
                           thresh).tolist()
    assert kept == _brute_force_nms(boxes, scores, categories, thresh)


def test_nms_keeps_the_best_of_duplicates_and_handles_empty_input():
    boxes = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 60, 60]])
    assert amg.nms(boxes, torch.tensor([0.5, 0.9, 0.7, 0.1]), 0.7).tolist() == [1, 3]
    assert amg.nms(torch.zeros(0, 4), torch.zeros(0), 0.7).tolist() == []
    assert amg.batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0), 0.7).tolist() == []


def test_box_near_crop_edge_only_for_inner_edges():
    crop = [100, 0, 200, 100]  # the right half of a 200 x 100 image; boxes in the image frame
    boxes = torch.tensor([[105, 30, 150, 60],   # 5 px from the crop's left edge, which is inside the image
                          [140, 30, 195, 60],   # touches the right edge, which is the image's edge
                          [140, 40, 160, 60]])  # well inside
    assert amg.is_box_near_crop_edge(boxes, crop, [0, 0, 200, 100]).tolist() == [True, False, False]


# ------------------------------------------------------------------------------------------------
# RLE
# ------------------------------------------------------------------------------------------------

def test_rle_round_trips_in_every_form():
    rng = np.random.default_rng(1)
    masks = rng.random((4, 17, 23)) > 0.6
    masks[1] = True  # starts with a set pixel: the uncompressed counts start with a 0 run
    masks[2] = False
    for mask, rle in zip(masks, amg.encode_rle(masks)):
        assert rle["size"] == [17, 23] and isinstance(rle["counts"], bytes)
        np.testing.assert_array_equal(amg.decode_rle(rle), mask)
        as_json = amg.rle_to_json(rle)
        assert isinstance(as_json["counts"], str)
        np.testing.assert_array_equal(amg.decode_rle(as_json), mask)
        uncompressed = amg.mask_to_uncompressed_rle(mask)
        assert sum(uncompressed["counts"]) == mask.size
        np.testing.assert_array_equal(amg.decode_rle(uncompressed), mask)
        assert amg.rle_area(rle) == amg.rle_area(uncompressed) == int(mask.sum())
        # the same bytes pycocotools makes itself
        assert rle["counts"] == mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"]
    assert amg.mask_to_uncompressed_rle(masks[1])["counts"] == [0, 17 * 23]
    assert amg.encode_rle(np.zeros((0, 5, 5), bool)) == []


# ------------------------------------------------------------------------------------------------
# small regions
# ------------------------------------------------------------------------------------------------

def _mask_with_hole_and_island() -> np.ndarray:
    mask = np.zeros((40, 40), bool)
    mask[5:25, 5:25] = True  # 400 px body
    mask[10:12, 10:12] = False  # 4 px hole
    mask[30:33, 30:33] = True  # 9 px island
    return mask


def test_remove_small_regions_fills_holes_and_drops_islands():
    mask = _mask_with_hole_and_island()
    filled, changed = amg.remove_small_regions(mask, 10, "holes")
    assert changed and filled[10:12, 10:12].all() and filled[30:33, 30:33].all()
    assert filled.sum() == mask.sum() + 4
    cleaned, changed = amg.remove_small_regions(mask, 10, "islands")
    assert changed and not cleaned[30:33, 30:33].any() and cleaned.sum() == mask.sum() - 9
    same, changed = amg.remove_small_regions(mask, 4, "islands")  # nothing under 4 px
    assert not changed and (same == mask).all()


def test_remove_small_regions_uses_8_connectivity_and_keeps_the_largest_island():
    mask = np.zeros((10, 10), bool)
    mask[2, 2] = mask[3, 3] = True  # diagonal neighbours: one 2-pixel region
    mask[7:9, 7:9] = True  # 4 px
    kept, changed = amg.remove_small_regions(mask, 3, "islands")
    assert changed and kept.sum() == 4
    kept, changed = amg.remove_small_regions(mask, 100, "islands")  # all small: the largest stays
    assert changed and kept.sum() == 4 and kept[7:9, 7:9].all()
    with pytest.raises(ValueError, match="holes"):
        amg.remove_small_regions(mask, 3, "bumps")


# ------------------------------------------------------------------------------------------------
# the generator: format and mechanics (the bundled model; it is fast at 256 px)
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_sam():
    """A random model of the SMALL test config (64 px input): for checks that need no real masks."""
    return build_sam(SMALL)


@pytest.fixture(scope="module")
def default_model():
    return load_default(device="cpu")


@pytest.fixture(scope="module")
def held_out_scenes():
    generator = SceneGenerator(image_size=256)
    return [generator(HELD_OUT_SEED_START + k) for k in range(4)]


@pytest.fixture(scope="module")
def scene_image(held_out_scenes) -> np.ndarray:
    return held_out_scenes[0].image  # 256 x 256 x 3


@pytest.fixture(scope="module")
def wide_image(held_out_scenes) -> np.ndarray:
    """150 x 200, not square: the model input is padded, and masks must ignore the padding."""
    return np.ascontiguousarray(held_out_scenes[1].image[40:190, 20:220])


def _masks(records) -> np.ndarray:
    return np.stack([r["segmentation"] for r in records])


def _assert_bbox_fits(record: dict) -> None:
    """bbox is XYWH from the mask's first/last pixel indices (so W = last - first), as in the reference."""
    ys, xs = np.nonzero(record["segmentation"])
    assert record["area"] == ys.size > 0
    assert record["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()]


def test_records_have_the_reference_keys_and_consistent_values(default_model, wide_image):
    generator = SamAutomaticMaskGenerator(default_model, points_per_side=4, **NO_FILTERS)
    records = generator.generate(wide_image)
    assert records
    for r in records:
        assert set(r) == RECORD_KEYS
        mask = r["segmentation"]
        assert mask.shape == (150, 200) and mask.dtype == bool
        assert r["area"] == int(mask.sum()) and isinstance(r["area"], int)
        _assert_bbox_fits(r)
        assert r["crop_box"] == [0, 0, 200, 150]
        (x, y), = r["point_coords"]
        assert 0 <= x < 200 and 0 <= y < 150
        assert isinstance(r["predicted_iou"], float) and isinstance(r["stability_score"], float)
    assert [r["predicted_iou"] for r in records] == sorted((r["predicted_iou"] for r in records), reverse=True)


def test_output_modes_give_the_same_masks(default_model, wide_image):
    generator = SamAutomaticMaskGenerator(default_model, points_per_side=4, **NO_FILTERS)
    by_mode = {}
    for mode in ("binary_mask", "uncompressed_rle", "coco_rle"):
        generator.output_mode = mode
        by_mode[mode] = generator.generate(wide_image)
    binary = _masks(by_mode["binary_mask"])
    assert all(isinstance(r["segmentation"]["counts"], list) for r in by_mode["uncompressed_rle"])
    assert all(isinstance(r["segmentation"]["counts"], str) for r in by_mode["coco_rle"])
    for mode in ("uncompressed_rle", "coco_rle"):
        decoded = np.stack([amg.decode_rle(r["segmentation"]) for r in by_mode[mode]])
        np.testing.assert_array_equal(decoded, binary)
        rles = [r["segmentation"] for r in by_mode[mode]]
        if mode == "uncompressed_rle":
            rles = [mask_utils.frPyObjects(rle, *rle["size"]) for rle in rles]
        else:
            rles = [{"size": rle["size"], "counts": rle["counts"].encode()} for rle in rles]
        np.testing.assert_array_equal(mask_utils.decode(rles).transpose(2, 0, 1).astype(bool), binary)
        for a, b in zip(by_mode[mode], by_mode["binary_mask"]):
            assert {k: v for k, v in a.items() if k != "segmentation"} == \
                   {k: v for k, v in b.items() if k != "segmentation"}


def test_only_masks_that_pass_the_filters_are_upsampled(default_model, wide_image, monkeypatch):
    generator = SamAutomaticMaskGenerator(default_model, points_per_side=6, pred_iou_thresh=0.0,
                                          stability_score_thresh=0.0, box_nms_thresh=1.0)
    upsampled = []
    original = generator.predictor.postprocess

    def counting_postprocess(low_res, return_logits=False):
        upsampled.append(low_res.shape[0] * low_res.shape[1])
        return original(low_res, return_logits)

    monkeypatch.setattr(generator.predictor, "postprocess", counting_postprocess)
    everything = generator.generate(wide_image)
    assert sum(upsampled) == 36 * 3 >= len(everything)  # no filter: every mask (empty ones are then dropped)

    # with a stability threshold, exactly the masks whose low-res stability passes are upsampled
    generator.stability_score_thresh = 0.5
    generator.predictor.set_image(wide_image)
    points = generator.point_grids[0] * np.array([200, 150])
    logits, rows, _ = generator._low_res_predictions(points, (150, 200))  # 108 x S x S
    assert torch.equal(rows, torch.arange(36 * 3))  # no IoU threshold: every mask is decoded
    passing = int((amg.stability_score(generator._valid_low_res(logits), 0.0, 1.0) >= 0.5).sum())
    upsampled.clear()
    kept = generator.generate(wide_image)
    assert sum(upsampled) == passing < 36 * 3 and len(kept) <= passing


def test_points_whose_masks_all_fail_the_iou_threshold_are_never_upscaled(default_model, wide_image):
    generator = SamAutomaticMaskGenerator(default_model, points_per_side=6, pred_iou_thresh=0.0)
    generator.predictor.set_image(wide_image)
    points = generator.point_grids[0] * np.array([200, 150])
    with torch.no_grad():
        all_logits, all_rows, all_iou = generator._low_res_predictions(points, (150, 200))
        threshold = float(all_iou.median())
        generator.pred_iou_thresh = threshold
        logits, rows, iou = generator._low_res_predictions(points, (150, 200))
    torch.testing.assert_close(iou, all_iou)
    passing = torch.nonzero(all_iou > threshold).flatten()
    assert set(passing.tolist()) <= set(rows.tolist()) and len(rows) < len(all_rows)
    points_decoded = set((rows // 3).tolist())
    assert points_decoded == set((passing // 3).tolist())  # a point is decoded iff one of its masks passes
    torch.testing.assert_close(logits, all_logits[rows], rtol=1e-5, atol=1e-5)  # the same masks, less work


def test_crops_and_explicit_point_grids(default_model, wide_image):
    generator = SamAutomaticMaskGenerator(default_model, points_per_side=2, crop_n_layers=1, **NO_FILTERS)
    records = generator.generate(wide_image)
    crops, _ = amg.generate_crop_boxes((150, 200), 1, 512 / 1500)
    allowed = {tuple(amg.box_xyxy_to_xywh(c)) for c in crops}
    assert records and {tuple(r["crop_box"]) for r in records} <= allowed
    assert {tuple(r["crop_box"]) for r in records} != {(0, 0, 200, 150)}  # some masks come from the crops
    for r in records:
        (x, y), = r["point_coords"]
        cx, cy, cw, ch = r["crop_box"]
        assert cx <= x < cx + cw and cy <= y < cy + ch
        _assert_bbox_fits(r)
        assert not r["segmentation"][:, : cx].any() and not r["segmentation"][: cy].any()
        assert not r["segmentation"][:, cx + cw:].any() and not r["segmentation"][cy + ch:].any()
    centre = SamAutomaticMaskGenerator(default_model, points_per_side=None, point_grids=[np.array([[0.5, 0.5]])],
                                       box_nms_thresh=1.0, **NO_FILTERS).generate(wide_image)
    assert len(centre) == 3 and all(r["point_coords"] == [[100.0, 75.0]] for r in centre)


def test_constructor_errors_say_what_to_fix(small_sam):
    with pytest.raises(ValueError, match="exactly one of points_per_side"):
        SamAutomaticMaskGenerator(small_sam, points_per_side=8, point_grids=[np.zeros((1, 2))])
    with pytest.raises(ValueError, match="output_mode"):
        SamAutomaticMaskGenerator(small_sam, output_mode="polygons")
    with pytest.raises(ValueError, match="one per layer"):
        SamAutomaticMaskGenerator(default_model, points_per_side=None, point_grids=[np.zeros((1, 2))], crop_n_layers=1)


def test_upsampling_is_done_in_bounded_chunks(small_sam):
    generator = SamAutomaticMaskGenerator(small_sam)
    for size in [(50, 60), (150, 200), (3000, 4000), (8000, 6000)]:
        chunk = generator._upsample_chunk(size)
        assert chunk >= 1 and (chunk == 1 or chunk * max(size[0] * size[1], 64 ** 2) <= 16_000_000)
    assert generator._upsample_chunk((8000, 6000)) == 1


def test_large_image_with_crops_in_coco_rle(default_model, held_out_scenes):
    from PIL import Image

    big = np.array(Image.fromarray(held_out_scenes[2].image).resize((2000, 1200)))  # 1200 x 2000
    generator = SamAutomaticMaskGenerator(default_model, points_per_side=4, crop_n_layers=1,
                                          output_mode="coco_rle", **BUNDLED_MODEL_THRESHOLDS)
    assert generator._upsample_chunk((1200, 2000)) == 6  # 6 masks of 2.4 M pixels upsampled at a time
    records = generator.generate(big)
    assert records
    for r in records:
        assert r["segmentation"]["size"] == [1200, 2000] and isinstance(r["segmentation"]["counts"], str)
        _assert_bbox_fits({**r, "segmentation": amg.decode_rle(r["segmentation"])})


def test_benchmark_reports_time_and_masks(default_model, wide_image):
    result = benchmark_generation(default_model, wide_image, points_per_side=2, warmup=False, **NO_FILTERS)
    assert result["masks"] > 0 and result["points"] == 4 and result["seconds"] > 0
    assert result["image_size"] == (150, 200)


# ------------------------------------------------------------------------------------------------
# real masks on held-out scenes
# ------------------------------------------------------------------------------------------------

def test_thresholds_filter(default_model, scene_image):
    generator = SamAutomaticMaskGenerator(default_model, points_per_side=6, box_nms_thresh=1.0, **NO_FILTERS)
    everything = generator.generate(scene_image)
    ious = np.array([r["predicted_iou"] for r in everything])
    stabilities = np.array([r["stability_score"] for r in everything])
    generator.pred_iou_thresh = float(np.median(ious))
    by_iou = generator.generate(scene_image)
    assert 0 < len(by_iou) < len(everything)
    assert all(r["predicted_iou"] > generator.pred_iou_thresh for r in by_iou)
    assert len(by_iou) == int((ious > generator.pred_iou_thresh).sum())
    generator.pred_iou_thresh, generator.stability_score_thresh = 0.0, float(np.median(stabilities))
    by_stability = generator.generate(scene_image)
    assert all(r["stability_score"] >= generator.stability_score_thresh for r in by_stability)
    assert len(by_stability) == int((stabilities >= generator.stability_score_thresh).sum())


def test_nms_removes_duplicate_boxes(default_model, scene_image):
    generator = SamAutomaticMaskGenerator(default_model, points_per_side=6, box_nms_thresh=1.0, **NO_FILTERS)
    without_nms = generator.generate(scene_image)
    generator.box_nms_thresh = 0.7
    with_nms = generator.generate(scene_image)
    assert len(with_nms) < len(without_nms)

    def xyxy(r):
        x, y, w, h = r["bbox"]
        return [x, y, x + w, y + h]

    boxes = torch.tensor([xyxy(r) for r in with_nms], dtype=torch.float)
    for i in range(len(boxes)):
        assert (amg.box_iou(boxes[i], boxes[i + 1:]) <= 0.7).all()


def _best_ious(found: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """For each target mask, the best IoU any found mask reaches with it."""
    found_f = found.reshape(len(found), -1).astype(np.float32)
    targets_f = targets.reshape(len(targets), -1).astype(np.float32)
    inter = targets_f @ found_f.T  # T x F
    union = targets_f.sum(1)[:, None] + found_f.sum(1)[None] - inter
    return (inter / np.maximum(union, 1)).max(1)


def test_default_model_finds_the_objects_of_held_out_scenes(default_model, held_out_scenes):
    # The bundled model's IoU head is under-confident, so the reference's thresholds (0.88 / 0.95) keep
    # nothing: use the thresholds calibrated for it. Its CNN encoder runs at the scenes' own 256 px (the
    # weights fit any size): measured on 12 held-out scenes, 71% of the whole objects found at 256 px,
    # 36% with the scenes upsampled to its 512 px; 4 of the 6 whole objects of these 4 scenes.
    generator = SamAutomaticMaskGenerator(at_image_size(default_model, 256), points_per_side=16,
                                          **BUNDLED_MODEL_THRESHOLDS)
    whole_found = []
    for scene in held_out_scenes:
        records = generator.generate(scene.image)
        assert 0 < len(records) < 16 * 16 * 3
        best = _best_ious(_masks(records), scene.masks[scene.levels == 0])
        whole_found += list(best > 0.5)
    assert np.mean(whole_found) >= 0.55, whole_found


def test_small_region_removal_leaves_no_small_islands_or_holes(default_model, held_out_scenes):
    min_area = 40
    generator = SamAutomaticMaskGenerator(default_model, points_per_side=8, pred_iou_thresh=0.2,
                                          stability_score_thresh=0.0, min_mask_region_area=min_area)
    records = generator.generate(held_out_scenes[0].image)
    assert records
    eight = np.ones((3, 3), bool)
    for r in records:
        mask = r["segmentation"]
        assert r["area"] == int(mask.sum())
        for regions in (mask, ~mask):
            labels, n = ndimage.label(regions, structure=eight)
            sizes = np.bincount(labels.ravel())[1:]
            assert n <= 1 or (sizes >= min_area).all()
