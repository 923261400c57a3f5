"""Zero-shot edge detection with SAM, as in the SAM paper (section 7.2, appendix D.2).

SAM was never trained to find edges, yet the boundaries of the masks it
proposes are edges. The recipe::

    edges = detect_edges(load_default(), image)          # H x W float32 in [0, 1], thin edges

1. prompt SAM with a 16 x 16 grid of points, 3 masks each (768 masks), with
   no predicted-IoU or stability filtering;
2. remove redundant masks with box NMS (scored by predicted IoU);
3. for every remaining mask, Sobel-filter its *unthresholded* probability map
   (sigmoid of the upsampled logits) and zero the responses that are away from
   the mask's outer boundary pixels;
4. pixel-wise max over the masks, linear normalisation to [0, 1];
5. edge NMS along the gradient direction, then morphological thinning.

Evaluation follows the BSDS500 protocol (:func:`edge_metrics`: ODS, OIS, AP,
R50) against the object boundaries of held-out procedural scenes
(:func:`scene_boundaries`, :func:`evaluate_edges`), with a plain Sobel of the
image as a baseline (:func:`sobel_baseline`).

The paper's BSDS500 numbers for SAM ViT-H (ODS .768, OIS .786, AP .794,
R50 .928) are on real photographs against human annotations; numbers on the
procedural scenes of this kit, with the small bundled model, are **not
comparable** to them (other images, other ground truth, another model).

Needs scipy and scikit-image (``pip install scipy scikit-image``) for the
distance transform and the thinning; they are imported when first needed.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .. import amg_utils as amg
from ..images import ImageLike, as_rgb_uint8
from ..modeling import Sam
from ..predictor import SamPredictor

__all__ = [
    "BSDS_SAM_VIT_H",
    "detect_edges",
    "edge_metrics",
    "edge_nms",
    "evaluate_edges",
    "mask_boundary_band",
    "scene_boundaries",
    "sobel",
    "sobel_baseline",
    "thin_edges",
]

#: The paper's zero-shot numbers for SAM (ViT-H) on BSDS500 (Table 3). Real photos, human annotations:
#: not comparable with the procedural-scene numbers of :func:`evaluate_edges`.
BSDS_SAM_VIT_H = {"ods": 0.768, "ois": 0.786, "ap": 0.794, "r50": 0.928}

#: Upsample and filter at most this many full-size mask pixels at once (float32: ~64 MB per buffer).
_PIXELS_PER_CHUNK = 16_000_000



# ----------------------------------------------------------------------------------------------
# optional dependencies
# ----------------------------------------------------------------------------------------------


def _skimage_thin():
    try:
        from skimage.morphology import thin
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("edge thinning needs scikit-image: pip install scikit-image") from e
    return thin


def _scipy_distance_transform():
    try:
        from scipy.ndimage import distance_transform_edt
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("edge matching needs scipy: pip install scipy") from e
    return distance_transform_edt


# ----------------------------------------------------------------------------------------------
# filters (torch, batched)
# ----------------------------------------------------------------------------------------------


def sobel(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel derivatives of a batch of maps: N x H x W -> (gx, gy), each N x H x W float32.

    Borders are replicated, so the image frame itself gives no response.
    gx grows to the right (+x), gy downwards (+y).
    """
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=maps.device) / 8.0
    kernels = torch.stack([kx, kx.T])[:, None]  # 2 x 1 x 3 x 3
    padded = F.pad(maps.float()[:, None], (1, 1, 1, 1), mode="replicate")  # N x 1 x (H+2) x (W+2)
    grads = F.conv2d(padded, kernels)  # N x 2 x H x W
    return grads[:, 0], grads[:, 1]


def _dilate(masks: torch.Tensor, radius: int) -> torch.Tensor:
    """Binary dilation by a (2r+1) square: N x H x W bool -> N x H x W bool."""
    if radius <= 0:
        return masks
    k = 2 * radius + 1
    return F.max_pool2d(masks.float()[:, None], k, stride=1, padding=radius)[:, 0] > 0


def mask_boundary_band(masks: torch.Tensor, radius: int = 1) -> torch.Tensor:
    """Where a mask's Sobel responses are kept: near its outer boundary pixels. N x H x W bool -> same.

    The outer boundary pixels are the pixels just outside a mask that touch it
    (8-neighbourhood): ``dilate(mask, 1) & ~mask``. The paper zeroes Sobel
    responses "not intersected with the outer boundary pixels of a mask";
    here a response is kept within ``radius`` pixels of those pixels, so the
    band covers the probability map's transition on both sides of the
    boundary (a 3 x 3 Sobel response is itself 3 pixels wide) and the later
    edge NMS, not this mask, picks the exact edge pixel. A mask touching the
    image frame has no outer boundary there, so the frame is never an edge.
    """
    outer = _dilate(masks, 1) & ~masks  # N x H x W
    return _dilate(outer, radius)


def edge_nms(magnitude: np.ndarray, grad_x: np.ndarray, grad_y: np.ndarray) -> np.ndarray:
    """Non-maximum suppression along the gradient direction (Canny-style): H x W -> H x W float32.

    A pixel keeps its magnitude only if it is at least as large as the
    magnitudes one pixel away on either side along its gradient direction
    (bilinearly interpolated, as in the structured-edges ``edgesNms``), so a
    ridge a few pixels wide is reduced to its crest. Ties are broken towards
    one side (``>`` before, ``>=`` after), so a flat two-pixel crest keeps one pixel.
    """
    mag = np.asarray(magnitude, dtype=np.float32)
    norm = np.hypot(grad_x, grad_y)
    norm = np.where(norm > 0, norm, 1.0)
    dx, dy = (grad_x / norm).astype(np.float32), (grad_y / norm).astype(np.float32)  # H x W unit direction
    ys, xs = np.mgrid[0 : mag.shape[0], 0 : mag.shape[1]].astype(np.float32)  # H x W
    ahead = _bilinear(mag, xs + dx, ys + dy)  # H x W
    behind = _bilinear(mag, xs - dx, ys - dy)  # H x W
    keep = (mag > behind) & (mag >= ahead) & (mag > 0)
    return np.where(keep, mag, 0.0).astype(np.float32)


def _bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``image`` (H x W) sampled at float positions (x, y), clamped to the image: -> shape of x."""
    h, w = image.shape
    x = np.clip(x, 0, w - 1)
    y = np.clip(y, 0, h - 1)
    x0 = np.minimum(np.floor(x).astype(np.int64), w - 2) if w > 1 else np.zeros(x.shape, np.int64)
    y0 = np.minimum(np.floor(y).astype(np.int64), h - 2) if h > 1 else np.zeros(y.shape, np.int64)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = x - x0, y - y0
    top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
    bottom = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def thin_edges(edges: np.ndarray) -> np.ndarray:
    """Morphological thinning of the non-zero support of an edge map: H x W -> H x W float32.

    Values are kept on the thinned skeleton and zeroed elsewhere (needs scikit-image).
    """
    skeleton = _skimage_thin()(np.asarray(edges) > 0)  # H x W bool
    return np.where(skeleton, edges, 0.0).astype(np.float32)


def _postprocess(magnitude: np.ndarray, grad_x: np.ndarray, grad_y: np.ndarray) -> np.ndarray:
    """Normalise to [0, 1], edge NMS, thinning: the shared tail of SAM's and the baseline's edge maps."""
    peak = float(magnitude.max())
    if peak <= 0:
        return np.zeros(magnitude.shape, dtype=np.float32)
    return thin_edges(edge_nms(magnitude / peak, grad_x, grad_y))


# ----------------------------------------------------------------------------------------------
# SAM edges
# ----------------------------------------------------------------------------------------------


def detect_edges(model_or_predictor: Sam | SamPredictor, image: ImageLike, points_per_side: int = 16,
                 points_per_batch: int = 64, box_nms_thresh: float = 0.7, boundary_radius: int = 1) -> np.ndarray:
    """Zero-shot edge map of ``image`` from SAM's masks: H x W float32 in [0, 1], thinned edges.

    model_or_predictor: a Sam model or a SamPredictor (its embedding cache is
    then reused). image: H x W x 3 uint8 RGB (or anything
    :func:`samwidgets.images.as_rgb_uint8` accepts). points_per_side: the
    grid (16 -> 256 points -> 768 masks, as in the paper). box_nms_thresh:
    box IoU above which the less confident of two masks is dropped.
    boundary_radius: see :func:`mask_boundary_band`.

    Memory stays bounded: only the decoder's low-res logits of all masks are
    kept (768 x S x S float16, S = 128 for the bundled model, 256 for the
    official ones), and full-size maps exist for a chunk of masks at a time.
    """
    if points_per_side < 1 or points_per_batch < 1:
        raise ValueError(f"points_per_side and points_per_batch must be >= 1, got {points_per_side}, {points_per_batch}")
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
    return _postprocess(magnitude, grad_x, grad_y)


def _grid_masks(predictor: SamPredictor, points_per_side: int,
                points_per_batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every mask of a point grid, unfiltered: low-res logits N x S x S (float16, CPU), IoU N, boxes N x 4.

    N = 3 * points_per_side**2. Boxes are XYXY in image pixels, of the mask
    thresholded at full size (all zeros for a mask that is empty there).
    """
    h, w = predictor.original_size
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
    coords = predictor.transform.apply_coords(points, predictor.original_size)  # P x 2, model frame
    coords_t = torch.as_tensor(coords, dtype=torch.float, device=predictor.device)[:, None]  # P x 1 x 2
    labels_t = torch.ones(coords_t.shape[:2], dtype=torch.int, device=predictor.device)  # P x 1
    model = predictor.model
    step = len(points) if predictor.device.type != "cpu" else 8
    shared = model.prompt_encoder.dense_is_no_mask((coords_t, labels_t), None, None)
    prepared = predictor.prepared_image() if shared else None
    logits, iou = [], []
    for s in amg.batch_slices(len(points), max(1, step)):
        sparse, dense = model.prompt_encoder(points=(coords_t[s], labels_t[s]), boxes=None, masks=None)
        chunk_logits, chunk_iou = model.mask_decoder(
            image_embeddings=predictor.features, image_pe=predictor.dense_pe(), sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense, multimask_output=True, prepared=prepared,
        )  # p x 3 x S x S, p x 3
        logits.append(chunk_logits.flatten(0, 1))
        iou.append(chunk_iou.flatten(0, 1))
    return torch.cat(logits), torch.cat(iou)


def _chunks(predictor: SamPredictor, total: int) -> list[slice]:
    """Slices of ``total`` masks such that a chunk's full-size float maps stay under _PIXELS_PER_CHUNK."""
    h, w = predictor.original_size
    s = predictor.model.image_encoder.img_size
    per_mask = max(h * w, s * s)
    return list(amg.batch_slices(total, max(1, _PIXELS_PER_CHUNK // per_mask)))


def _upsample(predictor: SamPredictor, low_res: torch.Tensor) -> torch.Tensor:
    """Low-res logits k x S x S -> full-size logits k x H x W (float32, on the model's device)."""
    return predictor.model.postprocess_masks(low_res.float().to(predictor.device)[:, None], predictor.input_size,
                                             predictor.original_size)[:, 0]


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
    h, w = predictor.original_size
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


def sobel_baseline(image: ImageLike) -> np.ndarray:
    """The baseline: a plain Sobel of the image, post-processed like SAM's (normalise, edge NMS, thinning).

    Per pixel, the colour channel with the largest gradient gives magnitude
    and direction (no smoothing, no learning). Returns H x W float32 in [0, 1].
    """
    rgb = torch.as_tensor(as_rgb_uint8(image)).permute(2, 0, 1).float() / 255.0  # 3 x H x W
    gx, gy = sobel(rgb)  # 3 x H x W each
    magnitude = torch.hypot(gx, gy)  # 3 x H x W
    value, channel = magnitude.max(dim=0)  # H x W
    pick = channel[None]
    return _postprocess(value.numpy(), gx.gather(0, pick)[0].numpy(), gy.gather(0, pick)[0].numpy())


# ----------------------------------------------------------------------------------------------
# ground truth
# ----------------------------------------------------------------------------------------------


def scene_boundaries(scene: Any, level: str | int = "subpart") -> np.ndarray:
    """Ground-truth boundary map of a procedural scene: H x W bool, one pixel wide.

    level: the finest level whose boundaries are included: "whole" (0) the
    visible outlines of whole objects, "part" (1) also their parts,
    "subpart" (2, the default) also the subparts, i.e. every drawn region.

    Why the default is every level: the scene generator paints each part and
    subpart with a fill chosen to contrast with its surroundings, so their
    outlines are real, visible image edges; with whole objects only, every
    detector would be charged false positives for edges that are plainly
    there. BSDS annotators likewise mark region boundaries at the
    granularity they see, not only object outlines. (Edges *inside* a fill,
    such as stripes, checkers or photo texture, are not in the ground truth
    at any level, as on BSDS.)

    A pixel is a boundary pixel when a mask changes between it and its right
    or lower neighbour (as BSDS's ``seg2bmap``), so boundaries are one pixel
    wide and the image frame is not a boundary.
    """
    finest = _level_index(level)
    masks = np.asarray(scene.masks, dtype=bool)[np.asarray(scene.levels) <= finest]  # M' x H x W
    boundary = np.zeros(np.asarray(scene.image).shape[:2], dtype=bool)  # H x W
    for mask in masks:
        boundary[:, :-1] |= mask[:, :-1] != mask[:, 1:]
        boundary[:-1, :] |= mask[:-1, :] != mask[1:, :]
    return boundary


def _level_index(level: str | int) -> int:
    """'whole' / 'part' / 'subpart' (or 0 / 1 / 2) -> 0 / 1 / 2."""
    names = ("whole", "part", "subpart")
    if isinstance(level, str):
        if level not in names:
            raise ValueError(f"level must be one of {names} (or 0, 1, 2), got {level!r}")
        return names.index(level)
    if int(level) not in (0, 1, 2):
        raise ValueError(f"level must be one of {names} (or 0, 1, 2), got {level!r}")
    return int(level)


# ----------------------------------------------------------------------------------------------
# metrics (BSDS protocol)
# ----------------------------------------------------------------------------------------------


def _threshold_values(thresholds: int | Sequence[float]) -> np.ndarray:
    """An int n -> n thresholds evenly inside (0, 1) (BSDS uses 99); a sequence -> those thresholds, sorted."""
    if isinstance(thresholds, (int, np.integer)):
        if thresholds < 1:
            raise ValueError(f"thresholds must be >= 1 (or a sequence of values), got {thresholds}")
        return np.linspace(1.0 / (thresholds + 1), 1.0 - 1.0 / (thresholds + 1), int(thresholds))
    values = np.sort(np.asarray(thresholds, dtype=np.float64).ravel())
    if values.size == 0:
        raise ValueError("thresholds is empty")
    return values


def _match_counts(pred: np.ndarray, gt: np.ndarray, thresholds: np.ndarray, max_dist: float) -> np.ndarray:
    """Matching counts of one image at every threshold: T x 4 int64 (matched gt, gt, matched pred, pred).

    pred: H x W edge strengths, gt: H x W bool boundaries. The tolerance is
    ``max_dist`` times the image diagonal, as in BSDS.
    """
    distance_transform = _scipy_distance_transform()
    tolerance = max_dist * float(np.hypot(*gt.shape))
    gt_count = int(gt.sum())
    near_gt = distance_transform(~gt) <= tolerance if gt_count else np.zeros(gt.shape, bool)  # H x W
    counts = np.zeros((len(thresholds), 4), dtype=np.int64)
    for i, t in enumerate(thresholds):
        edges = _skimage_thin()(pred >= t)  # H x W bool, thinned as BSDS does
        n_pred = int(edges.sum())
        near_pred = distance_transform(~edges) <= tolerance if n_pred else np.zeros(gt.shape, bool)
        counts[i] = (int((gt & near_pred).sum()), gt_count, int((edges & near_gt).sum()), n_pred)
    return counts


def _prf(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """counts ... x 4 -> precision, recall, F (each ...); 0 where undefined, as in BSDS."""
    recall = counts[..., 0] / np.maximum(counts[..., 1], 1)
    precision = counts[..., 2] / np.maximum(counts[..., 3], 1)
    total = precision + recall
    f = np.where(total > 0, 2 * precision * recall / np.where(total > 0, total, 1), 0.0)
    return precision, recall, f


def _average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """Area under the P-R curve (trapezoids on the points of every threshold), from recall 0 to the largest.

    As BSDS's ``collect_eval_bdry`` (precision interpolated along recall),
    except that below the smallest recall reached (the highest threshold)
    precision is held at its value there, where BSDS counts 0. BSDS's choice
    barely matters for continuous edge maps (recall goes to ~0 at high
    thresholds) but scores near-binary maps, such as a perfect prediction,
    close to 0; here a perfect map gets AP 1.
    """
    order = np.argsort(recall, kind="stable")
    r_sorted, p_sorted = recall[order], precision[order]  # T each, by increasing recall
    r_unique, starts = np.unique(r_sorted, return_index=True)
    p_unique = np.maximum.reduceat(p_sorted, starts)  # the best precision at each recall
    if r_unique[-1] <= 0:
        return 0.0
    r_curve = np.concatenate([[0.0], r_unique])
    p_curve = np.concatenate([[p_unique[0]], p_unique])  # held flat down to recall 0
    return float(np.sum(np.diff(r_curve) * (p_curve[1:] + p_curve[:-1]) / 2))


def _recall_at_half_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """R50: the recall where precision falls to 0.5, moving from high to low thresholds (interpolated).

    precision, recall: T, ordered by increasing threshold. If precision never
    reaches 0.5 this is 0; if it stays above 0.5 it is the highest recall.
    """
    above = precision >= 0.5
    if not above.any():
        return 0.0
    best = float(recall[above].max())
    for i in range(len(precision) - 1):  # a crossing between threshold i (below 0.5) and i+1 (above)
        p0, p1, r0, r1 = precision[i], precision[i + 1], recall[i], recall[i + 1]
        if p0 < 0.5 <= p1:
            best = max(best, float(r0 + (0.5 - p0) / (p1 - p0) * (r1 - r0)))
    return best


def edge_metrics(pred_maps: Sequence[np.ndarray], gt_boundaries: Sequence[np.ndarray],
                 thresholds: int | Sequence[float] = 99, max_dist: float = 0.0075) -> dict[str, Any]:
    """BSDS-style boundary metrics of edge maps against ground-truth boundaries.

    pred_maps: per image an H x W edge-strength map in [0, 1]; gt_boundaries:
    per image an H x W bool boundary map. For each threshold t the prediction
    is binarised (>= t) and thinned; predicted edge pixels are matched to
    ground-truth pixels within ``max_dist`` x the image diagonal (BSDS:
    0.0075). Returns:

    - ``ods``: best F at one threshold for the whole dataset (counts pooled over images);
    - ``ois``: F at each image's own best threshold; as in the BSDS code, the
      counts at those thresholds are pooled before F is taken (close to the
      mean of the per-image best F when images have similar edge lengths);
    - ``ap``: area under the dataset precision-recall curve (BSDS's interpolation);
    - ``r50``: recall at 50% precision;
    - ``ods_threshold``, and the curve as ``thresholds``, ``precision``, ``recall``, ``f``.

    Approximation: BSDS matches pixels one-to-one (a bipartite assignment,
    ``correspondPixels``). Here a predicted pixel counts as correct when any
    ground-truth pixel is within the tolerance, and a ground-truth pixel as
    recalled when any predicted pixel is (two distance transforms). This is
    the same for thin, single edges; it is more lenient for doubled edges
    (two parallel predictions near one true boundary both count as correct).
    The paper's BSDS500 numbers (ODS .768, OIS .786, AP .794, R50 .928) are
    on real photos with human annotations and are not comparable with numbers
    on procedural scenes.
    """
    if len(pred_maps) != len(gt_boundaries):
        raise ValueError(f"got {len(pred_maps)} prediction maps but {len(gt_boundaries)} ground-truth maps")
    if len(pred_maps) == 0:
        raise ValueError("edge_metrics needs at least one image")
    t = _threshold_values(thresholds)
    per_image = []
    for i, (pred, gt) in enumerate(zip(pred_maps, gt_boundaries)):
        pred, gt = np.asarray(pred, dtype=np.float32), np.asarray(gt, dtype=bool)
        if pred.shape != gt.shape or pred.ndim != 2:
            raise ValueError(f"image {i}: prediction {pred.shape} and ground truth {gt.shape} must be the same H x W")
        per_image.append(_match_counts(pred, gt, t, max_dist))  # T x 4
    counts = np.stack(per_image)  # I x T x 4
    precision, recall, f = _prf(counts.sum(axis=0))  # T each
    best_per_image = _prf(counts)[2].argmax(axis=1)  # I
    ois_counts = counts[np.arange(len(counts)), best_per_image].sum(axis=0)  # 4
    best = int(f.argmax())
    return {
        "ods": float(f[best]),
        "ois": float(_prf(ois_counts)[2]),
        "ap": _average_precision(precision, recall),
        "r50": _recall_at_half_precision(precision, recall),
        "ods_threshold": float(t[best]),
        "thresholds": t,
        "precision": precision,
        "recall": recall,
        "f": f,
    }


# ----------------------------------------------------------------------------------------------
# evaluation on held-out procedural scenes
# ----------------------------------------------------------------------------------------------


def evaluate_edges(model: Sam | None = None, num_scenes: int = 12, seed_start: int | None = None,
                   image_size: int = 256, level: str | int = "subpart", points_per_side: int = 16,
                   thresholds: int | Sequence[float] = 99, max_dist: float = 0.0075) -> dict[str, Any]:
    """SAM's zero-shot edges and the Sobel baseline on held-out procedural scenes, with the BSDS metrics.

    model: default the bundled model (``samwidgets.load_default()``).
    seed_start: the first scene seed; default ``samwidgets.data.seeds.EDGES_SEED_START``
    (held out: never used in training). level: the
    ground truth (see :func:`scene_boundaries`).

    Returns {"sam": metrics, "sobel": metrics, "num_scenes", "image_size",
    "level", "seeds", "sam_seconds", "sobel_seconds"} where metrics is the
    dict of :func:`edge_metrics` without its curves, and the seconds are the
    wall time of computing the edge maps (not the metrics).
    """
    from ..data.scenes import SceneGenerator
    from ..default_model import load_default
    from ..data.seeds import EDGES_SEED_START

    if num_scenes < 1:
        raise ValueError(f"num_scenes must be >= 1, got {num_scenes}")
    model = load_default() if model is None else model
    start = EDGES_SEED_START if seed_start is None else int(seed_start)
    seeds = list(range(start, start + num_scenes))
    generator = SceneGenerator(image_size=image_size)
    predictor = SamPredictor(model)
    scenes = [generator(seed) for seed in seeds]
    gts = [scene_boundaries(scene, level) for scene in scenes]

    tic = time.perf_counter()
    sam_maps = [detect_edges(predictor, scene.image, points_per_side=points_per_side) for scene in scenes]
    sam_seconds = time.perf_counter() - tic
    tic = time.perf_counter()
    sobel_maps = [sobel_baseline(scene.image) for scene in scenes]
    sobel_seconds = time.perf_counter() - tic

    def summary(maps: list[np.ndarray]) -> dict[str, float]:
        m = edge_metrics(maps, gts, thresholds=thresholds, max_dist=max_dist)
        return {k: m[k] for k in ("ods", "ois", "ap", "r50", "ods_threshold")}

    return {
        "sam": summary(sam_maps),
        "sobel": summary(sobel_maps),
        "num_scenes": num_scenes,
        "image_size": image_size,
        "level": level,
        "seeds": seeds,
        "sam_seconds": sam_seconds,
        "sobel_seconds": sobel_seconds,
    }
