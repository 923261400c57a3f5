"""The bundled CNN model's prompt encoder: SAM's prompt encoder plus click and box maps.

Models configured with ``dense_prompts`` (the CNN models of ``recipes/bsds_cnn``) also draw the points and
the box on the image-embedding grid (:meth:`ClickMapPromptEncoder.dense_prompt_maps`) and add those maps, each
times a learned vector, to the dense embedding: every image token then knows whether it is near a click or
inside the box, which a small model trained on little data otherwise learns slowly from the sparse tokens alone
(classical interactive segmentation feeds such click maps to its network; RITM, Sofiiuk et al. 2022).

The official models have no such maps: their prompt encoder is the plain :class:`PromptEncoder`, which reads
like the paper. :class:`samwidgets.modeling.Sam` picks this one when the configuration asks for it.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import SamConfig
from .prompt_encoder import LABEL_NEGATIVE, LABEL_POSITIVE, PromptEncoder


class ClickMapPromptEncoder(PromptEncoder):
    """:class:`PromptEncoder` whose dense embedding also carries the points and the box, drawn as maps."""

    def __init__(self, config: SamConfig) -> None:
        super().__init__(config)
        # 0: positive clicks, 1: negative clicks, 2: inside the box
        self.dense_prompt_embed = nn.Embedding(3, self.embed_dim)

    def dense_prompt_maps(self, points: tuple[torch.Tensor, torch.Tensor] | None, boxes: torch.Tensor | None,
                          batch: int) -> torch.Tensor:
        """Points and box drawn on the h x w embedding grid: B x 3 x h x w.

        Map 0 (1) is the largest of a Gaussian of one grid cell's standard deviation around every
        positive (negative) point; map 2 the fraction of each cell the box covers. Coordinates are
        input-frame pixels, as for the sparse tokens.
        """
        h, w = self.image_embedding_size
        device = self.no_mask_embed.weight.device
        cell = self.input_image_size[0] / h  # pixels per grid cell
        ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * cell  # h: cell centres
        xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * cell  # w
        maps = torch.zeros((batch, 3, h, w), device=device)
        if points is not None:
            coords, labels = points  # B x N x 2, B x N
            coords = coords.float() + 0.5
            d2 = ((xs[None, None, None, :] - coords[..., 0, None, None]) ** 2
                  + (ys[None, None, :, None] - coords[..., 1, None, None]) ** 2)  # B x N x h x w
            bump = torch.exp(-d2 / (2 * cell**2))
            for channel, label in ((0, LABEL_POSITIVE), (1, LABEL_NEGATIVE)):
                mine = (labels == label)[..., None, None]  # B x N x 1 x 1
                maps[:, channel] = torch.where(mine, bump, 0.0).amax(dim=1) if coords.shape[1] else 0.0
        if boxes is not None:
            x0, y0, x1, y1 = boxes.float().unbind(-1)  # B each
            cover_x = ((torch.minimum(x1[:, None], xs + cell / 2) - torch.maximum(x0[:, None], xs - cell / 2))
                       .clamp(min=0) / cell)  # B x w
            cover_y = ((torch.minimum(y1[:, None], ys + cell / 2) - torch.maximum(y0[:, None], ys - cell / 2))
                       .clamp(min=0) / cell)  # B x h
            maps[:, 2] = cover_y[:, :, None] * cover_x[:, None, :]
        return maps

    def dense_is_no_mask(self, points: tuple[torch.Tensor, torch.Tensor] | None, boxes: torch.Tensor | None,
                         masks: torch.Tensor | None) -> bool:
        """Points and boxes are drawn into the dense embedding too: it is the shared "no mask" one only
        without them."""
        return masks is None and points is None and boxes is None

    def forward(self, points: tuple[torch.Tensor, torch.Tensor] | None, boxes: torch.Tensor | None,
                masks: torch.Tensor | None, embeddings: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`PromptEncoder.forward`, with the points' and box's maps (each times its learned vector)
        added to the dense B x C x h x w embedding."""
        sparse, dense = super().forward(points, boxes, masks, embeddings)
        if points is not None or boxes is not None:
            maps = self.dense_prompt_maps(points, boxes, dense.shape[0])  # B x 3 x h x w
            dense = dense + torch.einsum("bkhw,kc->bchw", maps, self.dense_prompt_embed.weight)
        return sparse, dense
