"""COCO's run-length encoding (RLE) of masks, through pycocotools: encode, decode, area, boxes, JSON form.

The automatic mask generator keeps its masks as RLE, and the annotation files (COCO, SA-1B) hold them so:
one leaf module that ``io`` (the files) and ``inference`` (the generator) both use. The conventions are
the reference ``segment_anything.utils.amg``'s: column-major runs starting with a run of zeros.
"Compressed" RLE has ``counts`` as bytes (pycocotools) or str (JSON); "uncompressed" RLE has ``counts``
as a list of ints. A mask's box is XYXY in pixel indices (first column, first row, last column, last row).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

# pycocotools' stubs (typeshed) describe one compressed RLE at a time, typed as their own TypedDict. Its functions
# also take the plain dict[str, Any] RLEs of this module, lists of them, uncompressed RLEs (counts a list of ints)
# and H x W x K arrays of masks: the "pyright: ignore" comments below mark those calls.


def encode_rle(masks: torch.Tensor | np.ndarray) -> list[dict[str, Any]]:
    """Boolean masks K x H x W -> K COCO RLEs (compressed: ``counts`` is bytes), with pycocotools."""
    from pycocotools import mask as mask_utils

    masks = torch.as_tensor(np.asarray(masks, dtype=bool)) if isinstance(masks, np.ndarray) else masks
    k, h, w = masks.shape
    if k == 0:
        return []
    # pycocotools wants H x W x K in Fortran (column-major) order, i.e. K x W x H contiguous in memory
    # (torch transposes bool masks faster than numpy; bool -> uint8 is a free view).
    column_major = masks.detach().bool().transpose(1, 2).contiguous().cpu().numpy().view(np.uint8)  # K x W x H
    rles = mask_utils.encode(column_major.transpose(2, 1, 0))  # H x W x K, Fortran order: no copy; K RLEs
    return [{"size": [int(h), int(w)], "counts": rle["counts"]} for rle in rles]  # pyright: ignore[reportArgumentType]


def to_pycocotools_rle(rle: dict[str, Any]) -> dict[str, Any]:
    """Any COCO RLE (counts as bytes, str or a list of ints) -> the compressed form pycocotools takes."""
    from pycocotools import mask as mask_utils

    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list):
        return mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)  # pyright: ignore[reportCallIssue, reportArgumentType]
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    return {"size": [h, w], "counts": counts}


def decode_rle(rle: dict[str, Any]) -> np.ndarray:
    """A COCO RLE (compressed or uncompressed) -> H x W bool mask."""
    from pycocotools import mask as mask_utils

    return mask_utils.decode(to_pycocotools_rle(rle)).astype(bool)  # pyright: ignore[reportArgumentType]


def rle_area(rle: dict[str, Any]) -> int:
    """Pixels in the mask of a COCO RLE, without decoding it."""
    from pycocotools import mask as mask_utils

    return int(mask_utils.area(to_pycocotools_rle(rle)))  # pyright: ignore[reportArgumentType]


def rle_boxes(rles: list[dict[str, Any]]) -> torch.Tensor:
    """Boxes of K masks given as COCO RLE, without decoding them: K x 4 int64 XYXY pixel indices.

    (first column, first row, last column, last row); (0, 0, 0, 0) for an empty mask.
    """
    from pycocotools import mask as mask_utils

    if not rles:
        return torch.zeros(0, 4, dtype=torch.int64)
    xywh = torch.as_tensor(mask_utils.toBbox([to_pycocotools_rle(r) for r in rles]), dtype=torch.float64)  # pyright: ignore[reportArgumentType]
    xyxy = torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:] - 1], dim=1).round().to(torch.int64)  # K x 4
    empty = (xywh[:, 2] <= 0) | (xywh[:, 3] <= 0)  # K
    return xyxy.masked_fill(empty[:, None], 0)


def rle_to_json(rle: dict[str, Any]) -> dict[str, Any]:
    """A compressed COCO RLE with ``counts`` as str, as JSON files (COCO, SA-1B) hold it."""
    rle = to_pycocotools_rle(rle)
    return {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}


def mask_to_rle_json(mask: np.ndarray) -> dict[str, Any]:
    """One H x W bool mask -> compressed COCO RLE with str counts (as COCO / SA-1B JSON files hold it)."""
    return rle_to_json(encode_rle(np.asarray(mask, dtype=bool)[None])[0])


def mask_to_uncompressed_rle(mask: np.ndarray) -> dict[str, Any]:
    """H x W bool mask -> uncompressed COCO RLE: run lengths (list of ints) in column-major order.

    The first run counts zeros (it is 0 when the first pixel is set).
    """
    h, w = mask.shape
    flat = np.asarray(mask, dtype=bool).ravel(order="F")  # H * W, column by column
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1  # indices where a new run starts
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {"size": [int(h), int(w)], "counts": counts}
