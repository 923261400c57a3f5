"""Named SAM checkpoints and the models built from them: :func:`from_pretrained`, :func:`model_from_flags`.

``from_pretrained("vit_b")`` downloads the official ViT-B weights once into a
cache directory (with :func:`samwidgets.io.download.download`: resumable,
retried, size- and sha256-checked) and builds the model from them;
``from_pretrained(path)`` builds the official model a local file has the shapes of.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch

from ..errors import UserInputError
from ..io.digest import file_sha256
from ..io.download import DownloadError, download
from ..io.paths import CACHE_ENV, default_cache_dir
from ..modeling import CONFIGS, Sam, SamConfig
from ..runtime.devices import resolve_device
from ..sam2 import SAM2Base, build_sam2
from .build import build_sam, encoder_shape, guess_model_type, load_state_dict_file
from .default_model import load_default
from .registry import (
    BUNDLED_MODEL_NAME,
    OFFICIAL_CHECKPOINTS,
    CheckpointError,
    CheckpointSpec,
    get_checkpoint_spec,
    known_names,
    register_checkpoint,
    registered_checkpoints,
    unknown_name_error,
    unregister_checkpoint,
)

__all__ = [
    "CACHE_ENV",
    "CheckpointSpec",
    "DownloadError",
    "OFFICIAL_CHECKPOINTS",
    "checkpoint_path",
    "default_cache_dir",
    "download",
    "download_checkpoint",
    "file_sha256",
    "from_pretrained",
    "model_from_flags",
    "config_by_name_or_file",
    "get_checkpoint_spec",
    "register_checkpoint",
    "registered_checkpoints",
    "unregister_checkpoint",
]

# --------------------------------------------------------------------------- cache


def checkpoint_path(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the registered checkpoint ``name`` is (or would be) cached: ``<cache>/checkpoints/<filename>``."""
    spec = get_checkpoint_spec(name)
    base = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return base / "checkpoints" / spec.filename


def download_checkpoint(name: str, *, cache_dir: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """The path of the registered checkpoint ``name`` in the cache, downloading it first if needed."""
    spec = get_checkpoint_spec(name)
    dest = checkpoint_path(name, cache_dir)
    if spec.sha256 is None and not dest.is_file():
        warnings.warn(f"no published sha256 is known for {name!r}: the download's size is checked "
                      f"({'unknown' if spec.size is None else f'{spec.size:,} bytes'}), its content is not verified",
                      stacklevel=2)
    return download(spec.url, dest, spec.size, sha256=spec.sha256, progress=progress)


# --------------------------------------------------------------------------- models


def from_pretrained(name_or_path: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None,
                    device: str | torch.device | None = None, progress: bool = True) -> Sam | SAM2Base:
    """A SAM model in eval mode with pretrained weights, on ``device``.

    ``name_or_path`` is a registered checkpoint name ("vit_b", "vit_l",
    "vit_h", "mobile_sam", a SAM 2 name such as "sam2.1_hiera_tiny", or one
    added with :func:`register_checkpoint`), downloaded into
    ``<cache_dir>/checkpoints/`` on first use (``cache_dir`` defaults to
    :func:`default_cache_dir`), or the path of a checkpoint file of one of the
    official models, whose configuration is told from its tensor shapes.
    A registered name takes precedence over a file of the same name.
    "default_cnn" is the small model bundled with samwidgets (no download).
    ``device`` defaults to "cuda" when available, else "cpu". A SAM 2 name gives
    a :class:`~samwidgets.sam2.SAM2Base` (``build_sam2`` of its configuration,
    for :class:`~samwidgets.sam2.SAM2ImagePredictor`); every other name a ``Sam``.
    """
    if name_or_path == BUNDLED_MODEL_NAME:  # bundled with the package: no download
        return load_default(device=resolve_device(device))
    if isinstance(name_or_path, str) and name_or_path in registered_checkpoints():
        spec = get_checkpoint_spec(name_or_path)
        path = download_checkpoint(spec.name, cache_dir=cache_dir, progress=progress)
        if spec.family == "sam2":  # a SAM2Base, for samwidgets.sam2.SAM2ImagePredictor
            assert isinstance(spec.config, str), "a 'sam2' CheckpointSpec names its configuration (checked there)"
            return build_sam2(spec.config, path, device=resolve_device(device))
        sam = build_sam(spec.config, path, model_type=spec.name)
    else:
        sam = _build_from_file(_existing_checkpoint_file(name_or_path))
    return sam.to(resolve_device(device))


def config_by_name_or_file(model: str) -> SamConfig:
    """The configuration ``model`` names: a key of :data:`CONFIGS` or a SamConfig ``.json`` file."""
    if model.endswith(".json"):
        path = Path(model).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"configuration file not found: {path}")
        return SamConfig.from_dict(json.loads(path.read_text()))
    if model in CONFIGS:
        return CONFIGS[model]
    raise UserInputError(f"unknown model {model!r}: give one of {', '.join(CONFIGS)} or a SamConfig .json file")


def model_from_flags(model: str | None = None, weights: str | os.PathLike | None = None,
                     device: str | torch.device | None = None) -> Sam | SAM2Base:
    """The model of the command lines' ``--model NAME|PATH --weights PATH``, in eval mode on ``device``.

    - neither: the bundled model;
    - ``model`` only: a registered name (downloaded on first use; ``default_cnn`` is bundled);
    - ``weights`` only: a checkpoint file of an official configuration, told from its shapes;
    - both: the configuration ``model`` names (or a SamConfig ``.json``) with those weights.
    """
    if weights is None:
        if model is not None and model.endswith(".json"):
            raise UserInputError(f"--model {model} is a configuration: give its weights with --weights PATH")
        return from_pretrained(model or BUNDLED_MODEL_NAME, device=device)
    if model is None:
        return from_pretrained(weights, device=device)
    model_type = None if model.endswith(".json") else model
    return build_sam(config_by_name_or_file(model), weights, model_type=model_type).to(resolve_device(device))


def _existing_checkpoint_file(name_or_path: str | os.PathLike) -> Path:
    """``name_or_path`` as an existing file; a clear error for an unknown name or a missing file."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    looks_like_path = (not isinstance(name_or_path, str) or any(sep in name_or_path for sep in ("/", "\\"))
                       or path.suffix in (".pt", ".pth", ".bin", ".ckpt"))
    if looks_like_path:
        raise FileNotFoundError(f"checkpoint file not found: {path} "
                                f"(or pass a registered checkpoint name: {known_names()})")
    raise unknown_name_error(str(name_or_path))


def _build_from_file(path: Path) -> Sam:
    """Build the official model whose shapes the checkpoint at ``path`` has."""
    state_dict = load_state_dict_file(path)
    model_type = guess_model_type(state_dict)
    if model_type is None:
        raise CheckpointError(
            f"could not tell which SAM model {path} holds: {_encoder_description(state_dict)} matches none of the "
            f"official configurations ({', '.join(sorted(CONFIGS))}). Known checkpoint names: {known_names()}. "
            "For another configuration use build_sam(SamConfig(...), path), or register a CheckpointSpec "
            "for it and call from_pretrained(name)."
        )
    return build_sam(CONFIGS[model_type], state_dict, model_type=model_type)


def _encoder_description(state_dict: Mapping[str, torch.Tensor]) -> str:
    """A short description of the image encoder a state dict holds, for error messages."""
    shape = encoder_shape(state_dict)
    if shape is None:
        return "its image encoder (no image_encoder.pos_embed)"
    return f"its image encoder (width {shape[0]}, {shape[1]} blocks)"


#: old names -> their one name: ``load_model`` was also the notebooks' ``samwidgets.teaching.load_model(MODEL)``
_RENAMED = {"CACHE_ENV_VAR": "CACHE_ENV", "load_model": "model_from_flags"}


def __getattr__(name: str) -> object:
    """The old names (``CACHE_ENV_VAR``, ``load_model``) with a DeprecationWarning."""
    if name in _RENAMED:
        warnings.warn(f"samwidgets.hub.checkpoints.{name} is now {_RENAMED[name]}; the old name will be removed",
                      DeprecationWarning, stacklevel=2)
        return globals()[_RENAMED[name]]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
