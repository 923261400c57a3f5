"""Turn the images people actually pass into H x W x 3 uint8 RGB arrays.

Accepted: H x W x 3 uint8 (RGB, or BGR with image_format="BGR"), grayscale
H x W or H x W x 1, RGBA / BGRA (alpha dropped), float images in [0, 1],
16-bit images, bool masks, PIL images, torch tensors (H x W x C), and paths
to image files. Anything else raises ValueError saying what was received
and what is accepted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Union, cast

import numpy as np
from PIL import Image

from ..errors import UserInputError

ImageLike = Union[np.ndarray, "Image.Image", str, os.PathLike, Any]

ACCEPTED = (
    "accepted: an H x W x 3 uint8 RGB array (or BGR with image_format='BGR'), H x W grayscale, "
    "H x W x 4 RGBA, float arrays in [0, 1], uint16 arrays, a PIL image, or a path to an image file"
)


def _describe(x: Any) -> str:
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape} and dtype {x.dtype}"
    return f"a {type(x).__module__}.{type(x).__qualname__}"


def _from_pil(img: Image.Image) -> np.ndarray:
    """Pixels of a PIL image: 16/32-bit grayscale as an H x W integer array, anything else as RGB."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        return np.asarray(img)
    return np.asarray(img if img.mode == "RGB" else img.convert("RGB"))


def to_uint8(arr: np.ndarray) -> np.ndarray:
    """Scale an array of any supported dtype to uint8 (0..255)."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise UserInputError("the image contains NaN or infinite values; " + ACCEPTED)
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0.0 or hi > 1.0:
            raise UserInputError(
                f"float images must have values in [0, 1], got [{lo:.4g}, {hi:.4g}]; "
                "divide by 255 (or by the maximum) first, or pass a uint8 array"
            )
        return np.round(arr * 255.0).astype(np.uint8)
    if arr.dtype == np.uint16:
        return ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        lo, hi = int(arr.min()), int(arr.max())
        if 0 <= lo and hi <= 255:
            return arr.astype(np.uint8)
        if 0 <= lo and hi <= 65535:
            return to_uint8(arr.astype(np.uint16))
        raise UserInputError(f"integer image values must lie in 0..65535, got {lo}..{hi}; " + ACCEPTED)
    raise UserInputError(f"unsupported image dtype {arr.dtype}; " + ACCEPTED)


def as_rgb_uint8(image: ImageLike, image_format: str = "RGB") -> np.ndarray:
    """Convert ``image`` to a C-contiguous H x W x 3 uint8 RGB array.

    image_format says the channel order of 3/4-channel arrays ("RGB" or "BGR",
    e.g. from OpenCV); PIL images and files are always read as RGB.
    """
    if image_format not in ("RGB", "BGR"):
        raise UserInputError(f"image_format must be 'RGB' or 'BGR', got {image_format!r}")
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise UserInputError(f"no image file at {path}; " + ACCEPTED)
        try:
            with Image.open(path) as img:
                image = _from_pil(img)
        except OSError as e:
            raise UserInputError(f"could not read {path} as an image ({e}); " + ACCEPTED) from e
        image_format = "RGB"
    elif isinstance(image, Image.Image):
        image, image_format = _from_pil(image), "RGB"
    if type(image).__module__.startswith("torch"):
        image = cast(Any, image).detach().cpu().numpy()  # a torch tensor (torch is not imported here)
    if not isinstance(image, np.ndarray):
        raise UserInputError(f"expected an image, got {_describe(image)}; " + ACCEPTED)
    arr = image
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[2] not in (3, 4):
        raise UserInputError(
            f"got {_describe(image)}, which looks channels-first (C x H x W); "
            "pass image.transpose(1, 2, 0) (H x W x C). " + ACCEPTED
        )
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise UserInputError(f"got {_describe(image)}; " + ACCEPTED)
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise UserInputError(f"got an empty image ({_describe(image)}); " + ACCEPTED)
    arr = to_uint8(arr)
    if arr.ndim == 2:
        return np.ascontiguousarray(np.repeat(arr[:, :, None], 3, axis=2))
    arr = arr[:, :, :3]
    if image_format == "BGR":
        arr = arr[:, :, ::-1]
    return np.ascontiguousarray(arr)
