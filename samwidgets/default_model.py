"""The bundled default model: a small SAM trained by this project on procedural scenes.

``load_default()`` (or ``sam_model_registry["default_tiny"]()``) loads it
from the package itself, with no network. See ``weights/MODEL_CARD.md`` for
how it was trained and how well it does.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .build import build_sam
from .devices import resolve_device
from .modeling import CONFIGS, Sam

DEFAULT_MODEL_NAME = "default_tiny"
WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / f"{DEFAULT_MODEL_NAME}.pt"


def load_default(device: str | torch.device | None = None) -> Sam:
    """The bundled default model in eval mode, on ``device`` (None or "auto": CUDA if available, else CPU)."""
    if not DEFAULT_WEIGHTS.is_file():
        raise FileNotFoundError(
            f"the bundled default model is missing ({DEFAULT_WEIGHTS}); reinstall samwidgets, "
            "or train one with `python -m samwidgets.train --config default_tiny --out runs/tiny`"
        )
    model = build_sam(CONFIGS[DEFAULT_MODEL_NAME], DEFAULT_WEIGHTS, model_type=DEFAULT_MODEL_NAME)
    return model.to(resolve_device(device))
