"""The image part of SAM 2 (the reference's ``SAM2Base``): image encoder, prompt encoder, mask decoder.

SAM 2 is a video model; on a single image it is SAM with a better encoder:

1. :class:`ImageEncoder` = Hiera trunk + FPN neck, minus the ``scalp`` lowest-
   resolution level(s). For a 1024 px image: three 256-channel maps at strides
   4, 8 and 16 (256 x 256, 128 x 128, 64 x 64).
2. :meth:`SAM2Base.forward_image` projects the two high-resolution maps with the
   decoder's ``conv_s0`` / ``conv_s1`` once per image (32 and 64 channels).
3. The stride-16 map is the image embedding. With ``directly_add_no_mem_embed``
   the learned ``no_mem_embed`` vector is added to every position: in video,
   this map is first mixed with the memory of past frames; a first frame (or
   an image) has no memory, and during training it got this vector instead.
4. The prompt encoder and the mask decoder then work as in SAM 1, the decoder
   also taking the high-resolution maps (``mask_decoder.py``).

Video-only parts (memory attention and encoder, object pointers) are not
built; ``build.py`` accepts and skips their checkpoint tensors.
Keys and maths follow sam2/modeling/sam2_base.py and backbones/image_encoder.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import Sam2Config
from .hiera import Hiera
from .mask_decoder import SAM2MaskDecoder
from .neck import FpnNeck, PositionEmbeddingSine
from .prompt_encoder import SAM2PromptEncoder

#: The mask logit SAM 2 writes where the object score says "no object" (the reference's NO_OBJ_SCORE).
NO_OBJECT_SCORE = -1024.0


class ImageEncoder(nn.Module):
    """Trunk + neck; drops the ``scalp`` lowest-resolution levels.

    Returns a dict as the reference: ``backbone_fpn`` (the kept maps, highest
    resolution first), ``vision_pos_enc`` (their sine encodings) and
    ``vision_features`` (the last, lowest-resolution kept map).
    """

    def __init__(self, trunk: Hiera, neck: FpnNeck, scalp: int = 0) -> None:
        super().__init__()
        if list(trunk.channel_list) != list(neck.backbone_channel_list):
            raise ValueError(f"the trunk's widths {trunk.channel_list} and the neck's backbone_channel_list "
                             f"{neck.backbone_channel_list} differ")
        self.trunk = trunk
        self.neck = neck
        self.scalp = scalp

    def forward(self, sample: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        features, pos = self.neck(self.trunk(sample))
        if self.scalp > 0:  # drop the lowest-resolution level(s): SAM 2 uses strides 4, 8, 16 only
            features, pos = features[: -self.scalp], pos[: -self.scalp]
        return {"vision_features": features[-1], "vision_pos_enc": pos, "backbone_fpn": features}


class SAM2Base(nn.Module):
    """SAM 2 for images: ``image_encoder``, ``sam_prompt_encoder``, ``sam_mask_decoder`` and ``no_mem_embed``.

    The attribute and method names are the reference's, so code written for
    ``sam2.modeling.sam2_base.SAM2Base`` on images runs on it. Use it through
    :class:`samwidgets.sam2.SAM2ImagePredictor`.
    """

    def __init__(self, config: Sam2Config) -> None:
        super().__init__()
        self.config = config
        trunk = Hiera(
            embed_dim=config.embed_dim, num_heads=config.num_heads, q_pool=config.q_pool, q_stride=config.q_stride,
            stages=config.stages, dim_mul=config.dim_mul, head_mul=config.head_mul,
            window_pos_embed_bkg_spatial_size=config.window_pos_embed_bkg_spatial_size,
            window_spec=config.window_spec, global_att_blocks=config.global_att_blocks, mlp_ratio=config.mlp_ratio,
            patch_kernel_size=config.patch_kernel_size, patch_stride=config.patch_stride,
            patch_padding=config.patch_padding,
        )
        position_encoding = PositionEmbeddingSine(config.pos_enc_num_pos_feats, config.pos_enc_temperature,
                                                  config.pos_enc_normalize, config.pos_enc_scale)
        neck = FpnNeck(position_encoding, config.d_model, config.backbone_channel_list,
                       fpn_interp_model=config.fpn_interp_model, fuse_type=config.fuse_type,
                       fpn_top_down_levels=config.fpn_top_down_levels)
        self.image_encoder = ImageEncoder(trunk, neck, scalp=config.scalp)

        self.hidden_dim = config.d_model
        self.image_size = config.image_size
        self.backbone_stride = config.backbone_stride
        self.use_high_res_features_in_sam = config.use_high_res_features_in_sam
        self.num_feature_levels = 3 if config.use_high_res_features_in_sam else 1
        self.directly_add_no_mem_embed = config.directly_add_no_mem_embed
        self.multimask_output_in_sam = config.multimask_output_in_sam
        self.iou_prediction_use_sigmoid = config.iou_prediction_use_sigmoid
        self.pred_obj_scores = config.pred_obj_scores
        self.pred_obj_scores_mlp = config.pred_obj_scores_mlp
        self.use_multimask_token_for_obj_ptr = config.use_multimask_token_for_obj_ptr

        # the "no memory" vector added to the image embedding of a first frame (and of every image)
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, self.hidden_dim))

        self.sam_prompt_embed_dim = self.hidden_dim
        self.sam_image_embedding_size = config.embedding_size
        self.sam_prompt_encoder = SAM2PromptEncoder(config.image_size, config.backbone_stride, self.hidden_dim,
                                                    mask_in_chans=config.mask_in_chans)
        self.sam_mask_decoder = SAM2MaskDecoder(
            transformer_dim=self.hidden_dim, num_multimask_outputs=config.num_multimask_outputs,
            transformer_depth=config.decoder_depth, transformer_mlp_dim=config.decoder_mlp_dim,
            transformer_num_heads=config.decoder_num_heads, iou_head_depth=config.iou_head_depth,
            iou_head_hidden_dim=config.iou_head_hidden_dim, use_high_res_features=config.use_high_res_features_in_sam,
            iou_prediction_use_sigmoid=config.iou_prediction_use_sigmoid,
            dynamic_multimask_via_stability=config.dynamic_multimask_via_stability,
            dynamic_multimask_stability_delta=config.dynamic_multimask_stability_delta,
            dynamic_multimask_stability_thresh=config.dynamic_multimask_stability_thresh,
            pred_obj_scores=config.pred_obj_scores, pred_obj_scores_mlp=config.pred_obj_scores_mlp,
            use_multimask_token_for_obj_ptr=config.use_multimask_token_for_obj_ptr,
        )

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, *args, **kwargs):
        raise NotImplementedError("SAM2Base has no single forward: use samwidgets.sam2.SAM2ImagePredictor "
                                  "(set_image, then predict), or forward_image and sam_mask_decoder")

    def forward_image(self, img_batch: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        """Encode B x 3 x S x S normalised images; the two high-res maps already projected for the decoder."""
        backbone_out = self.image_encoder(img_batch)
        if self.use_high_res_features_in_sam:
            fpn = list(backbone_out["backbone_fpn"])
            fpn[0] = self.sam_mask_decoder.conv_s0(fpn[0])  # B x C/8 x S/4 x S/4
            fpn[1] = self.sam_mask_decoder.conv_s1(fpn[1])  # B x C/4 x S/8 x S/8
            backbone_out["backbone_fpn"] = fpn
        return backbone_out

    def prepare_backbone_features(self, backbone_out: dict) -> tuple[dict, list[torch.Tensor], list[torch.Tensor],
                                                                     list[tuple[int, int]]]:
        """The last ``num_feature_levels`` maps and encodings, flattened to HW x B x C (as the reference)."""
        feature_maps = backbone_out["backbone_fpn"][-self.num_feature_levels:]
        pos_maps = backbone_out["vision_pos_enc"][-self.num_feature_levels:]
        feat_sizes = [(x.shape[-2], x.shape[-1]) for x in pos_maps]
        vision_feats = [x.flatten(2).permute(2, 0, 1) for x in feature_maps]  # HW x B x C each
        vision_pos_embeds = [x.flatten(2).permute(2, 0, 1) for x in pos_maps]
        return dict(backbone_out), vision_feats, vision_pos_embeds, feat_sizes

    # the reference's name, for code written against it
    _prepare_backbone_features = prepare_backbone_features

    def image_features(self, img_batch: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """What the image predictor keeps per image: the image embedding and the high-resolution features.

        img_batch: B x 3 x S x S -> (B x C x S/16 x S/16, [B x C/8 x S/4 x S/4, B x C/4 x S/8 x S/8])
        (the list is empty without ``use_high_res_features_in_sam``).
        """
        levels = self.forward_image(img_batch)["backbone_fpn"][-self.num_feature_levels:]
        image_embed = levels[-1]  # B x C x S/16 x S/16
        if self.directly_add_no_mem_embed:
            image_embed = image_embed + self.no_mem_embed.view(1, -1, 1, 1)  # the same vector at every position
        return image_embed, list(levels[:-1])

    def forward_sam_heads(self, backbone_features: torch.Tensor, point_inputs: dict[str, torch.Tensor] | None = None,
                          mask_inputs: torch.Tensor | None = None, high_res_features: list[torch.Tensor] | None = None,
                          multimask_output: bool = False) -> tuple[torch.Tensor, ...]:
        """SAM 2's decode of one frame, with the object-score gating (the reference's ``_forward_sam_heads``).

        backbone_features: B x C x h x w (one image per prompt); point_inputs: {"point_coords": B x P x 2 in
        input-frame pixels, "point_labels": B x P}; mask_inputs: B x 1 x H' x W' (resized to the mask prompt
        size with antialiasing if needed).

        Returns (low_res_multimasks B x M x 4h x 4w, high_res_multimasks B x M x S x S, ious B x M,
        low_res_masks B x 1 x 4h x 4w, high_res_masks B x 1 x S x S, object_score_logits B x 1): the
        masks are -1024 where the object score is negative; "masks" (not "multimasks") are the best
        by predicted IoU. The reference also returns the video model's object pointer, not built here.
        """
        b = backbone_features.shape[0]
        device = backbone_features.device
        if point_inputs is not None:
            coords, labels = point_inputs["point_coords"], point_inputs["point_labels"]
        else:  # no points: one padding point (label -1)
            coords = torch.zeros(b, 1, 2, device=device)
            labels = -torch.ones(b, 1, dtype=torch.int32, device=device)

        mask_prompt = None
        if mask_inputs is not None:
            mask_prompt = mask_inputs
            if mask_inputs.shape[-2:] != self.sam_prompt_encoder.mask_input_size:
                mask_prompt = F.interpolate(mask_inputs.float(), size=self.sam_prompt_encoder.mask_input_size,
                                            align_corners=False, mode="bilinear", antialias=True)

        sparse, dense = self.sam_prompt_encoder(points=(coords, labels), boxes=None, masks=mask_prompt)
        low_res_multimasks, ious, _, object_score_logits = self.sam_mask_decoder(
            image_embeddings=backbone_features, image_pe=self.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=multimask_output,
            repeat_image=False, high_res_features=high_res_features)
        if self.pred_obj_scores:  # no object: every logit becomes -1024 (a hard choice, as the video memory sees it)
            is_object = object_score_logits > 0  # B x 1
            low_res_multimasks = torch.where(is_object[:, None, None], low_res_multimasks, NO_OBJECT_SCORE)

        low_res_multimasks = low_res_multimasks.float()
        high_res_multimasks = F.interpolate(low_res_multimasks, size=(self.image_size, self.image_size),
                                            mode="bilinear", align_corners=False)
        if multimask_output:  # the best of the three by predicted IoU
            best = torch.argmax(ious, dim=-1)
            rows = torch.arange(b, device=device)
            low_res_masks = low_res_multimasks[rows, best].unsqueeze(1)
            high_res_masks = high_res_multimasks[rows, best].unsqueeze(1)
        else:
            low_res_masks, high_res_masks = low_res_multimasks, high_res_multimasks
        return low_res_multimasks, high_res_multimasks, ious, low_res_masks, high_res_masks, object_score_logits
