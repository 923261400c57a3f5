"""Read and write the per-image JSON files of SA-1B (the Segment Anything 1-Billion dataset).

One file per image::

    {"image": {"image_id": 1, "width": W, "height": H, "file_name": "sa_1.jpg"},
     "annotations": [{"id": 1, "segmentation": {"size": [H, W], "counts": "..."},
                      "bbox": [x, y, w, h], "area": 123, "predicted_iou": 0.93,
                      "stability_score": 0.97, "point_coords": [[x, y]], "crop_box": [x, y, w, h]}, ...]}

Masks are COCO RLE with ``counts`` as a str, through pycocotools. Files are
written atomically: an interrupted run never leaves half a file behind.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import rle
from .atomic import atomic_write_bytes

IMAGE_KEYS = ("image_id", "width", "height", "file_name")
ANNOTATION_KEYS = ("id", "segmentation", "bbox", "area", "predicted_iou", "stability_score", "point_coords",
                   "crop_box")


def segmentation_to_json_rle(segmentation: Any) -> dict[str, Any]:
    """A generator record's segmentation in any output_mode -> COCO RLE with str counts.

    Accepts an H x W bool mask ("binary_mask"), an RLE with list counts
    ("uncompressed_rle") or an RLE with str/bytes counts ("coco_rle").
    """
    if isinstance(segmentation, dict):
        return rle.rle_to_json(segmentation)
    mask = np.asarray(segmentation)
    if mask.ndim != 2:
        raise ValueError(f"a segmentation must be an H x W mask or a COCO RLE dict, got an array of shape {mask.shape}")
    return rle.mask_to_rle_json(mask)


def sa1b_annotation(record: dict[str, Any], annotation_id: int) -> dict[str, Any]:
    """One record of :meth:`SamAutomaticMaskGenerator.generate` -> one SA-1B annotation (plain JSON types)."""
    missing = [k for k in ANNOTATION_KEYS if k != "id" and k not in record]
    if missing:
        raise ValueError(f"mask record {annotation_id} lacks {missing}; records come from "
                         "SamAutomaticMaskGenerator.generate (any output_mode)")
    return {
        "id": int(annotation_id),
        "segmentation": segmentation_to_json_rle(record["segmentation"]),
        "bbox": [_number(v) for v in record["bbox"]],
        "area": int(record["area"]),
        "predicted_iou": float(record["predicted_iou"]),
        "stability_score": float(record["stability_score"]),
        "point_coords": [[float(v) for v in p] for p in record["point_coords"]],
        "crop_box": [_number(v) for v in record["crop_box"]],
    }


def _number(value: Any) -> int | float:
    """A Python int or float for JSON (numpy and torch scalars included), keeping integers integral."""
    value = value.item() if hasattr(value, "item") else value
    return int(value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else float(value)


def sa1b_dict(records: Sequence[dict[str, Any]], *, image_id: int, file_name: str, width: int,
              height: int) -> dict[str, Any]:
    """The SA-1B dict of one image; annotation ids are 1, 2, ... in record order."""
    image = {"image_id": int(image_id), "width": int(width), "height": int(height), "file_name": str(file_name)}
    annotations = [sa1b_annotation(r, i + 1) for i, r in enumerate(records)]
    for ann in annotations:
        if ann["segmentation"]["size"] != [image["height"], image["width"]]:
            raise ValueError(f"annotation {ann['id']} has a {ann['segmentation']['size']} (H, W) mask but the image "
                             f"is {[image['height'], image['width']]}; pass the size of the image the masks came from")
    return {"image": image, "annotations": annotations}


def write_sa1b(path: str | os.PathLike, records: Sequence[dict[str, Any]], *, image_id: int, file_name: str,
               width: int, height: int) -> Path:
    """Write the masks of one image as an SA-1B JSON file, atomically. Returns the path."""
    data = sa1b_dict(records, image_id=image_id, file_name=file_name, width=width, height=height)
    return atomic_write_bytes(path, json.dumps(data).encode("utf-8"))


def read_sa1b(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check one SA-1B JSON file: ``{"image": {...}, "annotations": [...]}`` as stored.

    Raises ValueError naming the file and what is wrong (not JSON, a missing
    key, a mask whose size is not the image's).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); delete it and generate it again") from e
    if not isinstance(data, dict) or not isinstance(data.get("image"), dict) or not isinstance(
            data.get("annotations"), list):
        raise ValueError(f"{path} is not an SA-1B file: expected {{'image': {{...}}, 'annotations': [...]}}")
    missing = [k for k in IMAGE_KEYS if k not in data["image"]]
    if missing:
        raise ValueError(f"{path}: the image entry lacks {missing}")
    size = [data["image"]["height"], data["image"]["width"]]
    for i, ann in enumerate(data["annotations"]):
        missing = [k for k in ANNOTATION_KEYS if k not in ann]
        if missing:
            raise ValueError(f"{path}: annotation {i} lacks {missing}")
        if list(ann["segmentation"].get("size", [])) != size:
            raise ValueError(f"{path}: annotation {i} has a mask of size {ann['segmentation'].get('size')} "
                             f"(H, W) but the image is {size}")
    return data


def annotation_mask(annotation: dict[str, Any]) -> np.ndarray:
    """The H x W bool mask of one SA-1B annotation."""
    return rle.decode_rle(annotation["segmentation"])


def sa1b_masks(data: dict[str, Any]) -> np.ndarray:
    """All masks of an SA-1B dict as N x H x W bool (N may be 0)."""
    h, w = data["image"]["height"], data["image"]["width"]
    masks = np.zeros((len(data["annotations"]), h, w), dtype=bool)
    for i, ann in enumerate(data["annotations"]):
        masks[i] = annotation_mask(ann)
    return masks
