"""Model configurations as plain data.

A :class:`SamConfig` holds every number that shapes a SAM model, so a small
model for CPU training is one line::

    SamConfig(encoder_embed_dim=64, encoder_depth=2, encoder_num_heads=2,
              encoder_global_attn_indexes=(1,))

The three official configurations (``vit_b``, ``vit_l``, ``vit_h``) are in
:data:`CONFIGS`, with the numbers of the reference builder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

#: Fields held as tuples (lists in a .json file).
_TUPLE_FIELDS = ("encoder_global_attn_indexes", "cnn_widths", "cnn_depths", "tiny_vit_widths", "tiny_vit_depths",
                 "tiny_vit_heads", "tiny_vit_windows")


ConfigT = TypeVar("ConfigT", bound="ConfigRecord")


class ConfigRecord:
    """What a frozen configuration dataclass (:class:`SamConfig`, SAM 2's ``Sam2Config``) offers as plain data:
    a copy with changes, and a dict of plain values (tuples as lists, as a .json file holds them) and back."""

    __dataclass_fields__: ClassVar[dict[str, Any]]  # set by @dataclass on each subclass

    def replace(self: ConfigT, **changes: Any) -> ConfigT:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain Python values (tuples as lists)."""
        fields = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}

    @classmethod
    def from_dict(cls: type[ConfigT], d: Mapping[str, Any]) -> ConfigT:
        """The configuration of a dict of fields (as :meth:`to_dict` writes it); an unknown field is an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
        return cls(**d)


@dataclass(frozen=True)
class SamConfig(ConfigRecord):
    """Every hyper-parameter of a SAM model (image encoder, prompt encoder, mask decoder)."""

    # Image encoder: "vit" (the official one), "tiny_vit" (MobileSAM's, tiny_vit.py) or "cnn" (a residual CNN,
    # image_encoder_cnn.py)
    encoder_type: str = "vit"
    image_size: int = 1024  # the longest side is resized to this, then padded to a square
    patch_size: int = 16  # the encoder's stride: the embedding is image_size / patch_size on a side
    encoder_embed_dim: int = 768
    encoder_depth: int = 12
    encoder_num_heads: int = 12
    encoder_global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11)
    window_size: int = 14  # blocks not in encoder_global_attn_indexes attend within windows
    mlp_ratio: float = 4.0
    layer_norm_eps: float = 1e-6
    use_abs_pos: bool = True
    use_rel_pos: bool = True
    # CNN encoder (encoder_type="cnn"): channels of the stem and of stages 1-4 (strides 2, 4, 8, 16, 32),
    # residual blocks per stage, and global self-attention blocks on the stride-32 map
    cnn_widths: tuple[int, ...] = (24, 32, 64, 128, 256)
    cnn_depths: tuple[int, ...] = (1, 2, 3, 2)
    cnn_attention_depth: int = 0
    cnn_attention_heads: int = 8
    # TinyViT encoder (encoder_type="tiny_vit", MobileSAM): width, blocks, attention heads and attention
    # window of its four stages (stage 0 is convolutional: its heads and window are unused); mlp_ratio is shared
    tiny_vit_widths: tuple[int, ...] = (64, 128, 160, 320)
    tiny_vit_depths: tuple[int, ...] = (2, 2, 6, 2)
    tiny_vit_heads: tuple[int, ...] = (2, 4, 5, 10)
    tiny_vit_windows: tuple[int, ...] = (7, 7, 14, 7)
    # HQ-SAM-style early features: the encoder also gives C/8 channels at 1/4 of the input, which the
    # mask decoder adds to its upscaled features (CNN encoder only, high_res_decoder.py; False in the
    # official layout)
    high_res_features: bool = False
    # Shared width of prompts, image embedding (neck output) and decoder
    prompt_embed_dim: int = 256
    # Prompt encoder
    mask_in_chans: int = 16
    # Points and boxes also drawn as maps on the embedding grid (click Gaussians, box coverage), each
    # map times a learned vector added to the dense embedding, as classical interactive segmentation
    # feeds click maps (click_maps.py; False in the official layout: sparse tokens only)
    dense_prompts: bool = False
    # Width of a text/image embedding prompt (e.g. CLIP's); 0: no such prompt, the official layout.
    # When > 0 the prompt encoder has a ``text_projection`` turning one L2-normalised embedding into
    # one sparse token (the paper's text-to-mask, appendix D.5).
    text_embed_dim: int = 0
    # Mask decoder
    decoder_depth: int = 2
    decoder_num_heads: int = 8
    decoder_mlp_dim: int = 2048
    attention_downsample_rate: int = 2
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256
    # Normalisation of uint8 RGB pixels
    pixel_mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    pixel_std: tuple[float, float, float] = (58.395, 57.12, 57.375)

    def __post_init__(self) -> None:
        for name in _TUPLE_FIELDS:
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.encoder_type not in ("vit", "tiny_vit", "cnn"):
            raise ValueError(f"encoder_type must be 'vit', 'tiny_vit' or 'cnn', got {self.encoder_type!r}")
        if self.encoder_type == "tiny_vit":
            self._check_tiny_vit()
        if self.encoder_type == "cnn" and (self.patch_size != 16 or self.image_size % 32):
            raise ValueError("the CNN encoder has stride 16 and 5 stride-2 steps: patch_size must be 16 and "
                             "image_size a multiple of 32")
        if self.high_res_features and self.encoder_type != "cnn":
            raise ValueError("high_res_features needs encoder_type='cnn'")
        object.__setattr__(self, "pixel_mean", tuple(float(v) for v in self.pixel_mean))
        object.__setattr__(self, "pixel_std", tuple(float(v) for v in self.pixel_std))
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} must be a multiple of patch_size {self.patch_size}")
        if self.encoder_embed_dim % self.encoder_num_heads:
            raise ValueError("encoder_embed_dim must be divisible by encoder_num_heads")
        if any(not 0 <= i < self.encoder_depth for i in self.encoder_global_attn_indexes):
            raise ValueError("encoder_global_attn_indexes must lie in [0, encoder_depth)")
        if self.text_embed_dim < 0:
            raise ValueError("text_embed_dim must be >= 0 (0: no text/embedding prompt)")
        if self.prompt_embed_dim % 8:
            raise ValueError("prompt_embed_dim must be divisible by 8 (the decoder upscales to dim/8 channels)")

    def _check_tiny_vit(self) -> None:
        stages = (self.tiny_vit_widths, self.tiny_vit_depths, self.tiny_vit_heads, self.tiny_vit_windows)
        if any(len(s) != 4 for s in stages):
            raise ValueError("tiny_vit_widths, _depths, _heads and _windows must have 4 entries (the 4 stages)")
        if self.patch_size != 16 or self.image_size % 16:
            raise ValueError("TinyViT has stride 16 (4, then x2, x2, x1): patch_size must be 16 and image_size "
                             "a multiple of 16")
        for width, heads in zip(self.tiny_vit_widths[1:], self.tiny_vit_heads[1:], strict=True):
            if width % heads:
                raise ValueError(f"TinyViT width {width} is not divisible by its {heads} attention heads")

    @property
    def embedding_size(self) -> int:
        """Side of the square image-embedding grid (64 for the official models)."""
        return self.image_size // self.patch_size

    @property
    def low_res_mask_size(self) -> int:
        """Side of the decoder's low-res logits and of the mask prompt (256 officially)."""
        return 4 * self.embedding_size

    @classmethod
    def from_reference_config(cls, cfg: Mapping[str, Any]) -> SamConfig:
        """Convert the nested keyword dict of the reference classes
        (``{"image_encoder": {...}, "prompt_encoder": {...}, "mask_decoder": {...}}``)."""
        enc, pe, dec = cfg["image_encoder"], cfg["prompt_encoder"], cfg["mask_decoder"]
        tr = dec["transformer"]
        if enc["out_chans"] != pe["embed_dim"] or pe["embed_dim"] != dec["transformer_dim"]:
            raise ValueError("neck out_chans, prompt embed_dim and transformer_dim must be equal")
        return cls(
            image_size=enc["img_size"],
            patch_size=enc["patch_size"],
            encoder_embed_dim=enc["embed_dim"],
            encoder_depth=enc["depth"],
            encoder_num_heads=enc["num_heads"],
            encoder_global_attn_indexes=tuple(enc["global_attn_indexes"]),
            window_size=enc["window_size"],
            mlp_ratio=enc["mlp_ratio"],
            layer_norm_eps=enc.get("layer_norm_eps", 1e-6),
            use_abs_pos=enc.get("use_abs_pos", True),
            use_rel_pos=enc.get("use_rel_pos", True),
            prompt_embed_dim=pe["embed_dim"],
            mask_in_chans=pe["mask_in_chans"],
            decoder_depth=tr["depth"],
            decoder_num_heads=tr["num_heads"],
            decoder_mlp_dim=tr["mlp_dim"],
            attention_downsample_rate=tr.get("attention_downsample_rate", 2),
            num_multimask_outputs=dec["num_multimask_outputs"],
            iou_head_depth=dec["iou_head_depth"],
            iou_head_hidden_dim=dec["iou_head_hidden_dim"],
            pixel_mean=tuple(cfg.get("pixel_mean", (123.675, 116.28, 103.53))),
            pixel_std=tuple(cfg.get("pixel_std", (58.395, 57.12, 57.375))),
        )


#: The official configurations, as in the reference builder, and the project's small default.
CONFIGS: dict[str, SamConfig] = {
    "vit_b": SamConfig(),
    "vit_l": SamConfig(
        encoder_embed_dim=1024, encoder_depth=24, encoder_num_heads=16,
        encoder_global_attn_indexes=(5, 11, 17, 23),
    ),
    "vit_h": SamConfig(
        encoder_embed_dim=1280, encoder_depth=32, encoder_num_heads=16,
        encoder_global_attn_indexes=(7, 15, 23, 31),
    ),
    # MobileSAM (Zhang et al. 2023): TinyViT-5M distilled from ViT-H, SAM's prompt encoder and decoder unchanged,
    # as the mobile_sam package builds it (sam_model_registry["vit_t"]).
    "vit_t": SamConfig(encoder_type="tiny_vit"),
    # The bundled default model (trained by samwidgets on BSDS500 photos and procedural scenes, CPU-sized,
    # recipes/bsds_cnn): a residual CNN encoder (image_encoder_cnn.py) with 1/4-resolution features for
    # the decoder and click maps; 512 px input -> a 32 x 32 grid of 128 channels, 128 x 128 low-res masks.
    "default_cnn": SamConfig(
        encoder_type="cnn", image_size=512, patch_size=16, cnn_widths=(32, 48, 96, 192, 256),
        cnn_depths=(1, 2, 3, 2), cnn_attention_depth=2, cnn_attention_heads=8, high_res_features=True,
        dense_prompts=True, prompt_embed_dim=128, decoder_num_heads=4, decoder_mlp_dim=512, iou_head_hidden_dim=128,
    ),
    # The first bundled model (trained on procedural scenes only): the ViT of the paper at teaching size,
    # kept for the architecture lessons. 256 px input, 8 px patches -> a 32 x 32 grid, 8 x 8 windows (no
    # padding), 128 x 128 low-res masks. Its weights ship only as the base of the text-prompt SAM
    # (weights/default_tiny_text.pt); its model card is in the history of weights/MODEL_CARD.md.
    "default_tiny": SamConfig(
        image_size=256, patch_size=8, encoder_embed_dim=128, encoder_depth=6, encoder_num_heads=4,
        encoder_global_attn_indexes=(2, 5), window_size=8, prompt_embed_dim=128, decoder_num_heads=4,
        decoder_mlp_dim=512, iou_head_hidden_dim=128,
    ),
}
