"""The notebooks' ``MODEL`` setting: "default" is the bundled model, an official name downloads SAM's weights."""

from __future__ import annotations

import torch

from ..hub.checkpoints import from_pretrained
from ..hub.default_model import load_default
from ..hub.registry import BUNDLED_MODEL_NAME
from ..modeling import CONFIGS, Sam
from ..sam2 import SAM2Base

__all__ = ["MODEL_NAMES", "describe_model", "is_bundled", "load_model"]

#: What the setup cell's ``MODEL`` may be: the bundled model (offline), an official SAM checkpoint or
#: MobileSAM's (online).
MODEL_NAMES = ("default", "vit_b", "vit_l", "vit_h", "mobile_sam")


def load_model(name: str = "default", device: str | torch.device | None = None) -> Sam | SAM2Base:
    """The model a notebook runs on, in eval mode.

    "default" (or "default_cnn") is the small model bundled with samwidgets: no download, runs on a laptop
    CPU. "vit_b", "vit_l" and "vit_h" are the official SAM checkpoints (375 MB, 1.2 GB, 2.6 GB), and
    "mobile_sam" (also "vit_t") MobileSAM's (41 MB, seconds per image on a CPU), downloaded once into the
    cache directory and checked against their sha256. A path to a checkpoint file of one of these models
    works too. A SAM 2 name ("sam2.1_hiera_tiny", ...) gives a SAM 2 model, for ``SAM2ImagePredictor``
    (09_sam_family.ipynb; the other notebooks run SAM's predictor).
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"MODEL must be one of {', '.join(map(repr, MODEL_NAMES))} or a checkpoint path, "
                         f"got {name!r}")
    if name in ("default", BUNDLED_MODEL_NAME):
        return load_default(device=device)
    return from_pretrained(name, device=device).eval()


def is_bundled(sam: Sam) -> bool:
    """True for the small model bundled with samwidgets (by its configuration), False for SAM's own models."""
    return sam.config == CONFIGS[BUNDLED_MODEL_NAME]


def describe_model(sam: Sam | SAM2Base) -> str:
    """One line: which model this is, its input size and its parameter count."""
    params = sum(p.numel() for p in sam.parameters()) / 1e6
    if isinstance(sam, SAM2Base):
        c2 = sam.config
        return (f"SAM 2: {c2.image_size} px input, Hiera encoder (width {c2.embed_dim}, stages "
                f"{'-'.join(map(str, c2.stages))}), {params:.1f} M parameters in the image path")
    c = sam.config
    if is_bundled(sam):
        name = f"the bundled model ({BUNDLED_MODEL_NAME})"
    elif c.encoder_type == "tiny_vit":
        name = "MobileSAM"
    else:
        name = "an official SAM model"
    if c.encoder_type == "cnn":
        encoder = (f"CNN encoder (widths {'-'.join(map(str, c.cnn_widths))}, {c.cnn_attention_depth} attention "
                   f"blocks at 1/32), a {c.embedding_size} x {c.embedding_size} x {c.prompt_embed_dim} embedding"
                   + (" + 1/4-resolution features" if c.high_res_features else ""))
    elif c.encoder_type == "tiny_vit":
        encoder = (f"TinyViT encoder (widths {'-'.join(map(str, c.tiny_vit_widths))}, "
                   f"{sum(c.tiny_vit_depths)} blocks)")
    else:
        encoder = f"ViT encoder of width {c.encoder_embed_dim} and depth {c.encoder_depth}"
    return f"{name}: {c.image_size} px input, {encoder}, {params:.1f} M parameters"
