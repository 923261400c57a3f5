"""SAM's prompt encoder and mask decoder as one ONNX graph, with the reference's inputs and outputs.

Every web demo of SAM runs the image encoder once (on a server, or ahead of time) and the light
decoder in the browser or an app, through onnxruntime. The reference ships the graph for that
(``segment_anything.utils.onnx.SamOnnxModel``, ``scripts/export_onnx_model.py``); this module gives the
same graph for samwidgets models, so applications built on the reference's export work unchanged:

inputs
    ``image_embeddings`` 1 x C x h x w (``SamPredictor.get_image_embedding()``),
    ``point_coords`` 1 x N x 2 float (x, y) in the resized frame (``predictor.transform.apply_coords``),
    ``point_labels`` 1 x N float: 1 positive, 0 negative, 2 / 3 a box's top-left / bottom-right corner,
    -1 a padding point (the reference's demo adds one (0, 0, -1) when there is no box),
    ``mask_input`` 1 x 1 x 4h x 4w float (low-res logits of an earlier prediction),
    ``has_mask_input`` 1 float (1: use ``mask_input``), ``orig_im_size`` 2 float (H, W of the photo);
outputs
    ``masks`` 1 x M x H x W logits at the photo's size, ``iou_predictions`` 1 x M,
    ``low_res_masks`` 1 x M x 4h x 4w; M = 4 (output 0: the single-mask output, 1..3: the three
    ambiguity-aware masks), or 1 with ``return_single_mask`` (the reference's choice: output 0 when
    there are more than 2 points, else the best scored of the three);
    with ``return_extra_metrics`` also ``stability_scores`` and ``areas`` (between the scores and the
    low-res masks, as in the reference).

Models with ``dense_prompts`` (the bundled ``default_cnn``) also draw the clicks and the box on the
embedding grid; the graph does that from the same inputs (points labelled 0 / 1, corners labelled 2 / 3).

The graph is traced from the plain modeling code (``samwidgets/modeling``), which needs no
data-dependent control flow, with the TorchScript-based exporter (``dynamo=False``): the
torch.export-based exporter, the default from torch 2.9, cannot express the resize to
``orig_im_size`` (a size read from an input's values) and fails on the reference's script.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..modeling import Sam
from ..modeling.click_maps import ClickMapPromptEncoder
from ..modeling.fast import enable_fast_paths
from .amg_utils import stability_score

INPUT_NAMES = ["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input", "orig_im_size"]
OUTPUT_NAMES = ["masks", "iou_predictions", "low_res_masks"]
EXTRA_OUTPUT_NAMES = ["masks", "iou_predictions", "stability_scores", "areas", "low_res_masks"]


class SamOnnxModel(nn.Module):
    """Prompt encoder + mask decoder + upscaling to the photo, for export (the reference's ``SamOnnxModel``).

    Args:
        model: the SAM model (not changed: the wrapper holds a copy running the plain modeling code).
        return_single_mask: one mask per call, chosen as the reference chooses (see the module docstring).
        use_stability_score: the scores are stability scores of the low-res masks instead of the IoU head's.
        return_extra_metrics: also output the stability score and the area (pixels) of every mask.
        gelu_approximate: tanh-approximate GELU (runtimes without an exact erf, as some WebGL backends).
        stability_score_offset: the logit offset of the stability score (1.0, as the reference).
    """

    def __init__(self, model: Sam, return_single_mask: bool = False, use_stability_score: bool = False,
                 return_extra_metrics: bool = False, gelu_approximate: bool = False,
                 stability_score_offset: float = 1.0) -> None:
        super().__init__()
        model = enable_fast_paths(copy.deepcopy(model).cpu().eval(), False)  # the plain code traces cleanly
        if gelu_approximate:
            for module in model.modules():
                if isinstance(module, nn.GELU):
                    module.approximate = "tanh"
        self.model = model
        self.img_size = model.image_encoder.img_size
        self.return_single_mask = return_single_mask
        self.use_stability_score = use_stability_score
        self.return_extra_metrics = return_extra_metrics
        self.stability_score_offset = stability_score_offset

    @staticmethod
    def resize_longest_image_size(input_image_size: torch.Tensor, longest_side: int) -> torch.Tensor:
        """(H, W) of the photo resized so its long side is ``longest_side``, rounded as ResizeLongestSide does."""
        input_image_size = input_image_size.to(torch.float32)
        scale = longest_side / torch.max(input_image_size)
        return torch.floor(scale * input_image_size + 0.5).to(torch.int64)

    def _embed_points(self, point_coords: torch.Tensor, point_labels: torch.Tensor) -> torch.Tensor:
        """1 x N x 2 coordinates and 1 x N labels -> 1 x N x C tokens (label -1: the "not a point" token)."""
        encoder = self.model.prompt_encoder
        coords = (point_coords + 0.5) / self.img_size  # the centre of the pixel, in [0, 1]
        embedding = encoder.pe_layer._pe_encoding(coords)  # 1 x N x C
        labels = point_labels.unsqueeze(-1).expand_as(embedding)
        embedding = embedding * (labels != -1)
        embedding = embedding + encoder.not_a_point_embed.weight * (labels == -1)
        for i in range(len(encoder.point_embeddings)):
            embedding = embedding + encoder.point_embedding(i) * (labels == i)
        return embedding

    def _embed_masks(self, mask_input: torch.Tensor, has_mask_input: torch.Tensor) -> torch.Tensor:
        """The dense embedding: of ``mask_input`` when ``has_mask_input`` is 1, else the "no mask" embedding."""
        encoder = self.model.prompt_encoder
        mask_embedding = has_mask_input * encoder.mask_downscaling(mask_input)  # 1 x C x h x w
        no_mask = encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        return mask_embedding + (1 - has_mask_input) * no_mask

    def _dense_prompt_maps(self, point_coords: torch.Tensor, point_labels: torch.Tensor) -> torch.Tensor:
        """For models with ``dense_prompts``: the clicks and the box drawn on the embedding grid, times their
        learned vectors, 1 x C x h x w, from the reference's inputs alone.

        Clicks are the points labelled 1 (positive) and 0 (negative); the box is the corners labelled 2 and
        3 (at most one box, as in the reference's demo).
        """
        encoder = self.model.prompt_encoder
        assert isinstance(encoder, ClickMapPromptEncoder), "called for models with click maps only"
        is_first, is_second = (point_labels == 2).to(point_coords.dtype), (point_labels == 3).to(point_coords.dtype)
        corner0 = (point_coords * is_first[..., None]).sum(dim=1)  # 1 x 2: the box's top-left corner, or 0
        corner1 = (point_coords * is_second[..., None]).sum(dim=1)  # 1 x 2: its bottom-right corner, or 0
        # without a box both corners are (0, 0): a box of no area, whose map is zero everywhere
        maps = encoder.dense_prompt_maps((point_coords, point_labels), torch.cat([corner0, corner1], dim=1), 1)
        return torch.einsum("bkhw,kc->bchw", maps, encoder.dense_prompt_embed.weight)

    def mask_postprocessing(self, masks: torch.Tensor, orig_im_size: torch.Tensor) -> torch.Tensor:
        """Low-res logits -> the padded input square -> crop the padding -> the photo's H x W."""
        masks = F.interpolate(masks, size=(self.img_size, self.img_size), mode="bilinear", align_corners=False)
        prepadded_size = self.resize_longest_image_size(orig_im_size, self.img_size)
        masks = masks[..., : prepadded_size[0], : prepadded_size[1]]
        orig_im_size = orig_im_size.to(torch.int64)
        h, w = orig_im_size[0], orig_im_size[1]
        # 0-d tensors as the size keep it an input of the traced graph (as the reference); typed as ints
        return F.interpolate(masks, size=(h, w), mode="bilinear", align_corners=False)  # pyright: ignore[reportArgumentType]

    def select_masks(self, masks: torch.Tensor, iou_preds: torch.Tensor, num_points: int
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """The reference's single mask: output 0 when more than 2 points (a box counts 2), else the best of 1..3."""
        score_reweight = torch.tensor([[1000] + [0] * (self.model.mask_decoder.num_mask_tokens - 1)],
                                      device=iou_preds.device)
        score = iou_preds + (num_points - 2.5) * score_reweight
        best_idx = torch.argmax(score, dim=1)
        rows = torch.arange(masks.shape[0])
        return masks[rows, best_idx, :, :].unsqueeze(1), iou_preds[rows, best_idx].unsqueeze(1)

    @torch.no_grad()
    def forward(self, image_embeddings: torch.Tensor, point_coords: torch.Tensor, point_labels: torch.Tensor,
                mask_input: torch.Tensor, has_mask_input: torch.Tensor, orig_im_size: torch.Tensor
                ) -> tuple[torch.Tensor, ...]:
        sparse_embedding = self._embed_points(point_coords, point_labels)  # 1 x N x C
        dense_embedding = self._embed_masks(mask_input, has_mask_input)  # 1 x C x h x w
        if isinstance(self.model.prompt_encoder, ClickMapPromptEncoder):
            dense_embedding = dense_embedding + self._dense_prompt_maps(point_coords, point_labels)
        masks, scores = self.model.mask_decoder.predict_masks(
            image_embeddings, self.model.prompt_encoder.get_dense_pe(), sparse_embedding, dense_embedding,
        )  # 1 x 4 x 4h x 4w, 1 x 4
        if self.use_stability_score:
            scores = stability_score(masks, self.model.mask_threshold, self.stability_score_offset)
        if self.return_single_mask:
            masks, scores = self.select_masks(masks, scores, point_coords.shape[1])
        upscaled_masks = self.mask_postprocessing(masks, orig_im_size)
        if self.return_extra_metrics:
            stability_scores = stability_score(upscaled_masks, self.model.mask_threshold,
                                               self.stability_score_offset)
            areas = (upscaled_masks > self.model.mask_threshold).sum(-1).sum(-1)
            return upscaled_masks, scores, stability_scores, areas, masks
        return upscaled_masks, scores, masks


def dummy_inputs(model: Sam) -> dict[str, torch.Tensor]:
    """Inputs of the right shapes and dtypes for tracing (5 points, no mask, a 1500 x 2250 photo)."""
    c = model.prompt_encoder.embed_dim
    h, w = model.prompt_encoder.image_embedding_size
    channels = c + (c // 8 * 16 if model.config.high_res_features else 0)  # the packed early features
    return {
        "image_embeddings": torch.randn(1, channels, h, w),
        "point_coords": torch.randint(0, model.image_encoder.img_size, (1, 5, 2)).float(),
        "point_labels": torch.randint(0, 4, (1, 5)).float(),
        "mask_input": torch.randn(1, 1, 4 * h, 4 * w),
        "has_mask_input": torch.tensor([1.0]),
        "orig_im_size": torch.tensor([1500.0, 2250.0]),
    }


def export_onnx(model: Sam, out: str | os.PathLike, *, opset: int = 17, return_single_mask: bool = False,
                use_stability_score: bool = False, return_extra_metrics: bool = False,
                gelu_approximate: bool = False) -> Path:
    """Write the decoder graph of ``model`` to ``out`` (written beside and moved into place); returns the path.

    The number of points is a dynamic axis (``num_points``). Needs the ``onnx`` package (``pip install
    samwidgets[onnx]``); onnxruntime runs the result.
    """
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
    except ImportError as e:
        raise ImportError("exporting to ONNX needs the onnx package: pip install onnx onnxruntime "
                          "(or pip install samwidgets[onnx])") from e
    wrapper = SamOnnxModel(model, return_single_mask=return_single_mask, use_stability_score=use_stability_score,
                           return_extra_metrics=return_extra_metrics, gelu_approximate=gelu_approximate)
    inputs = dummy_inputs(wrapper.model)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return trace_to_onnx(wrapper, inputs, out, opset=opset, input_names=INPUT_NAMES,
                         output_names=EXTRA_OUTPUT_NAMES if return_extra_metrics else OUTPUT_NAMES,
                         dynamic_axes={"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}})


def trace_to_onnx(wrapper: torch.nn.Module, inputs: dict[str, torch.Tensor], out: Path, *, opset: int,
                  input_names: list[str], output_names: list[str], dynamic_axes: dict[str, dict[int, str]]) -> Path:
    """Trace ``wrapper`` on ``inputs`` into the ONNX file ``out`` (TorchScript-based exporter), written to
    ``out.part`` first and renamed when complete, so a failed export never leaves a file that looks done.
    Shared by SAM's export and SAM 2's (``samwidgets.sam2.onnx``)."""
    import warnings

    part = out.with_name(out.name + ".part")
    with warnings.catch_warnings():
        # TracerWarning is documented API that torch.jit's __all__ leaves out
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # pyright: ignore[reportPrivateImportUsage]
        warnings.filterwarnings("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        torch.onnx.export(
            wrapper, tuple(inputs.values()), str(part), export_params=True, verbose=False,
            opset_version=opset, do_constant_folding=True, input_names=input_names, output_names=output_names,
            dynamic_axes=dynamic_axes, dynamo=False,
        )
    os.replace(part, out)
    return out
