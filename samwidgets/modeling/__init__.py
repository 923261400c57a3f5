"""SAM model components, one module per part, as in the reference layout."""

from .config import CONFIGS, SamConfig
from .image_encoder import ImageEncoderViT, encoder_flops
from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder
from .sam import Sam
from .transformer import TwoWayTransformer

__all__ = ["CONFIGS", "SamConfig", "ImageEncoderViT", "MaskDecoder", "PromptEncoder", "Sam",
           "TwoWayTransformer", "encoder_flops"]
