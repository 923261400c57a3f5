"""The mask decoder: an IoU token and 4 mask tokens pass through the two-way
transformer with the prompt tokens; each mask token becomes (via a small
hypernetwork MLP) the weights of a dot product with the upscaled image
features, and the IoU token predicts the quality of every mask.

Models with ``config.high_res_features`` (the CNN models of ``recipes/bsds_cnn``) add the
encoder's early 1/4-resolution features to the upscaled features before
that dot product (as HQ-SAM does), so masks can follow edges finer than the
1/16 token grid; those features arrive packed in the image embedding
(``image_encoder_cnn.pack_high_res``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .common import MLP, LayerNorm2d
from .config import SamConfig
from .image_encoder_cnn import split_image_embedding, unpack_high_res
from .transformer import TwoWayTransformer


def _conv_transpose_2x2_unshuffled(conv: nn.ConvTranspose2d, x: torch.Tensor) -> torch.Tensor:
    """A kernel-2 stride-2 transposed convolution as one matmul, leaving the pixel shuffle for later.

    Each input pixel writes its own 2 x 2 block of outputs (no overlap), so
    the layer is a linear map C_in -> 2 x 2 x C_out per pixel. x: ... x C_in
    -> ... x 2 x 2 x C_out, where output pixel (2y + i, 2x + j) sits at
    [..., y, x, i, j, :]. Per-pixel layers (LayerNorm over channels, GELU,
    the next such convolution) can run on this layout unchanged.
    """
    weight = conv.weight.permute(0, 2, 3, 1).reshape(conv.in_channels, -1)  # C_in x (2*2*C_out)
    y = x @ weight  # ... x (2*2*C_out)
    return y.unflatten(-1, (2, 2, conv.out_channels)) + conv.bias


@dataclass
class DecodedTokens:
    """The transformer's output for B prompts, before the masks are made (see MaskDecoder.decode_tokens)."""

    mask_tokens: torch.Tensor  # B x 4 x C
    image_tokens: torch.Tensor  # B' x h x w x C, B' = 1 (shared by all prompts) or B
    iou_pred: torch.Tensor  # B x 4
    high_res: torch.Tensor | None = None  # B'' x 16C/8 x h x w packed early features (high_res_features models)


@dataclass
class PreparedImage:
    """The prompt-independent image side of the decoder for one image (see MaskDecoder.prepare_image)."""

    transformer: dict[str, torch.Tensor]
    size: tuple[int, int]  # h, w of the embedding grid
    high_res: torch.Tensor | None = None  # 1 x 16C/8 x h x w packed early features (high_res_features models)


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
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(dim, dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(dim // 4, dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(dim, dim, dim // 8, 3) for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(dim, config.iou_head_hidden_dim, self.num_mask_tokens, config.iou_head_depth)

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
        return PreparedImage(self.transformer.prepare_image(src, image_pe), tuple(src.shape[-2:]), high_res)

    def forward(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                sparse_prompt_embeddings: torch.Tensor, dense_prompt_embeddings: torch.Tensor,
                multimask_output: bool, prepared: PreparedImage | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """image_embeddings: 1 x C x h x w (shared by all prompts) or B x C x h x w (one per prompt);
        image_pe: 1 x C x h x w; sparse: B x N x C; dense: B x C x h x w.
        Returns low-res mask logits B x M x 4h x 4w and IoU predictions B x M
        (M = 3 with multimask_output, else 1). ``prepared`` (from
        :meth:`prepare_image` for these image embeddings) is used when the
        dense embedding is the shared "no mask" one."""
        masks, iou_pred = self.predict_masks(image_embeddings, image_pe, sparse_prompt_embeddings,
                                             dense_prompt_embeddings, prepared)
        mask_slice = slice(1, None) if multimask_output else slice(0, 1)
        return masks[:, mask_slice], iou_pred[:, mask_slice]

    def masks_from_hypernetworks(self, image_tokens: torch.Tensor, hyper_in: torch.Tensor,
                                 high_res: torch.Tensor | None = None) -> torch.Tensor:
        """Upscale the image tokens x4 and take the dot product with each mask token's hypernetwork output.

        image_tokens: B' x h x w x C (B' = 1 or B); hyper_in: B x M x C/8 -> masks B x M x 4h x 4w.
        high_res: the encoder's packed early features (B'' x 16C/8 x h x w, B'' = 1 or B), added to the
        upscaled features when the model has them.
        The same maths as ``output_upscaling`` (ConvT 2x2, LayerNorm2d, GELU,
        ConvT 2x2, GELU) on B x C x h x w followed by a matmul, but the
        transposed convolutions are matmuls and the 4h x 4w pixel shuffle is
        applied only to the M final masks, not to the C/8-channel features.
        """
        conv1, norm, act1, conv2, act2 = self.output_upscaling
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

    def predict_masks(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                      sparse_prompt_embeddings: torch.Tensor, dense_prompt_embeddings: torch.Tensor,
                      prepared: PreparedImage | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """All 4 masks and IoU predictions: B x 4 x 4h x 4w and B x 4."""
        decoded = self.decode_tokens(image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings,
                                     prepared)
        return self.masks_of(decoded), decoded.iou_pred

    def decode_tokens(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                      sparse_prompt_embeddings: torch.Tensor, dense_prompt_embeddings: torch.Tensor,
                      prepared: PreparedImage | None = None) -> DecodedTokens:
        """The two-way transformer and the IoU head: everything but the masks (see :meth:`masks_of`).

        Split from the mask upscaling so that a caller that filters by
        predicted IoU (the automatic mask generator) upscales only the prompts
        with a mask worth keeping; ``masks_of`` on the result gives exactly
        what :meth:`predict_masks` gives.
        """
        b = sparse_prompt_embeddings.shape[0]
        high_res = None
        if image_embeddings is not None:
            image_embeddings, high_res = split_image_embedding(image_embeddings, self.config)
        elif prepared is not None:
            high_res = prepared.high_res
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)  # 5 x C
        output_tokens = output_tokens.unsqueeze(0).expand(b, -1, -1)  # B x 5 x C
        tokens = torch.cat((output_tokens, sparse_prompt_embeddings), dim=1)  # B x (5+N) x C
        if image_embeddings.shape[0] not in (1, b):
            raise ValueError(
                f"image_embeddings has batch {image_embeddings.shape[0]}; expected 1 (shared) or {b} (one per prompt)"
            )
        shared_dense = dense_prompt_embeddings.shape[0] == 1 or dense_prompt_embeddings.stride(0) == 0
        if prepared is not None and shared_dense:
            (h, w), c = prepared.size, self.transformer_dim
            hs, src = self.transformer(None, None, tokens, prepared=prepared.transformer)
        else:
            if shared_dense:  # the "no mask" embedding, broadcast: the image side stays shared by all prompts
                dense_prompt_embeddings = dense_prompt_embeddings[:1]
            # Broadcasting, never a copy of the image embedding per prompt (the reference's repeat_interleave).
            src = image_embeddings + dense_prompt_embeddings  # 1 or B x C x h x w
            _, c, h, w = src.shape
            hs, src = self.transformer(src, image_pe, tokens)  # B x (5+N) x C, B x hw x C
        iou_pred = self.iou_prediction_head(hs[:, 0, :])  # B x 4
        return DecodedTokens(mask_tokens=hs[:, 1 : 1 + self.num_mask_tokens, :],  # B x 4 x C
                             image_tokens=src.reshape(-1, h, w, c), iou_pred=iou_pred, high_res=high_res)

    def masks_of(self, decoded: DecodedTokens, rows: torch.Tensor | None = None) -> torch.Tensor:
        """The 4 low-res masks of the prompts ``rows`` (default: all): R x 4 x 4h x 4w."""
        mask_tokens, image_tokens, high_res = decoded.mask_tokens, decoded.image_tokens, decoded.high_res
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
