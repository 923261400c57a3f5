"""Hiera, SAM 2's image trunk: a hierarchical vision transformer with four stages.

SAM 1 runs one plain ViT at a single resolution (stride 16). Hiera instead
starts fine and gets coarser, like a CNN, so the mask decoder can also use
early high-resolution features:

* a 7 x 7 convolution of stride 4 cuts the 1024 x 1024 image into a
  256 x 256 grid of tokens (:class:`PatchEmbed`);
* a position embedding is added: a small "background" table interpolated to
  the grid, plus one window-sized table tiled over it (:meth:`Hiera.pos_embed_for`);
* four stages of :class:`MultiScaleBlock` follow. The first block of stages 2-4
  halves the grid and doubles the width: it max-pools the attention queries
  (and the shortcut), so its output has one token per 2 x 2 input tokens.
  Strides 4, 8, 16, 32, widths C, 2C, 4C, 8C;
* most blocks attend within non-overlapping windows (``window_spec`` per
  stage); a few (``global_att_blocks``) attend over the whole grid.

The trunk returns the last feature map of every stage, highest resolution first.
Keys and maths follow the reference (sam2/modeling/backbones/hieradet.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# SAM's own window helpers: Hiera cuts its grids into windows the same way (zero padding bottom and right)
from ..modeling.image_encoder import window_partition, window_unpartition


class PatchEmbed(nn.Module):
    """Image to tokens: one convolution (7 x 7, stride 4 in SAM 2). B x 3 x H x W -> B x H/4 x W/4 x C."""

    def __init__(self, embed_dim: int, kernel_size: int = 7, stride: int = 4, padding: int = 3,
                 in_chans: int = 3) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=kernel_size, stride=stride, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)  # B x h x w x C: Hiera keeps channels last


def pool_channels_last(x: torch.Tensor, pool: nn.Module | None) -> torch.Tensor:
    """Apply a 2-D pooling to a channels-last B x H x W x C tensor (identity when pool is None)."""
    if pool is None:
        return x
    return pool(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)  # B x H' x W' x C


class MultiScaleAttention(nn.Module):
    """Multi-head self-attention whose queries may be max-pooled (the stage change: fewer output tokens).

    Keys and values keep the full grid, so every pooled query still sees all
    the tokens of its window. Input B x H x W x dim, output B x H' x W' x dim_out.
    """

    def __init__(self, dim: int, dim_out: int, num_heads: int, q_pool: nn.Module | None = None) -> None:
        super().__init__()
        self.dim = dim
        self.dim_out = dim_out
        self.num_heads = num_heads
        self.q_pool = q_pool  # the block's MaxPool2d (no weights), or None
        self.qkv = nn.Linear(dim, dim_out * 3)
        self.proj = nn.Linear(dim_out, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.attend(self.qkv(x)))  # B x H' x W' x dim_out

    def attend(self, qkv: torch.Tensor) -> torch.Tensor:
        """The attention between the projections: B x H x W x 3 dim_out (q, k, v) -> B x H' x W' x dim_out."""
        b, h, w, _ = qkv.shape
        qkv = qkv.reshape(b, h * w, 3, self.num_heads, -1)  # B x HW x 3 x heads x c
        q, k, v = torch.unbind(qkv, 2)  # each B x HW x heads x c

        if self.q_pool is not None:  # pool the queries on their grid: H x W -> H/2 x W/2
            q = pool_channels_last(q.reshape(b, h, w, -1), self.q_pool)  # B x H' x W' x (heads * c)
            h, w = q.shape[1:3]
            q = q.reshape(b, h * w, self.num_heads, -1)  # B x H'W' x heads x c

        # softmax(q k^T / sqrt(c)) v for every head; PyTorch's fused kernel, as in the reference
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # B x heads x tokens x c
        x = F.scaled_dot_product_attention(q, k, v)  # B x heads x H'W' x c
        return x.transpose(1, 2).reshape(b, h, w, -1)  # B x H' x W' x dim_out


class GeluMLP(nn.Module):
    """Linear -> GELU -> Linear, with the reference's key names (``layers.0``, ``layers.1``)."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(dim, hidden_dim), nn.Linear(hidden_dim, dim)])
        self.act = nn.GELU()

    @property
    def hidden_dim(self) -> int:
        """The width of the hidden layer (the first Linear's outputs)."""
        first = self.layers[0]
        assert isinstance(first, nn.Linear), "layers.0 is the first Linear"  # ModuleList items are typed Module
        return first.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers[1](self.act(self.layers[0](x)))


class MultiScaleBlock(nn.Module):
    """A pre-norm transformer block: x + attention(norm1(x)), then x + MLP(norm2(x)).

    With ``q_stride`` (the first block of a new stage) the block also changes
    the grid and the width: the shortcut is ``proj(norm1(x))`` max-pooled, the
    attention pools its queries, and the output is H/2 x W/2 x dim_out.
    With ``window_size > 0`` attention runs inside ws x ws windows (0: global).
    """

    def __init__(self, dim: int, dim_out: int, num_heads: int, mlp_ratio: float = 4.0,
                 q_stride: tuple[int, int] | None = None, window_size: int = 0) -> None:
        super().__init__()
        self.dim = dim
        self.dim_out = dim_out
        self.window_size = window_size
        self.q_stride = q_stride
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.pool = nn.MaxPool2d(kernel_size=q_stride, stride=q_stride, ceil_mode=False) if q_stride else None
        self.attn = MultiScaleAttention(dim, dim_out, num_heads=num_heads, q_pool=self.pool)
        self.norm2 = nn.LayerNorm(dim_out, eps=1e-6)
        self.mlp = GeluMLP(dim_out, int(dim_out * mlp_ratio))
        if dim != dim_out:
            self.proj = nn.Linear(dim, dim_out)  # widens the shortcut at a stage change

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # B x H x W x dim -> B x H' x W' x dim_out
        shortcut = x
        x = self.norm1(x)
        if self.dim != self.dim_out:
            shortcut = pool_channels_last(self.proj(x), self.pool)  # B x H' x W' x dim_out

        window_size = self.window_size
        if window_size > 0:
            h, w = x.shape[1], x.shape[2]
            x, padded_hw = window_partition(x, window_size)  # (B * windows) x ws x ws x dim

        x = self.attn(x)  # pooled blocks: (B * windows) x ws/2 x ws/2 x dim_out

        if self.q_stride:
            # the queries were pooled: the windows are now ws / stride on a side, on the shortcut's grid
            window_size = self.window_size // self.q_stride[0]
            h, w = shortcut.shape[1:3]
            pad_h = (window_size - h % window_size) % window_size
            pad_w = (window_size - w % window_size) % window_size
            padded_hw = (h + pad_h, w + pad_w)

        if self.window_size > 0:
            x = window_unpartition(x, window_size, padded_hw, (h, w))  # B x H' x W' x dim_out

        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class Hiera(nn.Module):
    """The Hiera trunk (Ryali et al. 2023, with the windowed position embedding of Bolya et al. 2023).

    ``forward(images)``: B x 3 x S x S -> a list of the four stages' outputs
    B x C_i x S/s_i x S/s_i, highest resolution first (s_i = 4, 8, 16, 32).
    """

    def __init__(self, embed_dim: int = 96, num_heads: int = 1, q_pool: int = 3,
                 q_stride: tuple[int, int] = (2, 2), stages: tuple[int, ...] = (2, 3, 16, 3), dim_mul: float = 2.0,
                 head_mul: float = 2.0, window_pos_embed_bkg_spatial_size: tuple[int, int] = (14, 14),
                 window_spec: tuple[int, ...] = (8, 4, 14, 7), global_att_blocks: tuple[int, ...] = (12, 16, 20),
                 mlp_ratio: float = 4.0, patch_kernel_size: int = 7, patch_stride: int = 4,
                 patch_padding: int = 3) -> None:
        super().__init__()
        if len(stages) != len(window_spec):
            raise ValueError("stages and window_spec need one entry per stage")
        self.window_spec = tuple(window_spec)
        stride = tuple(q_stride)
        if len(stride) != 2:
            raise ValueError(f"q_stride must be (rows, columns), got {q_stride}")
        self.q_stride = stride
        # index of the last block of each stage, e.g. stages (1, 2, 7, 2) -> [0, 2, 9, 11]
        self.stage_ends = [sum(stages[: i + 1]) - 1 for i in range(len(stages))]
        # the first block of each of the first q_pool later stages pools: e.g. [1, 3, 10]
        self.q_pool_blocks = [end + 1 for end in self.stage_ends[:-1]][:q_pool]
        self.global_att_blocks = tuple(global_att_blocks)

        self.patch_embed = PatchEmbed(embed_dim, patch_kernel_size, patch_stride, patch_padding)
        # Windowed position embedding: a coarse "background" table (interpolated to the token grid) plus a
        # window-sized table repeated in every window of the first stage
        self.pos_embed = nn.Parameter(torch.zeros(1, embed_dim, *window_pos_embed_bkg_spatial_size))
        self.pos_embed_window = nn.Parameter(torch.zeros(1, embed_dim, self.window_spec[0], self.window_spec[0]))

        self.blocks = nn.ModuleList()
        stage = 0
        for i in range(sum(stages)):
            dim_out = embed_dim
            # The window size lags by one block: the first block of a stage still uses the previous stage's
            # window (on its input grid), then pools it to half.
            window_size = 0 if i in self.global_att_blocks else self.window_spec[stage]
            if i - 1 in self.stage_ends:  # first block of a new stage: wider, more heads
                dim_out = int(embed_dim * dim_mul)
                num_heads = int(num_heads * head_mul)
                stage += 1
            self.blocks.append(MultiScaleBlock(
                dim=embed_dim, dim_out=dim_out, num_heads=num_heads, mlp_ratio=mlp_ratio,
                q_stride=self.q_stride if i in self.q_pool_blocks else None, window_size=window_size,
            ))
            embed_dim = dim_out
        # the stage widths, lowest resolution first (what the neck expects)
        self.channel_list = [self.blocks[i].dim_out for i in self.stage_ends[::-1]]

    def pos_embed_for(self, hw: tuple[int, int]) -> torch.Tensor:
        """The position embedding of an h x w token grid: 1 x h x w x C.

        The background table is resized bicubically to h x w; the window table
        (window_spec[0] on a side) is tiled to cover the grid and added.
        """
        h, w = hw
        background = F.interpolate(self.pos_embed, size=(h, w), mode="bicubic")  # 1 x C x h x w
        window = self.pos_embed_window  # 1 x C x ws x ws
        tiles = [size // window_size for size, window_size in zip(background.shape, window.shape)]  # [1, 1, h/ws, w/ws]
        pos = background + window.tile(tiles)
        return pos.permute(0, 2, 3, 1)  # 1 x h x w x C

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(x)  # B x S/4 x S/4 x C
        x = x + self.pos_embed_for((x.shape[1], x.shape[2]))  # the token grid's h x w
        outputs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.stage_ends:
                outputs.append(x.permute(0, 3, 1, 2))  # B x C_i x h_i x w_i
        return outputs
