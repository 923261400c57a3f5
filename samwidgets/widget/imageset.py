"""A list of images given in any accepted form, decoded lazily.

Paths stay paths until an image is visited, so a folder of large photos
costs no memory up front; the last few decoded images are kept.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
from PIL import Image

from ..errors import OutOfRangeError, UserInputError
from ..inference.images import ImageLike, as_rgb_uint8


def _is_single_image(images: Any) -> bool:
    if isinstance(images, (str, os.PathLike, Image.Image)):
        return True
    if isinstance(images, np.ndarray) or hasattr(images, "detach"):
        return images.ndim in (2, 3)  # H x W or H x W x C; N x H x W x C is a set
    return False


class ImageSet:
    """Images by index: ``rgb(i)`` (H x W x 3 uint8), ``name(i)`` and ``path(i)`` (None for in-memory images)."""

    def __init__(self, images: ImageLike | Sequence[ImageLike], names: Sequence[str] | None = None,
                 keep_decoded: int = 3) -> None:
        if images is None:
            raise UserInputError("no image given: pass an image (array, PIL image or path) or a list of them")
        # not one image: a sequence of them (or an N x H x W x C array)
        items = [images] if _is_single_image(images) else list(cast(Iterable[ImageLike], images))
        if not items:
            raise UserInputError("the list of images is empty; pass at least one image")
        if names is not None and len(names) != len(items):
            raise UserInputError(f"got {len(names)} names for {len(items)} images")
        self._items = items
        self._names = list(names) if names is not None else [self._default_name(i, x) for i, x in enumerate(items)]
        self._decoded: OrderedDict[int, np.ndarray] = OrderedDict()
        self._keep = max(1, keep_decoded)

    @staticmethod
    def _default_name(i: int, item: Any) -> str:
        if isinstance(item, (str, os.PathLike)):
            return Path(item).name
        return f"image_{i:04d}.png"

    def __len__(self) -> int:
        return len(self._items)

    def name(self, i: int) -> str:
        return self._names[i]

    def path(self, i: int) -> Path | None:
        item = self._items[i]
        return Path(item).resolve() if isinstance(item, (str, os.PathLike)) else None

    def rgb(self, i: int) -> np.ndarray:
        """Image i as H x W x 3 uint8 RGB (ValueError naming the image if it cannot be read)."""
        if not 0 <= i < len(self):
            raise OutOfRangeError(f"image index {i} out of range: the set has {len(self)} images")
        if i in self._decoded:
            self._decoded.move_to_end(i)
            return self._decoded[i]
        try:
            rgb = as_rgb_uint8(self._items[i])
        except (ValueError, OSError) as e:
            raise UserInputError(f"image {i} ({self._names[i]}): {e}") from e
        self._decoded[i] = rgb
        while len(self._decoded) > self._keep:
            self._decoded.popitem(last=False)
        return rgb
