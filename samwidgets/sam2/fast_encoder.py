"""Faster equivalents of SAM 2's image encoder (Hiera and its FPN neck), behind the kit's one switch.

``hiera.py`` and ``neck.py`` are the algorithm, written to be read; this module
is the speed-up, as :mod:`samwidgets.modeling.fast` is for SAM's ViT. Importing
``samwidgets.sam2`` registers these classes with
:func:`~samwidgets.modeling.fast.enable_fast_paths`, so ``SAM2ImagePredictor(model)``
turns them on and ``SAM2ImagePredictor(model, fast=False)`` turns them off; the
parameters and ``state_dict()`` are untouched.

Why it is faster
----------------
A Hiera-T forward at 1024 px makes intermediates of up to 150 MB: the first
stage has 256 x 256 tokens, four times wider inside the MLP. On a CPU every
fresh buffer that large is mapped from the operating system and page-faulted
on its first write, and it never fits in the caches. Profiled (2 cores), the
copies inside the linear layers and the GELU over these buffers took about a
third of the trunk's time, more than the attention.

* :class:`FastMultiScaleBlock` runs a windowed block one *slab* at a time: one
  or more rows of windows, from the norm through the attention and the MLP to
  the block's output. A global block attends over the whole grid as the plain
  one does, then runs its MLP a slab of rows at a time. Every intermediate is a
  few MB: it stays in cache, and its memory is reused from one slab to the next.
* :class:`FastHiera` keeps the position embedding of a grid size (a bicubic
  resize of the background table plus the tiled window table) until the
  weights change, instead of recomputing it for every image (about 60 ms;
  it holds 25 MB for Hiera-T at 1024 px).
* :class:`FastFpnNeck` runs the 1 x 1 lateral convolutions as matrix products
  on the trunk's channels-last tokens, and returns the sine position encodings
  as views of the cached table (the plain neck copies a 64 MB table per image).

Why it computes the same function
---------------------------------
* Windows do not see each other, so a row of windows gets exactly the keys and
  values it gets in the whole grid; the norms, the projections and the MLP act
  on each token alone. Only the order of the work changes (and the blocking of
  the matrix products, so the outputs agree within float rounding).
* A pooled block's 2 x 2 max-pools never cross a slab: slabs start at multiples
  of the window size, which the query stride divides.
* The plain block zero-pads the normalised tokens to whole windows and does not
  mask the padding, so a padded token's q, k and v are the qkv bias. As in
  SAM's :class:`~samwidgets.modeling.fast.FastBlock`, the projection runs on
  the real tokens only and the padding is filled with the bias; the padding's
  outputs are dropped before the output projection.
* A 1 x 1 convolution is a matrix product over the channels at every pixel.
* The position encodings are the same numbers; being views of the cache, they
  must not be written to (nothing in the kit does; ``.clone()`` them first).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..modeling.fast import register_fast_classes, window_partition_filled, window_unpartition_cropped
from . import hiera, neck

#: A slab holds about this many floats in its widest intermediate (the MLP's hidden layer): 8 MB.
SLAB_FLOATS = 1 << 21


class FastMultiScaleBlock(hiera.MultiScaleBlock):
    """:class:`hiera.MultiScaleBlock`, run one slab of rows at a time (see the module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B x H x W x dim -> B x H' x W' x dim_out (H' = H / 2 in a pooled block)."""
        if self.window_size > 0:
            return self._windowed(x)
        shortcut = x
        x = self.norm1(x)
        if self.dim != self.dim_out:
            shortcut = hiera.pool_channels_last(self.proj(x), self.pool)  # B x H' x W' x dim_out
        return self._add_mlp_in_slabs(shortcut + self.attn(x))

    def _add_mlp_in_slabs(self, x: torch.Tensor) -> torch.Tensor:
        """x + MLP(norm2(x)), a slab of rows at a time: B x H x W x C -> same."""
        b, h, w, _ = x.shape
        hidden = self.mlp.hidden_dim
        rows = max(1, SLAB_FLOATS // (b * w * hidden))
        out = torch.empty_like(x)
        for top in range(0, h, rows):
            slab = x[:, top : top + rows]  # B x rows x W x C
            out[:, top : top + rows] = slab + self.mlp(self.norm2(slab))
        return out

    def _windowed(self, x: torch.Tensor) -> torch.Tensor:
        """The whole block, one row of windows at a time: B x H x W x dim -> B x H' x W' x dim_out."""
        b, h, w, _ = x.shape
        window = self.window_size
        stride = self.q_stride[0] if self.q_stride else 1
        out_window = window // stride  # a pooled block's windows come out half as wide
        qkv_layer = self.attn.qkv
        fill = qkv_layer.bias if qkv_layer.bias is not None else x.new_zeros(qkv_layer.out_features)
        hidden = self.mlp.hidden_dim
        slab_rows = window * max(1, SLAB_FLOATS // (b * window * w * hidden))  # whole rows of windows
        out = x.new_empty(b, h // stride, w // stride, self.dim_out)  # MaxPool2d floors odd sizes
        for top in range(0, h, slab_rows):
            slab = x[:, top : top + slab_rows]  # B x rows x W x dim: one or more rows of windows
            normed = self.norm1(slab)
            shortcut = slab
            if self.dim != self.dim_out:
                shortcut = hiera.pool_channels_last(self.proj(normed), self.pool)  # B x rows' x W' x dim_out
            windows, (hp, wp) = window_partition_filled(qkv_layer(normed), window, fill)  # (B*nW) x ws x ws x 3D
            attended = self.attn.attend(windows)  # (B*nW) x ws' x ws' x dim_out
            rows_out, w_out = shortcut.shape[1:3]
            attended = window_unpartition_cropped(attended, out_window, (hp // stride, wp // stride),
                                                  (rows_out, w_out))  # B x rows' x W' x dim_out
            y = shortcut + self.attn.proj(attended)
            top_out = top // stride
            out[:, top_out : top_out + rows_out] = y + self.mlp(self.norm2(y))
        return out


class FastHiera(hiera.Hiera):
    """:class:`hiera.Hiera` that keeps the position embedding of the last grid size while its tables are unchanged."""

    def pos_embed_for(self, hw: tuple[int, int]) -> torch.Tensor:
        """The plain :meth:`hiera.Hiera.pos_embed_for`, cached when no gradient is recorded: 1 x h x w x C."""
        if torch.is_grad_enabled() and (self.pos_embed.requires_grad or self.pos_embed_window.requires_grad):
            return super().pos_embed_for(hw)  # training: the graph must reach the tables
        tables = (self.pos_embed, self.pos_embed_window)
        # the tables' identity and version: an in-place change (load_state_dict, an optimizer step) bumps the version
        key = (tuple(hw), tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in tables))
        cached = self.__dict__.get("_pos_embed_cache")
        if cached is None or cached[0] != key:
            cached = (key, super().pos_embed_for(hw).detach())
            self.__dict__["_pos_embed_cache"] = cached  # a plain attribute: not a buffer, not in state_dict()
        return cached[1]


class FastFpnNeck(neck.FpnNeck):
    """:class:`neck.FpnNeck` with the 1 x 1 lateral convolutions as matrix products on channels-last tokens, and
    the position encodings as views of the cached table (see the module docstring): the plain neck's loop, with
    its two steps (``_lateral``, ``_positions``) replaced."""

    def _lateral(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """``self.convs[index]`` on x (B x C x h x w, channels-last in memory from the trunk): B x d_model x h x w."""
        conv = self.convs[index].conv
        if (not isinstance(conv, nn.Conv2d)  # (it always is; the check tells the type checker)
                or conv.kernel_size != (1, 1) or conv.stride != (1, 1) or conv.padding != (0, 0)):
            return self.convs[index](x)
        tokens = x.permute(0, 2, 3, 1)  # B x h x w x C: a view of the trunk's tokens
        return F.linear(tokens, conv.weight.flatten(1), conv.bias).permute(0, 3, 1, 2)  # B x d_model x h x w

    def _positions(self, x: torch.Tensor) -> torch.Tensor:
        encoding = self.position_encoding
        if not isinstance(encoding, neck.PositionEmbeddingSine):
            return encoding(x).to(x.dtype)
        grid = encoding.cached_grid(x.shape[-2], x.shape[-1], x.device).to(x.dtype)  # C x h x w
        return grid[None].expand(x.shape[0], -1, -1, -1)  # B x C x h x w, a view: do not write to it


#: plain class -> its fast subclass, joined to the kit's switch below
FAST_CLASSES = {hiera.MultiScaleBlock: FastMultiScaleBlock, hiera.Hiera: FastHiera, neck.FpnNeck: FastFpnNeck}
register_fast_classes(FAST_CLASSES)
