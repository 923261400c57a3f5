"""SAM model components, one module per part, as in the reference layout.

The modules hold the plain algorithm; :mod:`.fast` holds the exact speed-ups, switched on for a
model with :func:`enable_fast_paths` (``SamPredictor`` does it).
"""

from .config import CONFIGS, SamConfig
from .fast import enable_fast_paths, fast_paths, fast_paths_enabled
from .image_encoder import ImageEncoderViT, encoder_flops
from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder
from .sam import Sam
from .transformer import TwoWayTransformer

__all__ = ["CONFIGS", "SamConfig", "ImageEncoderViT", "MaskDecoder", "PromptEncoder", "Sam",
           "TwoWayTransformer", "enable_fast_paths", "encoder_flops", "fast_paths", "fast_paths_enabled"]
