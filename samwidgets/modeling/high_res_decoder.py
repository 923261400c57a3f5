"""The bundled CNN model's mask decoder: SAM's decoder plus the encoder's early 1/4-resolution features.

Models with ``config.high_res_features`` (the CNN models of ``recipes/bsds_cnn``) add the encoder's early
features to the decoder's x4 upscaled image tokens before the per-pixel dot product with each mask token (as
HQ-SAM does), so masks can follow edges finer than the 1/16 token grid. The features arrive packed inside the
image embedding (:func:`~samwidgets.modeling.image_encoder_cnn.pack_high_res`): B x 3C x h x w, the C channels
of the embedding, then 2C channels of packed features. Everything else is :class:`MaskDecoder`'s, unchanged.

The official models have no such features: their decoder is the plain :class:`MaskDecoder`, which reads like
the paper. :class:`samwidgets.modeling.Sam` picks this one when the configuration asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .image_encoder_cnn import high_res_image, split_image_embedding
from .mask_decoder import DecodedTokens, MaskDecoder


@dataclass
class HighResDecodedTokens(DecodedTokens):
    """:class:`DecodedTokens` plus the early features the masks are made with."""

    high_res: torch.Tensor | None = None  # B'' x 2C x h x w packed early features (B'' = 1 or B); None: none


class HighResMaskDecoder(MaskDecoder):
    """:class:`MaskDecoder` whose upscaled features get the encoder's early 1/4-resolution features added."""

    def decode_tokens(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                      sparse_prompt_embeddings: torch.Tensor, dense_prompt_embeddings: torch.Tensor,
                      prepared: object | None = None) -> HighResDecodedTokens:
        """:meth:`MaskDecoder.decode_tokens` on the embedding's first C channels; the packed early features
        (one copy per prompt, as the image) are kept for :meth:`upscaled_features`."""
        image_embeddings, high_res = split_image_embedding(image_embeddings, self.config)  # B x C, B x 2C x h x w
        decoded = super().decode_tokens(image_embeddings, image_pe, sparse_prompt_embeddings,
                                        dense_prompt_embeddings, prepared)
        b = decoded.mask_tokens.shape[0]
        if high_res is not None and high_res.shape[0] != b:
            high_res = torch.repeat_interleave(high_res, b, dim=0)  # B x 2C x h x w
        return HighResDecodedTokens(decoded.mask_tokens, decoded.image_tokens, decoded.iou_pred, high_res)

    def upscaled_features(self, decoded: DecodedTokens, rows: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`MaskDecoder.upscaled_features` plus the encoder's early features: R x C/8 x 4h x 4w."""
        upscaled = super().upscaled_features(decoded, rows)  # R x C/8 x 4h x 4w
        high_res = decoded.high_res if isinstance(decoded, HighResDecodedTokens) else None
        if high_res is None:
            return upscaled
        if rows is not None:
            high_res = high_res[rows]
        return upscaled + high_res_image(high_res)  # + the early features, R x C/8 x 4h x 4w
