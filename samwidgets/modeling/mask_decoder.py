"""The mask decoder: an IoU token and 4 mask tokens pass through the two-way
transformer with the prompt tokens; each mask token becomes (via a small
hypernetwork MLP) the weights of a dot product with the upscaled image
features, and the IoU token predicts the quality of every mask.

The bundled CNN model's decoder also adds the encoder's early features before that dot product: it
is a subclass in its own module (:mod:`samwidgets.modeling.high_res_decoder`).

This is the plain algorithm, written like the reference. ``SamPredictor``
runs a faster equivalent (same weights, same outputs within float rounding):
see :mod:`samwidgets.modeling.fast`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .common import MLP, LayerNorm2d
from .config import SamConfig
from .transformer import TwoWayTransformer


@dataclass
class DecodedTokens:
    """The transformer's output for B prompts, before the masks are made (see :meth:`MaskDecoder.decode_tokens`)."""

    mask_tokens: torch.Tensor  # B x 4 x C
    image_tokens: torch.Tensor  # B' x C x h x w, the updated image; B' = B (the fast path: 1 when shared)
    iou_pred: torch.Tensor  # B x 4


def output_upscaling(dim: int) -> nn.Sequential:
    """The x4 upscaling of the image tokens, C x h x w -> C/8 x 4h x 4w: two transposed convolutions (its
    indices 0, 1 and 3 hold weights, the checkpoints' keys). SAM 2's decoder has the same."""
    return nn.Sequential(
        nn.ConvTranspose2d(dim, dim // 4, kernel_size=2, stride=2),
        LayerNorm2d(dim // 4),
        nn.GELU(),
        nn.ConvTranspose2d(dim // 4, dim // 8, kernel_size=2, stride=2),
        nn.GELU(),
    )


class MaskDecoder(nn.Module):
    """Predicts masks and their IoU from an image embedding and prompt embeddings.

    Output 0 is the single-mask output (used with several prompts), outputs
    1..3 the ambiguity-aware masks (used with one ambiguous prompt).
    """

    def __init__(self, config: SamConfig) -> None:
        super().__init__()
        dim = config.prompt_embed_dim
        self.config = config
        self.transformer_dim = dim
        self.transformer = TwoWayTransformer(
            depth=config.decoder_depth, embedding_dim=dim, num_heads=config.decoder_num_heads,
            mlp_dim=config.decoder_mlp_dim, attention_downsample_rate=config.attention_downsample_rate,
        )
        self.num_multimask_outputs = config.num_multimask_outputs
        self.num_mask_tokens = config.num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, dim)
        self.output_upscaling = output_upscaling(dim)  # C x h x w -> C/8 x 4h x 4w
        # one hypernetwork per mask token: its output is the weights of that mask's per-pixel dot product
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(dim, dim, dim // 8, 3) for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(dim, config.iou_head_hidden_dim, self.num_mask_tokens, config.iou_head_depth)

    def prepare_image(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                      no_mask_embedding: torch.Tensor) -> object | None:
        """What the decoder can compute once per image for every prompt without a mask prompt: nothing here.

        This decoder recomputes the image side in every call, as the paper describes it. The fast decoder
        (:class:`samwidgets.modeling.fast.FastMaskDecoder`) answers with that side computed once, and
        :meth:`forward` takes the answer back as ``prepared``; a predictor asks every decoder the same way.
        """
        return None

    def forward(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                sparse_prompt_embeddings: torch.Tensor, dense_prompt_embeddings: torch.Tensor,
                multimask_output: bool, prepared: object | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict masks from image and prompt embeddings.

        image_embeddings: 1 x C x h x w (one image for all prompts) or B x C x h x w (one per prompt);
        image_pe: 1 x C x h x w; sparse: B x N x C; dense: B x C x h x w; prepared: what
        :meth:`prepare_image` gave for this image (None for this decoder, which has nothing to reuse).
        Returns low-res mask logits B x M x 4h x 4w and IoU predictions B x M
        (M = 3 with multimask_output, else 1).
        """
        masks, iou_pred = self.predict_masks(image_embeddings, image_pe, sparse_prompt_embeddings,
                                             dense_prompt_embeddings)
        mask_slice = slice(1, None) if multimask_output else slice(0, 1)
        return masks[:, mask_slice], iou_pred[:, mask_slice]

    def predict_masks(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                      sparse_prompt_embeddings: torch.Tensor,
                      dense_prompt_embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """All 4 masks and IoU predictions: B x 4 x 4h x 4w and B x 4."""
        decoded = self.decode_tokens(image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings)
        return self.masks_of(decoded), decoded.iou_pred

    def decode_tokens(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                      sparse_prompt_embeddings: torch.Tensor,
                      dense_prompt_embeddings: torch.Tensor, prepared: object | None = None) -> DecodedTokens:
        """The two-way transformer and the IoU head: everything but the masks (see :meth:`masks_of`).
        (``prepared``: as in :meth:`forward`; nothing to reuse here.)

        Split from the mask upscaling so that a caller that filters by
        predicted IoU (the automatic mask generator) upscales only the prompts
        with a mask worth keeping; ``masks_of`` on the result gives exactly
        what :meth:`predict_masks` gives.
        """
        # the output tokens (1 IoU + 4 mask tokens) in front of every prompt's tokens
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)  # 5 x C
        output_tokens = output_tokens.unsqueeze(0).expand(sparse_prompt_embeddings.shape[0], -1, -1)  # B x 5 x C
        tokens = torch.cat((output_tokens, sparse_prompt_embeddings), dim=1)  # B x (5+N) x C
        b = tokens.shape[0]

        # one copy of the image per prompt, as the reference (its repeat_interleave)
        if image_embeddings.shape[0] != b:
            if image_embeddings.shape[0] != 1:
                raise ValueError(f"image_embeddings has batch {image_embeddings.shape[0]}; expected 1 (shared) "
                                 f"or {b} (one per prompt)")
            image_embeddings = torch.repeat_interleave(image_embeddings, b, dim=0)  # B x C x h x w
        src = image_embeddings + dense_prompt_embeddings  # B x C x h x w
        pos_src = torch.repeat_interleave(image_pe, b, dim=0)  # B x C x h x w
        _, c, h, w = src.shape

        hs, src = self.transformer(src, pos_src, tokens)  # tokens B x (5+N) x C, image B x hw x C
        iou_pred = self.iou_prediction_head(hs[:, 0, :])  # B x 4, from the IoU token
        return DecodedTokens(mask_tokens=hs[:, 1 : 1 + self.num_mask_tokens, :],  # B x 4 x C
                             image_tokens=src.transpose(1, 2).reshape(b, c, h, w),  # B x C x h x w
                             iou_pred=iou_pred)

    def masks_of(self, decoded: DecodedTokens, rows: torch.Tensor | None = None) -> torch.Tensor:
        """The 4 low-res masks of the prompts ``rows`` (default: all): R x 4 x 4h x 4w.

        The image tokens are upscaled x4 (:meth:`upscaled_features`), and each
        mask is the dot product, at every pixel, of the upscaled features with
        its mask token's hypernetwork output.
        """
        mask_tokens = decoded.mask_tokens if rows is None else decoded.mask_tokens[rows]
        upscaled = self.upscaled_features(decoded, rows)  # R x C/8 x 4h x 4w
        hyper_in = torch.stack(
            [mlp(mask_tokens[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1
        )  # R x 4 x C/8
        r, c, h, w = upscaled.shape
        masks = hyper_in @ upscaled.view(r, c, h * w)  # R x 4 x 4h*4w: a dot product at every pixel
        return masks.view(r, -1, h, w)  # R x 4 x 4h x 4w

    def upscaled_features(self, decoded: DecodedTokens, rows: torch.Tensor | None = None) -> torch.Tensor:
        """The image tokens of the prompts ``rows`` (default: all) upscaled x4 by two transposed
        convolutions: R x C/8 x 4h x 4w."""
        image_tokens = decoded.image_tokens if rows is None else decoded.image_tokens[rows]
        return self.output_upscaling(image_tokens)
