"""Helpers for the notebooks: one way to load a model by name, and photos to try it on.

The notebooks open with the same setup cell (``MODEL = "auto"``: an official model when the network allows, the
bundled model otherwise); everything they need beyond the library's own API lives here, so the notebooks stay short.
"""

from .display import show_anns, show_box, show_mask, show_points
from .models import (
    MODEL_ENV,
    MODEL_NAMES,
    ModelChoice,
    choose_model,
    describe_model,
    is_bundled,
    load_model,
    model_name,
)
from .photos import DemoPhoto, PhotoError, load_photo, reference_photo, unseen_photos
from .records import (
    SpotCheck,
    bsds_summary,
    find_bsds500,
    recorded_bsds_evaluation,
    recorded_scene_evaluation,
    spot_check_bsds,
    spot_check_scenes,
)

__all__ = [
    "MODEL_ENV",
    "MODEL_NAMES",
    "ModelChoice",
    "choose_model",
    "DemoPhoto",
    "PhotoError",
    "describe_model",
    "model_name",
    "is_bundled",
    "load_model",
    "load_photo",
    "SpotCheck",
    "bsds_summary",
    "find_bsds500",
    "recorded_scene_evaluation",
    "spot_check_bsds",
    "spot_check_scenes",
    "recorded_bsds_evaluation",
    "reference_photo",
    "show_anns",
    "show_box",
    "show_mask",
    "show_points",
    "unseen_photos",
]
