"""The ViT image encoder: patch embedding, windowed and global attention blocks
with decomposed relative positions, and a convolutional neck.

Shapes for vit_b on a 1024 x 1024 input: 1 x 3 x 1024 x 1024 -> patches
1 x 64 x 64 x 768 -> blocks (same shape) -> neck 1 x 256 x 64 x 64.
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
    """Multi-head self-attention over a 2-D token grid, with optional relative positions.

    Runs on ``F.scaled_dot_product_attention`` with the relative-position bias
    as ``attn_mask`` (the default scale applies to q.k only, as in the
    reference). Large grids are processed in blocks of query rows so the full
    heads x N x N bias and score tensors never exist at once; each query row
    is independent, so the result is the same.
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
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * input_size[0] - 1, head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * input_size[1] - 1, head_dim))
        #: queries per block when the grid is large (bounded memory; same result)
        self.query_block_tokens = 1024

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B x H x W x D -> B x H x W x D."""
        return self.proj(self.attend(self.qkv(x)))

    def attend(self, qkv: torch.Tensor) -> torch.Tensor:
        """The attention itself, between the qkv and the output projections: B x H x W x 3D -> B x H x W x D."""
        b, h, w, _ = qkv.shape
        n = h * w
        qkv = qkv.reshape(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each B x heads x N x head_dim
        if self.use_rel_pos:
            rel_h = get_rel_pos(h, h, self.rel_pos_h)  # H x H x head_dim
            rel_w = get_rel_pos(w, w, self.rel_pos_w)  # W x W x head_dim
        rows_per_block = max(1, self.query_block_tokens // w)
        outputs = []
        for r0 in range(0, h, rows_per_block):
            r1 = min(h, r0 + rows_per_block)
            q_blk = q[:, :, r0 * w : r1 * w]  # B x heads x (rows*W) x head_dim
            bias = None
            if self.use_rel_pos:
                bias = decomposed_rel_pos_bias(
                    q_blk.reshape(b * self.num_heads, (r1 - r0) * w, -1), rel_h[r0:r1], rel_w, (r1 - r0, w), (h, w)
                ).view(b, self.num_heads, (r1 - r0) * w, n)
                bias = bias.to(q_blk.dtype)
            outputs.append(F.scaled_dot_product_attention(q_blk, k, v, attn_mask=bias))
        out = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)  # B x heads x N x head_dim
        return out.permute(0, 2, 1, 3).reshape(b, h, w, -1)


def window_partition(x: torch.Tensor, window_size: int, fill: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, tuple[int, int]]:
    """Split B x H x W x C into (B * nW) x ws x ws x C windows, padding bottom/right.

    The padding is zeros, or ``fill`` (C values) in every padded position.
    """
    b, h, w, c = x.shape
    pad_h = (window_size - h % window_size) % window_size
    pad_w = (window_size - w % window_size) % window_size
    if pad_h or pad_w:
        if fill is None:
            x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        else:
            padded = fill.to(x.dtype).expand(b, h + pad_h, w + pad_w, c).clone()
            padded[:, :h, :w] = x
            x = padded
    hp, wp = h + pad_h, w + pad_w
    x = x.view(b, hp // window_size, window_size, wp // window_size, window_size, c)
    windows = x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size, window_size, c)
    return windows, (hp, wp)


def window_unpartition(windows: torch.Tensor, window_size: int, pad_hw: tuple[int, int],
                       hw: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`window_partition`; drops the padding. Returns B x H x W x C."""
    hp, wp = pad_hw
    h, w = hw
    b = windows.shape[0] // (hp * wp // window_size // window_size)
    x = windows.view(b, hp // window_size, wp // window_size, window_size, window_size, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, -1)
    if hp > h or wp > w:
        x = x[:, :h, :w, :].contiguous()
    return x


class Block(nn.Module):
    """Pre-norm transformer block; windowed attention when window_size > 0, else global."""

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # B x H x W x D
        shortcut = x
        x = self.norm1(x)
        if self.window_size > 0:
            x = self._windowed_attention(x)
        else:
            x = self.attn(x)
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


    def _windowed_attention(self, x: torch.Tensor) -> torch.Tensor:
        """Attention within windows, with the projections run on real tokens only: B x H x W x D -> same.

        The reference pads the normalised tokens with zeros and does not mask
        them, so a padded token's q, k and v are exactly the qkv bias. Filling
        the padding of the projected tokens with that bias therefore gives
        the same attention while the qkv projection skips the padding (about
        16% of the tokens of vit_b: 64 x 64 padded to 70 x 70), and the output
        projection runs after the padding is dropped again.
        """
        h, w = x.shape[1], x.shape[2]
        qkv = self.attn.qkv(x)  # B x H x W x 3D, real tokens only
        bias = self.attn.qkv.bias
        fill = bias if bias is not None else torch.zeros(qkv.shape[-1], dtype=qkv.dtype, device=qkv.device)
        windows, pad_hw = window_partition(qkv, self.window_size, fill=fill)  # (B*nW) x ws x ws x 3D
        out = self.attn.attend(windows)  # (B*nW) x ws x ws x D
        out = window_unpartition(out, self.window_size, pad_hw, (h, w))  # B x H x W x D
        return self.attn.proj(out)


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


def encoder_flops(config: SamConfig) -> int:
    """Multiply-adds x 2 of one image through the encoder (matmuls and convs only).

    Written out like nanoGPT's estimate: per block, qkv + proj and the MLP on
    the real tokens only (windowed blocks fill the padding's q, k, v with the
    qkv bias instead of projecting it), plus attention scores and weighted
    sums within each attention region, padded windows included, and the
    relative-position einsums. CNN-encoder configurations are counted by
    :func:`~samwidgets.modeling.image_encoder_cnn.cnn_encoder_flops`.
    """
    if config.encoder_type == "cnn":
        from .image_encoder_cnn import cnn_encoder_flops

        return cnn_encoder_flops(config)
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
        flops += 2 * g * g * d * (3 * d + d)  # qkv + proj, on the real tokens
        flops += 2 * g * g * d * int(d * c.mlp_ratio) * 2  # MLP, after the padding is removed
        flops += 2 * tokens * region * d * 2  # q.k and attn.v
        if c.use_rel_pos:
            side = math.isqrt(region)
            flops += 2 * tokens * d * side * 2  # rel-pos einsums
    p = c.prompt_embed_dim
    flops += 2 * g * g * d * p + 2 * g * g * p * p * 9  # neck
    return flops
