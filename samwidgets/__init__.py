"""samwidgets: a Jupyter exploration kit for Segment Anything (SAM).

Drop-in for the reference package::

    from samwidgets import sam_model_registry, SamPredictor
    sam = sam_model_registry["vit_b"](checkpoint="sam_vit_b_01ec64.pth")
    predictor = SamPredictor(sam)
"""

from .errors import UserInputError
from .hub.build import CheckpointError, build_sam, build_sam_vit_b, build_sam_vit_h, build_sam_vit_l, sam_model_registry
from .hub.checkpoints import from_pretrained
from .hub.default_model import load_default
from .inference.automatic_mask_generator import SamAutomaticMaskGenerator
from .inference.cache import EmbeddingCache
from .inference.predictor import SamPredictor
from .modeling import CONFIGS, Sam, SamConfig

__version__ = "0.1.0"


def __getattr__(name: str):
    # The widget pulls in ipywidgets/ipycanvas: import it only when asked for.
    if name in ("SamCanvas", "AnnotationSession"):
        from . import widget

        return getattr(widget, name)
    raise AttributeError(f"module 'samwidgets' has no attribute {name!r}")


__all__ = [
    "CONFIGS",
    "CheckpointError",
    "EmbeddingCache",
    "Sam",
    "SamCanvas",
    "SamAutomaticMaskGenerator",
    "SamConfig",
    "SamPredictor",
    "build_sam",
    "build_sam_vit_b",
    "build_sam_vit_h",
    "build_sam_vit_l",
    "from_pretrained",
    "load_default",
    "sam_model_registry",
    "UserInputError",
]
