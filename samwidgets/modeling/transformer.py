"""The two-way transformer of the mask decoder: prompt tokens attend to the
image, and the image attends back to the tokens, in every block."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import MLPBlock


class Attention(nn.Module):
    """Multi-head attention with optional down-projection of the internal width."""

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

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)  # B x heads x N x c

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q: Bq x Nq x C; k, v: Bk x Nk x C, where Bq and Bk are equal or one of them is 1.

        A side with batch 1 is shared by every prompt: it is projected once, not
        once per prompt. Shared keys/values take all queries as one long
        sequence; a shared query side is broadcast. Each query row sees the
        same keys as in the per-prompt computation, so the result is the same.
        """
        bq, nq, _ = q.shape
        bk = k.shape[0]
        q = self._split_heads(self.q_proj(q))  # Bq x heads x Nq x c
        k = self._split_heads(self.k_proj(k))  # Bk x heads x Nk x c
        v = self._split_heads(self.v_proj(v))
        if bk == 1 and bq > 1:  # shared image keys: all prompts' queries in one sequence
            q = q.transpose(0, 1).reshape(1, self.num_heads, bq * nq, -1)  # 1 x heads x (Bq*Nq) x c
            out = F.scaled_dot_product_attention(q, k, v)
            out = out.reshape(self.num_heads, bq, nq, -1).transpose(0, 1)  # Bq x heads x Nq x c
        else:
            if bq == 1 and bk > 1:  # shared image queries against per-prompt tokens
                q = q.expand(bk, -1, -1, -1)
            out = F.scaled_dot_product_attention(q, k, v)  # B x heads x Nq x c
        b, _, n, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, n, self.internal_dim))


class TwoWayAttentionBlock(nn.Module):
    """Token self-attention, token->image cross-attention, token MLP, image->token cross-attention."""

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

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, query_pe: torch.Tensor,
                key_pe: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # queries: B x Nt x C (tokens), keys: B x Ni x C (image)
        if self.skip_first_layer_pe:
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norm1(queries)

        q = queries + query_pe
        k = keys + key_pe  # keys do not change until the end of the block: computed once, used twice
        queries = self.norm2(queries + self.cross_attn_token_to_image(q, k, keys))

        queries = self.norm3(queries + self.mlp(queries))

        q = queries + query_pe
        keys = self.norm4(keys + self.cross_attn_image_to_token(k, q, queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    """depth TwoWayAttentionBlocks then a final token->image attention."""

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
        """image_embedding: B x C x H x W, or 1 x C x H x W shared by all B prompts
        (then the first block projects the image once for all of them);
        image_pe: 1 x C x H x W; point_embedding: B x Nt x C.
        Returns the processed tokens B x Nt x C and image B x HW x C."""
        # Token layout, made contiguous once (free for channels-last inputs): adding a
        # contiguous and a transposed tensor in every block is many times slower.
        image_embedding = image_embedding.flatten(2).transpose(1, 2).contiguous()  # B x HW x C
        image_pe = image_pe.flatten(2).transpose(1, 2).contiguous()  # 1 x HW x C
        queries, keys = point_embedding, image_embedding
        for layer in self.layers:
            queries, keys = layer(queries, keys, query_pe=point_embedding, key_pe=image_pe)
        q = queries + point_embedding
        k = keys + image_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image(q, k, keys))
        return queries, keys
