"""SAM's zero-shot edge detector (the SAM paper, section 7.2 and appendix D.2): masks -> edges.

SAM was never trained to find edges, yet the boundaries of the masks it proposes are edges.
:func:`detect_edges` prompts SAM with a point grid, keeps every mask (box NMS only), and takes
the Sobel response of each mask's probability map near that mask's boundary; the filters and the
post-processing it shares with the baseline live in :mod:`.filters`.
"""

from __future__ import annotations

import numpy as np
import torch

from ...inference import amg_utils as amg
from ...inference.images import ImageLike, as_rgb_uint8
from ...inference.predictor import SamPredictor
from ...modeling import Sam
from .filters import mask_boundary_band, postprocess_edges, sobel

__all__ = ["detect_edges"]

#: Upsample and filter at most this many full-size mask pixels at once (float32: ~64 MB per buffer).
_PIXELS_PER_CHUNK = 16_000_000


def detect_edges(model_or_predictor: Sam | SamPredictor, image: ImageLike, points_per_side: int = 16,
                 points_per_batch: int = 64, box_nms_thresh: float = 0.7, boundary_radius: int = 1) -> np.ndarray:
    """Zero-shot edge map of ``image`` from SAM's masks: H x W float32 in [0, 1], thinned edges.

    model_or_predictor: a Sam model or a SamPredictor (its embedding cache is
    then reused). image: H x W x 3 uint8 RGB (or anything
    :func:`samwidgets.inference.images.as_rgb_uint8` accepts). points_per_side: the
    grid (16 -> 256 points -> 768 masks, as in the paper). box_nms_thresh:
    box IoU above which the less confident of two masks is dropped.
    boundary_radius: see :func:`mask_boundary_band`.

    Memory stays bounded: only the decoder's low-res logits of all masks are
    kept (768 x S x S float16, S = 128 for the bundled model, 256 for the
    official ones), and full-size maps exist for a chunk of masks at a time.
    """
    if points_per_side < 1 or points_per_batch < 1:
        raise ValueError("points_per_side and points_per_batch must be >= 1, "
                         f"got {points_per_side}, {points_per_batch}")
    if boundary_radius < 0:
        raise ValueError(f"boundary_radius must be >= 0, got {boundary_radius}")
    predictor = model_or_predictor if isinstance(model_or_predictor, SamPredictor) else SamPredictor(model_or_predictor)
    rgb = as_rgb_uint8(image)  # H x W x 3
    predictor.set_image(rgb)
    with torch.no_grad():
        logits, iou_preds, boxes = _grid_masks(predictor, points_per_side, points_per_batch)  # N x S x S, N, N x 4
        nonempty = torch.nonzero(amg.box_area(boxes) > 0)[:, 0]  # a mask empty at full size has no boundary
        keep = nonempty[amg.nms(boxes[nonempty], iou_preds[nonempty], box_nms_thresh)]  # K
        magnitude, grad_x, grad_y = _max_boundary_sobel(predictor, logits[keep], boundary_radius)  # H x W each
    return postprocess_edges(magnitude, grad_x, grad_y)


def _original_size(predictor: SamPredictor) -> tuple[int, int]:
    """(H, W) of the predictor's current image."""
    assert predictor.original_size is not None, "detect_edges sets the image first"
    return predictor.original_size


def _grid_masks(predictor: SamPredictor, points_per_side: int,
                points_per_batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every mask of a point grid, unfiltered: low-res logits N x S x S (float16, CPU), IoU N, boxes N x 4.

    N = 3 * points_per_side**2. Boxes are XYXY in image pixels, of the mask
    thresholded at full size (all zeros for a mask that is empty there).
    """
    h, w = _original_size(predictor)
    points = amg.build_point_grid(points_per_side) * np.array([w, h], dtype=np.float64)[None]  # P x 2
    all_logits, all_iou, all_boxes = [], [], []
    for s in amg.batch_slices(len(points), points_per_batch):
        logits, iou = _decode_points(predictor, points[s])  # p*3 x S x S, p*3
        all_logits.append(logits.half().cpu())
        all_iou.append(iou.float().cpu())
        all_boxes.append(_full_size_boxes(predictor, logits))
    return torch.cat(all_logits), torch.cat(all_iou), torch.cat(all_boxes)


def _decode_points(predictor: SamPredictor, points: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """The decoder's 3 ambiguity masks for each single-point prompt: (P*3) x S x S low-res logits, (P*3) IoU.

    points: P x 2 (x, y) in image pixels. On a CPU the decoder runs 8
    prompts at a time (faster there, see SamAutomaticMaskGenerator._decoder_batch_size).
    """
    coords = predictor.transform.apply_coords(points, _original_size(predictor))  # P x 2, model frame
    coords_t = torch.as_tensor(coords, dtype=torch.float, device=predictor.device)[:, None]  # P x 1 x 2
    labels_t = torch.ones(coords_t.shape[:2], dtype=torch.int, device=predictor.device)  # P x 1
    model = predictor.model
    step = len(points) if predictor.device.type != "cpu" else 8
    shared = model.prompt_encoder.dense_is_no_mask((coords_t, labels_t), None, None)
    prepared = predictor.prepared_image() if shared else None  # None too when the model runs the plain path
    extra = {"prepared": prepared} if prepared is not None else {}
    logits, iou = [], []
    for s in amg.batch_slices(len(points), max(1, step)):
        sparse, dense = model.prompt_encoder(points=(coords_t[s], labels_t[s]), boxes=None, masks=None)
        chunk_logits, chunk_iou = model.mask_decoder(
            image_embeddings=predictor.features, image_pe=predictor.dense_pe(), sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense, multimask_output=True, **extra,
        )  # p x 3 x S x S, p x 3
        logits.append(chunk_logits.flatten(0, 1))
        iou.append(chunk_iou.flatten(0, 1))
    return torch.cat(logits), torch.cat(iou)


def _chunks(predictor: SamPredictor, total: int) -> list[slice]:
    """Slices of ``total`` masks such that a chunk's full-size float maps stay under _PIXELS_PER_CHUNK."""
    h, w = _original_size(predictor)
    s = predictor.model.image_encoder.img_size
    per_mask = max(h * w, s * s)
    return list(amg.batch_slices(total, max(1, _PIXELS_PER_CHUNK // per_mask)))


def _upsample(predictor: SamPredictor, low_res: torch.Tensor) -> torch.Tensor:
    """Low-res logits k x S x S -> full-size logits k x H x W (float32, on the model's device)."""
    assert predictor.input_size is not None, "detect_edges sets the image first"
    return predictor.model.postprocess_masks(low_res.float().to(predictor.device)[:, None], predictor.input_size,
                                             _original_size(predictor))[:, 0]


def _full_size_boxes(predictor: SamPredictor, logits: torch.Tensor) -> torch.Tensor:
    """XYXY boxes (pixel edges) of the masks thresholded at full size: k x S x S -> k x 4 int64 (CPU)."""
    boxes = []
    for chunk in _chunks(predictor, len(logits)):
        masks = (_upsample(predictor, logits[chunk]) > predictor.model.mask_threshold).cpu()  # k x H x W
        boxes.append(amg.rle_boxes(amg.encode_rle(masks)))
    return torch.cat(boxes) if boxes else torch.zeros(0, 4, dtype=torch.int64)


def _max_boundary_sobel(predictor: SamPredictor, logits: torch.Tensor,
                        boundary_radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel-wise max over masks of their boundary-restricted Sobel magnitude, with the winner's gradient.

    logits: K x S x S low-res logits. Returns magnitude, gx, gy (H x W float32
    each); the gradient of the mask with the largest response at a pixel is
    kept there, to give edge NMS its direction.
    """
    h, w = _original_size(predictor)
    best = torch.zeros(h, w, device=predictor.device)  # H x W
    best_gx, best_gy = torch.zeros_like(best), torch.zeros_like(best)
    for chunk in _chunks(predictor, len(logits)):
        full = _upsample(predictor, logits[chunk])  # k x H x W logits
        gx, gy = sobel(torch.sigmoid(full))  # k x H x W each
        band = mask_boundary_band(full > predictor.model.mask_threshold, boundary_radius)  # k x H x W
        magnitude = torch.where(band, torch.hypot(gx, gy), torch.zeros((), device=full.device))  # k x H x W
        value, winner = magnitude.max(dim=0)  # H x W, H x W
        better = value > best
        best = torch.where(better, value, best)
        best_gx = torch.where(better, gx.gather(0, winner[None])[0], best_gx)
        best_gy = torch.where(better, gy.gather(0, winner[None])[0], best_gy)
    return best.cpu().numpy(), best_gx.cpu().numpy(), best_gy.cpu().numpy()
