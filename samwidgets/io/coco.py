"""COCO instance files: the one writer of the project, and the decoding of a COCO segmentation.

A COCO instances file is a JSON object with ``images``, ``annotations`` and ``categories``; each
annotation's ``segmentation`` is an RLE (``{"size": [h, w], "counts": ...}``) or a list of
polygons. The widget saves sessions with :func:`write_coco`, tests and notebook 02 make training
data with it, and ``samwidgets train --coco-*`` reads such files through pycocotools.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write_bytes
from .rle import decode_rle

#: The category a file gets when the caller names none.
DEFAULT_CATEGORIES = ({"id": 1, "name": "object"},)


def write_coco(path: str | os.PathLike, images: list[dict], annotations: list[dict],
               categories: list[dict] | None = None, info: dict[str, Any] | None = None, indent: int | None = None
               ) -> Path:
    """Write a COCO instances file at ``path`` atomically (a crash never leaves half a file); returns the path.

    images: ``{"id", "file_name", "width", "height", ...}`` entries; annotations: ``{"id", "image_id",
    "category_id", "segmentation", "area", "bbox", "iscrowd", ...}`` entries; categories default to one
    ``object`` category. Extra fields are kept as given (the widget stores prompts and colours there).
    """
    data: dict[str, Any] = {}
    if info is not None:
        data["info"] = info
    data.update(images=images, annotations=annotations,
                categories=categories if categories is not None else [dict(c) for c in DEFAULT_CATEGORIES])
    return atomic_write_bytes(Path(path), json.dumps(data, indent=indent).encode())


def decode_segmentation(segmentation: dict | list, height: int, width: int) -> np.ndarray:
    """A COCO segmentation (RLE, compressed or not, or a list of polygons) as an H x W bool mask."""
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, list):  # polygons: rasterised and merged into one mask
        rles = mask_utils.frPyObjects(segmentation, height, width)
        return mask_utils.decode(mask_utils.merge(rles)).astype(bool)
    return decode_rle(segmentation)
