"""The bundled default model: a small SAM trained by this project on photos and procedural scenes.

``load_default()`` (or ``sam_model_registry["default_cnn"]()``) loads it
from the package itself, with no network. See ``weights/MODEL_CARD.md`` for
how it was trained and how well it does.
"""

from __future__ import annotations

import torch

from ..modeling import Sam
from ..runtime.devices import resolve_device
from .build import build_sam_bundled
from .registry import BUNDLED_MODEL_NAME as DEFAULT_MODEL_NAME
from .registry import BUNDLED_WEIGHTS as DEFAULT_WEIGHTS
from .registry import WEIGHTS_DIR

__all__ = ["DEFAULT_MODEL_NAME", "DEFAULT_WEIGHTS", "WEIGHTS_DIR", "load_default"]


def load_default(device: str | torch.device | None = None) -> Sam:
    """The bundled default model in eval mode, on ``device`` (None or "auto": CUDA if available, else CPU)."""
    return build_sam_bundled().to(resolve_device(device))
