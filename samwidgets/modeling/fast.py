"""Faster equivalents of the modeling code, behind one switch: :func:`enable_fast_paths`.

The files next to this one (``image_encoder.py``, ``transformer.py``,
``mask_decoder.py``, ``sam.py``) are the plain algorithm, written to be read.
Every speed-up lives here instead, as a subclass of the plain module it
speeds up. Each overrides the methods it changes, and its docstring says
why it still computes the same function.

How the switch works
--------------------
A fast class adds no parameters, buffers or constructor state to its plain
parent. ``enable_fast_paths(model)`` walks ``model.modules()`` and sets the
``__class__`` of every plain module to its fast subclass;
``enable_fast_paths(model, False)`` sets them back. Nothing is copied or
re-registered: the same ``Parameter`` objects stay where they were. So
``state_dict()`` keys and values, optimiser references, ``.to()``, hooks and
checkpoints are all unaffected, and only the code that runs changes.
(Hugging Face's BetterTransformer swaps layers for fast ones in the same
spirit.) The classes must match exactly (``type(m) is Attention``), so a
subclass of your own is left alone. The switch changes the model in place:
``SamPredictor(model)`` turns it on, ``SamPredictor(model, fast=False)``
turns it off, and predictors that share a model share its mode.
:func:`fast_paths` is the same switch as a context manager, restoring the
previous classes on exit.

``isinstance(m, Attention)`` stays true, so code that looks for the plain
classes (hooks, weight tying) works in both modes. The fast paths are
differentiable wherever the plain ones are (no in-place writes to leaves),
so training can turn them on too. The one entry point a predictor uses is
the plain decoder's: ``MaskDecoder.prepare_image`` (None there; a
:class:`PreparedImage` here) and its answer passed back to ``forward`` as
``prepared``. The records it is made of (:class:`PreparedTransformer`,
:class:`PreparedBlock`) and the ``projected=`` argument of the attention
exist only on the fast classes.

The speed-ups
-------------
Image encoder:

* :class:`FastAttention`: ``F.scaled_dot_product_attention`` with the
  relative-position bias as ``attn_mask``, one block of query rows at a time
  (bounded memory on the 4096-token global blocks).
* :class:`FastBlock`: windowed attention that projects only the real tokens.
  The padding's q, k and v are the qkv bias, filled in after the projection.
* :class:`FastImageEncoderViT`: the blocks of one forward share their
  relative-position bias buffers (per thread), instead of each allocating
  and page-faulting its own 200 MB.

Two-way transformer:

* :func:`attend`: the image attending to a few prompt tokens runs keys-major.
* :class:`FastDecoderAttention`: a batch-1 image side is shared by all
  prompts. It is projected once, not once per prompt, and takes already
  projected inputs (``projected=``).
* :class:`FastTwoWayAttentionBlock`, :class:`FastTwoWayTransformer`:
  ``prepare_image`` computes the prompt-independent image projections once
  per image.

Mask decoder:

* :class:`FastMaskDecoder`: no copy of the image embedding per prompt
  (broadcasting instead of ``repeat_interleave``), the per-image preparation
  (:class:`PreparedImage`), and the x4 upscaling as matmuls whose pixel
  shuffle is applied to the 4 masks rather than to the C/8-channel features.

Sam:

* :class:`FastSam`: ``postprocess_masks`` upsamples only the low-res rows
  and columns that the crop keeps.

TinyViT (MobileSAM's encoder): its fast classes live in :mod:`.fast_tiny_vit`
(BatchNorm folded into the convolutions, channels-last convolutional stage)
and join the same table. SAM 2's Hiera: :mod:`samwidgets.sam2.fast_encoder` (each block
run a slab of rows at a time, its intermediates small enough to stay in cache),
added by :func:`register_fast_classes` when ``samwidgets.sam2`` is imported.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, TypeVar, cast

import torch
import torch.nn.functional as F
from torch import nn

from . import fast_tiny_vit, image_encoder, mask_decoder, sam, transformer
from .common import LayerNorm2d
from .high_res_decoder import HighResDecodedTokens, HighResMaskDecoder
from .image_encoder import get_rel_pos
from .image_encoder_cnn import split_image_embedding, unpack_high_res
from .mask_decoder import DecodedTokens

# --------------------------------------------------------------------------------------------------
# Image encoder
# --------------------------------------------------------------------------------------------------


#: Per thread, while a FastImageEncoderViT runs: its scratch buffers for the relative-position bias.
_encoder_scratch = threading.local()


def _bias_buffer(numel: int, like: torch.Tensor) -> torch.Tensor:
    """An uninitialised buffer of ``numel`` values of ``like``'s dtype and device for a block's bias.

    Inside a :class:`FastImageEncoderViT` forward the buffer is kept for the encoder's later blocks
    (a fresh one of 200 MB per global block of vit_b pays its page faults again); elsewhere it is new.
    """
    buffers = getattr(_encoder_scratch, "buffers", None)
    if buffers is None:
        return torch.empty(numel, dtype=like.dtype, device=like.device)
    key = (like.dtype, like.device)
    buffer = buffers.get(key)
    if buffer is None or buffer.numel() < numel:
        buffer = buffers[key] = torch.empty(numel, dtype=like.dtype, device=like.device)
    return buffer[:numel]


class FastImageEncoderViT(image_encoder.ImageEncoderViT):
    """The ViT encoder whose blocks share their bias buffers during one forward (see :func:`_bias_buffer`).

    The scratch belongs to the calling thread and is dropped when the forward ends, so concurrent
    encodes (the widget prefetches the next image in a thread) never share it and nothing stays
    allocated between encodes.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outer = getattr(_encoder_scratch, "buffers", None)
        _encoder_scratch.buffers = {} if outer is None else outer
        try:
            return super().forward(x)
        finally:
            _encoder_scratch.buffers = outer


class FastAttention(image_encoder.Attention):
    """The encoder's attention on ``F.scaled_dot_product_attention``, in blocks of query rows.

    Same maths as :meth:`image_encoder.Attention.forward`. SDPA computes
    ``softmax(q k^T * head_dim**-0.5 + attn_mask) v``, which is the plain
    scale, and the relative-position bias (made from the unscaled q, as in
    the plain code) is passed as the additive ``attn_mask``. SDPA's fused
    kernels never materialise the softmax separately. Large grids are
    processed in blocks of about :attr:`query_block_tokens` queries, so the
    full heads x N x N bias and score tensors (a global block of vit_h: 16 x
    4096 x 4096 floats, 1 GiB each) never exist at once. A query row's
    softmax and weighted sum involve only that row's scores, so the result is
    the same.
    """

    #: queries per block when the grid is large (bounded memory; same result)
    query_block_tokens: int = 1024

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
        buffer = None  # the bias of one block of rows, reused by the next (and by the next blocks: see below)
        for r0 in range(0, h, rows_per_block):
            r1 = min(h, r0 + rows_per_block)
            q_blk = q[:, :, r0 * w : r1 * w]  # B x heads x (rows*W) x head_dim
            bias = None
            if self.use_rel_pos:
                rows_q = q_blk.reshape(b * self.num_heads, r1 - r0, w, -1)  # (B*heads) x rows x W x head_dim
                bias_h = torch.einsum("bhwc,hkc->bhwk", rows_q, rel_h[r0:r1])  # (B*heads) x rows x W x H
                bias_w = torch.einsum("bhwc,wkc->bhwk", rows_q, rel_w)  # (B*heads) x rows x W x W
                # The sum must come out contiguous: the einsums' outputs are laid out heads-inner, and a sum
                # that followed their layout would need a copy to become the mask (13x slower on 2 cores).
                if bias_h.requires_grad or bias_w.requires_grad or torch.compiler.is_compiling():
                    # training (out= has no gradient) or torch.compile (which fuses the sum into its kernels)
                    bias = bias_h.contiguous().unsqueeze(-1) + bias_w.contiguous().unsqueeze(-2)
                else:  # inference: into one buffer, reused by every block of rows (no page faults)
                    if buffer is None:
                        buffer = _bias_buffer(b * self.num_heads * rows_per_block * w * n, bias_h)
                    bias = buffer[: b * self.num_heads * (r1 - r0) * w * n].view(b * self.num_heads, r1 - r0, w, h, w)
                    torch.add(bias_h.unsqueeze(-1), bias_w.unsqueeze(-2), out=bias)
                bias = bias.view(b, self.num_heads, (r1 - r0) * w, n).to(q_blk.dtype)
            outputs.append(F.scaled_dot_product_attention(q_blk, k, v, attn_mask=bias))
        out = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)  # B x heads x N x head_dim
        return out.permute(0, 2, 1, 3).reshape(b, h, w, -1)


def window_partition_filled(x: torch.Tensor, window_size: int, fill: torch.Tensor
                            ) -> tuple[torch.Tensor, tuple[int, int]]:
    """:func:`image_encoder.window_partition` with ``fill`` (C values) in every padded position instead of zeros.

    x: B x H x W x C -> (B * nW) x ws x ws x C windows and the padded size (Hp, Wp).
    The windows are written in one pass: the real tokens copied straight into their windows (the
    full windows, the last row and column of windows, the corner), then ``fill`` into the padding,
    instead of padding the grid, then permuting it into windows (three passes over the tokens).
    """
    b, h, w, c = x.shape
    ws = window_size
    nh, nw = -(-h // ws), -(-w // ws)  # windows per column and per row, the last ones padded
    fh, fw = h // ws, w // ws  # full windows
    rh, rw = h - fh * ws, w - fw * ws  # real rows (columns) of the last, padded window row (column)
    windows = x.new_empty(b, nh, nw, ws, ws, c)
    grid = windows.permute(0, 1, 3, 2, 4, 5)  # B x nh x ws x nw x ws x C: the padded grid, a view
    grid[:, :fh, :, :fw] = x[:, : fh * ws, : fw * ws].unflatten(1, (fh, ws)).unflatten(3, (fw, ws))
    if rh:
        grid[:, fh, :rh, :fw] = x[:, fh * ws :, : fw * ws].unflatten(2, (fw, ws))
        grid[:, fh, rh:] = fill.to(x.dtype)  # the padding rows
    if rw:
        grid[:, :fh, :, fw, :rw] = x[:, : fh * ws, fw * ws :].unflatten(1, (fh, ws))
        grid[:, :, :, fw, rw:] = fill.to(x.dtype)  # the padding columns
    if rh and rw:
        grid[:, fh, :rh, fw, :rw] = x[:, fh * ws :, fw * ws :]
    return windows.view(-1, ws, ws, c), (nh * ws, nw * ws)


def window_unpartition_cropped(windows: torch.Tensor, window_size: int, pad_hw: tuple[int, int],
                               hw: tuple[int, int]) -> torch.Tensor:
    """:func:`image_encoder.window_unpartition` in one pass: only the real tokens are copied out of the windows.

    windows: (B * nW) x ws x ws x C -> B x H x W x C.
    """
    (hp, wp), (h, w), ws = pad_hw, hw, window_size
    nh, nw = hp // ws, wp // ws
    fh, fw = h // ws, w // ws
    rh, rw = h - fh * ws, w - fw * ws
    c = windows.shape[-1]
    grid = windows.view(-1, nh, nw, ws, ws, c).permute(0, 1, 3, 2, 4, 5)  # B x nh x ws x nw x ws x C, a view
    out = windows.new_empty(grid.shape[0], h, w, c)
    out[:, : fh * ws, : fw * ws].unflatten(1, (fh, ws)).unflatten(3, (fw, ws)).copy_(grid[:, :fh, :, :fw])
    if rh:
        out[:, fh * ws :, : fw * ws].unflatten(2, (fw, ws)).copy_(grid[:, fh, :rh, :fw])
    if rw:
        out[:, : fh * ws, fw * ws :].unflatten(1, (fh, ws)).copy_(grid[:, :fh, :, fw, :rw])
    if rh and rw:
        out[:, fh * ws :, fw * ws :].copy_(grid[:, fh, :rh, fw, :rw])
    return out


class FastBlock(image_encoder.Block):
    """An encoder block whose windowed attention projects only the real tokens.

    The plain block zero-pads the normalised tokens to whole windows and does
    not mask the padding, so a padded token's q, k and v are exactly the qkv
    bias (``qkv(0) = bias``). Projecting the real tokens and then filling the
    padding of the projected tokens with that bias gives the same attention
    input, without running the qkv projection on the padding (about 16% of
    the tokens of vit_b: 64 x 64 padded to 70 x 70). The padding's outputs
    are dropped before the output projection, so that runs on real tokens
    only too. The attention is :class:`FastAttention`'s.
    """

    attn: FastAttention  # the switch makes the block's attention fast too

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B x H x W x D -> B x H x W x D."""
        shortcut = x
        x = self.norm1(x)
        x = self._windowed_attention(x) if self.window_size > 0 else self.attn(x)
        x = shortcut + x
        return x + self.mlp(self.norm2(x))

    def _windowed_attention(self, x: torch.Tensor) -> torch.Tensor:
        """Attention within windows, with the projections run on real tokens only: B x H x W x D -> same."""
        h, w = x.shape[1], x.shape[2]
        qkv = self.attn.qkv(x)  # B x H x W x 3D, real tokens only
        bias = self.attn.qkv.bias
        fill = bias if bias is not None else torch.zeros(qkv.shape[-1], dtype=qkv.dtype, device=qkv.device)
        windows, pad_hw = window_partition_filled(qkv, self.window_size, fill)  # (B*nW) x ws x ws x 3D
        out = FastAttention.attend(self.attn, windows)  # (B*nW) x ws x ws x D
        out = window_unpartition_cropped(out, self.window_size, pad_hw, (h, w))  # B x H x W x D
        return self.attn.proj(out)


# --------------------------------------------------------------------------------------------------
# Two-way transformer
# --------------------------------------------------------------------------------------------------

#: Up to this many keys, attention over many queries runs keys-major (see :func:`attend`).
FEW_KEYS = 16


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(c)) v for q: B x heads x Nq x c, k, v: B x heads x Nk x c -> B x heads x Nq x c.

    When the image attends to the prompt tokens there are 4096 queries and
    only 5-16 keys. There SDPA's CPU kernel pays, per block of queries, for a
    softmax over a handful of values. Computing the scores keys-major
    (B x heads x Nk x Nq) makes the softmax run along the long, contiguous
    query axis instead: 5x faster for 7 keys, 1.5x for 16 (measured on 2 CPU
    cores). It is the same softmax over the same scores, transposed, so the
    result is the same within float rounding. Otherwise this is SDPA, the
    plain computation in one fused call.
    """
    nq, nk = q.shape[-2], k.shape[-2]
    if nk > FEW_KEYS or nq < 8 * nk:
        return F.scaled_dot_product_attention(q, k, v)
    scores = (k * k.shape[-1] ** -0.5) @ q.transpose(-1, -2)  # B x heads x Nk x Nq
    return torch.softmax(scores, dim=-2).transpose(-1, -2) @ v  # B x heads x Nq x c


#: which of an attention's input projections: ``q_proj``, ``k_proj`` or ``v_proj``
Projection = Literal["q", "k", "v"]


@dataclass(frozen=True, eq=False)
class Projections:
    """Inputs of a :class:`FastDecoderAttention` already projected (and split into heads) with its
    :meth:`~FastDecoderAttention.project`, computed once per image: each Bx x heads x N x c, or None."""

    q: torch.Tensor | None = None
    k: torch.Tensor | None = None
    v: torch.Tensor | None = None


def _given(x: torch.Tensor | None, name: str) -> torch.Tensor:
    """x, an input that must be given when ``projected=`` does not hold its projection."""
    if x is None:
        raise ValueError(f"{name} must be given unless projected= holds its projection")
    return x


class FastDecoderAttention(transformer.Attention):
    """Decoder attention that shares a batch-1 image side among all prompts, takes pre-projected inputs,
    and never projects the 4096 image tokens when only a few prompt tokens meet them.

    * Shared image. The plain decoder repeats the image embedding once per prompt, so every
      prompt's q/k/v projection of the image tokens computes the same thing. Here a side of batch 1
      is projected once. Shared keys/values take all prompts' queries as one long sequence; a
      shared query side (the image attending to each prompt's tokens) is broadcast. Each query row
      still sees exactly the keys it sees in the per-prompt computation.
    * Few tokens against the image (:meth:`_tokens_to_image`, :meth:`_image_to_tokens`). The
      projections are linear, so they can move to the side of the product that has the few
      tokens: ``q . (W_k x + b_k) = (W_k^T q) . x + q . b_k``, where the last term is the same
      for every key of a query and cancels in the softmax; ``sum_j a_j (W_v x_j + b_v) =
      W_v (sum_j a_j x_j) + b_v`` because the weights a_j sum to 1; and the output projection of
      the image attending to the tokens folds into the tokens' values. With one prompt of 7 tokens
      and 8 heads the image's 4096 x 256 tokens then meet 56 vectors instead of being projected to
      4096 x 128: about a third of the multiply-adds. The same function, summed in another order.
    """

    def project(self, x: torch.Tensor, which: Projection) -> torch.Tensor:
        """Project B x N x C inputs with q_proj, k_proj or v_proj and split heads: B x heads x N x c."""
        return self._separate_heads(getattr(self, f"{which}_proj")(x))

    def _head_weights(self, which: Projection) -> torch.Tensor:
        """The projection's weight per head: heads x c x C (c = internal_dim / heads)."""
        weight = getattr(self, f"{which}_proj").weight  # internal_dim x C
        return weight.view(self.num_heads, -1, weight.shape[-1])

    def forward(self, q: torch.Tensor | None, k: torch.Tensor | None, v: torch.Tensor | None, *,
                projected: Projections | None = None) -> torch.Tensor:
        """q: Bq x Nq x C; k, v: Bk x Nk x C, where Bq and Bk are equal or one of them is 1. Returns B x Nq x C.

        ``projected`` may hold q, k and/or v already projected with :meth:`project` (the same values,
        computed once per image). The matching raw input is then ignored.
        """
        projected = projected or Projections()
        if projected.q is None and projected.k is None and projected.v is None:
            q, k, v = _given(q, "q"), _given(k, "k"), _given(v, "v")
            if q.shape[0] * q.shape[1] * self.num_heads < k.shape[0] * self.internal_dim \
                    and k.shape[1] >= 8 * q.shape[1]:
                return self._tokens_to_image(q, k, v)
        if projected.k is None and projected.v is None:
            k, v = _given(k, "k"), _given(v, "v")
            if self.num_heads * k.shape[1] < self.internal_dim:
                nq = projected.q.shape[2] if projected.q is not None else _given(q, "q").shape[1]
                if nq >= 8 * k.shape[1]:
                    return self._image_to_tokens(q, k, v, projected.q)
        q = projected.q if projected.q is not None else self.project(_given(q, "q"), "q")  # Bq x heads x Nq x c
        k = projected.k if projected.k is not None else self.project(_given(k, "k"), "k")  # Bk x heads x Nk x c
        v = projected.v if projected.v is not None else self.project(_given(v, "v"), "v")
        bq, _, nq, _ = q.shape
        bk = k.shape[0]
        if bk == 1 and bq > 1:  # shared image keys: all prompts' queries in one sequence
            q = q.transpose(0, 1).reshape(1, self.num_heads, bq * nq, -1)  # 1 x heads x (Bq*Nq) x c
            out = attend(q, k, v)
            out = out.reshape(self.num_heads, bq, nq, -1).transpose(0, 1)  # Bq x heads x Nq x c
        else:
            if bq == 1 and bk > 1:  # shared image queries against per-prompt tokens
                q = q.expand(bk, -1, -1, -1)
            out = attend(q, k, v)  # B x heads x Nq x c
        return self.out_proj(self._recombine_heads(out))

    def _tokens_to_image(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """A few tokens attending to the image, without projecting the image's keys or values.

        q: Bq x Nq x C (tokens); k, v: Bk x N x C (the image, N large; Bk = Bq, or 1 when shared).
        Every head's queries become rows of one matrix, so each image is read by one product.
        Returns Bq x Nq x C.
        """
        bq, nq, _ = q.shape
        heads, c = self.num_heads, self.internal_dim // self.num_heads
        queries = self.project(q, "q")  # Bq x heads x Nq x c
        # scores: (W_k^T q) . x; the term q . b_k is the same for all keys of a query: softmax drops it
        rows = (queries @ self._head_weights("k")) * c**-0.5  # Bq x heads x Nq x C
        bk = k.shape[0]
        rows = rows.reshape(bk, -1, rows.shape[-1]) if bk == 1 else rows.expand(bk, -1, -1, -1).flatten(1, 2)
        weights = torch.softmax(rows @ k.transpose(1, 2), dim=-1)  # Bk x (Bq'*heads*Nq) x N
        # values: W_v (sum_j a_j x_j) + b_v, as the weights a_j sum to 1
        mixed = (weights @ v).view(-1, heads, nq, v.shape[-1])  # Bq x heads x Nq x C
        out = mixed @ self._head_weights("v").transpose(-1, -2) + self.v_proj.bias.view(heads, 1, c)
        return self.out_proj(self._recombine_heads(out))  # Bq x Nq x C

    def _image_to_tokens(self, q: torch.Tensor | None, k: torch.Tensor, v: torch.Tensor,
                         projected_q: torch.Tensor | None) -> torch.Tensor:
        """The image attending to a few tokens, with the output projection folded into the tokens' values.

        q: Bq x N x C (the image, N large) or ``projected_q`` (1 x heads x N x c, prepared once per
        image); k, v: Bk x Nk x C (tokens); Bq and Bk equal, or one of them 1. Scores are computed
        keys-major (rows: every prompt's heads x keys; columns: the N image positions), so the image is
        read by one product and the softmax over the few keys runs along the long axis.
        Returns B x N x C.
        """
        heads, c = self.num_heads, self.internal_dim // self.num_heads
        keys = self.project(k, "k")  # Bk x heads x Nk x c
        values = self.project(v, "v")  # Bk x heads x Nk x c
        bk, _, nk, _ = keys.shape
        if projected_q is not None:
            if projected_q.shape[0] != 1:  # rare: queries prepared per prompt
                scores = keys @ projected_q.transpose(-1, -2)  # B x heads x Nk x N (matmul broadcasts a batch 1)
            else:  # heads as the batch: every prompt's keys of one head against the image's queries
                per_head = keys.transpose(0, 1).reshape(heads, bk * nk, c)  # heads x (Bk*Nk) x c
                scores = per_head @ projected_q[0].transpose(-1, -2)  # heads x (Bk*Nk) x N
                scores = scores.view(heads, bk, nk, -1).transpose(0, 1)  # Bk x heads x Nk x N
        else:  # (W_q x + b_q) . k = x . (W_q^T k) + b_q . k
            q = _given(q, "q")
            rows = keys @ self._head_weights("q")  # Bk x heads x Nk x C
            bias = keys @ self.q_proj.bias.view(heads, c, 1)  # Bk x heads x Nk x 1
            if q.shape[0] == 1:  # a shared image: all prompts' rows in one product
                scores = rows.reshape(1, -1, rows.shape[-1]) @ q.transpose(1, 2)  # 1 x (Bk*heads*Nk) x N
            else:
                scores = rows.flatten(1, 2) @ q.transpose(1, 2)  # B x (heads*Nk) x N
            scores = scores.view(-1, heads, nk, scores.shape[-1]) + bias  # B x heads x Nk x N
        weights = torch.softmax(scores * c**-0.5, dim=2)  # over the keys
        # out_proj(sum_h sum_j a_hj v_hj) = sum_h sum_j a_hj (W_o[:, h] v_hj) + b_o
        out_weight = self.out_proj.weight.view(self.out_proj.out_features, heads, c)  # C x heads x c
        values_out = torch.einsum("bhjc,ohc->bhjo", values, out_weight)  # Bk x heads x Nk x C
        b = max(weights.shape[0], values_out.shape[0])
        weights = weights.expand(b, -1, -1, -1).reshape(b, heads * nk, -1)  # B x (heads*Nk) x N
        values_out = values_out.expand(b, -1, -1, -1).reshape(b, heads * nk, -1)  # B x (heads*Nk) x C
        return weights.transpose(1, 2) @ values_out + self.out_proj.bias  # B x N x C


@dataclass
class PreparedBlock:
    """The first attention block's projections of the image side, the same for every prompt of one image."""

    token_to_image_k: torch.Tensor  # 1 x heads x HW x c: keys of the tokens' attention to the image
    token_to_image_v: torch.Tensor  # 1 x heads x HW x c: its values
    image_to_token_q: torch.Tensor  # 1 x heads x HW x c: queries of the image's attention to the tokens


@dataclass
class PreparedTransformer:
    """The two-way transformer's image side for one image (see :meth:`FastTwoWayTransformer.prepare_image`)."""

    keys: torch.Tensor  # 1 x HW x C: the image tokens, contiguous
    key_pe: torch.Tensor  # 1 x HW x C: their positional encoding
    first_block: PreparedBlock | None  # None for a transformer of no block


class FastTwoWayAttentionBlock(transformer.TwoWayAttentionBlock):
    """A two-way block that accepts a shared (batch-1) image and the first block's precomputed projections.

    ``keys + key_pe`` is computed once and used for both cross-attentions.
    The keys do not change between the two, which is why the plain code's
    two identical sums can be one.
    """

    # the switch makes the block's attentions fast too
    self_attn: FastDecoderAttention
    cross_attn_token_to_image: FastDecoderAttention
    cross_attn_image_to_token: FastDecoderAttention

    def prepare_image(self, keys: torch.Tensor, key_pe: torch.Tensor) -> PreparedBlock:
        """The projections of the image side that do not depend on the prompts. keys: 1 x HW x C.

        Only valid for the first block: later blocks see keys that the prompts have already changed.
        """
        k = keys + key_pe
        return PreparedBlock(token_to_image_k=self.cross_attn_token_to_image.project(k, "k"),
                             token_to_image_v=self.cross_attn_token_to_image.project(keys, "v"),
                             image_to_token_q=self.cross_attn_image_to_token.project(k, "q"))

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, query_pe: torch.Tensor,
                key_pe: torch.Tensor, prepared: PreparedBlock | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """queries: B x Nt x C; keys: B or 1 x HW x C; prepared: from :meth:`prepare_image` (keys, key_pe)."""
        queries = self.tokens_attend_to_themselves(queries, query_pe)

        q = queries + query_pe
        k = None if prepared is not None else keys + key_pe
        t2i = Projections(k=prepared.token_to_image_k, v=prepared.token_to_image_v) if prepared is not None else None
        queries = self.norm2(queries + self.cross_attn_token_to_image(q, k, keys, projected=t2i))

        queries = self.norm3(queries + self.mlp(queries))

        q = queries + query_pe
        i2t = Projections(q=prepared.image_to_token_q) if prepared is not None else None
        keys = self.norm4(keys + self.cross_attn_image_to_token(k, q, queries, projected=i2t))
        return queries, keys


class FastTwoWayTransformer(transformer.TwoWayTransformer):
    """The two-way transformer with a shared (batch-1) image side, optionally prepared once per image.

    An image embedding of batch 1 stays batch 1. The first block's
    cross-attentions project it once for all prompts
    (:class:`FastDecoderAttention`), and from the first block's image->token
    attention on, the image side has the prompts' batch. The image tokens are
    made contiguous once (free for channels-last inputs), because adding a
    contiguous and a transposed tensor in every block is many times slower.
    """

    def prepare_image(self, image_embedding: torch.Tensor, image_pe: torch.Tensor) -> PreparedTransformer:
        """Everything of the image side that is the same for every prompt of one image.

        image_embedding, image_pe: 1 x C x H x W. Passing the result to
        :meth:`forward` skips the layout changes and three of the first
        block's image-sized projections. The outputs are the same.
        """
        keys = image_embedding.flatten(2).transpose(1, 2).contiguous()  # 1 x HW x C
        key_pe = image_pe.flatten(2).transpose(1, 2).contiguous()  # 1 x HW x C
        first = cast(FastTwoWayAttentionBlock, self.layers[0]) if len(self.layers) else None  # made fast by the switch
        return PreparedTransformer(keys, key_pe, first.prepare_image(keys, key_pe) if first is not None else None)

    def forward(self, image_embedding: torch.Tensor | None, image_pe: torch.Tensor | None,
                point_embedding: torch.Tensor, prepared: PreparedTransformer | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """image_embedding: B x C x H x W, or 1 x C x H x W shared by all B prompts; image_pe: 1 x C x H x W;
        point_embedding: B x Nt x C; or instead of the two image tensors, ``prepared`` from
        :meth:`prepare_image`. Returns the processed tokens B x Nt x C and image B x HW x C."""
        if prepared is not None:
            keys, image_pe, first_block = prepared.keys, prepared.key_pe, prepared.first_block
        else:
            keys = _given(image_embedding, "image_embedding").flatten(2).transpose(1, 2).contiguous()  # B or 1 x HW x C
            image_pe = _given(image_pe, "image_pe").flatten(2).transpose(1, 2).contiguous()  # 1 x HW x C
            first_block = None
        queries = point_embedding
        for i, layer in enumerate(self.layers):
            queries, keys = layer(queries, keys, query_pe=point_embedding, key_pe=image_pe,
                                  prepared=first_block if i == 0 else None)
        q = queries + point_embedding
        k = keys + image_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image(q, k, keys))
        return queries, keys


# --------------------------------------------------------------------------------------------------
# Mask decoder
# --------------------------------------------------------------------------------------------------


@dataclass
class PreparedImage:
    """The prompt-independent image side of the decoder for one image (see :meth:`FastMaskDecoder.prepare_image`)."""

    transformer: PreparedTransformer
    size: tuple[int, int]  # h, w of the embedding grid
    high_res: torch.Tensor | None = None  # 1 x 2C x h x w packed early features (high_res_features models)


def _conv_transpose_2x2_unshuffled(conv: nn.ConvTranspose2d, x: torch.Tensor) -> torch.Tensor:
    """A kernel-2 stride-2 transposed convolution as one matmul, leaving the pixel shuffle for later.

    Each input pixel writes its own 2 x 2 block of outputs (no overlap), so
    the layer is a linear map C_in -> 2 x 2 x C_out per pixel. x: ... x C_in
    -> ... x 2 x 2 x C_out, where output pixel (2y + i, 2x + j) sits at
    [..., y, x, i, j, :]. Per-pixel layers (LayerNorm over channels, GELU,
    the next such convolution) can run on this layout unchanged.
    """
    assert conv.bias is not None, "the decoder's upscaling convolutions have a bias"
    weight = conv.weight.permute(0, 2, 3, 1).reshape(conv.in_channels, -1)  # C_in x (2*2*C_out)
    y = x @ weight  # ... x (2*2*C_out)
    return y.unflatten(-1, (2, 2, conv.out_channels)) + conv.bias


class FastMaskDecoder(mask_decoder.MaskDecoder):
    """The mask decoder without a copy of the image per prompt, with an optional per-image preparation.

    * The plain decoder repeats the image embedding for every prompt. Here
      the sum ``image + dense`` is broadcast, and a shared "no mask" dense
      embedding keeps the image side at batch 1 through the first block
      (:class:`FastTwoWayTransformer`). The values each prompt sees are the
      same.
    * :meth:`prepare_image` does the image side's prompt-independent work
      once per image. The predictor caches it, so a click pays only for the
      prompt-dependent part.
    * :meth:`masks_from_hypernetworks` runs the x4 upscaling as matmuls and
      applies the pixel shuffle to the 4 masks, not to the C/8-channel
      features.

    :class:`~samwidgets.modeling.mask_decoder.DecodedTokens` may then hold
    image tokens of batch 1 (shared by all prompts). The bundled model's early features
    (:mod:`~samwidgets.modeling.high_res_decoder`) are handled here too, kept at batch 1 as well:
    its :class:`FastHighResMaskDecoder` is this class.
    """

    transformer: FastTwoWayTransformer  # the switch makes the transformer fast too

    def prepare_image(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                      no_mask_embedding: torch.Tensor) -> PreparedImage:
        """Precompute what every prompt without a mask prompt shares for one image.

        image_embeddings: 1 x C x h x w; image_pe: 1 x C x h x w;
        no_mask_embedding: the dense embedding of "no mask" (1 x C x 1 x 1 or
        broadcastable). Passing the result to :meth:`forward` gives the same
        outputs for prompts without a mask prompt, with less work per call.
        """
        image_embeddings, high_res = split_image_embedding(image_embeddings, self.config)
        src = image_embeddings + no_mask_embedding  # 1 x C x h x w
        return PreparedImage(self.transformer.prepare_image(src, image_pe), (src.shape[-2], src.shape[-1]), high_res)

    def forward(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                sparse_prompt_embeddings: torch.Tensor, dense_prompt_embeddings: torch.Tensor,
                multimask_output: bool, prepared: PreparedImage | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`MaskDecoder.forward`, plus ``prepared`` (from :meth:`prepare_image` for these image
        embeddings), which is used when the dense embedding is the shared "no mask" one."""
        masks, iou_pred = self.predict_masks(image_embeddings, image_pe, sparse_prompt_embeddings,
                                             dense_prompt_embeddings, prepared)
        mask_slice = slice(1, None) if multimask_output else slice(0, 1)
        return masks[:, mask_slice], iou_pred[:, mask_slice]

    def predict_masks(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                      sparse_prompt_embeddings: torch.Tensor, dense_prompt_embeddings: torch.Tensor,
                      prepared: PreparedImage | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """All 4 masks and IoU predictions: B x 4 x 4h x 4w and B x 4."""
        decoded = self.decode_tokens(image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings,
                                     prepared)
        return self.masks_of(decoded), decoded.iou_pred

    def decode_tokens(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                      sparse_prompt_embeddings: torch.Tensor, dense_prompt_embeddings: torch.Tensor,
                      prepared: PreparedImage | None = None) -> HighResDecodedTokens:
        """:meth:`MaskDecoder.decode_tokens` with a shared image side: image_tokens are 1 x C x h x w when
        every prompt sees the same image (no mask prompt), else B x C x h x w."""
        b = sparse_prompt_embeddings.shape[0]
        high_res = None
        if image_embeddings is not None:
            image_embeddings, high_res = split_image_embedding(image_embeddings, self.config)
            if image_embeddings.shape[0] not in (1, b):
                raise ValueError(f"image_embeddings has batch {image_embeddings.shape[0]}; expected 1 (shared) "
                                 f"or {b} (one per prompt)")
        elif prepared is not None:
            high_res = prepared.high_res
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)  # 5 x C
        output_tokens = output_tokens.unsqueeze(0).expand(b, -1, -1)  # B x 5 x C
        tokens = torch.cat((output_tokens, sparse_prompt_embeddings), dim=1)  # B x (5+N) x C
        shared_dense = dense_prompt_embeddings.shape[0] == 1 or dense_prompt_embeddings.stride(0) == 0
        if prepared is not None and shared_dense:
            (h, w), c = prepared.size, self.transformer_dim
            hs, src = self.transformer(None, None, tokens, prepared=prepared.transformer)
        else:
            if shared_dense:  # the "no mask" embedding, broadcast: the image side stays shared by all prompts
                dense_prompt_embeddings = dense_prompt_embeddings[:1]
            src = image_embeddings + dense_prompt_embeddings  # 1 or B x C x h x w, never a copy per prompt
            _, c, h, w = src.shape
            hs, src = self.transformer(src, image_pe, tokens)  # B x (5+N) x C, 1 or B x hw x C
        iou_pred = self.iou_prediction_head(hs[:, 0, :])  # B x 4
        image_tokens = src.reshape(-1, h, w, c).permute(0, 3, 1, 2)  # B' x C x h x w, a view of B' x h x w x C
        return HighResDecodedTokens(mask_tokens=hs[:, 1 : 1 + self.num_mask_tokens, :],  # B x 4 x C
                                    image_tokens=image_tokens, iou_pred=iou_pred, high_res=high_res)

    def masks_of(self, decoded: DecodedTokens, rows: torch.Tensor | None = None) -> torch.Tensor:
        """The 4 low-res masks of the prompts ``rows`` (default: all): R x 4 x 4h x 4w."""
        mask_tokens = decoded.mask_tokens
        high_res = decoded.high_res if isinstance(decoded, HighResDecodedTokens) else None
        image_tokens = decoded.image_tokens.permute(0, 2, 3, 1)  # B' x h x w x C (contiguous when decoded here)
        if rows is not None:
            mask_tokens = mask_tokens[rows]
            if image_tokens.shape[0] > 1:  # one per prompt (else shared by all)
                image_tokens = image_tokens[rows]
            if high_res is not None and high_res.shape[0] > 1:
                high_res = high_res[rows]
        hyper_in = torch.stack(
            [mlp(mask_tokens[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1
        )  # R x 4 x C/8
        return self.masks_from_hypernetworks(image_tokens, hyper_in, high_res)  # R x 4 x 4h x 4w

    def masks_from_hypernetworks(self, image_tokens: torch.Tensor, hyper_in: torch.Tensor,
                                 high_res: torch.Tensor | None = None) -> torch.Tensor:
        """Upscale the image tokens x4 and take the dot product with each mask token's hypernetwork output.

        image_tokens: B' x h x w x C (B' = 1 or B); hyper_in: B x M x C/8 -> masks B x M x 4h x 4w.
        high_res: the encoder's packed early features (B'' x 2C x h x w, B'' = 1 or B), added to the
        upscaled features when the model has them.
        This is the same maths as ``output_upscaling`` (ConvT 2x2, LayerNorm2d, GELU,
        ConvT 2x2, GELU) on B x C x h x w followed by a matmul. But the
        transposed convolutions are matmuls (:func:`_conv_transpose_2x2_unshuffled`),
        LayerNorm2d is the channel LayerNorm it is, and the 4h x 4w pixel
        shuffle is applied only to the M final masks, not to the C/8-channel features.
        A shared image (B' = 1) is upscaled once for all prompts.
        """
        conv1, norm, act1, conv2, act2 = self.output_upscaling
        # the layers MaskDecoder made (a Sequential's items are typed nn.Module)
        conv1, conv2, norm = cast(nn.ConvTranspose2d, conv1), cast(nn.ConvTranspose2d, conv2), cast(LayerNorm2d, norm)
        b = hyper_in.shape[0]
        x = _conv_transpose_2x2_unshuffled(conv1, image_tokens)  # B' x h x w x 2 x 2 x C/4
        x = act1(F.layer_norm(x, (x.shape[-1],), norm.weight, norm.bias, norm.eps))
        x = act2(_conv_transpose_2x2_unshuffled(conv2, x))  # B' x h x w x 2 x 2 x 2 x 2 x C/8
        if high_res is not None:
            x = x + unpack_high_res(high_res)  # the same pixel layout: B' or B'' x h x w x 2 x 2 x 2 x 2 x C/8
        _, h, w = x.shape[:3]
        pixels = x.reshape(x.shape[0], -1, x.shape[-1]).expand(b, -1, -1)  # B x (16hw) x C/8
        masks = pixels @ hyper_in.transpose(1, 2)  # B x (16hw) x M
        # [b, y, x, i1, j1, i2, j2, m] is pixel (4y + 2*i1 + i2, 4x + 2*j1 + j2) of mask m
        masks = masks.reshape(b, h, w, 2, 2, 2, 2, -1).permute(0, 7, 1, 3, 5, 2, 4, 6)
        return masks.reshape(b, -1, 4 * h, 4 * w)


# --------------------------------------------------------------------------------------------------
# Sam
# --------------------------------------------------------------------------------------------------


class FastSam(sam.Sam):
    """Sam whose ``postprocess_masks`` never upsamples the padding."""

    def postprocess_masks(self, masks: torch.Tensor, input_size: tuple[int, ...],
                          original_size: tuple[int, ...]) -> torch.Tensor:
        """:meth:`Sam.postprocess_masks` with the same values and less work.

        Bilinear upsampling by an integer factor (align_corners=False) gives
        output pixel y the low-res rows floor((y + 0.5) / factor - 0.5) and the
        next, with weights that depend only on y. The pixels the crop keeps
        (y < h) read only the first ceil(h / factor) + 1 low-res rows. Upsampling
        those rows alone, by the same factor, gives every kept pixel the same
        sources and weights, so the values are bit-identical (a 1024 x 768
        photo: a quarter less work). The last resize is skipped when it is
        the identity (same size: weights 1 and 0), which changes no value.
        """
        size = self.image_encoder.img_size
        low = masks.shape[-1]
        if size % low == 0 and masks.shape[-2] == low:
            factor = size // low
            rows, cols = (min(low, -(-n // factor) + 1) for n in input_size[:2])
            masks = F.interpolate(masks[..., :rows, :cols], (rows * factor, cols * factor), mode="bilinear",
                                  align_corners=False)
        else:
            masks = F.interpolate(masks, (size, size), mode="bilinear", align_corners=False)
        masks = masks[..., : input_size[0], : input_size[1]]
        if tuple(masks.shape[-2:]) != tuple(original_size):
            masks = F.interpolate(masks, tuple(original_size), mode="bilinear", align_corners=False)
        return masks


class FastHighResMaskDecoder(FastMaskDecoder, HighResMaskDecoder):
    """The bundled model's decoder (:class:`~samwidgets.modeling.high_res_decoder.HighResMaskDecoder`), fast:
    :class:`FastMaskDecoder` adds the early features itself, in its own layout."""


# --------------------------------------------------------------------------------------------------
# The switch
# --------------------------------------------------------------------------------------------------

#: plain class -> its fast subclass (the same parameters and buffers)
FAST_CLASSES: dict[type[nn.Module], type[nn.Module]] = {
    image_encoder.Attention: FastAttention,
    image_encoder.Block: FastBlock,
    image_encoder.ImageEncoderViT: FastImageEncoderViT,
    transformer.Attention: FastDecoderAttention,
    transformer.TwoWayAttentionBlock: FastTwoWayAttentionBlock,
    transformer.TwoWayTransformer: FastTwoWayTransformer,
    mask_decoder.MaskDecoder: FastMaskDecoder,
    HighResMaskDecoder: FastHighResMaskDecoder,
    sam.Sam: FastSam,
    **fast_tiny_vit.FAST_CLASSES,  # MobileSAM's encoder, in its own module
}
#: fast class -> the plain class it speeds up
PLAIN_CLASSES: dict[type[nn.Module], type[nn.Module]] = {fast: plain for plain, fast in FAST_CLASSES.items()}


def register_fast_classes(table: dict[type[nn.Module], type[nn.Module]]) -> None:
    """Join the switch with more fast classes (plain class -> fast subclass), e.g. SAM 2's Hiera blocks.

    Families outside ``modeling/`` register their own (``samwidgets.sam2.fast_encoder`` does on import), so
    imports keep one direction: they import this module, never the other way round.
    """
    FAST_CLASSES.update(table)
    PLAIN_CLASSES.update({fast: plain for plain, fast in table.items()})


#: any module: enable_fast_paths returns the model it was given, with its type
ModuleT = TypeVar("ModuleT", bound=nn.Module)


def enable_fast_paths(model: ModuleT, enabled: bool = True) -> ModuleT:
    """Switch every module of ``model`` (itself included) to its fast class, or back to the plain one.

    In place, and nothing but the classes changes (see the module docstring).
    The outputs are the same within float rounding. Returns ``model``.
    """
    table = FAST_CLASSES if enabled else PLAIN_CLASSES
    for module in model.modules():
        cls = table.get(type(module))
        if cls is not None:
            module.__class__ = cls
    return model


def fast_paths_enabled(model: nn.Module) -> bool:
    """Whether any module of ``model`` runs a fast path."""
    return any(type(module) in PLAIN_CLASSES for module in model.modules())


@contextmanager
def fast_paths(model: ModuleT, enabled: bool = True) -> Iterator[ModuleT]:
    """``with fast_paths(model): ...`` runs the block with the fast paths on (or off), then restores the classes."""
    saved = [(module, type(module)) for module in model.modules()]
    enable_fast_paths(model, enabled)
    try:
        yield model
    finally:
        for module, cls in saved:
            module.__class__ = cls
