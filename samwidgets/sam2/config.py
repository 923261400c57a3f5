"""SAM 2 / SAM 2.1 model configurations as plain data.

The reference package describes each model with a Hydra yaml file
(``configs/sam2.1/sam2.1_hiera_t.yaml`` ...) that overrides the defaults of
its classes (``Hiera``, ``FpnNeck``, ``SAM2Base``). :class:`Sam2Config`
holds the same numbers in one frozen dataclass, with the same names as the
yaml keys, so a student can put the two side by side:

* the field defaults are the defaults of the reference classes (so
  ``Sam2Config()`` is what an empty yaml would build: a Hiera-B+ trunk, 512 px
  input, no high-resolution features);
* each entry of :data:`CONFIGS` sets exactly what its yaml file sets.

Only the image path is built by samwidgets. The video-only flags (memory,
object pointers) are kept because they decide which extra tensors an
official checkpoint holds (``build.py`` checks them), and so that the
dataclass reads like the yaml; nothing else uses them.
"""

from __future__ import annotations

import difflib
import os
import posixpath
from dataclasses import dataclass
from typing import Any

from ..modeling.config import ConfigRecord


@dataclass(frozen=True)
class Sam2Config(ConfigRecord):
    """Every number of a SAM 2 model (image encoder, prompt encoder, mask decoder; video flags)."""

    # --- Image encoder, part 1: the Hiera trunk (yaml: model.image_encoder.trunk) ---
    embed_dim: int = 96  # channels of the first stage; each later stage has dim_mul times more
    num_heads: int = 1  # attention heads of the first stage; each later stage has head_mul times more
    stages: tuple[int, ...] = (2, 3, 16, 3)  # blocks per stage (4 stages: strides 4, 8, 16, 32)
    global_att_blocks: tuple[int, ...] = (12, 16, 20)  # blocks (0-based, counted over all stages) with global attention
    window_pos_embed_bkg_spatial_size: tuple[int, int] = (14, 14)  # the "background" position embedding's grid
    window_spec: tuple[int, ...] = (8, 4, 14, 7)  # attention window side per stage (other blocks)
    q_pool: int = 3  # how many stage changes pool the queries (downsample by q_stride)
    q_stride: tuple[int, int] = (2, 2)
    dim_mul: float = 2.0
    head_mul: float = 2.0
    mlp_ratio: float = 4.0  # MultiScaleBlock's default (not in the yaml)
    # PatchEmbed's defaults: a 7 x 7 convolution of stride 4
    patch_kernel_size: int = 7
    patch_stride: int = 4
    patch_padding: int = 3

    # --- Image encoder, part 2: the FPN neck (yaml: model.image_encoder.neck) ---
    d_model: int = 256  # the neck's output channels = the prompt and decoder width
    backbone_channel_list: tuple[int, ...] = (768, 384, 192, 96)  # the trunk's stage widths, lowest resolution first
    fpn_top_down_levels: tuple[int, ...] | None = None  # levels that get the upsampled coarser level added (None: all)
    fpn_interp_model: str = "bilinear"  # how the coarser level is upsampled
    fuse_type: str = "sum"  # "sum" or "avg" of lateral and top-down features
    # the sine position encoding of the neck's outputs (PositionEmbeddingSine)
    pos_enc_num_pos_feats: int = 256
    pos_enc_temperature: int = 10000
    pos_enc_normalize: bool = True
    pos_enc_scale: float | None = None  # None: 2 pi
    scalp: int = 0  # how many of the lowest-resolution levels the image encoder drops (yaml: image_encoder.scalp)

    # --- SAM2Base: input size and the SAM heads (yaml: model.*) ---
    image_size: int = 512  # the image is resized (no padding, aspect ratio not kept) to image_size x image_size
    backbone_stride: int = 16  # the stride of the image embedding
    directly_add_no_mem_embed: bool = False  # on an image (no memory): add the learned no_mem_embed to the embedding
    use_high_res_features_in_sam: bool = False  # the decoder also gets the stride-4 and stride-8 features
    multimask_output_in_sam: bool = False  # (video: 3 masks on the first click); the image predictor ignores it
    iou_prediction_use_sigmoid: bool = False  # predicted IoU squashed to [0, 1]
    pred_obj_scores: bool = False  # an object-score token and head: "is there an object at all?"
    pred_obj_scores_mlp: bool = False  # that head is a 3-layer MLP (else one Linear)
    use_multimask_token_for_obj_ptr: bool = False  # which decoder token becomes the object pointer (video)
    fixed_no_obj_ptr: bool = False  # (video) the pointer used when no object is present

    # --- The SAM heads' fixed numbers (SAM2Base._build_sam_heads, not in the yaml) ---
    mask_in_chans: int = 16
    num_multimask_outputs: int = 3
    decoder_depth: int = 2
    decoder_mlp_dim: int = 2048
    decoder_num_heads: int = 8
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256

    # --- sam_mask_decoder_extra_args: build_sam2(apply_postprocessing=True) sets these three ---
    dynamic_multimask_via_stability: bool = False  # single-mask output falls back to the best of the 3 if unstable
    dynamic_multimask_stability_delta: float = 0.05
    dynamic_multimask_stability_thresh: float = 0.98

    # --- Video-only (memory, object pointers): not built; they decide which extra tensors a checkpoint holds ---
    num_maskmem: int = 7
    sigmoid_scale_for_mem_enc: float = 1.0
    sigmoid_bias_for_mem_enc: float = 0.0
    use_mask_input_as_output_without_sam: bool = False
    no_obj_embed_spatial: bool = False
    use_obj_ptrs_in_encoder: bool = False
    add_tpos_enc_to_obj_ptrs: bool = True
    proj_tpos_enc_in_obj_ptrs: bool = False
    use_signed_tpos_enc_to_obj_ptrs: bool = False
    only_obj_ptrs_in_the_past_for_eval: bool = False
    multimask_output_for_tracking: bool = False
    multimask_min_pt_num: int = 1
    multimask_max_pt_num: int = 1
    use_mlp_for_obj_ptr_proj: bool = False
    compile_image_encoder: bool = False

    # --- The predictor's pixel normalisation (SAM2Transforms: ImageNet mean and std of [0, 1] pixels) ---
    pixel_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    pixel_std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    def __post_init__(self) -> None:
        for name in ("stages", "global_att_blocks", "window_pos_embed_bkg_spatial_size", "window_spec", "q_stride",
                     "backbone_channel_list", "pixel_mean", "pixel_std"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.fpn_top_down_levels is not None:
            object.__setattr__(self, "fpn_top_down_levels", tuple(self.fpn_top_down_levels))
        if len(self.stages) != len(self.window_spec):
            raise ValueError(f"stages {self.stages} and window_spec {self.window_spec} must have one entry per stage")
        if not 0 <= self.q_pool <= len(self.stages) - 1:
            raise ValueError(f"q_pool must lie in [0, {len(self.stages) - 1}], got {self.q_pool}")
        if tuple(self.backbone_channel_list) != self.trunk_channel_list:
            raise ValueError(f"backbone_channel_list {self.backbone_channel_list} must be the trunk's stage widths "
                             f"(lowest resolution first): {self.trunk_channel_list}")
        if self.fpn_interp_model not in ("nearest", "bilinear", "bicubic"):
            raise ValueError(f"fpn_interp_model must be 'nearest', 'bilinear' or 'bicubic', "
                             f"got {self.fpn_interp_model!r}")
        if self.fuse_type not in ("sum", "avg"):
            raise ValueError(f"fuse_type must be 'sum' or 'avg', got {self.fuse_type!r}")
        if self.image_size % self.backbone_stride:
            raise ValueError(f"image_size {self.image_size} must be a multiple of backbone_stride "
                             f"{self.backbone_stride}")
        if self.d_model % 8:
            raise ValueError("d_model must be divisible by 8 (the decoder upscales to d_model / 8 channels)")
        if self.use_high_res_features_in_sam and len(self.stages) - self.scalp < 3:
            raise ValueError("use_high_res_features_in_sam needs 3 feature levels after the scalp")

    @property
    def depth(self) -> int:
        """The number of Hiera blocks over all stages."""
        return sum(self.stages)

    @property
    def trunk_channel_list(self) -> tuple[int, ...]:
        """The trunk's output widths per stage, lowest resolution first (as Hiera.channel_list)."""
        widths = [int(self.embed_dim * self.dim_mul**i) for i in range(len(self.stages))]
        return tuple(reversed(widths))

    @property
    def embedding_size(self) -> int:
        """Side of the image embedding grid (64 for 1024 px)."""
        return self.image_size // self.backbone_stride


# The numbers shared by all eight official yaml files (model.* and image_encoder.*, image path and video flags).
# These dicts are keyword arguments of Sam2Config (values of several types, hence dict[str, Any]).
_COMMON: dict[str, Any] = dict(
    scalp=1,
    d_model=256,
    fpn_top_down_levels=(2, 3),  # output levels 0 and 1 use the backbone features directly
    fpn_interp_model="nearest",
    image_size=1024,
    num_maskmem=7,
    sigmoid_scale_for_mem_enc=20.0,
    sigmoid_bias_for_mem_enc=-10.0,
    use_mask_input_as_output_without_sam=True,
    directly_add_no_mem_embed=True,
    use_high_res_features_in_sam=True,
    multimask_output_in_sam=True,
    iou_prediction_use_sigmoid=True,
    use_obj_ptrs_in_encoder=True,
    only_obj_ptrs_in_the_past_for_eval=True,
    pred_obj_scores=True,
    pred_obj_scores_mlp=True,
    fixed_no_obj_ptr=True,
    multimask_output_for_tracking=True,
    use_multimask_token_for_obj_ptr=True,
    multimask_min_pt_num=0,
    multimask_max_pt_num=1,
    use_mlp_for_obj_ptr_proj=True,
    compile_image_encoder=False,
)
# SAM 2 (July 2024) and SAM 2.1 (September 2024) differ only in video flags: 2.1 adds a spatial
# "no object" embedding to the memory and a projected, signed temporal encoding of the object pointers.
_SAM2: dict[str, Any] = dict(_COMMON, add_tpos_enc_to_obj_ptrs=False)
_SAM2_1: dict[str, Any] = dict(_COMMON, no_obj_embed_spatial=True, add_tpos_enc_to_obj_ptrs=True,
                               proj_tpos_enc_in_obj_ptrs=True, use_signed_tpos_enc_to_obj_ptrs=True)

# The trunk of each size (yaml: model.image_encoder.trunk, and the neck's backbone_channel_list); b+ uses the
# Hiera defaults for stages, global_att_blocks, window_pos_embed_bkg_spatial_size and window_spec.
_TRUNKS: dict[str, dict[str, Any]] = {
    "t": dict(embed_dim=96, num_heads=1, stages=(1, 2, 7, 2), global_att_blocks=(5, 7, 9),
              window_pos_embed_bkg_spatial_size=(7, 7), backbone_channel_list=(768, 384, 192, 96)),
    "s": dict(embed_dim=96, num_heads=1, stages=(1, 2, 11, 2), global_att_blocks=(7, 10, 13),
              window_pos_embed_bkg_spatial_size=(7, 7), backbone_channel_list=(768, 384, 192, 96)),
    "b+": dict(embed_dim=112, num_heads=2, backbone_channel_list=(896, 448, 224, 112)),
    "l": dict(embed_dim=144, num_heads=2, stages=(2, 6, 36, 4), global_att_blocks=(23, 33, 43),
              window_pos_embed_bkg_spatial_size=(7, 7), window_spec=(8, 4, 16, 8),
              backbone_channel_list=(1152, 576, 288, 144)),
}

#: The eight official configurations, under the names the reference's ``build_sam2`` takes.
CONFIGS: dict[str, Sam2Config] = {}
for _size in ("t", "s", "b+", "l"):
    CONFIGS[f"configs/sam2.1/sam2.1_hiera_{_size}.yaml"] = Sam2Config(**_TRUNKS[_size], **_SAM2_1)
for _size in ("t", "s", "b+", "l"):
    CONFIGS[f"configs/sam2/sam2_hiera_{_size}.yaml"] = Sam2Config(**_TRUNKS[_size], **_SAM2)

# The reference package also ships the four SAM 2 files at its top level (sam2/sam2_hiera_t.yaml ...), so
# build_sam2("sam2_hiera_t.yaml") works there; there is no such copy of the SAM 2.1 files.
_TOP_LEVEL_ALIASES = {f"sam2_hiera_{s}": f"configs/sam2/sam2_hiera_{s}.yaml" for s in ("t", "s", "b+", "l")}


def config_name(name: str | os.PathLike) -> str:
    """The :data:`CONFIGS` key for a config name as the reference's Hydra lookup accepts it.

    Hydra finds ``configs/sam2.1/sam2.1_hiera_t.yaml`` also as ``configs/sam2.1/sam2.1_hiera_t`` (no
    extension), ``/configs/...`` or ``./configs/...``, and the SAM 2 files also as ``sam2_hiera_t.yaml``
    (their top-level copies). Anything else raises ValueError naming the closest official name.
    """
    text = os.fspath(name)
    path = posixpath.normpath(text.replace("\\", "/")).lstrip("/")
    if path.endswith(".yaml"):
        path = path[: -len(".yaml")]
    if path in _TOP_LEVEL_ALIASES:
        return _TOP_LEVEL_ALIASES[path]
    if f"{path}.yaml" in CONFIGS:
        return f"{path}.yaml"
    close = difflib.get_close_matches(text, list(CONFIGS), n=1, cutoff=0.0)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown SAM 2 config {text!r}{hint} The official ones are: {', '.join(CONFIGS)}")
