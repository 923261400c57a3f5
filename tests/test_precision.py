"""The labelled fast mode: SamPredictor(precision="bf16") and its accuracy check against fp32."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from small_configs import SMALL

from samwidgets import SamPredictor, build_sam
from samwidgets.bench.precision import check_images, compare_precisions, grid_points, precision_table


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    return build_sam(SMALL).eval()


def test_precision_is_checked(small_model):
    with pytest.raises(ValueError, match="precision must be one of"):
        SamPredictor(small_model, precision="fp16")


def test_bf16_embeddings_are_float32_close_to_exact_and_cached_apart(small_model):
    image = check_images(64, 1)[0]
    cache_exact = SamPredictor(small_model)
    fast = SamPredictor(small_model, precision="bf16", cache=cache_exact.cache)
    cache_exact.set_image(image)
    fast.set_image(image)
    assert not fast.last_set_image_cached  # the fp32 embedding is not served to the bf16 predictor
    assert fast.cache_key(image) != cache_exact.cache_key(image) and len(cache_exact.cache) == 2
    assert fast.features.dtype == torch.float32
    scale = cache_exact.features.abs().max()
    assert (fast.features - cache_exact.features).abs().max() <= 0.05 * scale  # bf16 keeps ~3 significant digits
    assert not torch.equal(fast.features, cache_exact.features)  # it did run in bf16


def test_prediction_under_inference_mode(small_model):
    predictor = SamPredictor(small_model)
    with torch.inference_mode():
        predictor.set_image(check_images(64, 1)[0])
        masks, scores, _ = predictor.predict(np.array([[30.0, 30.0]]), np.array([1]))
    assert masks.shape == (3, 64, 64) and scores.shape == (3,)


def test_compare_precisions_counts_every_mask(small_model):
    row = compare_precisions(small_model, check_images(64, 2), points_per_side=2, config="small", weights="random")
    assert row.masks == 2 * 2 * 2 * 3
    assert 0 <= row.min_iou <= row.mean_iou <= 1
    assert row.mode == "bf16" and row.encode_fp32_s > 0 and row.encode_fast_s > 0 and row.max_logit_diff >= 0
    assert grid_points(10, 20, 2).tolist() == [[5.0, 2.5], [15.0, 2.5], [5.0, 7.5], [15.0, 7.5]]


def test_precision_table_with_the_bundled_model():
    table = precision_table(["default_cnn"], num_images=1, points_per_side=1)
    lines = table.splitlines()
    assert lines[0].startswith("| config | weights | fast mode |")
    assert lines[2].startswith("| default_cnn | bundled | bf16 |")
    header = [cell.strip() for cell in lines[0].split("|")]
    mean_iou = float(lines[2].split("|")[header.index("mean mask IoU vs fp32")])
    assert 0.5 < mean_iou <= 1.0  # bf16 moves a few pixels, not whole masks
