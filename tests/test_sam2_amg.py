"""SAM2AutomaticMaskGenerator against the reference sam2 1.1.0's: the same records, in the same order.

The expected records were recorded by tests/record/record_sam2_amg.py with the reference package, on the small
model of ``sam2_parity_small.pt`` with part of its decoder trained (``decoder_weights``: with random weights
alone every mask covers the whole image and the default thresholds keep nothing), a 64 x 96 image and 8 x 8
points, for several settings (defaults; use_m2m; crops; crops without filters, which keeps empty masks; one
mask per point with uncompressed RLE output; min_mask_region_area).

Compared per record: the mask (equal except on the pixels whose logit the reference saw within 1e-3 of the
threshold), area, bbox, point_coords and crop_box (equal), predicted_iou and stability_score (within 1e-4).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from sam2_small import build_small, float_state_dict

from samwidgets.inference import amg_utils as amg
from samwidgets.inference.cache import EmbeddingCache
from samwidgets.sam2 import SAM2AutomaticMaskGenerator, SAM2Base

DATA = Path(__file__).parent / "data"
SCORE_ATOL = 1e-4
RECORD_KEYS = {"segmentation", "area", "bbox", "predicted_iou", "point_coords", "stability_score", "crop_box"}
SETTINGS = ["defaults", "use_m2m", "crop_n_layers_1", "crops_no_filters", "single_mask_uncompressed_rle",
            "min_mask_region_area"]


@pytest.fixture(scope="module")
def recorded() -> dict:
    return torch.load(DATA / "sam2_amg_small.pt", weights_only=False)


@pytest.fixture(scope="module")
def model(recorded, small) -> SAM2Base:
    """The parity test's small model (base config, Hydra overrides, weights) with the recorded decoder weights."""
    state_dict = float_state_dict(small)
    state_dict.update({k: v.float() for k, v in recorded["decoder_weights"].items()})
    return build_small(small, {"model": state_dict})


@pytest.fixture(scope="module")
def image(recorded) -> np.ndarray:
    return recorded["image"].numpy()


@pytest.fixture(scope="module")
def cache() -> EmbeddingCache:
    """One feature cache for every generator of this file: each crop is encoded once."""
    return EmbeddingCache(max_items=16)


def generator_for(model: SAM2Base, cache: EmbeddingCache, **kwargs) -> SAM2AutomaticMaskGenerator:
    generator = SAM2AutomaticMaskGenerator(model, **kwargs)
    generator.predictor.cache = cache
    return generator


def as_mask(segmentation, shape: tuple[int, int]) -> np.ndarray:
    """A record's segmentation (bool array or RLE) -> H x W bool."""
    if isinstance(segmentation, dict):
        return amg.decode_rle(segmentation)
    assert isinstance(segmentation, np.ndarray) and segmentation.dtype == bool and segmentation.shape == shape
    return segmentation


def compare(records: list[dict], expected: dict, shape: tuple[int, int]) -> dict[str, float]:
    """Assert that ``records`` are the reference's; returns the largest score differences and flipped pixels."""
    assert len(records) == expected["count"], f"{len(records)} masks, the reference {expected['count']}"
    h, w = shape
    ref_masks = np.unpackbits(expected["mask_bits"].numpy(), axis=1)[:, : h * w].reshape(-1, h, w).astype(bool)
    near = expected["near_threshold"].numpy()  # 2 x M: (record, flat pixel)
    worst = {"predicted_iou": 0.0, "stability_score": 0.0, "flipped_pixels": 0}
    for i, record in enumerate(records):
        assert set(record) == RECORD_KEYS
        mask = as_mask(record["segmentation"], shape)
        differ = mask != ref_masks[i]
        differ.ravel()[near[1, near[0] == i]] = False  # logits within 1e-3 of the threshold may flip
        assert not differ.any(), f"record {i}: {int(differ.sum())} pixels differ from the reference's mask"
        flipped = int((mask != ref_masks[i]).sum())
        worst["flipped_pixels"] = max(worst["flipped_pixels"], flipped)
        assert record["area"] == int(mask.sum()) and abs(record["area"] - expected["area"][i]) <= flipped
        for key in ("bbox", "crop_box"):
            assert record[key] == expected[key][i], f"record {i}: {key} {record[key]} != {expected[key][i]}"
            assert all(type(v) is float for v in record[key])  # the reference's float32 arrays give floats
        assert record["point_coords"] == expected["point_coords"][i]
        iou_difference = abs(record["predicted_iou"] - expected["predicted_iou"][i])
        assert iou_difference <= SCORE_ATOL
        ref_stability = expected["stability_score"][i]
        if math.isnan(ref_stability):  # an empty mask: the reference's 0 / 0, ours 0 (documented)
            assert record["stability_score"] == 0.0 and record["area"] == 0
        else:
            assert abs(record["stability_score"] - ref_stability) <= SCORE_ATOL
            worst["stability_score"] = max(worst["stability_score"], abs(record["stability_score"] - ref_stability))
        worst["predicted_iou"] = max(worst["predicted_iou"], iou_difference)
    return worst


@pytest.mark.parametrize("setting", SETTINGS)
def test_generate_gives_the_reference_records_in_order(recorded, model, image, cache, setting):
    expected = recorded["settings"][setting]
    kwargs = {"points_per_side": recorded["points_per_side"], **expected["kwargs"]}
    records = generator_for(model, cache, **kwargs).generate(image)
    worst = compare(records, expected, image.shape[:2])
    print(f"{setting}: {len(records)} masks, largest differences {worst}")


def test_the_recorded_settings_exercise_the_generator(recorded):
    """The fixture shows what it should: masks with the default thresholds, masks of crops other than the
    image, empty masks (stability NaN in the reference) with their box in a crop's corner."""
    settings = recorded["settings"]
    assert settings["defaults"]["count"] >= 3
    crop_boxes = {tuple(b) for b in settings["crop_n_layers_1"]["crop_box"]}
    assert len(crop_boxes) >= 2
    no_filters = settings["crops_no_filters"]
    empty = [i for i, a in enumerate(no_filters["area"]) if a == 0]
    assert any(math.isnan(no_filters["stability_score"][i]) for i in empty)  # empty even at the lower threshold
    assert any(no_filters["bbox"][i][:2] != [0.0, 0.0] for i in empty)  # (x0, y0, 0, 0): a crop's corner


def test_uncompressed_rle_is_the_references(recorded, model, image, cache):
    expected = recorded["settings"]["single_mask_uncompressed_rle"]
    generator = generator_for(model, cache, **{"points_per_side": recorded["points_per_side"], **expected["kwargs"]})
    near = expected["near_threshold"].numpy()
    for i, record in enumerate(generator.generate(image)):
        rle = record["segmentation"]
        assert set(rle) == {"size", "counts"} and isinstance(rle["counts"], list)
        if not (near[0] == i).any():  # no pixel near the threshold: the same runs exactly
            assert rle == expected["rles"][i]


def test_coco_rle_and_binary_masks_agree(model, image, cache):
    kwargs = dict(points_per_side=4, pred_iou_thresh=0.5, stability_score_thresh=0.5)
    binary = generator_for(model, cache, **kwargs).generate(image)
    coco = generator_for(model, cache, output_mode="coco_rle", **kwargs).generate(image)
    assert len(binary) == len(coco) > 0
    for b, c in zip(binary, coco):
        assert isinstance(c["segmentation"]["counts"], str) and c["segmentation"]["size"] == list(image.shape[:2])
        assert np.array_equal(amg.decode_rle(c["segmentation"]), b["segmentation"])


def test_crops_with_no_mask_give_no_records(model, image, cache):
    """The reference raises an IndexError in its cross-crop NMS when no crop keeps a mask; this returns []."""
    generator = generator_for(model, cache, points_per_side=2, crop_n_layers=1, crop_overlap_ratio=0.6,
                              pred_iou_thresh=1.0)  # the crops of the recorded settings: their features are cached
    assert generator.generate(image) == []


def test_the_predictors_feature_cache_serves_a_second_run(model, image):
    generator = SAM2AutomaticMaskGenerator(model, points_per_side=2)
    first = generator.generate(image)
    assert not generator.predictor.last_set_image_cached
    second = generator.generate(image)
    assert generator.predictor.last_set_image_cached and generator.predictor.last_encode_seconds == 0.0
    assert len(first) == len(second)


def test_arguments_are_checked(model):
    with pytest.raises(ValueError, match="exactly one"):
        SAM2AutomaticMaskGenerator(model, points_per_side=8, point_grids=[amg.build_point_grid(8)])
    with pytest.raises(ValueError, match="output_mode"):
        SAM2AutomaticMaskGenerator(model, output_mode="png")
    with pytest.raises(ValueError, match="needs 2"):
        SAM2AutomaticMaskGenerator(model, points_per_side=None, point_grids=[amg.build_point_grid(4)],
                                   crop_n_layers=1)
