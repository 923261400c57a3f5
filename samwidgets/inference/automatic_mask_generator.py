"""SamAutomaticMaskGenerator: segment everything in an image from a grid of point prompts.

Drop-in for ``segment_anything.SamAutomaticMaskGenerator`` (same constructor
arguments and defaults, same record keys and conventions)::

    from samwidgets.inference.automatic_mask_generator import SamAutomaticMaskGenerator, BUNDLED_MODEL_THRESHOLDS
    records = SamAutomaticMaskGenerator(sam).generate(image)          # an official model
    records = SamAutomaticMaskGenerator(load_default(), **BUNDLED_MODEL_THRESHOLDS).generate(image)

The reference's thresholds suit the official models; the bundled model's IoU
head is under-confident, so with them it keeps nothing (see BUNDLED_MODEL_THRESHOLDS).

The algorithm (paper section 7 and appendix B): prompt SAM with every point
of a regular grid (optionally also on overlapping crops of the image), keep
the 3 ambiguity masks of each point whose predicted IoU and stability score
pass their thresholds, remove duplicates with box NMS (within a crop by
predicted IoU, then across crops preferring the smaller crop), optionally
fill small holes and drop small islands.

Where it differs from the reference, on purpose:

- masks are scored and filtered on the decoder's *low-res* logits; only the
  survivors are upsampled to the image size, a few at a time, and kept as
  compressed RLE from then on. Memory stays bounded on large images and with
  many crops. The stability score is therefore the low-res one (close to,
  but not bit-equal with, the reference's full-size score);
- small regions are removed with scipy instead of OpenCV;
- NMS is written in torch (no torchvision);
- a mask that is empty at the image's size is dropped (the reference keeps
  it when the stability filter is off).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..modeling import Sam
from . import amg_utils as amg
from .images import ImageLike, as_rgb_uint8
from .predictor import SamPredictor

OUTPUT_MODES = ("binary_mask", "uncompressed_rle", "coco_rle")

#: Filtering thresholds for the bundled default model, chosen by ``samwidgets calibrate-generator`` on 30
#: BSDS500 train photos (the best F1 of masks against human segments at IoU 0.5; the record is
#: ``weights/generator_thresholds.json``). Its IoU head is under-confident and its logits soft (a stability
#: threshold of 0.5 already drops 95% of the masks), so the reference's 0.88 / 0.95 keep nothing.
BUNDLED_MODEL_THRESHOLDS = {"pred_iou_thresh": 0.3, "stability_score_thresh": 0.0}

#: Upsample at most this many pixels of masks at once (float32: 64 MB), whatever the image size.
_UPSAMPLE_PIXELS_PER_CHUNK = 16_000_000


@dataclass
class MaskCandidates:
    """Masks kept so far, as compressed RLE plus per-mask data; all indexed alike (K masks)."""

    rles: list[dict[str, Any]] = field(default_factory=list)  # K COCO RLEs of the full image, counts as bytes
    boxes: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 4, dtype=torch.int64))  # K x 4 XYXY, image
    iou_preds: torch.Tensor = field(default_factory=lambda: torch.zeros(0))  # K
    stability: torch.Tensor = field(default_factory=lambda: torch.zeros(0))  # K
    points: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 2, dtype=torch.float64))  # K x 2 (x, y)
    crop_boxes: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 4, dtype=torch.int64))  # K x 4 XYXY

    def __len__(self) -> int:
        return len(self.rles)

    def select(self, index: torch.Tensor) -> MaskCandidates:
        """The candidates at ``index`` (int64 indices, in that order)."""
        index = index.cpu()
        return MaskCandidates([self.rles[i] for i in index.tolist()], self.boxes[index], self.iou_preds[index],
                              self.stability[index], self.points[index], self.crop_boxes[index])

    @staticmethod
    def concat(parts: list[MaskCandidates]) -> MaskCandidates:
        """All candidates of ``parts``, in order."""
        if not parts:
            return MaskCandidates()
        return MaskCandidates(
            [rle for p in parts for rle in p.rles],
            torch.cat([p.boxes for p in parts]), torch.cat([p.iou_preds for p in parts]),
            torch.cat([p.stability for p in parts]), torch.cat([p.points for p in parts]),
            torch.cat([p.crop_boxes for p in parts]),
        )


def candidates_over_crops(rgb: np.ndarray, crop_n_layers: int, crop_overlap_ratio: float, crop_nms_thresh: float,
                          process_crop: Callable[[np.ndarray, list[int], int, tuple[int, int]], MaskCandidates],
                          ) -> MaskCandidates:
    """Every crop's candidates (``process_crop(rgb, crop_box, layer, image_size)``), duplicates between crops removed.

    With crops, box NMS across them prefers masks from smaller crops (as the reference does). Shared by
    SAM's generator and SAM 2's (``samwidgets.sam2.automatic_mask_generator``).
    """
    image_size = rgb.shape[:2]
    crop_boxes, layers = amg.generate_crop_boxes(image_size, crop_n_layers, crop_overlap_ratio)
    candidates = MaskCandidates.concat([
        process_crop(rgb, crop_box, layer, image_size) for crop_box, layer in zip(crop_boxes, layers)
    ])
    if len(crop_boxes) > 1 and len(candidates):
        prefer_small_crops = 1.0 / amg.box_area(candidates.crop_boxes)  # K
        keep = amg.nms(candidates.boxes, prefer_small_crops, crop_nms_thresh)
        candidates = candidates.select(keep)
    return candidates


def segmentation_of(rle: dict[str, Any], output_mode: str) -> Any:
    """A record's ``segmentation`` in ``output_mode``: COCO RLE (JSON), an H x W bool array, or uncompressed RLE."""
    if output_mode == "coco_rle":
        return amg.rle_to_json(rle)
    if output_mode == "binary_mask":
        return amg.decode_rle(rle)
    return amg.mask_to_uncompressed_rle(amg.decode_rle(rle))


class PointGridGenerator:
    """What SAM's and SAM 2's generators share: the point grids, the crops, the records.

    A generator prompts its predictor with every point of a grid, on the whole image and on the crops of
    ``crop_n_layers`` layers, keeps the good masks of each batch of points (:meth:`_process_batch`, the
    model's own), removes duplicates within each crop and then across crops, and turns the survivors into the
    reference's records. Subclasses set ``self.predictor`` (anything with ``set_image``) and say how a crop's
    image is let go (:meth:`_forget_image`).

    The arguments both generators take, as both references name them:
        points_per_side: points along each side of the grid (points_per_side**2 prompts); None when
            ``point_grids`` is given instead.
        points_per_batch: prompts run through the decoder at once.
        pred_iou_thresh: keep masks whose predicted IoU is above this (0 disables the filter).
        stability_score_thresh: keep masks whose stability score is at least this (0 disables).
        stability_score_offset: the logit shift (+/-) of the stability score.
        box_nms_thresh: box IoU above which the lower-scored of two masks of one crop is dropped.
        crop_n_layers: extra layers of crops; layer i has 2**i x 2**i crops.
        crop_nms_thresh: box IoU for removing duplicates between crops.
        crop_overlap_ratio: overlap of neighbouring crops of layer 1, as a fraction of the short side.
        crop_n_points_downscale_factor: layer i uses points_per_side / factor**i points per side.
        point_grids: explicit normalised (x, y in [0, 1]) grids, one per crop layer.
        min_mask_region_area: if > 0, small holes and islands are removed (each generator says how).
        output_mode: "binary_mask" (H x W bool array), "uncompressed_rle" (counts as a list) or
            "coco_rle" (counts as a str); RLE saves memory on large images.
    """

    #: a record's ``bbox`` and ``crop_box`` as floats (SAM 2's reference casts them) rather than integers
    float_boxes = False
    predictor: Any

    def __init__(self, points_per_side: int | None, points_per_batch: int, pred_iou_thresh: float,
                 stability_score_thresh: float, stability_score_offset: float, box_nms_thresh: float,
                 crop_n_layers: int, crop_nms_thresh: float, crop_overlap_ratio: float,
                 crop_n_points_downscale_factor: int, point_grids: list[np.ndarray] | None,
                 min_mask_region_area: int, output_mode: str) -> None:
        if (points_per_side is None) == (point_grids is None):
            raise ValueError("give exactly one of points_per_side (a regular grid) and point_grids (explicit grids)")
        if output_mode not in OUTPUT_MODES:
            raise ValueError(f"output_mode must be one of {OUTPUT_MODES}, got {output_mode!r}")
        if crop_n_layers < 0:
            raise ValueError(f"crop_n_layers must be >= 0, got {crop_n_layers}")
        if points_per_batch < 1:
            raise ValueError(f"points_per_batch must be >= 1, got {points_per_batch}")
        if points_per_side is not None:
            self.point_grids = amg.build_all_layer_point_grids(points_per_side, crop_n_layers,
                                                               crop_n_points_downscale_factor)
        else:
            assert point_grids is not None, "exactly one of the two is given (checked above)"
            self.point_grids = [np.asarray(g, dtype=np.float64).reshape(-1, 2) for g in point_grids]
            if len(self.point_grids) < crop_n_layers + 1:
                raise ValueError(f"point_grids has {len(self.point_grids)} grids but crop_n_layers={crop_n_layers} "
                                 f"needs {crop_n_layers + 1} (one per layer, the whole image first)")
        self.points_per_batch = points_per_batch
        self.pred_iou_thresh = pred_iou_thresh
        self.stability_score_thresh = stability_score_thresh
        self.stability_score_offset = stability_score_offset
        self.box_nms_thresh = box_nms_thresh
        self.crop_n_layers = crop_n_layers
        self.crop_nms_thresh = crop_nms_thresh
        self.crop_overlap_ratio = crop_overlap_ratio
        self.crop_n_points_downscale_factor = crop_n_points_downscale_factor
        self.min_mask_region_area = min_mask_region_area
        self.output_mode = output_mode

    # -- the whole image --------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, image: ImageLike) -> list[dict[str, Any]]:
        """Masks for the whole image, as the reference's records.

        image: H x W x 3 uint8 RGB (or anything :func:`samwidgets.inference.images.as_rgb_uint8` accepts).
        Each record has the reference's keys: ``segmentation`` (per ``output_mode``), ``area`` (pixels),
        ``bbox`` (XYWH, from the mask's first / last pixel indices as in the reference), ``predicted_iou``,
        ``point_coords`` ([[x, y]], the prompt, image pixels), ``stability_score`` and ``crop_box`` (XYWH of
        the crop the mask came from). Records are ordered by predicted IoU, then (with crops) smaller crops first.
        """
        rgb = as_rgb_uint8(image)  # H x W x 3
        candidates = self._clean_up(self.generate_candidates(rgb))
        return [self._record(candidates, i) for i in range(len(candidates))]

    @torch.no_grad()
    def generate_candidates(self, rgb: np.ndarray) -> MaskCandidates:
        """Run every crop and remove duplicates between crops: the kept masks as RLE, before the records."""
        return candidates_over_crops(rgb, self.crop_n_layers, self.crop_overlap_ratio, self.crop_nms_thresh,
                                     self._process_crop)

    def _clean_up(self, candidates: MaskCandidates) -> MaskCandidates:
        """What :meth:`generate` does to the candidates before the records (nothing here)."""
        return candidates

    def _record(self, c: MaskCandidates, i: int) -> dict[str, Any]:
        """The reference's record of candidate i."""
        rle = c.rles[i]
        box, crop_box = amg.box_xyxy_to_xywh(c.boxes[i]), amg.box_xyxy_to_xywh(c.crop_boxes[i])
        if self.float_boxes:
            box, crop_box = [float(v) for v in box], [float(v) for v in crop_box]
        return {
            "segmentation": segmentation_of(rle, self.output_mode),
            "area": amg.rle_area(rle),
            "bbox": box,
            "predicted_iou": float(c.iou_preds[i]),
            "point_coords": [c.points[i].tolist()],
            "stability_score": float(c.stability[i]),
            "crop_box": crop_box,
        }

    # -- one crop ---------------------------------------------------------------------------------
    def _process_crop(self, rgb: np.ndarray, crop_box: list[int], layer: int,
                      image_size: tuple[int, int]) -> MaskCandidates:
        """Masks from the point grid of one crop (XYXY pixel edges), deduplicated within the crop, image frame."""
        x0, y0, x1, y1 = crop_box
        crop = rgb[y0:y1, x0:x1]  # h x w x 3
        crop_size = crop.shape[:2]
        self.predictor.set_image(crop)  # encoded once (or served by the predictor's feature cache)
        points = self.point_grids[layer] * np.array(crop_size[::-1], dtype=np.float64)[None]  # P x 2, crop pixels
        found = MaskCandidates.concat([self._process_batch(points[s], crop_size, crop_box, image_size)
                                       for s in amg.batch_slices(len(points), self.points_per_batch)])
        self._forget_image()
        if len(found) == 0:
            return found
        keep = amg.nms(found.boxes, found.iou_preds, self.box_nms_thresh)  # best predicted IoU first
        found = found.select(keep)
        found.points = amg.uncrop_points(found.points, crop_box)
        found.crop_boxes = torch.tensor([crop_box] * len(found), dtype=torch.int64).reshape(-1, 4)
        return found

    def _process_batch(self, points: np.ndarray, crop_size: tuple[int, int], crop_box: list[int],
                       image_size: tuple[int, int]) -> MaskCandidates:
        """Prompt with a batch of points (P x 2, crop pixels); keep the good masks as RLE of the image.

        Boxes of the result are in the image's frame, points in the crop's.
        """
        raise NotImplementedError

    def _forget_image(self) -> None:
        """Let go of the crop's image once its points are done."""
        raise NotImplementedError

    # -- clean-up ---------------------------------------------------------------------------------
    @staticmethod
    def postprocess_small_regions(candidates: MaskCandidates, min_area: int, nms_thresh: float) -> MaskCandidates:
        """Fill holes and drop islands smaller than min_area in every mask, then NMS again.

        Masks that needed no change win ties against changed ones (score 1
        vs 0), as in the reference. Masks are decoded one at a time.
        """
        if len(candidates) == 0:
            return candidates
        new_rles, unchanged = [], []
        for rle in candidates.rles:
            mask = amg.decode_rle(rle)  # H x W
            mask, filled = amg.remove_small_regions(mask, min_area, mode="holes")
            mask, dropped = amg.remove_small_regions(mask, min_area, mode="islands")
            changed = filled or dropped
            unchanged.append(0.0 if changed else 1.0)
            new_rles.append(amg.encode_rle(mask[None])[0] if changed else rle)
        boxes = amg.rle_boxes(new_rles)  # K x 4
        keep = amg.nms(boxes, torch.tensor(unchanged), nms_thresh)
        cleaned = MaskCandidates(new_rles, boxes, candidates.iou_preds, candidates.stability, candidates.points,
                                 candidates.crop_boxes)
        return cleaned.select(keep)


class SamAutomaticMaskGenerator(PointGridGenerator):
    """Generate masks for a whole image from a grid of point prompts.

    Args (as in the reference; defaults chosen there for ViT-H): ``model``, the SAM model, and the grid, filter
    and crop arguments of both generators (see :class:`PointGridGenerator`), where
        min_mask_region_area: if > 0, fill holes and drop islands smaller than this, at full size (needs scipy);
        decoder_batch_size: (samwidgets only) prompts per mask-decoder call within a batch of
            points; None picks 8 on a CPU (faster there) and points_per_batch on a GPU.
    """

    predictor: SamPredictor

    def __init__(
        self,
        model: Sam,
        points_per_side: int | None = 32,
        points_per_batch: int = 64,
        pred_iou_thresh: float = 0.88,
        stability_score_thresh: float = 0.95,
        stability_score_offset: float = 1.0,
        box_nms_thresh: float = 0.7,
        crop_n_layers: int = 0,
        crop_nms_thresh: float = 0.7,
        crop_overlap_ratio: float = 512 / 1500,
        crop_n_points_downscale_factor: int = 1,
        point_grids: list[np.ndarray] | None = None,
        min_mask_region_area: int = 0,
        output_mode: str = "binary_mask",
        *,
        decoder_batch_size: int | None = None,
    ) -> None:
        if decoder_batch_size is not None and decoder_batch_size < 1:
            raise ValueError(f"decoder_batch_size must be >= 1 or None, got {decoder_batch_size}")
        super().__init__(points_per_side, points_per_batch, pred_iou_thresh, stability_score_thresh,
                         stability_score_offset, box_nms_thresh, crop_n_layers, crop_nms_thresh, crop_overlap_ratio,
                         crop_n_points_downscale_factor, point_grids, min_mask_region_area, output_mode)
        if min_mask_region_area > 0:
            amg.scipy_ndimage()  # fail now, with the install hint, rather than after the model has run
        self.predictor = SamPredictor(model)
        self.decoder_batch_size = decoder_batch_size

    def _clean_up(self, candidates: MaskCandidates) -> MaskCandidates:
        """With ``min_mask_region_area``: fill small holes, drop small islands and run NMS again."""
        if self.min_mask_region_area > 0:
            return self.postprocess_small_regions(candidates, self.min_mask_region_area,
                                                  max(self.box_nms_thresh, self.crop_nms_thresh))
        return candidates

    def _forget_image(self) -> None:
        self.predictor.reset_image()

    # -- one batch of points ----------------------------------------------------------------------
    def _process_batch(self, points: np.ndarray, crop_size: tuple[int, int], crop_box: list[int],
                       image_size: tuple[int, int]) -> MaskCandidates:
        """Scored on the decoder's low-res logits; only the masks that pass are upsampled (see the module)."""
        logits, rows, iou_preds = self._low_res_predictions(points, crop_size)  # R x S x S, R, P*3
        kept, stability = self._filter_low_res(logits, rows, iou_preds.cpu())  # K (of P*3), K
        if len(kept) == 0:
            return MaskCandidates()
        row_of = torch.full((len(iou_preds),), -1, dtype=torch.long)
        row_of[rows] = torch.arange(len(rows))  # where each decoded mask sits in `logits`
        rles, boxes, survivors = self._upsample_and_encode(logits[row_of[kept].to(logits.device)], crop_box,
                                                           image_size)
        point_of_mask = torch.as_tensor(points, dtype=torch.float64).repeat_interleave(
            len(iou_preds) // len(points), dim=0)  # (P*3) x 2
        idx = kept[survivors]
        return MaskCandidates(rles, boxes, iou_preds.cpu()[idx].float(), stability[survivors].float(),
                              point_of_mask[idx], torch.zeros(len(idx), 4, dtype=torch.int64))

    def _filter_low_res(self, logits: torch.Tensor, rows: torch.Tensor, iou_preds: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices (of the N masks) that pass both thresholds, and their stability.

        logits: R x S x S low-res logits of the masks ``rows`` (R indices of N;
        every mask above the IoU threshold is among them); iou_preds: N. As in
        the reference: predicted IoU strictly above pred_iou_thresh, stability
        at least stability_score_thresh; a threshold of 0 disables its filter.
        """
        kept = rows  # decoded masks only: the others were below the IoU threshold
        if self.pred_iou_thresh > 0.0:
            passed = iou_preds[kept] > self.pred_iou_thresh
            kept, logits = kept[passed], logits[passed.to(logits.device)]
        stability = amg.stability_score(self._valid_low_res(logits),
                                        self.predictor.model.mask_threshold, self.stability_score_offset).cpu()
        if self.stability_score_thresh > 0.0:
            stable = stability >= self.stability_score_thresh
            kept, stability = kept[stable], stability[stable]
        return kept, stability

    def _upsample_and_encode(self, logits: torch.Tensor, crop_box: list[int], image_size: tuple[int, int]
                             ) -> tuple[list[dict[str, Any]], torch.Tensor, torch.Tensor]:
        """Upsample the kept low-res masks (K x S x S logits) a few at a time, and keep them as RLE of the image.

        Masks that come within 20 px of an inner crop edge (probably cut by the
        crop), or that are empty at full size, are dropped. Returns the RLEs,
        their boxes (K' x 4, image frame, read off the RLE) and their positions among the K (K').
        """
        image_h, image_w = image_size
        rles, boxes, survivors = [], [], []
        for chunk in amg.batch_slices(len(logits), self._upsample_chunk(image_size)):
            masks = self.predictor.postprocess(logits[chunk][None])[0]  # k x h x w bool
            chunk_rles = amg.encode_rle(amg.uncrop_masks(masks, crop_box, image_h, image_w))  # k, of H x W masks
            del masks
            chunk_boxes = amg.rle_boxes(chunk_rles)  # k x 4
            good = ~amg.is_box_near_crop_edge(chunk_boxes, crop_box, [0, 0, image_w, image_h])  # k
            good &= torch.tensor([amg.rle_area(r) > 0 for r in chunk_rles])  # a mask that vanished is no mask
            rles += [r for r, g in zip(chunk_rles, good.tolist()) if g]
            boxes.append(chunk_boxes[good])
            survivors.append(torch.arange(chunk.start, chunk.stop)[good])
        return rles, torch.cat(boxes), torch.cat(survivors)

    def _low_res_predictions(self, points: np.ndarray, crop_size: tuple[int, int]
                             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The decoder's 3 masks per point, not upsampled, and only where one may pass the IoU threshold.

        Returns R x S x S low-res logits, their indices among the P*3 masks
        (R), and all P*3 IoU predictions. The IoU head runs before the mask
        upscaling, so the masks of a point whose 3 predicted IoUs are all at
        or below pred_iou_thresh (they would be dropped first thing) are never
        made: the same output as ``predictor.predict_torch`` then filtering,
        without the work. (No final upsampling to the image size either.)
        """
        p = self.predictor
        features = p.get_image_embedding()  # 1 x C x h x w, the crop's
        coords = p.transform.apply_coords(points, crop_size)  # P x 2, model frame
        coords_t = torch.as_tensor(coords, dtype=torch.float, device=p.device)[:, None]  # P x 1 x 2
        labels_t = torch.ones(coords_t.shape[:2], dtype=torch.int, device=p.device)  # P x 1
        image_pe = p.dense_pe()
        # shared by every prompt of the image (unless the model draws its points into the dense embedding)
        shared = p.model.prompt_encoder.dense_is_no_mask((coords_t, labels_t), None, None)
        prepared = p.prepared_image() if shared else None
        decoder = p.model.mask_decoder
        outputs = slice(1, None)  # the 3 ambiguity-aware masks (multimask output)
        logits, rows, iou_preds = [], [], []
        for s in amg.batch_slices(len(points), self._decoder_batch_size()):
            sparse, dense = p.model.prompt_encoder(points=(coords_t[s], labels_t[s]), boxes=None, masks=None)
            decoded = decoder.decode_tokens(features, image_pe, sparse, dense, prepared=prepared)
            chunk_iou = decoded.iou_pred[:, outputs]  # p x 3
            wanted = torch.arange(len(chunk_iou), device=chunk_iou.device)  # p
            if self.pred_iou_thresh > 0.0:
                wanted = wanted[(chunk_iou > self.pred_iou_thresh).any(dim=1)]
            if len(wanted):
                logits.append(decoder.masks_of(decoded, wanted)[:, outputs].flatten(0, 1))  # (w*3) x S x S
                first = (s.start + wanted.cpu()) * 3
                rows.append((first[:, None] + torch.arange(3)).flatten())
            iou_preds.append(chunk_iou)
        s_lo = 4 * features.shape[-1]
        empty = features.new_zeros((0, s_lo, s_lo))
        return (torch.cat(logits) if logits else empty, torch.cat(rows) if rows else torch.zeros(0, dtype=torch.long),
                torch.cat(iou_preds).flatten())

    def _decoder_batch_size(self) -> int:
        """Prompts per decoder call: all of a batch on a GPU, a few at a time on a CPU.

        On a CPU the decoder is limited by memory traffic (each prompt carries
        its own copy of the image tokens); a few prompts at a time stay in the
        cache and run 1.4-2x faster than 64 at once (measured with the default model on 2 cores).
        """
        if self.decoder_batch_size is not None:
            return self.decoder_batch_size
        return self.points_per_batch if self.predictor.device.type != "cpu" else min(self.points_per_batch, 8)

    def _valid_low_res(self, logits: torch.Tensor) -> torch.Tensor:
        """K x S x S low-res logits -> the part covering the image (the rest is the encoder's padding)."""
        s = logits.shape[-1]
        img_size = self.predictor.model.image_encoder.img_size
        input_size = self.predictor.input_size
        assert input_size is not None, "called while the crop is the predictor's image"
        in_h, in_w = input_size
        return logits[:, : -(-in_h * s // img_size), : -(-in_w * s // img_size)]  # K x s_h x s_w (ceil)

    def _upsample_chunk(self, image_size: tuple[int, int]) -> int:
        """How many masks to upsample at once so that at most ~_UPSAMPLE_PIXELS_PER_CHUNK float pixels exist."""
        img_size = self.predictor.model.image_encoder.img_size
        per_mask = max(image_size[0] * image_size[1], img_size * img_size)
        return max(1, _UPSAMPLE_PIXELS_PER_CHUNK // per_mask)


def benchmark_generation(model: Sam, image: ImageLike, points_per_side: int = 32,
                         warmup: bool = True, **generator_kwargs: Any) -> dict[str, Any]:
    """Time one automatic generation on ``image`` from scratch (image encoder included, no crops by default).

    A fresh generator (empty embedding cache) is timed; ``warmup`` first runs
    a separate one so that one-off costs (lazy imports, allocator) are not
    counted. Returns {"seconds", "masks", "points", "encoder_seconds",
    "image_size", "threads"}.
    """
    rgb = as_rgb_uint8(image)
    crop_n_layers = generator_kwargs.get("crop_n_layers", 0)
    overlap = generator_kwargs.get("crop_overlap_ratio", 512 / 1500)
    _, layers = amg.generate_crop_boxes(rgb.shape[:2], crop_n_layers, overlap)
    if warmup:
        SamAutomaticMaskGenerator(model, points_per_side=points_per_side, **generator_kwargs).generate(rgb)
    generator = SamAutomaticMaskGenerator(model, points_per_side=points_per_side, **generator_kwargs)
    start = time.perf_counter()
    records = generator.generate(rgb)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "masks": len(records),
        "points": sum(len(generator.point_grids[layer]) for layer in layers),
        "encoder_seconds": generator.predictor.last_encode_seconds,
        "image_size": tuple(rgb.shape[:2]),
        "threads": torch.get_num_threads(),
    }
