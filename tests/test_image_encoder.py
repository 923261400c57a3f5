"""The windowed attention skips the window padding in its projections and still equals the reference's."""

from __future__ import annotations

import pytest
import torch

from samwidgets.modeling.image_encoder import Block, window_partition, window_unpartition


@pytest.mark.parametrize("hw", [(7, 9), (10, 10), (4, 11)])
def test_windowed_attention_matches_padding_then_attending(hw):
    torch.manual_seed(0)
    block = Block(dim=16, num_heads=2, mlp_ratio=2.0, qkv_bias=True, use_rel_pos=True, window_size=5,
                  input_size=(12, 12), eps=1e-6).eval()
    with torch.no_grad():
        block.attn.qkv.bias.normal_()  # a non-zero bias: the padded tokens' q, k, v
        block.attn.rel_pos_h.normal_()
        block.attn.rel_pos_w.normal_()
        x = block.norm1(torch.randn(2, *hw, 16))  # B x H x W x D
        # the reference: zero-pad the normalised tokens, attend within windows, drop the padding
        windows, pad_hw = window_partition(x, 5)
        expected = window_unpartition(block.attn(windows), 5, pad_hw, hw)
        got = block._windowed_attention(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_window_partition_fill():
    x = torch.ones(1, 3, 3, 2)
    windows, pad_hw = window_partition(x, 2, fill=torch.tensor([5.0, 7.0]))
    assert pad_hw == (4, 4) and windows.shape == (4, 2, 2, 2)
    assert windows[3, 1, 1].tolist() == [5.0, 7.0] and windows[0, 0, 0].tolist() == [1.0, 1.0]
    torch.testing.assert_close(window_unpartition(windows, 2, pad_hw, (3, 3)), x)
