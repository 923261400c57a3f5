"""The mask decoder: an IoU token and 4 mask tokens pass through the two-way
transformer with the prompt tokens; each mask token becomes (via a small
hypernetwork MLP) the weights of a dot product with the upscaled image
features, and the IoU token predicts the quality of every mask."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import MLP, LayerNorm2d
from .config import SamConfig
from .transformer import TwoWayTransformer


def _conv_transpose_2x2(conv: nn.ConvTranspose2d, x: torch.Tensor) -> torch.Tensor:
    """A kernel-2 stride-2 transposed convolution on channels-last input, as one matmul.

    Each input pixel writes its own 2 x 2 block of outputs (no overlap), so
    the layer is a linear map C_in -> C_out * 4 per pixel followed by a
    pixel shuffle. x: B x H x W x C_in -> B x 2H x 2W x C_out.
    """
    b, h, w, _ = x.shape
    c_out = conv.out_channels
    weight = conv.weight.reshape(conv.in_channels, c_out * 4)  # C_in x (C_out*2*2)
    y = x @ weight  # B x H x W x (C_out*2*2)
    y = y.reshape(b, h, w, c_out, 2, 2).permute(0, 1, 4, 2, 5, 3)  # B x H x 2 x W x 2 x C_out
    return y.reshape(b, 2 * h, 2 * w, c_out) + conv.bias


def upscale_channels_last(output_upscaling: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Run the decoder's upscaling stack (ConvT 2x2, LayerNorm2d, GELU, ConvT 2x2, GELU) channels-last.

    Same maths as calling the Sequential on B x C x H x W, without the slow
    transposed convolutions and layout changes: x: B x H x W x C -> B x 4H x 4W x C/8.
    """
    conv1, norm, act1, conv2, act2 = output_upscaling
    x = _conv_transpose_2x2(conv1, x)  # B x 2H x 2W x C/4
    x = act1(F.layer_norm(x, (x.shape[-1],), norm.weight, norm.bias, norm.eps))
    return act2(_conv_transpose_2x2(conv2, x))  # B x 4H x 4W x C/8


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
        if dense_prompt_embeddings.shape[0] == 1 or dense_prompt_embeddings.stride(0) == 0:
            # the "no mask" embedding, broadcast: the image side stays shared by all prompts
            dense_prompt_embeddings = dense_prompt_embeddings[:1]
        # Broadcasting, never a copy of the image embedding per prompt (the reference's repeat_interleave).
        src = image_embeddings + dense_prompt_embeddings  # 1 or B x C x h x w
        pos_src = image_pe  # 1 x C x h x w
        _, c, h, w = src.shape

        hs, src = self.transformer(src, pos_src, tokens)  # B x (5+N) x C, B x hw x C
        iou_token_out = hs[:, 0, :]
        mask_tokens_out = hs[:, 1 : 1 + self.num_mask_tokens, :]  # B x 4 x C

        upscaled = upscale_channels_last(self.output_upscaling, src.reshape(-1, h, w, c))  # B' x 4h x 4w x C/8
        hyper_in = torch.stack(
            [mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1
        )  # B x 4 x C/8
        _, uh, uw, c8 = upscaled.shape
        pixels = upscaled.reshape(-1, uh * uw, c8).expand(b, -1, -1)  # B x (4h*4w) x C/8
        masks = (hyper_in @ pixels.transpose(1, 2)).reshape(b, -1, uh, uw)  # B x 4 x 4h x 4w
        iou_pred = self.iou_prediction_head(iou_token_out)  # B x 4
        return masks, iou_pred
