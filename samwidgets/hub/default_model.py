"""The bundled default model: a small SAM trained by this project on photos and procedural scenes.

``load_default()`` (or ``sam_model_registry["default_cnn"]()``) loads it
from the package itself, with no network. See ``weights/MODEL_CARD.md`` for
how it was trained and how well it does.
"""

from __future__ import annotations

import warnings

import torch

from ..modeling import Sam
from ..runtime.devices import resolve_device
from .build import build_sam_bundled
from .registry import BUNDLED_MODEL_NAME, BUNDLED_WEIGHTS, WEIGHTS_DIR

__all__ = ["BUNDLED_MODEL_NAME", "BUNDLED_WEIGHTS", "WEIGHTS_DIR", "load_default"]

#: old names of the bundled model's constants -> their one name (``registry.py``'s), kept for a while
_RENAMED = {"DEFAULT_MODEL_NAME": "BUNDLED_MODEL_NAME", "DEFAULT_WEIGHTS": "BUNDLED_WEIGHTS"}


def load_default(device: str | torch.device | None = None) -> Sam:
    """The bundled default model in eval mode, on ``device`` (None or "auto": CUDA if available, else CPU)."""
    return build_sam_bundled().to(resolve_device(device))


def __getattr__(name: str) -> object:
    """``DEFAULT_MODEL_NAME`` and ``DEFAULT_WEIGHTS``, the old names, with a DeprecationWarning."""
    if name in _RENAMED:
        warnings.warn(f"samwidgets.hub.default_model.{name} is now {_RENAMED[name]} (one name for the bundled "
                      f"model everywhere); the old name will be removed", DeprecationWarning, stacklevel=2)
        return globals()[_RENAMED[name]]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
