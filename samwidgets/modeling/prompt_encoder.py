"""The prompt encoder: points and box corners become sparse tokens, a mask
prompt becomes a dense embedding added to the image embedding.

Models configured with ``text_embed_dim > 0`` also take an embedding prompt
(a CLIP-like text or image embedding), projected into one more sparse token;
official models have no such layer, so their checkpoints load unchanged.

The bundled CNN model's prompt encoder also draws the points and the box into the dense
embedding: it is a subclass in its own module (:mod:`samwidgets.modeling.click_maps`).
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import nn

from .common import LayerNorm2d
from .config import SamConfig

#: Point labels understood by the prompt encoder.
LABEL_PADDING, LABEL_NEGATIVE, LABEL_POSITIVE = -1, 0, 1


class PositionEmbeddingRandom(nn.Module):
    """Positional encoding with random spatial frequencies (Fourier features).

    A fixed Gaussian 2 x F matrix maps a coordinate in [0, 1]^2 to F
    frequencies; the encoding is [sin, cos] of them, 2F channels.
    """

    positional_encoding_gaussian_matrix: torch.Tensor  # 2 x F, a buffer

    def __init__(self, num_pos_feats: int = 64, scale: float | None = None) -> None:
        super().__init__()
        if scale is None or scale <= 0.0:
            scale = 1.0
        self.register_buffer("positional_encoding_gaussian_matrix", scale * torch.randn((2, num_pos_feats)))

    def _pe_encoding(self, coords: torch.Tensor) -> torch.Tensor:
        """coords: ... x 2 in [0, 1] -> ... x 2F."""
        coords = 2 * coords - 1
        coords = coords @ self.positional_encoding_gaussian_matrix
        coords = 2 * math.pi * coords
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)

    def forward(self, size: tuple[int, int]) -> torch.Tensor:
        """Encoding of every cell centre of an H x W grid: 2F x H x W."""
        h, w = size
        grid = torch.ones((h, w), device=self.positional_encoding_gaussian_matrix.device)
        y_embed = (grid.cumsum(dim=0) - 0.5) / h
        x_embed = (grid.cumsum(dim=1) - 0.5) / w
        pe = self._pe_encoding(torch.stack([x_embed, y_embed], dim=-1))  # H x W x 2F
        return pe.permute(2, 0, 1)

    def forward_with_coords(self, coords_input: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        """Encode B x N x 2 (x, y) pixel coordinates of an image of (H, W): B x N x 2F."""
        coords = coords_input.clone()
        coords[:, :, 0] = coords[:, :, 0] / image_size[1]
        coords[:, :, 1] = coords[:, :, 1] / image_size[0]
        return self._pe_encoding(coords.to(torch.float))


class PromptEncoder(nn.Module):
    """Encodes points, boxes and mask prompts for the mask decoder."""

    def __init__(self, config: SamConfig) -> None:
        super().__init__()
        embed_dim = config.prompt_embed_dim
        self.embed_dim = embed_dim
        self.input_image_size = (config.image_size, config.image_size)
        self.image_embedding_size = (config.embedding_size, config.embedding_size)
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        # 0: negative point, 1: positive point, 2: box top-left, 3: box bottom-right
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_input_size = (config.low_res_mask_size, config.low_res_mask_size)
        mc = config.mask_in_chans
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mc // 4, kernel_size=2, stride=2),
            LayerNorm2d(mc // 4),
            nn.GELU(),
            nn.Conv2d(mc // 4, mc, kernel_size=2, stride=2),
            LayerNorm2d(mc),
            nn.GELU(),
            nn.Conv2d(mc, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)
        self.text_embed_dim = config.text_embed_dim
        if config.text_embed_dim > 0:
            # E -> C: the paper adds "a projection" of the CLIP embedding; an MLP gives the tiny model room
            self.text_projection = nn.Sequential(
                nn.Linear(config.text_embed_dim, embed_dim),
                nn.GELU(),
                nn.Linear(embed_dim, embed_dim),
            )

    def get_dense_pe(self) -> torch.Tensor:
        """Positional encoding of the image-embedding grid: 1 x C x H x W."""
        return self.pe_layer(self.image_embedding_size).unsqueeze(0)

    def point_embedding(self, i: int) -> torch.Tensor:
        """The learned vector of ``point_embeddings[i]``, 1 x C: 0 negative point, 1 positive, 2 and 3 box corners."""
        return cast(nn.Embedding, self.point_embeddings[i]).weight  # a ModuleList's items are typed nn.Module

    def _embed_points(self, points: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        """points: B x N x 2 in input-frame pixels, labels: B x N -> B x N(+1) x C."""
        points = points + 0.5  # centre of the pixel
        if pad:  # a "not a point" token stands in for the missing box
            padding_point = torch.zeros((points.shape[0], 1, 2), device=points.device, dtype=points.dtype)
            padding_label = -torch.ones((labels.shape[0], 1), device=labels.device, dtype=labels.dtype)
            points = torch.cat([points, padding_point], dim=1)
            labels = torch.cat([labels, padding_label], dim=1)
        emb = self.pe_layer.forward_with_coords(points, self.input_image_size)
        labels = labels[..., None]  # B x N x 1
        emb = torch.where(labels == LABEL_PADDING, self.not_a_point_embed.weight, emb)
        emb = emb + torch.where(labels == LABEL_NEGATIVE, self.point_embedding(0), 0.0)
        emb = emb + torch.where(labels == LABEL_POSITIVE, self.point_embedding(1), 0.0)
        return emb

    def _embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        """boxes: B x 4 (XYXY) -> B x 2 x C, one token per corner."""
        boxes = boxes + 0.5
        coords = boxes.reshape(-1, 2, 2)
        emb = self.pe_layer.forward_with_coords(coords, self.input_image_size)
        corner = torch.cat([self.point_embedding(2), self.point_embedding(3)])  # 2 x C
        return emb + corner

    def dense_is_no_mask(self, points: tuple[torch.Tensor, torch.Tensor] | None, boxes: torch.Tensor | None,
                         masks: torch.Tensor | None) -> bool:
        """Whether :meth:`forward`'s dense embedding for these prompts is the shared "no mask" one (no mask
        prompt): then the decoder may reuse its per-image preparation (``MaskDecoder.prepare_image``)."""
        return masks is None

    def embed_embeddings(self, embeddings: torch.Tensor) -> torch.Tensor:
        """A text / image embedding prompt B x E -> one sparse token B x 1 x C.

        The embedding is L2-normalised here (CLIP's embeddings are compared by
        cosine), so any scale of the same direction gives the same token.
        """
        if self.text_embed_dim == 0:
            raise ValueError(
                "this model takes no text/embedding prompt (its config has text_embed_dim=0, like the "
                "official checkpoints); use a model trained with one, e.g. samwidgets.text.load_default_text_model()"
            )
        if embeddings.ndim != 2 or embeddings.shape[1] != self.text_embed_dim:
            raise ValueError(f"embedding prompts must be B x {self.text_embed_dim}, got {tuple(embeddings.shape)}")
        unit = nn.functional.normalize(embeddings.float(), dim=-1)  # B x E
        return self.text_projection(unit)[:, None, :]  # B x 1 x C

    def forward(
        self,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        masks: torch.Tensor | None,
        embeddings: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns sparse B x N x C tokens and a dense B x C x h x w embedding.

        embeddings: B x E text/image embeddings (models with ``text_embed_dim``
        only); each adds one token after the point and box tokens.
        """
        if points is not None:
            bs = points[0].shape[0]
        elif boxes is not None:
            bs = boxes.shape[0]
        elif masks is not None:
            bs = masks.shape[0]
        elif embeddings is not None:
            bs = embeddings.shape[0]
        else:
            bs = 1
        device = self.no_mask_embed.weight.device
        sparse = torch.empty((bs, 0, self.embed_dim), device=device)
        if points is not None:
            coords, labels = points
            sparse = torch.cat([sparse, self._embed_points(coords, labels, pad=boxes is None)], dim=1)
        if boxes is not None:
            sparse = torch.cat([sparse, self._embed_boxes(boxes)], dim=1)
        if embeddings is not None:
            sparse = torch.cat([sparse, self.embed_embeddings(embeddings)], dim=1)
        if masks is not None:
            dense = self.mask_downscaling(masks)
        else:
            h, w = self.image_embedding_size
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(bs, -1, h, w)
        return sparse, dense
