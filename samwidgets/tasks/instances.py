"""Instance segmentation from boxes (paper section 7.4) and its metric, COCO mask AP.

The paper prompts SAM with the boxes of a detector (ViTDet) and scores the
masks with COCO mask AP. There is no detector here, so the "detector" is the
ground-truth boxes with noise (:func:`noisy_boxes`); the task then measures
how well SAM turns imperfect boxes into masks. As in the paper, each box
gets one refinement pass: the box again, plus the low-res logits of the
first pass's best mask as the mask prompt.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..data.seeds import INSTANCES_SEED_START
from ..inference import amg_utils as amg
from ..inference.images import ImageLike
from ..inference.predictor import SamPredictor
from ..modeling import Sam


def noisy_boxes(boxes: np.ndarray, image_size: tuple[int, int], noise: float = 0.075, seed: int = 0) -> np.ndarray:
    """A simulated detector: ground-truth XYXY boxes (N x 4) with jitter, deterministic by ``seed``.

    Noise model: the centre moves by a Gaussian of std ``noise`` x the box's
    width (x) / height (y); width and height are multiplied by exp(a Gaussian
    of std ``noise``) (about +/- 7.5% at the default). The result is clipped to
    the image (``image_size`` = (H, W)) and kept at least 1 px wide and high.
    ``noise=0`` returns the boxes unchanged (as float).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)  # N x 4
    rng = np.random.default_rng(seed)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]  # N, N
    cx, cy = boxes[:, 0] + w / 2, boxes[:, 1] + h / 2
    z = rng.standard_normal((len(boxes), 4))  # N x 4
    cx, cy = cx + noise * w * z[:, 0], cy + noise * h * z[:, 1]
    w, h = w * np.exp(noise * z[:, 2]), h * np.exp(noise * z[:, 3])
    out = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)  # N x 4
    H, W = image_size
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, W)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, H)
    out[:, 2] = np.maximum(out[:, 2], np.minimum(out[:, 0] + 1, W))
    out[:, 0] = np.minimum(out[:, 0], out[:, 2] - 1)
    out[:, 3] = np.maximum(out[:, 3], np.minimum(out[:, 1] + 1, H))
    out[:, 1] = np.minimum(out[:, 1], out[:, 3] - 1)
    return out


def segment_instances(predictor: SamPredictor, image: ImageLike | None, boxes: np.ndarray, refine: bool = True,
                      multimask_output: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """One mask per box: SAM prompted with each XYXY box (N x 4, image pixels), optionally refined once.

    image: set on the predictor first (cached embeddings make a repeat cheap); None
        to use the image the predictor already holds.
    refine: a second decoder pass per box with the same box plus the first pass's
        best mask (its low-res logits) as the mask prompt, as in the paper.
    multimask_output: the first pass's output mode (the best of 3 by predicted
        IoU, or the single box mask); the refinement pass always gives one mask.
    Returns masks N x H x W bool and scores N (the decoder's predicted IoU of each final mask).
    """
    if image is not None:
        predictor.set_image(image)
    if predictor.original_size is None:
        raise RuntimeError("no image: pass one, or set it on the predictor with .set_image(...) first")
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)  # N x 4
    h, w = predictor.original_size
    masks, scores = np.zeros((len(boxes), h, w), dtype=bool), np.zeros(len(boxes), dtype=np.float32)
    for i, box in enumerate(boxes):
        out, iou, low_res = predictor.predict(box=box, multimask_output=multimask_output)  # M x H x W, M, M x S x S
        best = int(np.argmax(iou))
        if refine:
            out, iou, _ = predictor.predict(box=box, mask_input=low_res[best][None], multimask_output=False)
            best = 0
        masks[i], scores[i] = out[best], iou[best]
    return masks, scores


# ----------------------------------------------------------------------------------------------
# metric
# ----------------------------------------------------------------------------------------------


def coco_mask_ap(images_gt: Sequence[np.ndarray], predictions: Sequence[tuple[np.ndarray, np.ndarray]],
                 ) -> dict[str, float]:
    """COCO mask AP of ``predictions`` against ``images_gt``, with pycocotools' COCOeval (iouType="segm").

    images_gt: per image, its ground-truth masks (G_i x H x W bool); all one category.
    predictions: per image, (masks P_i x H x W bool, scores P_i).
    COCO objects are built in memory (masks as RLE through pycocotools); COCOeval's
    defaults apply (IoU 0.5:0.95, up to 100 detections per image, areas as COCO's).
    Returns {"AP", "AP50", "AP75", "AR@100"} (COCOeval's stats 0, 1, 2, 8; -1 when
    there is no ground truth). With no predictions at all, AP is 0.
    """
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if len(images_gt) != len(predictions):
        raise ValueError(f"{len(images_gt)} images of ground truth but {len(predictions)} of predictions")
    images, annotations, detections = [], [], []
    for image_id, (gt, (pred_masks, pred_scores)) in enumerate(zip(images_gt, predictions), start=1):
        gt = np.asarray(gt, dtype=bool)  # G x H x W
        if gt.ndim != 3:
            raise ValueError(f"ground truth of image {image_id - 1} must be G x H x W masks, got shape {gt.shape}")
        images.append({"id": image_id, "height": int(gt.shape[1]), "width": int(gt.shape[2])})
        for rle in amg.encode_rle(gt):  # G
            # bbox: XYWH, COCO's convention. The ignores: encode_rle's dicts are pycocotools' own RLEs, which its
            # stubs type with a private TypedDict
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                                "segmentation": amg.rle_to_json(rle),
                                "area": float(mask_utils.area(rle)),  # pyright: ignore[reportArgumentType]
                                "bbox": mask_utils.toBbox(rle).tolist()})  # pyright: ignore[reportArgumentType]
        pred_masks = np.asarray(pred_masks, dtype=bool).reshape(-1, *gt.shape[1:])  # P x H x W
        pred_scores = np.asarray(pred_scores, dtype=np.float64).reshape(-1)  # P
        if len(pred_masks) != len(pred_scores):
            raise ValueError(f"image {image_id - 1}: {len(pred_masks)} masks but {len(pred_scores)} scores")
        detections += [{"image_id": image_id, "category_id": 1, "segmentation": amg.mask_to_rle_json(m),
                        "score": float(s)}
                       for m, s in zip(pred_masks, pred_scores)]
    if not detections:
        return {"AP": 0.0, "AP50": 0.0, "AP75": 0.0, "AR@100": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress and the summary table
        coco_gt = COCO()
        # the ignores: pycocotools' stubs ask for fields that COCOeval never reads (file_name, supercategory), and
        # type loadRes's argument as a file name, though pycocotools takes a list of detections as well
        dataset = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "object"}]}
        coco_gt.dataset = dataset  # pyright: ignore[reportAttributeAccessIssue]
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(detections)  # pyright: ignore[reportArgumentType]
        evaluator = COCOeval(coco_gt, coco_dt, iouType="segm")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = evaluator.stats
    return {"AP": float(stats[0]), "AP50": float(stats[1]), "AP75": float(stats[2]), "AR@100": float(stats[8])}


# ----------------------------------------------------------------------------------------------
# held-out evaluation
# ----------------------------------------------------------------------------------------------


def evaluate_instances(model: Sam | None = None, num_scenes: int = 20, seed_start: int = INSTANCES_SEED_START,
                       levels: Sequence[int] = (0,), noise: float = 0.075) -> dict[str, Any]:
    """COCO mask AP of box-prompted SAM on ``num_scenes`` held-out scenes, with and without refinement.

    Ground truth: the scene's masks whose level is in ``levels`` (default: whole
    objects). Boxes: :func:`noisy_boxes` of the ground truth (noise std
    ``noise``, seeded by the scene's seed). Also scores a trivial baseline, the
    noisy boxes themselves filled as masks (score 1). Returns {"refined": AP dict,
    "single_pass": AP dict, "filled_box": AP dict, "scenes", "instances",
    "noise", "seconds"}; default model: the bundled one.
    """
    from ..data import SceneGenerator

    if model is None:
        from ..hub.default_model import load_default

        model = load_default()
    start = time.perf_counter()
    generator = SceneGenerator(image_size=model.config.image_size)
    predictor = SamPredictor(model, cache_size=1)
    gts: list[np.ndarray] = []
    preds: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"refined": [], "single_pass": [], "filled_box": []}
    for s in range(num_scenes):
        seed = seed_start + s
        scene = generator(seed)
        keep = np.isin(scene.levels, list(levels))
        gt = scene.masks[keep]  # G x H x W
        boxes = noisy_boxes(scene.boxes()[keep], scene.image.shape[:2], noise, seed)  # G x 4
        gts.append(gt)
        preds["single_pass"].append(segment_instances(predictor, scene.image, boxes, refine=False))
        preds["refined"].append(segment_instances(predictor, None, boxes, refine=True))
        filled = np.zeros_like(gt)
        for i, (x0, y0, x1, y1) in enumerate(np.round(boxes).astype(int)):
            filled[i, y0:y1, x0:x1] = True
        preds["filled_box"].append((filled, np.ones(len(gt))))
    out: dict[str, Any] = {name: coco_mask_ap(gts, p) for name, p in preds.items()}
    out.update(scenes=num_scenes, instances=int(sum(len(g) for g in gts)), levels=list(levels), noise=noise,
               seconds=time.perf_counter() - start)
    return out
