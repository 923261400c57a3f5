"""The plain image encoder's windows and attention (the fast equivalents are tested in test_fast_paths.py)."""

from __future__ import annotations

import pytest
import torch

from samwidgets.modeling.image_encoder import (
    Attention,
    Block,
    decomposed_rel_pos_bias,
    get_rel_pos,
    window_partition,
    window_unpartition,
)


@pytest.mark.parametrize("hw", [(7, 9), (10, 10), (4, 11)])
def test_window_partition_zero_pads_and_unpartition_inverts_it(hw):
    x = torch.randn(2, *hw, 3)
    windows, pad_hw = window_partition(x, 5)
    hp, wp = pad_hw
    assert hp % 5 == 0 and wp % 5 == 0 and hp - hw[0] < 5 and wp - hw[1] < 5
    assert windows.shape == (2 * (hp // 5) * (wp // 5), 5, 5, 3)
    assert float(windows.abs().sum()) == pytest.approx(float(x.abs().sum()), rel=1e-6)  # the padding is zeros
    assert torch.equal(window_unpartition(windows, 5, pad_hw, hw), x)
    h0, w0 = min(5, hw[0]), min(5, hw[1])  # window 0 is the top-left 5 x 5 tokens of image 0 (and padding)
    assert torch.equal(windows[0, :h0, :w0], x[0, :h0, :w0])


def test_attention_is_the_explicit_softmax_with_the_decomposed_bias():
    """One query token's output, computed by hand from the definitions."""
    torch.manual_seed(0)
    attn = Attention(8, 2, qkv_bias=True, use_rel_pos=True, input_size=(3, 4))
    with torch.no_grad():
        attn.rel_pos_h.normal_()
        attn.rel_pos_w.normal_()
        x = torch.randn(1, 3, 4, 8)
        out = attn(x)
        qkv = attn.qkv(x).reshape(12, 3, 2, 4)  # tokens x (q, k, v) x heads x head_dim
        heads = []
        for head in range(2):
            q, k, v = qkv[:, 0, head], qkv[:, 1, head], qkv[:, 2, head]  # 12 x 4 each
            bias = decomposed_rel_pos_bias(q[None], get_rel_pos(3, 3, attn.rel_pos_h),
                                           get_rel_pos(4, 4, attn.rel_pos_w), (3, 4), (3, 4))[0]
            weights = torch.softmax(q @ k.T / 2.0 + bias, dim=-1)  # head_dim 4: scale 1/2
            heads.append(weights @ v)
        expected = attn.proj(torch.cat(heads, dim=-1)).reshape(1, 3, 4, 8)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)


def test_windowed_block_attends_within_windows_only():
    """A change of one token changes the outputs of its own window only."""
    torch.manual_seed(0)
    block = Block(dim=16, num_heads=2, mlp_ratio=2.0, qkv_bias=True, use_rel_pos=True, window_size=5,
                  input_size=(12, 12), eps=1e-6).eval()
    x = torch.randn(1, 7, 9, 16)
    changed = x.clone()
    changed[0, 1, 2] += 3 * torch.randn(16)  # in window (0, 0): rows 0-4, columns 0-4
    with torch.no_grad():
        diff = (block(changed) - block(x)).abs().amax(dim=-1)[0]  # 7 x 9
    diff[1, 2] = 0  # the token itself
    assert float(diff[:5, :5].max()) > 1e-3  # the others of its window see it
    diff[:5, :5] = 0
    assert float(diff.max()) == 0.0
