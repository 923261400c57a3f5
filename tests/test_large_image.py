"""Very large photos work within bounded memory."""

from __future__ import annotations

import numpy as np
import torch

from samwidgets import SamPredictor


def test_8000_by_6000_image(tiny_sam):
    image = np.zeros((6000, 8000, 3), np.uint8)
    image[1000:5000, 2000:6000] = (200, 30, 30)
    predictor = SamPredictor(tiny_sam)
    predictor.set_image(image)
    assert predictor.input_size == (768, 1024) and predictor.original_size == (6000, 8000)
    masks, iou, low = predictor.predict(np.array([[4000.0, 3000.0]]), np.array([1]))
    assert masks.shape == (3, 6000, 8000) and masks.dtype == np.bool_
    # the chunked path (one mask at a time) gives what the whole-tensor path gives
    logits, _, low1 = predictor.predict(np.array([[4000.0, 3000.0]]), np.array([1]), return_logits=True,
                                        multimask_output=False)
    assert logits.shape == (1, 6000, 8000) and logits.dtype == np.float32
    whole = tiny_sam.postprocess_masks(torch.as_tensor(low1)[None], predictor.input_size, predictor.original_size)
    np.testing.assert_array_equal(logits, whole[0].numpy())
    single, _, _ = predictor.predict(np.array([[4000.0, 3000.0]]), np.array([1]), multimask_output=False)
    np.testing.assert_array_equal(single[0], logits[0] > 0)
