"""``SAM2AutomaticMaskGenerator``: segment everything in an image with SAM 2, from a grid of point prompts.

Drop-in for ``sam2.automatic_mask_generator.SAM2AutomaticMaskGenerator`` (sam2 1.1.0): same constructor
arguments and defaults, same records::

    from samwidgets.sam2 import build_sam2, SAM2AutomaticMaskGenerator
    model = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", "sam2.1_hiera_tiny.pt")
    records = SAM2AutomaticMaskGenerator(model).generate(image)   # H x W x 3 uint8 RGB

The algorithm is SAM 1's (see :mod:`samwidgets.inference.automatic_mask_generator`): prompt the model
with every point of a regular grid, on the whole image and optionally on overlapping crops; keep the
masks whose predicted IoU and stability score pass their thresholds; drop masks cut by a crop's edge;
remove duplicates with box NMS, within a crop (by predicted IoU), then across crops (preferring smaller
crops). The building blocks are SAM 1's, reused from :mod:`samwidgets.inference.amg_utils` (the reference's
``sam2/utils/amg.py`` is a copy of SAM 1's).

What SAM 2's generator does differently from SAM 1's (as the reference does):

- ``mask_threshold`` is an argument (SAM 1 reads the model's); masks, stability scores and boxes use it;
- ``pred_iou_thresh`` defaults to 0.8 (SAM 1: 0.88);
- ``multimask_output=False`` asks one mask per point (SAM 2's decoder then falls back to the best of its
  three masks when the single one is unstable: "dynamic multimask");
- ``use_m2m``: every mask is decoded a second time with its own low-res logits as a mask prompt (and its
  point), one mask out ("mask to mask" refinement); the refined masks and IoUs replace the first ones
  before filtering;
- ``min_mask_region_area`` is handed to the predictor as ``max_hole_area`` and ``max_sprinkle_area``: holes
  and specks of at most that many *low-res* pixels (256 x 256 for a 1024 px model) are filled / removed in
  the logits before they are resized. The reference needs its CUDA extension for this and skips it (with a
  warning) without one; here it runs on any device (``samwidgets.sam2.transforms``). The full-size clean-up
  of SAM 1 (:meth:`postprocess_small_regions`) is not run by :meth:`generate`, as in the reference;
- ``bbox`` and ``crop_box`` are lists of floats (sam2's ``MaskData.to_numpy`` casts every tensor to float32;
  SAM 1's keeps the boxes' integers), ``point_coords`` float32 values.

Unlike samwidgets' SAM 1 generator, which scores the low-res logits to save memory, masks are scored at the
crop's full size, as both references do (a batch holds points_per_batch x 3 full-size logits).

Where it differs from the reference, on purpose:

- the stability score of a mask that is empty even at the lower threshold is 0 (the reference: NaN, 0/0);
- NMS is written in torch (no torchvision), with the same order (ties keep their order);
- a generator with crops whose masks are all filtered out returns no records (the reference raises an
  IndexError in its cross-crop NMS);
- masks are kept as compressed RLE (pycocotools) between steps; records are the reference's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..inference import amg_utils as amg
from ..inference.automatic_mask_generator import MaskCandidates, PointGridGenerator
from .model import SAM2Base
from .predictor import SAM2ImagePredictor


class SAM2AutomaticMaskGenerator(PointGridGenerator):
    """Generate masks for a whole image with SAM 2 from a grid of point prompts.

    Args (as the reference; defaults chosen there for SAM 2 with a Hiera-L backbone): ``model``, the SAM 2 model
    (:func:`samwidgets.sam2.build_sam2`), the grid, filter and crop arguments of both generators (see
    :class:`~samwidgets.inference.automatic_mask_generator.PointGridGenerator`), where
        min_mask_region_area: if > 0, fill holes and remove specks of at most this many low-res pixels
            (the predictor's ``max_hole_area`` / ``max_sprinkle_area``);
    and SAM 2's own:
        mask_threshold: logits above it are foreground.
        use_m2m: refine every mask once with its own low-res logits as a mask prompt.
        multimask_output: three masks per point (True) or one.
        **kwargs: accepted and ignored, as in the reference (whose ``from_pretrained`` passes the model's
            arguments through).

    The generator's :class:`~samwidgets.sam2.SAM2ImagePredictor` is ``self.predictor``: an image (or crop)
    seen before is not encoded again (its feature cache). SAM 1's full-size clean-up
    (:meth:`postprocess_small_regions`) is there for candidates of :meth:`generate_candidates`; as in the
    reference, :meth:`generate` does not run it.
    """

    float_boxes = True  # the reference's MaskData.to_numpy casts every tensor to float32
    predictor: SAM2ImagePredictor

    def __init__(
        self,
        model: SAM2Base,
        points_per_side: int | None = 32,
        points_per_batch: int = 64,
        pred_iou_thresh: float = 0.8,
        stability_score_thresh: float = 0.95,
        stability_score_offset: float = 1.0,
        mask_threshold: float = 0.0,
        box_nms_thresh: float = 0.7,
        crop_n_layers: int = 0,
        crop_nms_thresh: float = 0.7,
        crop_overlap_ratio: float = 512 / 1500,
        crop_n_points_downscale_factor: int = 1,
        point_grids: list[np.ndarray] | None = None,
        min_mask_region_area: int = 0,
        output_mode: str = "binary_mask",
        use_m2m: bool = False,
        multimask_output: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(points_per_side, points_per_batch, pred_iou_thresh, stability_score_thresh,
                         stability_score_offset, box_nms_thresh, crop_n_layers, crop_nms_thresh, crop_overlap_ratio,
                         crop_n_points_downscale_factor, point_grids, min_mask_region_area, output_mode)
        # holes and specks are cleaned in the predictor's low-res logits, as the reference does
        self.predictor = SAM2ImagePredictor(model, max_hole_area=min_mask_region_area,
                                            max_sprinkle_area=min_mask_region_area)
        self.mask_threshold = mask_threshold
        self.use_m2m = use_m2m
        self.multimask_output = multimask_output

    def _forget_image(self) -> None:
        self.predictor.reset_predictor()

    # -- one batch of points ----------------------------------------------------------------------
    def _process_batch(self, points: np.ndarray, crop_size: tuple[int, int], crop_box: list[int],
                       image_size: tuple[int, int]) -> MaskCandidates:
        """Prompt with a batch of points (p x 2, crop pixels) and keep the good masks, as RLE of the image.

        Boxes of the result are in the image's frame, points still in the crop's.
        """
        points_t = torch.as_tensor(points, dtype=torch.float32, device=self.predictor.device)  # p x 2
        logits, iou_preds, mask_points = self._decode(points_t, crop_size)  # K x h x w, K, K x 2
        logits, iou_preds, mask_points, stability = self._filter_by_quality(logits, iou_preds, mask_points)
        return self._encode_kept(logits > self.mask_threshold, iou_preds, stability, mask_points, crop_box,
                                 image_size)

    def _decode(self, points: torch.Tensor, crop_size: tuple[int, int]
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every mask of p positive clicks (p x 2, crop pixels), refined once with ``use_m2m``.

        Returns K = p * m full-size logits K x h x w, predicted IoUs K and each mask's click K x 2 (crop
        pixels), m = 3 masks per click (1 without ``multimask_output``).
        """
        coords = self.predictor._transforms.transform_coords(points, normalize=True, orig_hw=crop_size)  # p x 2
        labels = torch.ones(len(points), dtype=torch.int, device=points.device)  # p
        logits, iou_preds, low_res = self.predictor._predict(coords[:, None, :], labels[:, None],
                                                             multimask_output=self.multimask_output,
                                                             return_logits=True)  # p x m x h x w, p x m, p x m x S x S
        m = logits.shape[1]
        logits, iou_preds, low_res = logits.flatten(0, 1), iou_preds.flatten(0, 1), low_res.flatten(0, 1)
        if self.use_m2m:  # each mask decoded again, with its own low-res logits as the mask prompt
            logits, iou_preds = self.refine_with_m2m(coords.repeat_interleave(m, dim=0),
                                                     labels.repeat_interleave(m, dim=0), low_res,
                                                     self.points_per_batch)
            logits, iou_preds = logits[:, 0], iou_preds[:, 0]  # K x h x w, K
        return logits, iou_preds, points.repeat_interleave(m, dim=0)

    def _filter_by_quality(self, logits: torch.Tensor, iou_preds: torch.Tensor, points: torch.Tensor
                           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The masks (K x h x w logits, IoUs K, clicks K x 2) whose predicted IoU is above pred_iou_thresh and
        whose stability score is at least stability_score_thresh (a threshold of 0 turns its filter off),
        and their stability scores."""
        if self.pred_iou_thresh > 0.0:
            confident = iou_preds > self.pred_iou_thresh  # K
            logits, iou_preds, points = logits[confident], iou_preds[confident], points[confident]
        stability = amg.stability_score(logits, self.mask_threshold, self.stability_score_offset)  # K'
        if self.stability_score_thresh > 0.0:
            stable = stability >= self.stability_score_thresh  # K'
            logits, iou_preds, points, stability = logits[stable], iou_preds[stable], points[stable], stability[stable]
        return logits, iou_preds, points, stability

    def _encode_kept(self, masks: torch.Tensor, iou_preds: torch.Tensor, stability: torch.Tensor,
                     points: torch.Tensor, crop_box: list[int], image_size: tuple[int, int]) -> MaskCandidates:
        """K x h x w bool masks of a crop -> candidates: RLEs of the image's H x W, boxes in the image's frame;
        masks that come within 20 px of an inner edge of the crop (probably cut by it) are dropped."""
        image_h, image_w = image_size
        rles = amg.encode_rle(amg.uncrop_masks(masks, crop_box, image_h, image_w))  # K RLEs of H x W masks
        boxes = self._boxes_in_image(rles, crop_box)  # K x 4 XYXY
        not_cut = ~amg.is_box_near_crop_edge(boxes, crop_box, [0, 0, image_w, image_h])  # K
        return MaskCandidates(
            rles=[r for r, ok in zip(rles, not_cut.tolist()) if ok], boxes=boxes[not_cut],
            iou_preds=iou_preds.float().cpu()[not_cut], stability=stability.float().cpu()[not_cut],
            points=points.cpu()[not_cut], crop_boxes=torch.zeros(int(not_cut.sum()), 4, dtype=torch.int64))

    def refine_with_m2m(self, points: torch.Tensor, point_labels: torch.Tensor, low_res_masks: torch.Tensor,
                        points_per_batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode each mask again from its click and its own low-res logits (a mask prompt), one mask out.

        points: K x 2 in the model's input frame, point_labels: K, low_res_masks: K x S x S logits; decoded
        ``points_per_batch`` at a time. Returns logits K x 1 x h x w and predicted IoUs K x 1 (the reference's
        method, arguments and shapes).
        """
        new_logits, new_ious = [], []
        for s in amg.batch_slices(len(points), points_per_batch):
            logits, ious, _ = self.predictor._predict(points[s, None, :], point_labels[s, None],
                                                      mask_input=low_res_masks[s, None], multimask_output=False,
                                                      return_logits=True)  # k x 1 x h x w, k x 1
            new_logits.append(logits)
            new_ious.append(ious)
        return torch.cat(new_logits), torch.cat(new_ious)

    @staticmethod
    def _boxes_in_image(rles: list[dict[str, Any]], crop_box: list[int]) -> torch.Tensor:
        """XYXY boxes (image frame, pixel indices) of K uncropped masks: K x 4 int64.

        An empty mask's box is (0, 0, 0, 0) *in the crop's frame*, as the reference computes boxes before
        uncropping them: (x0, y0, x0, y0) in the image.
        """
        boxes = amg.rle_boxes(rles)  # K x 4, (0, 0, 0, 0) where empty
        empty = torch.tensor([amg.rle_area(r) == 0 for r in rles], dtype=torch.bool).reshape(-1)  # K
        x0, y0 = crop_box[:2]
        boxes[empty] = torch.tensor([x0, y0, x0, y0], dtype=torch.int64)
        return boxes
