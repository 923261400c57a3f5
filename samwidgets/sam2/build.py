"""``build_sam2``: a SAM 2 model from a config name and an official checkpoint (the reference's call).

The reference reads a Hydra yaml and instantiates the classes it names;
here the numbers come from :data:`samwidgets.sam2.config.CONFIGS` (same
names) and no yaml is read. Checkpoints are the official files: a dict
``{"model": state_dict}`` (a bare state dict is accepted too).

Loading is strict, as in the reference, with errors that say what to do:

* every tensor of the image path must be there with the right shape; a
  shape mismatch names the official config the checkpoint fits;
* the video-only tensors (memory attention and encoder, object pointers,
  ...) are accepted and left out, with one warning
  (:class:`VideoWeightsIgnoredWarning`): video is out of scope for samwidgets;
* any other key is an error (also a video key that this config does not
  have: a SAM 2.1 checkpoint given with a SAM 2 config, or the reverse).
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import cast

import torch

from samwidgets.runtime.devices import resolve_device

from .config import CONFIGS, Sam2Config, config_name
from .model import SAM2Base

#: The overrides ``apply_postprocessing=True`` adds, as in the reference's build_sam.py.
POSTPROCESSING_OVERRIDES = (
    # fall back to the best of the three masks when the single mask is not stable
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.98",
)


class Sam2CheckpointError(RuntimeError):
    """A checkpoint that does not fit the model (the reference raises RuntimeError too)."""


class VideoWeightsIgnoredWarning(UserWarning):
    """The checkpoint's video-only tensors were not loaded (samwidgets runs SAM 2 on images only)."""


def video_key_prefixes(config: Sam2Config) -> tuple[str, ...]:
    """The names (and name prefixes) of the video-only tensors an official checkpoint of ``config`` holds.

    They follow SAM2Base's constructor: the memory attention and encoder and their encodings always; the
    object-pointer layers with ``use_obj_ptrs_in_encoder``; ``obj_ptr_tpos_proj`` with
    ``proj_tpos_enc_in_obj_ptrs``; ``no_obj_embed_spatial`` with that flag (SAM 2.1).
    """
    prefixes = ["memory_attention.", "memory_encoder.", "maskmem_tpos_enc", "no_mem_pos_enc"]
    if config.use_obj_ptrs_in_encoder:
        prefixes += ["mask_downsample.", "obj_ptr_proj."]
        if config.pred_obj_scores:
            prefixes.append("no_obj_ptr")
    if config.proj_tpos_enc_in_obj_ptrs:
        prefixes.append("obj_ptr_tpos_proj.")
    if config.no_obj_embed_spatial:
        prefixes.append("no_obj_embed_spatial")
    return tuple(prefixes)


def _is_under(key: str, prefixes: Sequence[str]) -> bool:
    return any(key == p or (p.endswith(".") and key.startswith(p)) for p in prefixes)


#: Every video-only name of any official config (a key under one of them is "video", known or not for a config).
ALL_VIDEO_PREFIXES = ("memory_attention.", "memory_encoder.", "maskmem_tpos_enc", "no_mem_pos_enc", "mask_downsample.",
                      "obj_ptr_proj.", "no_obj_ptr", "obj_ptr_tpos_proj.", "no_obj_embed_spatial")


@functools.lru_cache(maxsize=16)
def image_shapes(config: Sam2Config) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the image-path state dict of ``config`` (built on the meta device: no memory, no time)."""
    with torch.device("meta"):
        model = SAM2Base(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _video_groups(keys, prefixes: Sequence[str]) -> set[str]:
    """Which of the video-only names ``prefixes`` have at least one key in ``keys``."""
    return {p for p in prefixes if any(_is_under(k, [p]) for k in keys)}


def likely_configs(state_dict: Mapping[str, torch.Tensor]) -> list[str]:
    """The official config names whose image path fits ``state_dict``'s shapes, and, when the state dict has
    video-only tensors, whose video-only names are exactly those (this tells SAM 2 from SAM 2.1)."""
    groups = _video_groups(state_dict, ALL_VIDEO_PREFIXES)
    names = []
    for name, config in CONFIGS.items():
        shapes = image_shapes(config)
        if any(k not in state_dict or tuple(state_dict[k].shape) != s for k, s in shapes.items()):
            continue
        if groups and groups != set(video_key_prefixes(config)):
            continue
        names.append(name)
    return names


#: A checkpoint as load_checkpoint and build_sam2 take it: a file, an official ``{"model": state_dict}`` or a state dict
CheckpointLike = str | os.PathLike | Mapping[str, torch.Tensor] | Mapping[str, Mapping[str, torch.Tensor]]


def _listing(label: str, keys: list[str]) -> str:
    shown = "; ".join(keys[:5]) + (f"; ... ({len(keys)} in all)" if len(keys) > 5 else "")
    return f"{label}: {shown}"


def load_checkpoint(model: SAM2Base, checkpoint: CheckpointLike,
                    config_label: str = "this config") -> None:
    """Load an official SAM 2 checkpoint (path, ``{"model": state_dict}`` or a state dict) into ``model``, strictly.

    Raises :class:`Sam2CheckpointError` naming the file, the first mismatched keys and the fix; warns
    (:class:`VideoWeightsIgnoredWarning`) when video-only tensors are left out.
    """
    source = os.fspath(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else "the state dict"
    if isinstance(checkpoint, (str, os.PathLike)):
        try:
            obj = torch.load(checkpoint, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise
        except Exception as e:  # a truncated download, or not a checkpoint
            raise Sam2CheckpointError(f"could not read {source} as a PyTorch checkpoint ({type(e).__name__}: {e}); "
                                      "the file may be truncated: download it again") from e
    else:
        obj = checkpoint
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        obj = obj["model"]  # the official files: {"model": state_dict}
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise Sam2CheckpointError(f"{source} is not a SAM 2 checkpoint: expected {{'model': state_dict}} or a state "
                                  "dict of tensors")
    state_dict = cast("dict[str, torch.Tensor]", dict(obj))  # every value is a tensor (checked just above)

    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    own_video = video_key_prefixes(model.config)
    video = [k for k in state_dict if k not in expected and _is_under(k, own_video)]
    unexpected = [k for k in state_dict if k not in expected and k not in video]
    missing = [k for k in expected if k not in state_dict]
    wrong_shape = [f"{k} {tuple(state_dict[k].shape)} (model: {s})" for k, s in expected.items()
                   if k in state_dict and tuple(state_dict[k].shape) != s]
    # A checkpoint with video tensors must have exactly this config's kinds of them (SAM 2 vs SAM 2.1); a state
    # dict of the image path alone (as SAM2Base.state_dict() saves) has none and is fine.
    video_groups = _video_groups(state_dict, ALL_VIDEO_PREFIXES)
    missing_video = sorted(set(own_video) - video_groups) if video_groups else []
    if missing or unexpected or wrong_shape or missing_video:
        parts = [f"{source} does not fit {config_label}"]
        guesses = likely_configs(state_dict)
        if guesses:
            parts.append(f"it looks like a checkpoint of {' or '.join(repr(g) for g in guesses)}: "
                         f"build it with build_sam2({guesses[0]!r}, ...)")
        if missing_video or any(_is_under(k, ALL_VIDEO_PREFIXES) for k in unexpected):
            parts.append("its video-only tensors are those of another SAM 2 version (configs/sam2 vs configs/sam2.1; "
                         "the image path is the same)")
        for label, keys in (("shape mismatches", wrong_shape), ("missing keys", missing),
                            ("unexpected keys", unexpected), ("missing video-only tensors", missing_video)):
            if keys:
                parts.append(_listing(label, keys))
        raise Sam2CheckpointError(". ".join(parts))

    model.load_state_dict({k: v for k, v in state_dict.items() if k in expected}, strict=True)
    if video:
        groups = sorted({k.split(".")[0] for k in video})
        warnings.warn(f"{source}: {len(video)} video-only tensors ({', '.join(groups)}) not loaded: samwidgets runs "
                      "SAM 2 on images only, video is out of scope", VideoWeightsIgnoredWarning, stacklevel=3)


# Hydra overrides build_sam2 understands: the yaml path -> the Sam2Config field.
_OVERRIDE_FIELDS = {f"model.sam_mask_decoder_extra_args.{name}": name for name in (
    "dynamic_multimask_via_stability", "dynamic_multimask_stability_delta", "dynamic_multimask_stability_thresh")}
_OVERRIDE_FIELDS.update({f"model.{name}": name for name in (
    "image_size", "backbone_stride", "directly_add_no_mem_embed", "use_high_res_features_in_sam",
    "multimask_output_in_sam", "iou_prediction_use_sigmoid", "pred_obj_scores", "pred_obj_scores_mlp",
    "use_multimask_token_for_obj_ptr", "fixed_no_obj_ptr", "num_maskmem", "sigmoid_scale_for_mem_enc",
    "sigmoid_bias_for_mem_enc", "use_mask_input_as_output_without_sam", "no_obj_embed_spatial",
    "use_obj_ptrs_in_encoder", "add_tpos_enc_to_obj_ptrs", "proj_tpos_enc_in_obj_ptrs",
    "use_signed_tpos_enc_to_obj_ptrs", "only_obj_ptrs_in_the_past_for_eval", "multimask_output_for_tracking",
    "multimask_min_pt_num", "multimask_max_pt_num", "use_mlp_for_obj_ptr_proj", "compile_image_encoder")})
_OVERRIDE_FIELDS.update({f"model.image_encoder.trunk.{name}": name for name in (
    "embed_dim", "num_heads", "stages", "global_att_blocks", "window_pos_embed_bkg_spatial_size", "window_spec",
    "q_pool", "q_stride", "dim_mul", "head_mul")})
_OVERRIDE_FIELDS.update({f"model.image_encoder.neck.{name}": name for name in (
    "d_model", "backbone_channel_list", "fpn_top_down_levels", "fpn_interp_model", "fuse_type")})
_OVERRIDE_FIELDS["model.image_encoder.scalp"] = "scalp"
#: Video-only settings the reference's video builder sets: accepted and ignored on images.
_VIDEO_ONLY_OVERRIDES = ("model.binarize_mask_from_pts_for_mem_enc", "model.fill_hole_area", "model._target_",
                         "model.memory_attention", "model.memory_encoder", "model.non_overlap_masks_for_mem_enc",
                         "model.max_cond_frames_in_attn", "model.memory_temporal_stride_for_eval",
                         "model.soft_no_obj_ptr", "model.max_obj_ptrs_in_encoder")


def _parse_value(text: str):
    """A Hydra override value: true/false/null, a number, a [list], or a string."""
    text = text.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "none", "~"):
        return None
    if text.startswith("[") and text.endswith("]"):
        return tuple(_parse_value(part) for part in text[1:-1].split(",") if part.strip())
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip("'\"")


def apply_overrides(config: Sam2Config, overrides: Sequence[str]) -> Sam2Config:
    """``config`` with Hydra-style overrides (``"++model.image_size=512"``) applied to its fields."""
    changes = {}
    for override in overrides:
        if "=" not in override:
            raise ValueError(f"override {override!r} is not of the form [++|+]model.path=value")
        path, value = override.split("=", 1)
        path = path.lstrip("+~").strip()
        if path in _OVERRIDE_FIELDS:
            changes[_OVERRIDE_FIELDS[path]] = _parse_value(value)
        elif any(path == v or path.startswith(v + ".") for v in _VIDEO_ONLY_OVERRIDES):
            warnings.warn(f"override {override!r} is video-only and ignored: samwidgets runs SAM 2 on images only, "
                          "video is out of scope", VideoWeightsIgnoredWarning, stacklevel=3)
        else:
            raise ValueError(f"override {override!r} is not understood by samwidgets' build_sam2; supported paths: "
                             f"{', '.join(sorted(_OVERRIDE_FIELDS))}")
    return config.replace(**changes) if changes else config


def build_sam2(config_file: str | Sam2Config, ckpt_path: CheckpointLike | None = None,
               device: str | torch.device = "auto", mode: str = "eval",
               hydra_overrides_extra: Sequence[str] | None = None, apply_postprocessing: bool = True) -> SAM2Base:
    """Build SAM 2 for images, as the reference's ``sam2.build_sam.build_sam2``.

    config_file: an official config name ("configs/sam2.1/sam2.1_hiera_t.yaml", the forms Hydra accepts,
    see :func:`~samwidgets.sam2.config.config_name`) or a :class:`Sam2Config`;
    ckpt_path: an official checkpoint file (``{"model": state_dict}``), a state dict, or None (random weights);
    device: "auto" (CUDA if available, else CPU), "cpu", "cuda", "cuda:N", "mps";
    mode: "eval" puts the model in eval mode (needed for the dynamic multimask fallback);
    hydra_overrides_extra: overrides such as "++model.image_size=512";
    apply_postprocessing: add the reference's overrides (:data:`POSTPROCESSING_OVERRIDES`).
    """
    if isinstance(config_file, Sam2Config):
        config, label = config_file, "the given Sam2Config"
    else:
        label = config_name(config_file)
        config = CONFIGS[label]
    overrides = list(hydra_overrides_extra or [])
    if apply_postprocessing:
        overrides += list(POSTPROCESSING_OVERRIDES)
    config = apply_overrides(config, overrides)
    model = SAM2Base(config)
    if ckpt_path is not None:
        load_checkpoint(model, ckpt_path, config_label=label)
    model = model.to(resolve_device(device))
    if mode == "eval":
        model.eval()
    return model
