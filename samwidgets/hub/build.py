"""Building models from configurations and loading state dicts with clear errors.

``sam_model_registry["vit_b"](checkpoint=path)`` works as in the reference;
a checkpoint of another model or a file that is no SAM checkpoint raises a
:class:`CheckpointError` that names the expected model type, the model the
file looks like, and the first mismatched keys.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from ..io.digest import file_sha256_cached
from ..modeling import CONFIGS, Sam, SamConfig
from ..modeling.tiny_vit import UNUSED_CHECKPOINT_KEYS
from .registry import BUNDLED_MODEL_NAME, BUNDLED_SHA256, BUNDLED_WEIGHTS, CheckpointError

_WRAPPER_KEYS = ("model", "state_dict", "model_state_dict", "module")


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint file onto the CPU and return its state dict.

    Accepts a plain state dict (the official files) or one wrapped in a dict
    under "model"/"state_dict" (training checkpoints), and strips a
    "module." prefix left by DataParallel. Tensors saved on a GPU load on
    machines without one.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        if "weights only load failed" in str(e).lower() and "pickle" in str(e).lower() and "zip" not in str(e):
            raise CheckpointError(
                f"{path} holds pickled Python objects, not a plain state dict of tensors; "
                "save the weights with torch.save(model.state_dict(), path) and load that file"
            ) from e
        size = path.stat().st_size
        raise CheckpointError(
            f"could not read {path} ({size:,} bytes) as a PyTorch checkpoint ({type(e).__name__}: {e}). "
            "The file may be truncated (an interrupted download) or not a checkpoint at all; "
            "delete it and download it again."
        ) from e
    return unwrap_state_dict(obj, source=str(path))


def unwrap_state_dict(obj: Any, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Find the SAM state dict inside what torch.load returned."""
    if isinstance(obj, Mapping):
        for key in _WRAPPER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{source} holds a {type(obj).__name__}, not a state dict (a dict of tensors)")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{source} is not a state dict of tensors: entry {bad[0]!r} is not a tensor")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return dict(obj)


def encoder_shape(state_dict: Mapping[str, torch.Tensor]) -> tuple[int, int] | None:
    """(width, number of blocks) of the ViT image encoder a state dict holds; None without ``pos_embed``."""
    pos = state_dict.get("image_encoder.pos_embed")
    if pos is None:
        return None
    depth = len({k.split(".")[2] for k in state_dict if k.startswith("image_encoder.blocks.")})
    return int(pos.shape[-1]), depth


def guess_model_type(state_dict: Mapping[str, torch.Tensor]) -> str | None:
    """The configuration in :data:`CONFIGS` whose encoder width and depth a state dict has, if any."""
    if "image_encoder.patch_embed.seq.0.c.weight" in state_dict:  # TinyViT's convolutional patch embedding
        widths = [state_dict.get(f"image_encoder.layers.{i}.blocks.0.mlp.fc1.weight") for i in range(1, 4)]
        vit_t = CONFIGS["vit_t"]
        if [None if w is None else int(w.shape[1]) for w in widths] == list(vit_t.tiny_vit_widths[1:]):
            return "vit_t"
        return None
    shape = encoder_shape(state_dict)
    for name, cfg in CONFIGS.items():
        if shape == (cfg.encoder_embed_dim, cfg.encoder_depth):
            return name
    return None


def drop_unused_keys(state_dict: dict[str, torch.Tensor], config: SamConfig) -> dict[str, torch.Tensor]:
    """``state_dict`` without the entries the model never uses: a MobileSAM file's ImageNet classifier.

    The mobile_sam package keeps TinyViT's classifier (``image_encoder.head.*``, ``image_encoder.norm_head.*``)
    in its model and so in ``mobile_sam.pt``; SAM never runs it, so it is accepted and dropped here.
    """
    if config.encoder_type != "tiny_vit":
        return state_dict
    prefixes = tuple("image_encoder." + p for p in UNUSED_CHECKPOINT_KEYS)  # TinyViT's classifier head
    return {k: v for k, v in state_dict.items() if not k.startswith(prefixes)}


def check_state_dict(model: Sam, state_dict: Mapping[str, torch.Tensor], model_type: str) -> None:
    """Raise CheckpointError naming the first mismatches if state_dict does not fit model exactly."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    wrong_shape = [
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if not (missing or unexpected or wrong_shape):
        return
    parts = [f"this checkpoint does not fit the {model_type!r} model"]
    if not any(k.startswith(("image_encoder.", "prompt_encoder.", "mask_decoder.")) for k in state_dict):
        parts.append("it has no SAM keys at all (image_encoder.*, prompt_encoder.*, mask_decoder.*): "
                     "is it a checkpoint of another kind of model?")
    else:
        guess = guess_model_type(state_dict)
        if guess and guess != model_type:
            parts.append(f"it looks like a {guess!r} checkpoint: use sam_model_registry[{guess!r}]")
    for label, keys in (("shape mismatches", wrong_shape), ("missing keys", missing), ("unexpected keys", unexpected)):
        if keys:
            shown = "; ".join(keys[:5]) + (f"; ... ({len(keys)} in all)" if len(keys) > 5 else "")
            parts.append(f"{label}: {shown}")
    raise CheckpointError(". ".join(parts))


def build_sam(config: SamConfig | str, checkpoint: str | os.PathLike | Mapping[str, torch.Tensor] | None = None,
              model_type: str | None = None) -> Sam:
    """Build a Sam model in eval mode, with weights from ``checkpoint`` (a path or a state dict) if given.

    config is a :class:`SamConfig` or the name of an official one ("vit_b", "vit_l", "vit_h").
    """
    if isinstance(config, str):
        if config not in CONFIGS:
            raise ValueError(f"unknown model type {config!r}; known: {sorted(CONFIGS)}")
        model_type, config = config, CONFIGS[config]
    model_type = model_type or "custom"
    if checkpoint is None:
        return Sam(config).eval()
    if isinstance(checkpoint, Mapping):
        # the model must not share storage with the caller's tensors (training would change them)
        state_dict = {k: v.clone() for k, v in unwrap_state_dict(checkpoint).items()}
    else:
        state_dict = load_state_dict_file(checkpoint)
    state_dict = drop_unused_keys(state_dict, config)
    # Build on the meta device and adopt the checkpoint's tensors: no time spent on a
    # random initialisation that is thrown away, and no second copy of the weights in memory.
    with torch.device("meta"):
        sam = Sam(config)
    check_state_dict(sam, state_dict, model_type)
    state_dict = {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}
    sam.load_state_dict(state_dict, strict=True, assign=True)
    sam.reset_pixel_buffers()
    return sam.eval()


def at_image_size(model: Sam, image_size: int) -> Sam:
    """``model`` rebuilt for ``image_size`` px inputs with the same weights (``model`` itself at its own size).

    A CNN encoder's weights do not depend on the input size (convolutions and attention over any grid),
    nor do the prompt encoder's and decoder's (positions are encoded from normalised coordinates), so a
    CNN model runs, and can be fine-tuned, at another size (``recipes/bsds_cnn`` trains mostly at 256 px,
    then fine-tunes and evaluates at 512 px). A ViT cannot: its position embeddings (absolute and
    relative) are tables over its token grid.
    """
    if image_size == model.config.image_size:
        return model
    if model.config.encoder_type != "cnn":
        raise ValueError(f"this model has a ViT encoder, whose position embeddings are tied to its "
                         f"{model.config.image_size} px input: it cannot be rebuilt at {image_size} px "
                         f"(only a CNN encoder's weights fit any image size)")
    config = model.config.replace(image_size=int(image_size))  # checks the CNN's constraints (a multiple of 32)
    return build_sam(config, model.state_dict()).to(model.device)


def _registry_entry(name: str) -> Callable[..., Sam]:
    def build(checkpoint: str | os.PathLike | Mapping[str, torch.Tensor] | None = None) -> Sam:
        return build_sam(name, checkpoint)

    build.__name__ = f"build_sam_{name}"
    build.__doc__ = f"Build the official {name} SAM (random weights unless a checkpoint is given)."
    return build


build_sam_vit_h = _registry_entry("vit_h")
build_sam_vit_l = _registry_entry("vit_l")
build_sam_vit_b = _registry_entry("vit_b")
build_sam_vit_t = _registry_entry("vit_t")
build_sam_vit_t.__doc__ = ("Build MobileSAM (TinyViT encoder, SAM's prompt encoder and decoder), as the mobile_sam "
                           "package's sam_model_registry['vit_t'] (random weights unless a checkpoint is given).")
build_sam_default_tiny = _registry_entry("default_tiny")
build_sam_default_tiny.__doc__ = ("Build the first bundled model's ViT configuration (random weights unless a "
                                  "checkpoint is given; its trained weights ship only as the base of the text-prompt "
                                  "SAM, samwidgets.text.load_default_text_model).")


def build_sam_bundled(checkpoint: str | os.PathLike | Mapping[str, torch.Tensor] | None = None) -> Sam:
    """The bundled default model (trained by samwidgets; no network), or its config with other weights."""
    if checkpoint is None:
        if not BUNDLED_WEIGHTS.is_file():
            raise FileNotFoundError(
                f"the bundled default model is missing ({BUNDLED_WEIGHTS}); reinstall samwidgets, "
                "or train one with recipes/bsds_cnn (samwidgets train --model recipes/bsds_cnn/cnn_256.json ...)"
            )
        check_bundled_weights()
        checkpoint = BUNDLED_WEIGHTS
    return build_sam(BUNDLED_MODEL_NAME, checkpoint)


def check_bundled_weights(path: Path = BUNDLED_WEIGHTS, sha256: str = BUNDLED_SHA256) -> None:
    """Raise CheckpointError if the bundled weights are not the file this release ships (hashed once per process)."""
    actual = file_sha256_cached(path)
    if actual != sha256:
        raise CheckpointError(
            f"the bundled default model {path} is damaged or replaced: its sha256 is {actual}, not {sha256}. "
            "Reinstall samwidgets (pip install --force-reinstall samwidgets, or git checkout the file in a clone)"
        )


#: Same keys and call signature as the reference registry ("default" is vit_h as there), plus
#: "default_cnn", the small model bundled with samwidgets (its weights when no checkpoint is given), and
#: "default_tiny", the ViT the kit bundled first (a configuration for the architecture lessons), and MobileSAM's
#: "vit_t" as the mobile_sam package names it.
sam_model_registry: dict[str, Callable[..., Sam]] = {
    "default": build_sam_vit_h,
    "vit_h": build_sam_vit_h,
    "vit_l": build_sam_vit_l,
    "vit_b": build_sam_vit_b,
    "vit_t": build_sam_vit_t,
    BUNDLED_MODEL_NAME: build_sam_bundled,
    "default_tiny": build_sam_default_tiny,
}
