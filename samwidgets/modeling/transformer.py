"""The two-way transformer of the mask decoder: prompt tokens attend to the
image, and the image attends back to the tokens, in every block."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import MLPBlock


#: Up to this many keys, attention over many queries runs keys-major (see :func:`attend`).
FEW_KEYS = 16


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(c)) v for q: B x heads x Nq x c, k, v: B x heads x Nk x c -> B x heads x Nq x c.

    The image attending to the prompt tokens has 4096 queries and only 5-16
    keys. There SDPA's CPU kernel pays per query block for a softmax over a
    handful of values; computing the scores keys-major (B x heads x Nk x Nq)
    makes the softmax run along the long, contiguous query axis instead:
    5x faster for 7 keys, 1.5x for 16 (measured on 2 CPU cores), the same
    result within float rounding. Otherwise SDPA.
    """
    nq, nk = q.shape[-2], k.shape[-2]
    if nk > FEW_KEYS or nq < 8 * nk:
        return F.scaled_dot_product_attention(q, k, v)
    scores = (k * k.shape[-1] ** -0.5) @ q.transpose(-1, -2)  # B x heads x Nk x Nq
    return torch.softmax(scores, dim=-2).transpose(-1, -2) @ v  # B x heads x Nq x c


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

    def project(self, x: torch.Tensor, which: str) -> torch.Tensor:
        """Project B x N x C inputs with q_proj, k_proj or v_proj and split heads: B x heads x N x c."""
        return self._split_heads(getattr(self, f"{which}_proj")(x))

    def forward(self, q: torch.Tensor | None, k: torch.Tensor | None, v: torch.Tensor | None, *,
                projected: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """q: Bq x Nq x C; k, v: Bk x Nk x C, where Bq and Bk are equal or one of them is 1.

        A side with batch 1 is shared by every prompt: it is projected once, not
        once per prompt. Shared keys/values take all queries as one long
        sequence; a shared query side is broadcast. Each query row sees the
        same keys as in the per-prompt computation, so the result is the same.
        ``projected`` may hold "q", "k" and/or "v" already projected with
        :meth:`project` (the same values, computed once per image); the
        matching raw input is then ignored.
        """
        projected = projected or {}
        q = projected["q"] if "q" in projected else self.project(q, "q")  # Bq x heads x Nq x c
        k = projected["k"] if "k" in projected else self.project(k, "k")  # Bk x heads x Nk x c
        v = projected["v"] if "v" in projected else self.project(v, "v")
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

    def prepare_image(self, keys: torch.Tensor, key_pe: torch.Tensor) -> dict[str, torch.Tensor]:
        """The projections of the image side that do not depend on the prompts (first block only:
        later blocks see keys already changed by the prompts). keys: 1 x HW x C."""
        k = keys + key_pe
        return {
            "t2i_k": self.cross_attn_token_to_image.project(k, "k"),
            "t2i_v": self.cross_attn_token_to_image.project(keys, "v"),
            "i2t_q": self.cross_attn_image_to_token.project(k, "q"),
        }

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, query_pe: torch.Tensor,
                key_pe: torch.Tensor, prepared: dict[str, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        # queries: B x Nt x C (tokens), keys: B x Ni x C (image); prepared: from prepare_image(keys, key_pe)
        if self.skip_first_layer_pe:
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norm1(queries)

        q = queries + query_pe
        # keys do not change until the end of the block: keys + key_pe is computed once, used twice
        k = None if prepared is not None else keys + key_pe
        t2i = {"k": prepared["t2i_k"], "v": prepared["t2i_v"]} if prepared is not None else None
        queries = self.norm2(queries + self.cross_attn_token_to_image(q, k, keys, projected=t2i))

        queries = self.norm3(queries + self.mlp(queries))

        q = queries + query_pe
        i2t = {"q": prepared["i2t_q"]} if prepared is not None else None
        keys = self.norm4(keys + self.cross_attn_image_to_token(k, q, queries, projected=i2t))
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

    def prepare_image(self, image_embedding: torch.Tensor, image_pe: torch.Tensor) -> dict[str, torch.Tensor]:
        """Everything of the image side that is the same for every prompt of one image.

        image_embedding, image_pe: 1 x C x H x W. Passing the result to
        :meth:`forward` skips the layout changes and three of the first
        block's image-sized projections; the outputs are the same.
        """
        keys = image_embedding.flatten(2).transpose(1, 2).contiguous()  # 1 x HW x C
        key_pe = image_pe.flatten(2).transpose(1, 2).contiguous()  # 1 x HW x C
        prepared = self.layers[0].prepare_image(keys, key_pe) if len(self.layers) else {}
        return {"keys": keys, "key_pe": key_pe, **prepared}

    def forward(self, image_embedding: torch.Tensor | None, image_pe: torch.Tensor | None,
                point_embedding: torch.Tensor, prepared: dict[str, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """image_embedding: B x C x H x W, or 1 x C x H x W shared by all B prompts
        (then the first block projects the image once for all of them);
        image_pe: 1 x C x H x W; point_embedding: B x Nt x C; or instead of the
        two image tensors, ``prepared`` from :meth:`prepare_image`.
        Returns the processed tokens B x Nt x C and image B x HW x C."""
        if prepared is not None:
            keys, image_pe = prepared["keys"], prepared["key_pe"]
            first_block = {k: v for k, v in prepared.items() if k not in ("keys", "key_pe")}
        else:
            # Token layout, made contiguous once (free for channels-last inputs): adding a
            # contiguous and a transposed tensor in every block is many times slower.
            keys = image_embedding.flatten(2).transpose(1, 2).contiguous()  # B x HW x C
            image_pe = image_pe.flatten(2).transpose(1, 2).contiguous()  # 1 x HW x C
            first_block = None
        queries = point_embedding
        for i, layer in enumerate(self.layers):
            queries, keys = layer(queries, keys, query_pe=point_embedding, key_pe=image_pe,
                                  prepared=first_block if i == 0 else None)
        q = queries + point_embedding
        k = keys + image_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image(q, k, keys))
        return queries, keys
