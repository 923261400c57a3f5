"""The two-way transformer of the mask decoder: prompt tokens attend to the
image, and the image attends back to the tokens, in every block.

This is the plain algorithm, written like the reference. ``SamPredictor``
runs faster equivalents of these classes (same weights, same outputs within
float rounding): see :mod:`samwidgets.modeling.fast`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .common import MLPBlock


class Attention(nn.Module):
    """Multi-head attention with optional down-projection of the internal width.

    Queries, keys and values are projected to ``embedding_dim // downsample_rate``
    channels (the cross-attentions to the 4096 image tokens use half the width),
    attended per head, and projected back to ``embedding_dim``.
    """

    def __init__(self, embedding_dim: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.internal_dim = embedding_dim // downsample_rate
        self.num_heads = num_heads
        if self.internal_dim % num_heads:
            raise ValueError("num_heads must divide embedding_dim // downsample_rate")
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.v_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)

    def _separate_heads(self, x: torch.Tensor) -> torch.Tensor:
        """B x N x C -> B x heads x N x C/heads."""
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def _recombine_heads(self, x: torch.Tensor) -> torch.Tensor:
        """B x heads x N x C/heads -> B x N x C."""
        b, heads, n, c_per_head = x.shape
        return x.transpose(1, 2).reshape(b, n, heads * c_per_head)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q: B x Nq x C; k, v: B x Nk x C -> B x Nq x C."""
        q = self._separate_heads(self.q_proj(q))  # B x heads x Nq x c
        k = self._separate_heads(self.k_proj(k))  # B x heads x Nk x c
        v = self._separate_heads(self.v_proj(v))  # B x heads x Nk x c

        attn = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # B x heads x Nq x Nk
        attn = torch.softmax(attn, dim=-1)

        out = attn @ v  # B x heads x Nq x c
        return self.out_proj(self._recombine_heads(out))  # B x Nq x C


class TwoWayAttentionBlock(nn.Module):
    """Token self-attention, token->image cross-attention, token MLP, image->token cross-attention.

    Every sub-layer is followed by a residual connection and a LayerNorm
    (post-norm). The positional encodings are added to the queries and keys
    of every attention, never to the values.
    """

    def __init__(self, embedding_dim: int, num_heads: int, mlp_dim: int, attention_downsample_rate: int,
                 skip_first_layer_pe: bool) -> None:
        super().__init__()
        self.self_attn = Attention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = Attention(embedding_dim, num_heads, attention_downsample_rate)
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = MLPBlock(embedding_dim, mlp_dim, nn.ReLU)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = Attention(embedding_dim, num_heads, attention_downsample_rate)
        self.skip_first_layer_pe = skip_first_layer_pe

    def tokens_attend_to_themselves(self, queries: torch.Tensor, query_pe: torch.Tensor) -> torch.Tensor:
        """Step (1), the tokens' self-attention (B x Nt x C -> B x Nt x C). In the first block the tokens are
        still their own positional encoding (queries is query_pe): no PE is added and there is no residual,
        as in the reference."""
        if self.skip_first_layer_pe:
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        return self.norm1(queries)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, query_pe: torch.Tensor,
                key_pe: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """queries: B x Nt x C (the tokens), keys: B x HW x C (the image); query_pe, key_pe: their
        positional encodings (key_pe: B or 1 x HW x C). Returns the updated queries and keys."""
        # (1) self-attention of the tokens
        queries = self.tokens_attend_to_themselves(queries, query_pe)

        # (2) cross-attention, tokens attending to the image
        q = queries + query_pe
        k = keys + key_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image(q, k, keys))

        # (3) MLP on the tokens
        queries = self.norm3(queries + self.mlp(queries))

        # (4) cross-attention, the image attending to the tokens: the image positions are the queries
        q = queries + query_pe
        k = keys + key_pe
        keys = self.norm4(keys + self.cross_attn_image_to_token(k, q, queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    """``depth`` TwoWayAttentionBlocks, then a final token->image attention."""

    def __init__(self, depth: int, embedding_dim: int, num_heads: int, mlp_dim: int,
                 attention_downsample_rate: int = 2) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(embedding_dim, num_heads, mlp_dim, attention_downsample_rate,
                                 skip_first_layer_pe=(i == 0))
            for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(embedding_dim, num_heads, attention_downsample_rate)
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(self, image_embedding: torch.Tensor, image_pe: torch.Tensor,
                point_embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """image_embedding: B x C x H x W; image_pe: B (or 1) x C x H x W; point_embedding: B x Nt x C.

        Returns the processed tokens B x Nt x C and image B x HW x C.
        """
        keys = image_embedding.flatten(2).permute(0, 2, 1)  # B x HW x C: one token per image position
        image_pe = image_pe.flatten(2).permute(0, 2, 1)  # B x HW x C
        queries = point_embedding
        for layer in self.layers:
            queries, keys = layer(queries, keys, query_pe=point_embedding, key_pe=image_pe)

        q = queries + point_embedding
        k = keys + image_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image(q, k, keys))
        return queries, keys
