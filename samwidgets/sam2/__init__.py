"""SAM 2 and SAM 2.1 for images, in plain PyTorch: a drop-in for the reference package ``sam2`` (1.1.0).

::

    from samwidgets.sam2 import build_sam2, SAM2ImagePredictor
    model = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", "sam2.1_hiera_tiny.pt")
    predictor = SAM2ImagePredictor(model)
    predictor.set_image(image)
    masks, scores, low_res_logits = predictor.predict(point_coords=[[x, y]], point_labels=[1])

One module per part, as the reference lays them out: ``config.py`` (the eight
official configurations), ``hiera.py`` (the trunk), ``neck.py`` (FPN and sine
position encoding), ``prompt_encoder.py`` and ``transformer.py`` (SAM 1's,
reused), ``mask_decoder.py``, ``model.py`` (``SAM2Base``, the image part),
``transforms.py``, ``predictor.py`` and ``build.py``; ``fast_encoder.py`` (the encoder's speed-ups,
behind the kit's fast switch); ``automatic_mask_generator.py``
(``SAM2AutomaticMaskGenerator``) and ``onnx.py`` (the decoder as an ONNX graph). Video (memory,
tracking) is out of scope: its checkpoint tensors are accepted and not loaded.
"""

from . import fast_encoder  # noqa: F401  (registers the fast encoder classes with enable_fast_paths)
from .automatic_mask_generator import SAM2AutomaticMaskGenerator
from .build import Sam2CheckpointError, VideoWeightsIgnoredWarning, build_sam2, load_checkpoint
from .config import CONFIGS, Sam2Config
from .model import SAM2Base
from .onnx import SAM2OnnxModel, export_sam2_onnx
from .predictor import SAM2ImagePredictor

__all__ = ["CONFIGS", "SAM2AutomaticMaskGenerator", "SAM2Base", "SAM2ImagePredictor", "SAM2OnnxModel",
           "Sam2CheckpointError", "Sam2Config", "VideoWeightsIgnoredWarning", "build_sam2", "export_sam2_onnx",
           "load_checkpoint"]
