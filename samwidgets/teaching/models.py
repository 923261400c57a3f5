"""The notebooks' ``MODEL`` setting: "default" is the bundled model, an official name downloads SAM's weights."""

from __future__ import annotations

import torch

from ..hub.checkpoints import from_pretrained
from ..hub.default_model import load_default
from ..hub.registry import BUNDLED_MODEL_NAME
from ..modeling import CONFIGS, Sam

__all__ = ["MODEL_NAMES", "describe_model", "is_bundled", "load_model"]

#: What the setup cell's ``MODEL`` may be: the bundled model (offline) or an official checkpoint (online).
MODEL_NAMES = ("default", "vit_b", "vit_l", "vit_h")


def load_model(name: str = "default", device: str | torch.device | None = None) -> Sam:
    """The model a notebook runs on, in eval mode.

    "default" (or "default_cnn") is the small model bundled with samwidgets: no download, runs on a laptop
    CPU. "vit_b", "vit_l" and "vit_h" are the official SAM checkpoints (375 MB, 1.2 GB, 2.6 GB), downloaded
    once into the cache directory and checked against their published sha256. A path to a checkpoint file
    of an official model works too.
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


def describe_model(sam: Sam) -> str:
    """One line: which model this is, its input size and its parameter count."""
    c = sam.config
    name = f"the bundled model ({BUNDLED_MODEL_NAME})" if is_bundled(sam) else "an official SAM model"
    params = sum(p.numel() for p in sam.parameters()) / 1e6
    if c.encoder_type == "cnn":
        encoder = (f"CNN encoder (widths {'-'.join(map(str, c.cnn_widths))}, {c.cnn_attention_depth} attention "
                   f"blocks at 1/32), a {c.embedding_size} x {c.embedding_size} x {c.prompt_embed_dim} embedding"
                   + (" + 1/4-resolution features" if c.high_res_features else ""))
    else:
        encoder = f"ViT encoder of width {c.encoder_embed_dim} and depth {c.encoder_depth}"
    return f"{name}: {c.image_size} px input, {encoder}, {params:.1f} M parameters"
