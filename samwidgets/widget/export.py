"""Save an annotation session as COCO JSON (masks as RLE, through pycocotools) or PNG masks, and read it back.

The COCO file is standard (``images``, ``annotations``, ``categories``;
one category per label) with extra fields that make a reload lossless:
each annotation keeps its object id, label, colour, SAM's predicted IoU and
the prompts that made it, and each image entry keeps the absolute path of
its file. Images that were given as arrays are written as PNG files next to
the JSON, so a file always has its pixels beside it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UserInputError
from ..io.atomic import atomic_write_bytes
from ..io.coco import decode_segmentation, write_coco
from ..io.rle import mask_to_rle_json
from .render import png_bytes
from .state import AnnotatedObject, Prompt, color_for

if TYPE_CHECKING:
    from .session import AnnotationSession

FORMAT = "samwidgets-coco/1"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "object"


def coco_dict(session: AnnotationSession, json_dir: Path, model_name: str = "",
              save_images: bool = True) -> dict:
    """The session as a COCO dict; images without a file are written as PNG into ``<json_dir>/images``."""
    images, annotations = [], []
    labels = sorted({o.label for i in range(len(session.images)) for o in session.state_of(i).objects})
    category_ids = {label: k + 1 for k, label in enumerate(labels)}
    ann_id = 1
    for i in range(len(session.images)):
        rgb = session.images.rgb(i)
        h, w = rgb.shape[:2]
        path = session.images.path(i)
        name = session.images.name(i)
        if path is None and save_images:
            path = json_dir / "images" / _safe(name)
            if path.suffix.lower() != ".png":
                path = path.with_suffix(".png")
            atomic_write_bytes(path, png_bytes(rgb))
        entry = {"id": i + 1, "file_name": name, "width": int(w), "height": int(h)}
        if path is not None:
            entry["path"] = str(Path(path).resolve())
        images.append(entry)
        for obj in session.state_of(i).objects:
            annotations.append({
                "id": ann_id, "image_id": i + 1, "category_id": category_ids[obj.label],
                "segmentation": mask_to_rle_json(obj.mask), "area": obj.area, "bbox": list(obj.bbox), "iscrowd": 0,
                "score": obj.score, "predicted_iou": obj.score, "label": obj.label, "object_id": obj.id,
                "color": list(obj.color),
                "point_coords": [list(p) for p in obj.prompt.points], "point_labels": list(obj.prompt.labels),
                "box": list(obj.prompt.box) if obj.prompt.box is not None else None,
            })
            ann_id += 1
    return {
        "info": {"description": "annotations made with samwidgets", "format": FORMAT, "model": model_name},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": k, "name": label, "supercategory": "object"} for label, k in category_ids.items()],
    }


def to_coco(session: AnnotationSession, path: str | os.PathLike, model_name: str = "",
            save_images: bool = True) -> Path:
    """Write the session as COCO JSON at path (atomically: a crash never leaves half a file)."""
    path = Path(path)
    data = coco_dict(session, path.parent, model_name, save_images)
    return write_coco(path, data["images"], data["annotations"], data["categories"], info=data["info"], indent=1)


def save_png(session: AnnotationSession, directory: str | os.PathLike) -> list[Path]:
    """One black-and-white PNG per object, ``<image stem>_<id>_<label>.png``; returns the paths written."""
    directory = Path(directory)
    written = []
    for i in range(len(session.images)):
        stem = Path(session.images.name(i)).stem
        for obj in session.state_of(i).objects:
            out = directory / f"{_safe(stem)}_{obj.id:03d}_{_safe(obj.label)}.png"
            written.append(atomic_write_bytes(out, png_bytes(obj.mask.astype(np.uint8) * 255)))
    return written


@dataclass
class SavedImage:
    """One image entry of a saved file: where its pixels are and the objects made on it."""

    file_name: str
    path: Path | None
    width: int
    height: int
    objects: list[AnnotatedObject]


def read_coco(path: str | os.PathLike) -> list[SavedImage]:
    """Read a file written by :func:`to_coco`, or any COCO instances file with RLE or polygon masks.

    Files of other tools (pycocotools, CVAT, Label Studio exports) carry none of the extra fields this kit
    writes: the label then comes from the category, the colour from the object id, the score is 1, and an
    image is found beside the JSON by its ``file_name``. A malformed file raises ValueError naming the
    entry and what is wrong with it.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserInputError(f"cannot read annotations from {path}: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or not isinstance(
            data.get("annotations"), list):
        raise UserInputError(f"{path} is not a COCO file (it needs the lists 'images' and 'annotations')")
    categories = {}
    for c in data.get("categories") or []:
        if not isinstance(c, dict) or "id" not in c:
            raise UserInputError(f"{path}: category {c!r} has no id")
        categories[c["id"]] = str(c.get("name", c["id"]))
    saved: dict[int, SavedImage] = {}
    for k, entry in enumerate(data["images"]):
        required = ("id", "file_name", "width", "height")
        missing = [key for key in required if not isinstance(entry, dict) or key not in entry]
        if missing:
            raise UserInputError(f"{path}: image entry {k} lacks {missing} (COCO needs id, file_name, width, height)")
        if entry["id"] in saved:
            raise UserInputError(f"{path}: two image entries have the id {entry['id']!r}")
        file_path = entry.get("path")
        if file_path is None or not Path(file_path).is_file():
            candidate = path.parent / entry["file_name"]
            file_path = candidate if candidate.is_file() else file_path
        saved[entry["id"]] = SavedImage(entry["file_name"], Path(file_path) if file_path else None,
                                        int(entry["width"]), int(entry["height"]), [])
    for ann in data["annotations"]:
        where = f"{path}: annotation {ann.get('id', '?') if isinstance(ann, dict) else ann!r}"
        if not isinstance(ann, dict) or "image_id" not in ann:
            raise UserInputError(f"{where} has no image_id")
        image = saved.get(ann["image_id"])
        if image is None:
            raise UserInputError(f"{where} refers to unknown image {ann['image_id']}")
        mask = _mask_of(ann.get("segmentation"), image, where)
        object_id = int(ann.get("object_id", len(image.objects) + 1))
        label = ann.get("label") or categories.get(ann.get("category_id"), f"object {object_id}")
        box = ann.get("box")
        prompt = Prompt(points=tuple(tuple(p) for p in ann.get("point_coords") or ()),
                        labels=tuple(ann.get("point_labels") or ()), box=tuple(box) if box else None)
        color = tuple(ann["color"]) if ann.get("color") else color_for(object_id)
        image.objects.append(AnnotatedObject(object_id, mask, label, float(ann.get("score", 1.0)), color, prompt))
    return list(saved.values())


def _mask_of(segmentation: object, image: SavedImage, where: str) -> np.ndarray:
    """The H x W bool mask of an annotation's segmentation, checked against its image's size."""
    if isinstance(segmentation, dict):
        size = segmentation.get("size")
        if "counts" not in segmentation or not isinstance(size, list) or len(size) != 2:
            raise UserInputError(f"{where}: an RLE segmentation needs 'size' [height, width] and 'counts'")
        if [int(size[0]), int(size[1])] != [image.height, image.width]:
            raise UserInputError(f"{where}: its RLE is {size[0]} x {size[1]} but its image "
                             f"({image.file_name}) is {image.height} x {image.width}")
    elif not (isinstance(segmentation, list) and segmentation and all(
            isinstance(poly, list) and len(poly) >= 6 and len(poly) % 2 == 0 for poly in segmentation)):
        raise UserInputError(f"{where} has no usable segmentation: expected an RLE dict or a list of polygons "
                         "[x1, y1, x2, y2, ...] of at least 3 points (a box alone is not a mask)")
    try:
        return decode_segmentation(segmentation, image.height, image.width)
    except Exception as e:  # pycocotools' own errors on corrupt counts
        raise UserInputError(f"{where}: its segmentation cannot be decoded ({type(e).__name__}: {e})") from e
