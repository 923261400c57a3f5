"""SAM 2's prompt encoder: SAM 1's, plus box corners given as labelled points.

SAM 2 keeps SAM 1's prompt encoder unchanged (same keys: ``pe_layer``,
``point_embeddings.0-3``, ``not_a_point_embed``, ``mask_downscaling``,
``no_mask_embed``; same maths), so this module reuses
:class:`samwidgets.modeling.prompt_encoder.PromptEncoder`.

One thing differs in how it is called. SAM 1's predictor passes a box as a
separate ``boxes`` argument. SAM 2's predictor instead passes the box's two
corners as points with labels 2 (top-left) and 3 (bottom-right), in front of
the clicks, and SAM 2's ``_embed_points`` adds ``point_embeddings[2]`` /
``point_embeddings[3]`` for those labels. SAM 1's ``_embed_points`` knows only
labels -1, 0 and 1, so this subclass adds the corner labels; for labels -1..1
it is the parent's computation unchanged (adding exact zeros elsewhere).
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from samwidgets.modeling import PromptEncoder, SamConfig

#: Point labels of SAM 2's prompt encoder: -1 padding, 0 negative, 1 positive (as SAM 1), 2 and 3 box corners.
LABEL_BOX_TOP_LEFT, LABEL_BOX_BOTTOM_RIGHT = 2, 3


class SAM2PromptEncoder(PromptEncoder):
    """SAM 1's prompt encoder whose points may also be box corners (labels 2 and 3)."""

    def __init__(self, image_size: int, backbone_stride: int, embed_dim: int, mask_in_chans: int = 16) -> None:
        super().__init__(SamConfig(image_size=image_size, patch_size=backbone_stride, prompt_embed_dim=embed_dim,
                                   mask_in_chans=mask_in_chans))

    def _embed_points(self, points: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        """points: B x N x 2 in input-frame pixels, labels: B x N in -1..3 -> B x N(+1) x C."""
        embedding = super()._embed_points(points, labels, pad)  # labels -1, 0, 1 handled as in SAM 1
        if pad:  # the parent appended one padding point (label -1); its labels must line up with the embedding
            labels = torch.cat([labels, -torch.ones_like(labels[:, :1])], dim=1)
        labels = labels[..., None]  # B x N x 1
        # (torch types a ModuleList's items as Module; these are the nn.Embedding(1, C) of labels 2 and 3)
        top_left = cast(nn.Embedding, self.point_embeddings[2])
        bottom_right = cast(nn.Embedding, self.point_embeddings[3])
        embedding = embedding + torch.where(labels == LABEL_BOX_TOP_LEFT, top_left.weight, 0.0)
        embedding = embedding + torch.where(labels == LABEL_BOX_BOTTOM_RIGHT, bottom_right.weight, 0.0)
        return embedding  # B x N(+1) x C
