"""SAM 2's prompt encoder and mask decoder as one ONNX graph, for a given image's features.

As with SAM 1 (:mod:`samwidgets.inference.onnx`), an application runs the image encoder once (on a server,
or ahead of time) and the light decoder on every click, through onnxruntime (in a browser, an app). SAM 2's
decoder also takes the image's two high-resolution feature maps, so the graph has three image inputs
(the layout of samexporter's SAM 2 decoder export):

inputs
    ``image_embed`` 1 x C x h x w (1 x 256 x 64 x 64 for the official models: the predictor's image
    embedding, ``no_mem_embed`` included), ``high_res_feats_0`` 1 x C/8 x 4h x 4w (1 x 32 x 256 x 256),
    ``high_res_feats_1`` 1 x C/4 x 2h x 2w (1 x 64 x 128 x 128): what ``SAM2ImagePredictor.set_image``
    keeps (:func:`image_inputs` reads them off a predictor);
    ``point_coords`` 1 x N x 2 float, (x, y) in the model's input frame (the image stretched to S x S,
    S = 1024: x / W * S, y / H * S); N is dynamic;
    ``point_labels`` 1 x N float: 1 positive, 0 negative, 2 / 3 a box's top-left / bottom-right corner,
    -1 a padding point;
    ``mask_input`` 1 x 1 x 4h x 4w float (low-res logits of an earlier prediction), ``has_mask_input`` 1
    float (1: use ``mask_input``), ``orig_im_size`` 2 float (H, W of the image);
outputs
    ``masks`` 1 x M x H x W logits at the image's size, ``iou_predictions`` 1 x M, ``low_res_masks``
    1 x M x 4h x 4w (clamped to [-32, 32], to feed back as ``mask_input``); M = 3 with
    ``multimask_output`` (chosen at export), else 1.

The prompt convention is SAM 1's ONNX one (our :mod:`samwidgets.inference.onnx`, the reference's demo): a
box is two points labelled 2 and 3, and a padding point (0, 0) labelled -1 is added when there is no box.
SAM 2 itself always decodes one padding point after the prompt, box or not (its predictor calls the prompt
encoder with ``boxes=None``, which pads), so the graph appends one when the inputs have none: inputs in
SAM 1's convention, or in samexporter's (never a padding point), give the predictor's masks. The order of
the points does not matter (the decoder's attention treats its prompt tokens as a set).

With ``multimask_output=False`` the graph returns what SAM 2's decoder returns for one mask: its
single-mask output, or, when that mask is unstable (the IoU of the mask thresholded at +0.05 and -0.05
below 0.98), the best of its three other masks by predicted IoU ("dynamic multimask", written with tensor
operations: ``torch.where``, ``argmax``). The object-score head is not used, as in the predictor.
Not in the graph: the predictor's hole filling (``max_hole_area``, off by default).

The graph is traced with the TorchScript-based exporter (``dynamo=False``), as SAM 1's: the torch.export
exporter cannot express a resize to a size read from an input's values (``orig_im_size``).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..inference.onnx import trace_to_onnx
from .model import SAM2Base
from .predictor import SAM2ImagePredictor

INPUT_NAMES = ["image_embed", "high_res_feats_0", "high_res_feats_1", "point_coords", "point_labels", "mask_input",
               "has_mask_input", "orig_im_size"]
OUTPUT_NAMES = ["masks", "iou_predictions", "low_res_masks"]

#: the label of a padding point ("not a point")
PADDING_LABEL = -1


class SAM2OnnxModel(nn.Module):
    """Prompt encoder + mask decoder + resize to the image, for export (one image, one prompt per call).

    Args:
        model: the SAM 2 model (not changed: the wrapper holds a copy, on the CPU, in eval mode).
        multimask_output: three masks per call, or one (with SAM 2's dynamic multimask fallback).
    """

    def __init__(self, model: SAM2Base, multimask_output: bool = True) -> None:
        super().__init__()
        if not model.use_high_res_features_in_sam:
            raise ValueError("the graph takes the high-resolution features: the model must use them "
                             "(use_high_res_features_in_sam, as every official SAM 2 configuration)")
        self.model = copy.deepcopy(model).cpu().eval()
        self.img_size = self.model.image_size
        self.multimask_output = multimask_output

    def embed_points(self, point_coords: torch.Tensor, point_labels: torch.Tensor) -> torch.Tensor:
        """1 x N x 2 input-frame coordinates and 1 x N labels -> 1 x N' x C prompt tokens.

        Each point's token is the positional encoding of its pixel's centre plus the learned vector of its
        label (0, 1: a click; 2, 3: a box corner); a padding point (-1) is the "not a point" vector alone.
        N' = N when a padding point is among the inputs, else N + 1: one is appended, as SAM 2 always has one.
        """
        encoder = self.model.sam_prompt_encoder
        embedding = encoder.pe_layer.forward_with_coords(point_coords + 0.5, (self.img_size, self.img_size))
        labels = point_labels.unsqueeze(-1)  # 1 x N x 1
        embedding = torch.where(labels == PADDING_LABEL, encoder.not_a_point_embed.weight, embedding)  # 1 x N x C
        for label, point_embedding in enumerate(encoder.point_embeddings):  # labels 0, 1, 2, 3
            weight = cast(nn.Embedding, point_embedding).weight  # (torch types a ModuleList's items as Module)
            embedding = embedding + torch.where(labels == label, weight, 0.0)

        # append a padding token, then keep it only if the inputs had none: N + 1 - (any label is -1) tokens
        padding = encoder.not_a_point_embed.weight.reshape(1, 1, -1)  # 1 x 1 x C
        embedding = torch.cat([embedding, padding], dim=1)  # 1 x (N + 1) x C
        has_padding = (point_labels == PADDING_LABEL).any().to(torch.int64)  # 0-dim: 1 if the inputs have one
        n_points = torch.ones_like(point_labels[0], dtype=torch.int64).sum()  # 0-dim N (a dynamic axis)
        return embedding[:, : n_points + 1 - has_padding]

    def embed_mask(self, mask_input: torch.Tensor, has_mask_input: torch.Tensor) -> torch.Tensor:
        """The dense embedding 1 x C x h x w: of ``mask_input`` (1 x 1 x 4h x 4w) when ``has_mask_input`` is 1,
        else the learned "no mask" vector at every position."""
        encoder = self.model.sam_prompt_encoder
        mask_embedding = encoder.mask_downscaling(mask_input)  # 1 x C x h x w
        no_mask = encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)  # 1 x C x 1 x 1
        return has_mask_input * mask_embedding + (1 - has_mask_input) * no_mask

    @staticmethod
    def upscale_masks(low_res_masks: torch.Tensor, orig_im_size: torch.Tensor) -> torch.Tensor:
        """1 x M x 4h x 4w logits -> 1 x M x H x W (bilinear, straight to the image's size, as SAM 2's predictor)."""
        size = orig_im_size.to(torch.int64)
        # 0-dim tensors, not ints, on purpose: the traced graph then keeps the output size an input of the graph
        return F.interpolate(low_res_masks, size=(size[0], size[1]),  # pyright: ignore[reportArgumentType]
                             mode="bilinear", align_corners=False)

    @torch.no_grad()
    def forward(self, image_embed: torch.Tensor, high_res_feats_0: torch.Tensor, high_res_feats_1: torch.Tensor,
                point_coords: torch.Tensor, point_labels: torch.Tensor, mask_input: torch.Tensor,
                has_mask_input: torch.Tensor, orig_im_size: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        sparse = self.embed_points(point_coords, point_labels)  # 1 x N' x C
        dense = self.embed_mask(mask_input, has_mask_input)  # 1 x C x h x w
        # SAM2MaskDecoder.forward: masks 1..3 with multimask_output, else the single mask or its stable substitute
        low_res_masks, iou_predictions, _, _ = self.model.sam_mask_decoder(
            image_embeddings=image_embed, image_pe=self.model.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=self.multimask_output,
            repeat_image=False, high_res_features=[high_res_feats_0, high_res_feats_1])  # 1 x M x 4h x 4w, 1 x M
        masks = self.upscale_masks(low_res_masks, orig_im_size)  # from the unclamped logits, as the predictor
        return masks, iou_predictions, torch.clamp(low_res_masks, -32.0, 32.0)


def dummy_inputs(model: SAM2Base) -> dict[str, torch.Tensor]:
    """Inputs of the right shapes and dtypes for tracing (5 points, a mask, a 1500 x 2250 image)."""
    c = model.hidden_dim
    h = w = model.image_size // model.backbone_stride  # the embedding's grid: 64 x 64 at 1024 px
    decoder = model.sam_mask_decoder
    return {
        "image_embed": torch.randn(1, c, h, w),
        "high_res_feats_0": torch.randn(1, decoder.conv_s0.out_channels, 4 * h, 4 * w),
        "high_res_feats_1": torch.randn(1, decoder.conv_s1.out_channels, 2 * h, 2 * w),
        "point_coords": torch.randint(0, model.image_size, (1, 5, 2)).float(),
        "point_labels": torch.tensor([[1.0, 0.0, 2.0, 3.0, -1.0]]),
        "mask_input": torch.randn(1, 1, 4 * h, 4 * w),
        "has_mask_input": torch.tensor([1.0]),
        "orig_im_size": torch.tensor([1500.0, 2250.0]),
    }


def image_inputs(predictor: SAM2ImagePredictor) -> dict[str, np.ndarray]:
    """The graph's three image inputs for the image set on ``predictor`` (after ``set_image``), float32 arrays."""
    if not predictor._is_image_set or predictor._is_batch:
        raise RuntimeError("set one image with predictor.set_image(...) first")
    features = predictor._features
    assert features is not None, "set_image sets the features with _is_image_set"
    high_res = features["high_res_feats"]
    return {"image_embed": features["image_embed"].float().cpu().numpy(),
            "high_res_feats_0": high_res[0].float().cpu().numpy(),
            "high_res_feats_1": high_res[1].float().cpu().numpy()}


def export_sam2_onnx(model: SAM2Base, path: str | os.PathLike, opset: int = 17,
                     multimask_output: bool = True) -> Path:
    """Write the decoder graph of ``model`` to ``path`` (written beside it, then moved into place); returns the path.

    The number of points is a dynamic axis (``num_points``); the masks' size follows ``orig_im_size``.
    Needs the ``onnx`` package (``pip install samwidgets[onnx]``); onnxruntime runs the result.
    """
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
    except ImportError as e:
        raise ImportError("exporting to ONNX needs the onnx package: pip install onnx onnxruntime "
                          "(or pip install samwidgets[onnx])") from e
    wrapper = SAM2OnnxModel(model, multimask_output=multimask_output)
    inputs = dummy_inputs(wrapper.model)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    return trace_to_onnx(wrapper, inputs, out, opset=opset, input_names=INPUT_NAMES, output_names=OUTPUT_NAMES,
                         dynamic_axes={"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"},
                                       "masks": {2: "image_height", 3: "image_width"}})
