"""The torch.compile fast mode: SamPredictor(compile=True) against the exact path.

The first test compiles the image encoder of the smallest model for real
(about 50 s on a busy 2-core CPU the first time, about 10 s once inductor's
cache in the temp directory has it); it needs a C++ compiler, as the mode does.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from small_configs import SMALL

from samwidgets import SamPredictor, build_sam
from samwidgets.bench.precision import check_images, compare_precisions, grid_points


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    return build_sam(SMALL).eval()


def test_compiled_encoder_matches_the_exact_path(small_model):
    encoder = small_model.image_encoder
    exact = SamPredictor(small_model)
    fast = SamPredictor(small_model, compile=True)
    for image in check_images(64, 2):  # the second image reuses the compiled graph
        exact.set_image(image)
        fast.set_image(image)
        assert not fast.last_set_image_cached
        assert fast.features.shape == exact.features.shape and fast.features.dtype == torch.float32
        torch.testing.assert_close(fast.features, exact.features, atol=1e-4, rtol=0)
        for point in grid_points(64, 64, 2):
            masks_a, iou_a, low_a = exact.predict(point[None], np.array([1]))
            masks_b, iou_b, low_b = fast.predict(point[None], np.array([1]))
            np.testing.assert_array_equal(masks_b, masks_a)
            np.testing.assert_allclose(iou_b, iou_a, atol=1e-4)
            np.testing.assert_allclose(low_b, low_a, atol=1e-3)
    assert fast._compiled_encoder is not None  # made once, kept
    # the model keeps its own encoder (the plain one or its fast twin), not a compiled wrapper
    assert small_model.image_encoder is encoder and type(encoder).__name__ in ("ImageEncoderViT", "FastImageEncoderViT")
    assert fast.cache_key(image) == exact.cache_key(image)  # same embeddings within tolerance: one cache entry


def test_benchmark_row_of_the_compiled_mode(small_model):
    row = compare_precisions(small_model, check_images(64, 2), points_per_side=2, config="small", weights="random",
                             mode="fp32 + torch.compile")
    assert row.cells()[:3] == ["small", "random", "fp32 + torch.compile"] and row.masks == 2 * 2 * 2 * 3
    assert row.mean_iou == row.min_iou == 1.0 and row.max_logit_diff < 1e-3
    assert row.encode_fp32_s > 0 and row.encode_fast_s > 0


def test_compile_failure_says_what_to_do(small_model, monkeypatch):
    from torch._inductor.exc import InductorError, InvalidCxxCompiler

    def no_compiler(*args):  # what inductor raises on the first call without a C++ compiler
        raise InductorError(InvalidCxxCompiler(), None)

    monkeypatch.setattr(torch, "compile", lambda module, **kwargs: no_compiler)
    predictor = SamPredictor(small_model, compile=True)
    image = check_images(64, 1)[0]
    with pytest.raises(RuntimeError, match=r"torch.compile of the image encoder failed.*compile=False") as info:
        predictor.set_image(image)
    assert isinstance(info.value.__cause__, InductorError) and "C++ compiler" in str(info.value)
    assert not predictor.is_image_set and len(predictor.cache) == 0


def test_compile_unavailable_says_what_to_do(small_model, monkeypatch):
    def unsupported(module, **kwargs):
        raise RuntimeError("torch.compile is not supported on this Python")

    monkeypatch.setattr(torch, "compile", unsupported)
    with pytest.raises(RuntimeError, match="compile=False") as info:
        SamPredictor(small_model, compile=True).precompute(check_images(64, 1)[0])
    assert "not supported on this Python" in str(info.value.__cause__)


def test_exact_path_errors_are_not_reworded(small_model, monkeypatch):
    def broken(pixels):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(small_model.image_encoder, "forward", broken)
    with pytest.raises(RuntimeError, match="^out of memory$"):
        SamPredictor(small_model).set_image(check_images(64, 1)[0])
