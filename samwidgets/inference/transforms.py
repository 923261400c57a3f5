"""Resizing of images and prompt coordinates to the model's input frame.

The longest side is resized to ``target_length`` (1024 for the official
models) with PIL bilinear resampling on the uint8 image, exactly as the
reference does; coordinates and boxes are scaled by the same factors.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def get_preprocess_shape(old_h: int, old_w: int, long_side_length: int) -> tuple[int, int]:
    """(new_h, new_w) with the longest side equal to long_side_length, rounded half up."""
    scale = long_side_length * 1.0 / max(old_h, old_w)
    new_h, new_w = old_h * scale, old_w * scale
    return int(new_h + 0.5), int(new_w + 0.5)


class ResizeLongestSide:
    """Resizes images (numpy or torch) and (x, y) coordinates to the longest side ``target_length``."""

    def __init__(self, target_length: int) -> None:
        self.target_length = target_length

    def apply_image(self, image: np.ndarray) -> np.ndarray:
        """H x W x 3 uint8 -> h x w x 3 uint8, PIL bilinear (antialiased when shrinking)."""
        new_h, new_w = get_preprocess_shape(image.shape[0], image.shape[1], self.target_length)
        if (new_h, new_w) == image.shape[:2]:
            return np.ascontiguousarray(image)
        pil = Image.fromarray(np.ascontiguousarray(image))
        return np.array(pil.resize((new_w, new_h), Image.Resampling.BILINEAR))

    def apply_coords(self, coords: np.ndarray, original_size: tuple[int, ...]) -> np.ndarray:
        """... x 2 (x, y) coordinates of the original image -> the resized frame (float64)."""
        old_h, old_w = original_size
        new_h, new_w = get_preprocess_shape(old_h, old_w, self.target_length)
        coords = np.array(coords, dtype=float, copy=True)
        coords[..., 0] = coords[..., 0] * (new_w / old_w)
        coords[..., 1] = coords[..., 1] * (new_h / old_h)
        return coords

    def apply_boxes(self, boxes: np.ndarray, original_size: tuple[int, ...]) -> np.ndarray:
        """... x 4 XYXY boxes -> B x 4 in the resized frame."""
        return self.apply_coords(np.asarray(boxes).reshape(-1, 2, 2), original_size).reshape(-1, 4)

    def apply_image_torch(self, image: torch.Tensor) -> torch.Tensor:
        """B x 3 x H x W float tensor -> resized with torch bilinear (antialiased), for batched GPU use."""
        new_h, new_w = get_preprocess_shape(image.shape[2], image.shape[3], self.target_length)
        return F.interpolate(image, (new_h, new_w), mode="bilinear", align_corners=False, antialias=True)

    def apply_coords_torch(self, coords: torch.Tensor, original_size: tuple[int, ...]) -> torch.Tensor:
        old_h, old_w = original_size
        new_h, new_w = get_preprocess_shape(old_h, old_w, self.target_length)
        coords = coords.clone().to(torch.float)
        coords[..., 0] = coords[..., 0] * (new_w / old_w)
        coords[..., 1] = coords[..., 1] * (new_h / old_h)
        return coords

    def apply_boxes_torch(self, boxes: torch.Tensor, original_size: tuple[int, ...]) -> torch.Tensor:
        return self.apply_coords_torch(boxes.reshape(-1, 2, 2), original_size).reshape(-1, 4)
