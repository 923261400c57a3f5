"""The mask decoder: an IoU token and 4 mask tokens pass through the two-way
transformer with the prompt tokens; each mask token becomes (via a small
hypernetwork MLP) the weights of a dot product with the upscaled image
features, and the IoU token predicts the quality of every mask."""

from __future__ import annotations

import torch
from torch import nn

from .common import MLP, LayerNorm2d
from .config import SamConfig
from .transformer import TwoWayTransformer


class MaskDecoder(nn.Module):
    """Predicts masks and their IoU from an image embedding and prompt embeddings.

    Output 0 is the single-mask output (used with several prompts), outputs
    1..3 the ambiguity-aware masks (used with one ambiguous prompt).
    """

    def __init__(self, config: SamConfig) -> None:
        super().__init__()
        dim = config.prompt_embed_dim
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

    def forward(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                sparse_prompt_embeddings: torch.Tensor, dense_prompt_embeddings: torch.Tensor,
                multimask_output: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """image_embeddings: 1 x C x h x w (shared by all prompts) or B x C x h x w (one per prompt);
        image_pe: 1 x C x h x w; sparse: B x N x C; dense: B x C x h x w.
        Returns low-res mask logits B x M x 4h x 4w and IoU predictions B x M
        (M = 3 with multimask_output, else 1)."""
        masks, iou_pred = self.predict_masks(image_embeddings, image_pe, sparse_prompt_embeddings,
                                             dense_prompt_embeddings)
        mask_slice = slice(1, None) if multimask_output else slice(0, 1)
        return masks[:, mask_slice], iou_pred[:, mask_slice]

    def predict_masks(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                      sparse_prompt_embeddings: torch.Tensor,
                      dense_prompt_embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """All 4 masks and IoU predictions: B x 4 x 4h x 4w and B x 4."""
        b = sparse_prompt_embeddings.shape[0]
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)  # 5 x C
        output_tokens = output_tokens.unsqueeze(0).expand(b, -1, -1)  # B x 5 x C
        tokens = torch.cat((output_tokens, sparse_prompt_embeddings), dim=1)  # B x (5+N) x C
        if image_embeddings.shape[0] not in (1, b):
            raise ValueError(
                f"image_embeddings has batch {image_embeddings.shape[0]}; expected 1 (shared) or {b} (one per prompt)"
            )
        # Broadcasting, not a copy per prompt: the sum is the only B x C x h x w tensor made here.
        src = image_embeddings + dense_prompt_embeddings  # B x C x h x w
        if src.shape[0] != b:  # no prompts batch to broadcast over (dense was 1 x ...)
            src = src.expand(b, -1, -1, -1)
        pos_src = image_pe.expand(b, -1, -1, -1)  # B x C x h x w (a view)
        _, c, h, w = src.shape

        hs, src = self.transformer(src, pos_src, tokens)  # B x (5+N) x C, B x hw x C
        iou_token_out = hs[:, 0, :]
        mask_tokens_out = hs[:, 1 : 1 + self.num_mask_tokens, :]  # B x 4 x C

        src = src.transpose(1, 2).reshape(b, c, h, w)
        upscaled = self.output_upscaling(src)  # B x C/8 x 4h x 4w
        hyper_in = torch.stack(
            [mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1
        )  # B x 4 x C/8
        b, c8, uh, uw = upscaled.shape
        masks = (hyper_in @ upscaled.reshape(b, c8, uh * uw)).reshape(b, -1, uh, uw)  # B x 4 x 4h x 4w
        iou_pred = self.iou_prediction_head(iou_token_out)  # B x 4
        return masks, iou_pred
