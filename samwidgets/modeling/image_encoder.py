"""The ViT image encoder: patch embedding, windowed and global attention blocks
with decomposed relative positions, and a convolutional neck.

Shapes for vit_b on a 1024 x 1024 input: 1 x 3 x 1024 x 1024 -> patches
1 x 64 x 64 x 768 -> blocks (same shape) -> neck 1 x 256 x 64 x 64.

This is the plain algorithm, written like the reference. ``SamPredictor``
runs faster equivalents of ``Attention`` and ``Block`` (same weights, same
outputs within float rounding): see :mod:`samwidgets.modeling.fast`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .common import LayerNorm2d, MLPBlock
from .config import SamConfig


class PatchEmbed(nn.Module):
    """Non-overlapping patches by a strided convolution; output is channels-last."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)  # B x C x H x W -> B x H' x W' x D


def get_rel_pos(q_size: int, k_size: int, rel_pos: torch.Tensor) -> torch.Tensor:
    """Relative-position embeddings for every (query, key) pair along one axis.

    rel_pos is the learned L x C table (L = 2 * size - 1); it is linearly
    resized when the grid differs from the one it was trained for.
    Returns q_size x k_size x C.
    """
    max_rel_dist = 2 * max(q_size, k_size) - 1
    if rel_pos.shape[0] != max_rel_dist:
        resized = F.interpolate(
            rel_pos.reshape(1, rel_pos.shape[0], -1).permute(0, 2, 1), size=max_rel_dist, mode="linear"
        )
        rel_pos = resized.reshape(-1, max_rel_dist).permute(1, 0)
    q_coords = torch.arange(q_size, device=rel_pos.device)[:, None] * max(k_size / q_size, 1.0)
    k_coords = torch.arange(k_size, device=rel_pos.device)[None, :] * max(q_size / k_size, 1.0)
    relative_coords = (q_coords - k_coords) + (k_size - 1) * max(q_size / k_size, 1.0)
    return rel_pos[relative_coords.long()]


def decomposed_rel_pos_bias(
    q: torch.Tensor, rel_h: torch.Tensor, rel_w: torch.Tensor, q_hw: tuple[int, int], k_hw: tuple[int, int]
) -> torch.Tensor:
    """The additive attention bias of decomposed relative positions (MViTv2).

    q: B x (qh*qw) x C, the *unscaled* queries; rel_h: qh x kh x C; rel_w: qw x kw x C.
    Returns B x (qh*qw) x (kh*kw), to be added to the scaled scores.
    """
    (q_h, q_w), (k_h, k_w) = q_hw, k_hw
    b, _, dim = q.shape
    r_q = q.reshape(b, q_h, q_w, dim)
    bias_h = torch.einsum("bhwc,hkc->bhwk", r_q, rel_h)  # B x qh x qw x kh
    bias_w = torch.einsum("bhwc,wkc->bhwk", r_q, rel_w)  # B x qh x qw x kw
    bias = bias_h[:, :, :, :, None] + bias_w[:, :, :, None, :]  # B x qh x qw x kh x kw
    return bias.reshape(b, q_h * q_w, k_h * k_w)


class Attention(nn.Module):
    """Multi-head self-attention over a 2-D grid of tokens, with decomposed relative positions.

    Every token attends to every other token of the grid it is given: the
    whole 64 x 64 grid in a global block, one 14 x 14 window in a windowed
    block (the windows arrive as a batch). The scores are the scaled dot
    products q.k plus the relative-position bias, as in the reference.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, use_rel_pos: bool = True,
                 input_size: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.use_rel_pos = use_rel_pos
        if use_rel_pos:
            if input_size is None:
                raise ValueError("input_size is needed for relative positions")
            # one learned vector per relative offset along each axis: -(size-1) .. size-1
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * input_size[0] - 1, head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * input_size[1] - 1, head_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B x H x W x D -> B x H x W x D."""
        b, h, w, _ = x.shape
        # qkv: 3 x B x heads x HW x head_dim
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.reshape(3, b * self.num_heads, h * w, -1).unbind(0)  # each (B*heads) x HW x head_dim

        attn = (q * self.scale) @ k.transpose(-2, -1)  # (B*heads) x HW x HW: every query against every key
        if self.use_rel_pos:
            rel_h = get_rel_pos(h, h, self.rel_pos_h)  # H x H x head_dim
            rel_w = get_rel_pos(w, w, self.rel_pos_w)  # W x W x head_dim
            attn = attn + decomposed_rel_pos_bias(q, rel_h, rel_w, (h, w), (h, w))  # the bias uses unscaled q
        attn = attn.softmax(dim=-1)

        x = attn @ v  # (B*heads) x HW x head_dim
        x = x.view(b, self.num_heads, h, w, -1).permute(0, 2, 3, 1, 4).reshape(b, h, w, -1)  # B x H x W x D
        return self.proj(x)


def window_partition(x: torch.Tensor, window_size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Split B x H x W x C into (B * nW) x ws x ws x C windows, zero-padding bottom and right.

    Returns the windows and the padded size (Hp, Wp). The padding is not
    masked in the attention: a padded token is a zero vector like any other.
    """
    b, h, w, c = x.shape
    pad_h = (window_size - h % window_size) % window_size
    pad_w = (window_size - w % window_size) % window_size
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))  # pads the last dims first: C by 0, W by pad_w, H by pad_h
    hp, wp = h + pad_h, w + pad_w
    x = x.view(b, hp // window_size, window_size, wp // window_size, window_size, c)
    windows = x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size, window_size, c)  # (B*nW) x ws x ws x C
    return windows, (hp, wp)


def window_unpartition(windows: torch.Tensor, window_size: int, pad_hw: tuple[int, int],
                       hw: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`window_partition`; drops the padding. Returns B x H x W x C."""
    hp, wp = pad_hw
    h, w = hw
    b = windows.shape[0] // (hp * wp // window_size // window_size)
    x = windows.reshape(b, hp // window_size, wp // window_size, window_size, window_size, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, -1)  # B x Hp x Wp x C
    if hp > h or wp > w:
        x = x[:, :h, :w, :].contiguous()
    return x


class Block(nn.Module):
    """Pre-norm transformer block: attention (within windows when window_size > 0, else global), then an MLP."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, use_rel_pos: bool,
                 window_size: int, input_size: tuple[int, int], eps: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(
            dim, num_heads, qkv_bias=qkv_bias, use_rel_pos=use_rel_pos,
            input_size=input_size if window_size == 0 else (window_size, window_size),
        )
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = MLPBlock(dim, int(dim * mlp_ratio), nn.GELU)
        self.window_size = window_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B x H x W x D -> B x H x W x D."""
        shortcut = x
        x = self.norm1(x)
        if self.window_size > 0:  # attention within non-overlapping windows, the grid zero-padded to fit them
            h, w = x.shape[1], x.shape[2]
            x, pad_hw = window_partition(x, self.window_size)  # (B*nW) x ws x ws x D
        x = self.attn(x)
        if self.window_size > 0:
            x = window_unpartition(x, self.window_size, pad_hw, (h, w))  # B x H x W x D, padding dropped
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class ImageEncoderViT(nn.Module):
    """ViT backbone + neck: B x 3 x S x S normalised pixels -> B x C x S/p x S/p embedding."""

    def __init__(self, config: SamConfig) -> None:
        super().__init__()
        c = config
        self.img_size = c.image_size
        grid = c.image_size // c.patch_size
        self.patch_embed = PatchEmbed(c.patch_size, 3, c.encoder_embed_dim)
        self.pos_embed: nn.Parameter | None = None
        if c.use_abs_pos:
            self.pos_embed = nn.Parameter(torch.zeros(1, grid, grid, c.encoder_embed_dim))
        self.blocks = nn.ModuleList(
            Block(
                c.encoder_embed_dim, c.encoder_num_heads, c.mlp_ratio, True, c.use_rel_pos,
                window_size=0 if i in c.encoder_global_attn_indexes else c.window_size,
                input_size=(grid, grid), eps=c.layer_norm_eps,
            )
            for i in range(c.encoder_depth)
        )
        self.neck = nn.Sequential(
            nn.Conv2d(c.encoder_embed_dim, c.prompt_embed_dim, kernel_size=1, bias=False),
            LayerNorm2d(c.prompt_embed_dim),
            nn.Conv2d(c.prompt_embed_dim, c.prompt_embed_dim, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(c.prompt_embed_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)  # B x 64 x 64 x D
        if self.pos_embed is not None:
            x = x + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.neck(x.permute(0, 3, 1, 2))  # B x C x 64 x 64


def encoder_flops(config: SamConfig, project_padding: bool = True) -> int:
    """Multiply-adds x 2 of one image through the encoder (matmuls and convs only).

    Written out like nanoGPT's estimate of the code above: per block, qkv +
    proj on every token the attention sees (a windowed block's padding
    included: it is zeros, projected like real tokens), the MLP on the real
    tokens only (it runs after the padding is dropped), plus attention
    scores and weighted sums within each attention region and the
    relative-position einsums. The predictor's fast path skips projecting
    the padding (:mod:`samwidgets.modeling.fast`): ``project_padding=False``
    counts what it runs, the default counts the algorithm above. CNN-encoder
    configurations are counted by
    :func:`~samwidgets.modeling.image_encoder_cnn.cnn_encoder_flops`, TinyViT ones by
    :func:`~samwidgets.modeling.tiny_vit.tiny_vit_flops`.
    """
    if config.encoder_type == "cnn":
        from .image_encoder_cnn import cnn_encoder_flops

        return cnn_encoder_flops(config)
    if config.encoder_type == "tiny_vit":
        from .tiny_vit import tiny_vit_flops

        return tiny_vit_flops(config)
    c = config
    g = c.embedding_size
    d = c.encoder_embed_dim
    flops = 2 * g * g * d * 3 * c.patch_size**2  # patch embedding
    for i in range(c.encoder_depth):
        if i in c.encoder_global_attn_indexes:
            tokens, region = g * g, g * g
        else:
            padded = math.ceil(g / c.window_size) * c.window_size
            tokens, region = padded * padded, c.window_size**2
        projected = tokens if project_padding else g * g
        flops += 2 * projected * d * (3 * d + d)  # qkv + proj: on the padded grid, or on the real tokens only
        flops += 2 * g * g * d * int(d * c.mlp_ratio) * 2  # MLP, after the padding is removed
        flops += 2 * tokens * region * d * 2  # q.k and attn.v
        if c.use_rel_pos:
            side = math.isqrt(region)
            flops += 2 * tokens * d * side * 2  # rel-pos einsums
    p = c.prompt_embed_dim
    flops += 2 * g * g * d * p + 2 * g * g * p * p * 9  # neck
    return flops
