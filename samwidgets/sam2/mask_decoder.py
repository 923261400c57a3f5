"""SAM 2's mask decoder: SAM 1's decoder with three additions.

As in SAM 1, output tokens (one IoU token, four mask tokens) pass through the
two-way transformer together with the prompt tokens; each mask token becomes,
through its hypernetwork MLP, the weights of a per-pixel dot product with the
upscaled image tokens, and the IoU token predicts each mask's quality.

What SAM 2 adds:

1. **High-resolution features.** The image encoder's stride-8 and stride-4
   maps (projected by ``conv_s1`` / ``conv_s0`` to C/4 and C/8 channels) are
   added inside the x4 upscaling, after each transposed convolution, so the
   masks follow edges finer than the 64 x 64 token grid.
2. **An object-score token** (``pred_obj_scores``), in front of the IoU token,
   and a head on it: a logit saying whether the prompted object is visible at
   all. The video model uses it for occlusion; :meth:`SAM2Base.forward_sam_heads`
   sets the masks to -1024 where it is negative. The image predictor ignores
   the score, but the token still takes part in the attention.
3. **Dynamic multimask via stability** (``dynamic_multimask_via_stability``,
   switched on by ``build_sam2``). When one mask is asked for, SAM 2 checks the
   single-mask output's stability (the IoU of the mask thresholded at +delta
   and at -delta); below ``thresh`` it returns the multimask output with the
   highest predicted IoU instead.

The IoU head may end in a sigmoid (``iou_prediction_use_sigmoid``: the
official models predict IoU in [0, 1]).
Keys and maths follow sam2/modeling/sam/mask_decoder.py.
"""

from __future__ import annotations

import torch
from torch import nn

from samwidgets.modeling.common import MLP
from samwidgets.modeling.mask_decoder import output_upscaling

from .transformer import SAM2TwoWayTransformer


class SAM2MaskDecoder(nn.Module):
    """Predicts masks, their IoU and an object score from image and prompt embeddings."""

    def __init__(self, transformer_dim: int = 256, num_multimask_outputs: int = 3, transformer_depth: int = 2,
                 transformer_mlp_dim: int = 2048, transformer_num_heads: int = 8, iou_head_depth: int = 3,
                 iou_head_hidden_dim: int = 256, use_high_res_features: bool = False,
                 iou_prediction_use_sigmoid: bool = False, dynamic_multimask_via_stability: bool = False,
                 dynamic_multimask_stability_delta: float = 0.05, dynamic_multimask_stability_thresh: float = 0.98,
                 pred_obj_scores: bool = False, pred_obj_scores_mlp: bool = False,
                 use_multimask_token_for_obj_ptr: bool = False) -> None:
        super().__init__()
        dim = transformer_dim
        self.transformer_dim = dim
        self.transformer = SAM2TwoWayTransformer(depth=transformer_depth, embedding_dim=dim,
                                                 num_heads=transformer_num_heads, mlp_dim=transformer_mlp_dim)
        self.num_multimask_outputs = num_multimask_outputs
        self.num_mask_tokens = num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, dim)
        self.pred_obj_scores = pred_obj_scores
        if pred_obj_scores:
            self.obj_score_token = nn.Embedding(1, dim)
        self.use_multimask_token_for_obj_ptr = use_multimask_token_for_obj_ptr

        # x4 upscaling of the image tokens, as SAM 1's: C x h x w -> C/8 x 4h x 4w (indices 0, 1, 3 hold weights)
        self.output_upscaling = output_upscaling(dim)
        self.use_high_res_features = use_high_res_features
        if use_high_res_features:
            # applied once per image by SAM2Base.forward_image, not here (the image's features are reused per click)
            self.conv_s0 = nn.Conv2d(dim, dim // 8, kernel_size=1, stride=1)  # stride-4 map -> C/8 channels
            self.conv_s1 = nn.Conv2d(dim, dim // 4, kernel_size=1, stride=1)  # stride-8 map -> C/4 channels

        self.output_hypernetworks_mlps = nn.ModuleList(MLP(dim, dim, dim // 8, 3) for _ in range(self.num_mask_tokens))
        self.iou_prediction_head = MLP(dim, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth,
                                       sigmoid_output=iou_prediction_use_sigmoid)
        if pred_obj_scores:
            self.pred_obj_score_head = MLP(dim, dim, 1, 3) if pred_obj_scores_mlp else nn.Linear(dim, 1)

        self.dynamic_multimask_via_stability = dynamic_multimask_via_stability
        self.dynamic_multimask_stability_delta = dynamic_multimask_stability_delta
        self.dynamic_multimask_stability_thresh = dynamic_multimask_stability_thresh

    def forward(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor, sparse_prompt_embeddings: torch.Tensor,
                dense_prompt_embeddings: torch.Tensor, multimask_output: bool, repeat_image: bool,
                high_res_features: list[torch.Tensor] | None = None,
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Predict masks for B prompts.

        image_embeddings: 1 x C x h x w with ``repeat_image`` (one image for all prompts), else B x C x h x w;
        image_pe: 1 x C x h x w; sparse: B x N x C; dense: B x C x h x w;
        high_res_features: [stride-4 map 1|B x C/8 x 4h x 4w, stride-8 map 1|B x C/4 x 2h x 2w] or None.

        Returns mask logits B x M x 4h x 4w, IoU predictions B x M (M = 3 with
        ``multimask_output``, else 1), the mask tokens the video model turns into
        object pointers (B x 3|1 x C) and the object-score logits B x 1.
        """
        masks, iou_pred, mask_tokens_out, object_score_logits = self.predict_masks(
            image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings, repeat_image,
            high_res_features)

        if multimask_output:
            masks, iou_pred = masks[:, 1:], iou_pred[:, 1:]  # the three ambiguity-aware masks
        elif self.dynamic_multimask_via_stability and not self.training:
            masks, iou_pred = self.dynamic_multimask(masks, iou_pred)
        else:
            masks, iou_pred = masks[:, 0:1], iou_pred[:, 0:1]  # the single-mask output

        if multimask_output and self.use_multimask_token_for_obj_ptr:
            sam_tokens_out = mask_tokens_out[:, 1:]  # B x 3 x C
        else:
            sam_tokens_out = mask_tokens_out[:, 0:1]  # B x 1 x C
        return masks, iou_pred, sam_tokens_out, object_score_logits

    def predict_masks(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                      sparse_prompt_embeddings: torch.Tensor, dense_prompt_embeddings: torch.Tensor,
                      repeat_image: bool, high_res_features: list[torch.Tensor] | None = None,
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """All 4 masks B x 4 x 4h x 4w, IoU B x 4, the mask tokens B x 4 x C and object-score logits B x 1."""
        # output tokens in front of every prompt's tokens: [object score], IoU, 4 masks
        first = 1 if self.pred_obj_scores else 0  # where the IoU token sits
        token_tables = [self.iou_token.weight, self.mask_tokens.weight]
        if self.pred_obj_scores:
            token_tables.insert(0, self.obj_score_token.weight)
        output_tokens = torch.cat(token_tables, dim=0)  # (first + 5) x C
        b = sparse_prompt_embeddings.shape[0]
        output_tokens = output_tokens.unsqueeze(0).expand(b, -1, -1)  # B x T x C
        tokens = torch.cat((output_tokens, sparse_prompt_embeddings), dim=1)  # B x (T + N) x C

        if repeat_image:  # one copy of the image per prompt
            src = torch.repeat_interleave(image_embeddings, b, dim=0)  # B x C x h x w
        else:
            if image_embeddings.shape[0] != b:
                raise ValueError(f"image_embeddings has batch {image_embeddings.shape[0]} but there are {b} prompts; "
                                 "pass repeat_image=True to share one image")
            src = image_embeddings
        src = src + dense_prompt_embeddings
        if image_pe.shape[0] != 1:
            raise ValueError("image_pe should have batch 1 (from get_dense_pe())")
        pos_src = torch.repeat_interleave(image_pe, b, dim=0)  # B x C x h x w
        _, c, h, w = src.shape

        hs, src = self.transformer(src, pos_src, tokens)  # tokens B x (T + N) x C, image B x hw x C
        iou_token_out = hs[:, first, :]  # B x C
        mask_tokens_out = hs[:, first + 1 : first + 1 + self.num_mask_tokens, :]  # B x 4 x C

        # upscale the image tokens x4, adding the high-resolution features after each transposed convolution
        src = src.transpose(1, 2).reshape(b, c, h, w)  # B x C x h x w
        if not self.use_high_res_features:
            upscaled = self.output_upscaling(src)  # B x C/8 x 4h x 4w
        else:
            if high_res_features is None:
                raise ValueError("this decoder uses high-resolution features: pass high_res_features "
                                 "(the projected stride-4 and stride-8 maps, from SAM2Base.forward_image)")
            deconv1, norm1, act1, deconv2, act2 = self.output_upscaling
            feat_s0, feat_s1 = high_res_features  # 1|B x C/8 x 4h x 4w, 1|B x C/4 x 2h x 2w
            upscaled = act1(norm1(deconv1(src) + feat_s1))  # B x C/4 x 2h x 2w
            upscaled = act2(deconv2(upscaled) + feat_s0)  # B x C/8 x 4h x 4w

        hyper_in = torch.stack([mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)],
                               dim=1)  # B x 4 x C/8
        b, c, h, w = upscaled.shape
        masks = (hyper_in @ upscaled.view(b, c, h * w)).view(b, -1, h, w)  # B x 4 x 4h x 4w: a dot product per pixel

        iou_pred = self.iou_prediction_head(iou_token_out)  # B x 4
        if self.pred_obj_scores:
            object_score_logits = self.pred_obj_score_head(hs[:, 0, :])  # B x 1
        else:
            object_score_logits = 10.0 * iou_pred.new_ones(iou_pred.shape[0], 1)  # "present": sigmoid(10) ~ 1
        return masks, iou_pred, mask_tokens_out, object_score_logits

    def stability_scores(self, mask_logits: torch.Tensor) -> torch.Tensor:
        """IoU of the mask thresholded at +delta and at -delta: ... x H x W -> ... (1 where both are empty)."""
        mask_logits = mask_logits.flatten(-2)
        delta = self.dynamic_multimask_stability_delta
        area_inner = torch.sum(mask_logits > delta, dim=-1).float()
        area_outer = torch.sum(mask_logits > -delta, dim=-1).float()
        return torch.where(area_outer > 0, area_inner / area_outer, 1.0)

    def dynamic_multimask(self, all_mask_logits: torch.Tensor,
                          all_iou_scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One mask per prompt: the single-mask output if stable, else the multimask output with the best IoU.

        all_mask_logits: B x 4 x H x W, all_iou_scores: B x 4 -> B x 1 x H x W, B x 1.
        """
        multimask_logits, multimask_iou = all_mask_logits[:, 1:], all_iou_scores[:, 1:]  # B x 3 x H x W, B x 3
        best = torch.argmax(multimask_iou, dim=-1)  # B
        rows = torch.arange(multimask_iou.shape[0], device=all_iou_scores.device)
        best_logits = multimask_logits[rows, best].unsqueeze(1)  # B x 1 x H x W
        best_iou = multimask_iou[rows, best].unsqueeze(1)  # B x 1

        single_logits, single_iou = all_mask_logits[:, 0:1], all_iou_scores[:, 0:1]
        is_stable = self.stability_scores(single_logits) >= self.dynamic_multimask_stability_thresh  # B x 1
        mask_logits = torch.where(is_stable[..., None, None].expand_as(single_logits), single_logits, best_logits)
        iou_scores = torch.where(is_stable.expand_as(single_iou), single_iou, best_iou)
        return mask_logits, iou_scores
