"""SAM 2's image and prompt transforms (the reference's ``SAM2Transforms``), without torchvision.

How SAM 2 differs from SAM 1 here:

* **Resize.** SAM 1 resizes the longest side to 1024 and pads the rest with
  zeros (the aspect ratio is kept). SAM 2 stretches the image to 1024 x 1024,
  aspect ratio not kept, no padding. The reference uses torchvision's tensor
  ``Resize((1024, 1024))``, which is ``F.interpolate(mode="bilinear",
  align_corners=False, antialias=True)`` on the float image (and nothing when
  the image already has that size); so does :func:`resize_image`.
* **Normalisation.** Pixels are first divided by 255 (uint8 images only, as
  torchvision's ``ToTensor``), then normalised with ImageNet's mean and std of
  [0, 1] pixels; SAM 1 normalises 0-255 pixels with the same statistics x 255.
* **Coordinates.** A point (x, y) of a W x H image goes to
  (x / W * 1024, y / H * 1024): each axis is scaled on its own. With
  ``normalize_coords=False`` the caller gives coordinates already in [0, 1].
* **Masks back.** The low-res logits (256 x 256) are resized straight to the
  original H x W (bilinear); SAM 1 first resizes to 1024, crops the padding,
  then resizes.
* **Holes and sprinkles** (``max_hole_area``, ``max_sprinkle_area``, off by
  default): before that resize, background regions of at most that many
  low-res pixels become foreground (logit threshold + 10) and foreground
  specks become background (threshold - 10), 8-connected. The reference
  needs its CUDA extension for the connected components and skips this step
  with a warning without it; :func:`connected_components` computes the same
  components in plain PyTorch, on any device.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def to_tensor(image) -> torch.Tensor:
    """An H x W x C array or a PIL image -> a C x H x W tensor, uint8 divided by 255 (torchvision's ``ToTensor``).

    Arrays of other dtypes keep their values and dtype, as in the reference: give uint8 RGB, or floats in [0, 1].
    """
    if not isinstance(image, np.ndarray):  # a PIL image
        mode = getattr(image, "mode", None)
        if mode is None:
            raise TypeError(f"expected an H x W x 3 numpy array or a PIL image, got {type(image).__name__}")
        array = np.array(image, copy=True)
        if mode == "1":
            array = array.astype(np.uint8) * 255
        image = array
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3:
        raise ValueError(f"expected an H x W x C image, got an array of shape {image.shape}")
    tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).contiguous()  # C x H x W
    if tensor.dtype == torch.uint8:
        return tensor.to(dtype=torch.get_default_dtype()).div(255)
    return tensor


def resize_image(image: torch.Tensor, size: int) -> torch.Tensor:
    """C x H x W -> C x size x size, bilinear with antialiasing (torchvision's tensor ``Resize((size, size))``)."""
    if tuple(image.shape[-2:]) == (size, size):
        return image
    out_dtype = image.dtype
    x = image.unsqueeze(0)  # 1 x C x H x W
    if x.dtype not in (torch.float32, torch.float64):
        x = x.to(torch.float32)
    x = F.interpolate(x, size=[size, size], mode="bilinear", align_corners=False, antialias=True)
    x = x.squeeze(0)
    if out_dtype != x.dtype:
        x = (torch.round(x) if not out_dtype.is_floating_point else x).to(out_dtype)
    return x


def normalize(image: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(image - mean) / std per channel: C x H x W."""
    mean_t = torch.as_tensor(mean, dtype=image.dtype, device=image.device).view(-1, 1, 1)
    std_t = torch.as_tensor(std, dtype=image.dtype, device=image.device).view(-1, 1, 1)
    return (image - mean_t) / std_t


def connected_components(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """8-connected components of binary masks N x 1 x H x W (the reference's ``get_connected_components``).

    Returns (labels, areas), both N x 1 x H x W int32: every foreground pixel
    gets its component's label (> 0) and area, background pixels 0 and 0.

    How: every foreground pixel starts with its own number (its index + 1);
    then, repeatedly, each takes the largest number in its 3 x 3 neighbourhood
    among foreground pixels, until nothing changes. Each component ends up
    labelled by the largest starting number it contains. (The reference's CUDA
    kernel numbers components differently; the labels only need to tell
    components apart, and the areas are the same.)
    """
    foreground = mask.bool()
    n, _, h, w = foreground.shape
    start = torch.arange(1, h * w + 1, dtype=torch.float64, device=mask.device).view(1, 1, h, w)
    labels = torch.where(foreground, start, 0.0)  # float64 holds every index exactly
    while True:
        grown = torch.where(foreground, F.max_pool2d(labels, kernel_size=3, stride=1, padding=1), 0.0)
        if torch.equal(grown, labels):
            break
        labels = grown
    labels = labels.long()
    areas = torch.zeros_like(labels)
    for i in range(n):
        counts = torch.bincount(labels[i].flatten(), minlength=h * w + 1)  # label -> pixels
        areas[i] = torch.where(labels[i] > 0, counts[labels[i]], 0)
    return labels.int(), areas.int()


class SAM2Transforms:
    """The predictor's transforms: images to the model's input, prompts to its frame, masks back."""

    def __init__(self, resolution: int, mask_threshold: float, max_hole_area: float = 0.0,
                 max_sprinkle_area: float = 0.0, mean: tuple[float, float, float] = (0.485, 0.456, 0.406),
                 std: tuple[float, float, float] = (0.229, 0.224, 0.225)) -> None:
        self.resolution = resolution
        self.mask_threshold = mask_threshold
        self.max_hole_area = max_hole_area
        self.max_sprinkle_area = max_sprinkle_area
        self.mean = list(mean)
        self.std = list(std)

    def __call__(self, image) -> torch.Tensor:
        """H x W x 3 RGB (uint8 or float in [0, 1]) -> 3 x S x S normalised, S = resolution."""
        return normalize(resize_image(to_tensor(image), self.resolution), self.mean, self.std)

    def forward_batch(self, img_list: list) -> torch.Tensor:
        """A list of images (any sizes) -> B x 3 x S x S."""
        return torch.stack([self(image) for image in img_list], dim=0)

    def transform_coords(self, coords: torch.Tensor, normalize: bool = False,
                         orig_hw: tuple[int, int] | None = None) -> torch.Tensor:
        """... x 2 (x, y) points -> the model's input frame (pixels of the S x S input).

        normalize=True: ``coords`` are pixels of the original H x W image (``orig_hw``) and are first divided
        by (W, H); normalize=False: they are already in [0, 1].
        """
        if normalize:
            if orig_hw is None:
                raise ValueError("orig_hw is needed to normalise pixel coordinates")
            h, w = orig_hw
            coords = coords.clone()
            coords[..., 0] = coords[..., 0] / w
            coords[..., 1] = coords[..., 1] / h
        return coords * self.resolution

    def transform_boxes(self, boxes: torch.Tensor, normalize: bool = False,
                        orig_hw: tuple[int, int] | None = None) -> torch.Tensor:
        """B x 4 XYXY boxes (or one box of 4) -> B x 2 x 2 corner points in the input frame."""
        return self.transform_coords(boxes.reshape(-1, 2, 2), normalize, orig_hw)

    def fill_holes_and_remove_sprinkles(self, masks: torch.Tensor) -> torch.Tensor:
        """B x M x h x w logits with small background holes filled and small foreground specks removed."""
        flat = masks.flatten(0, 1).unsqueeze(1)  # BM x 1 x h x w
        if self.max_hole_area > 0:  # background regions (logit <= threshold) of small area -> foreground
            labels, areas = connected_components(flat <= self.mask_threshold)
            is_hole = ((labels > 0) & (areas <= self.max_hole_area)).reshape_as(masks)
            masks = torch.where(is_hole, self.mask_threshold + 10.0, masks)
        if self.max_sprinkle_area > 0:  # foreground specks of small area -> background
            labels, areas = connected_components(flat > self.mask_threshold)
            is_sprinkle = ((labels > 0) & (areas <= self.max_sprinkle_area)).reshape_as(masks)
            masks = torch.where(is_sprinkle, self.mask_threshold - 10.0, masks)
        return masks

    def postprocess_masks(self, masks: torch.Tensor, orig_hw: tuple[int, int]) -> torch.Tensor:
        """Low-res logits B x M x h x w -> B x M x H x W logits of the original image."""
        masks = self.fill_holes_and_remove_sprinkles(masks.float())
        return F.interpolate(masks, orig_hw, mode="bilinear", align_corners=False)
