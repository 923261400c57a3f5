"""Exact fast paths of the predict side: each gives the plain computation's values (issue 6)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from samwidgets import build_sam
from samwidgets.modeling import CONFIGS
from samwidgets.modeling.transformer import FEW_KEYS, attend
from small_configs import SMALL


@pytest.mark.parametrize("num_keys", [1, 5, 7, FEW_KEYS, FEW_KEYS + 1, 64])
@pytest.mark.parametrize("batch_q, batch_k", [(1, 1), (3, 3), (1, 3)])
def test_attention_over_few_keys_equals_sdpa(num_keys, batch_q, batch_k):
    torch.manual_seed(num_keys)
    q = torch.randn(batch_q, 4, 256, 16).expand(max(batch_q, batch_k), -1, -1, -1)  # B x heads x Nq x c
    k = torch.randn(batch_k, 4, num_keys, 16)
    v = torch.randn(batch_k, 4, num_keys, 16)
    torch.testing.assert_close(attend(q, k, v), F.scaled_dot_product_attention(q, k, v), atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize("config", [SMALL, CONFIGS["default_tiny"]], ids=["small", "default_tiny"])
@pytest.mark.parametrize("input_hw", [None, (0.75, 1.0), (1.0, 0.15), (1, 5), (-1, -3)])
def test_upsampling_only_the_kept_rows_changes_no_value(config, input_hw):
    """postprocess_masks upsamples only the low-res rows/columns the crop reads: bit-identical to the
    reference's upsample-everything-then-crop."""
    size, low = config.image_size, config.low_res_mask_size
    if input_hw is None:
        h, w = size, size
    elif isinstance(input_hw[0], float):
        h, w = int(size * input_hw[0]), int(size * input_hw[1])
    elif input_hw[0] < 0:
        h, w = size + input_hw[0], size + input_hw[1]
    else:
        h, w = input_hw
    logits = torch.randn(2, 3, low, low)
    expected = F.interpolate(logits, (size, size), mode="bilinear", align_corners=False)[..., :h, :w]
    got = build_sam(config).postprocess_masks(logits, (h, w), (h, w))
    assert torch.equal(got, expected)
