"""Sources of training batches: procedural scenes, or a user's COCO-format folder.

A source returns, for a step number, images at the model's input size
(zero-padded squares, uint8 values as float) and a few ground-truth masks per
image, sampled among all annotated masks (for procedural scenes every level
of the hierarchy is equally likely), so that a single point's three valid
masks are all seen as targets over training.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image

from ..data.seeds import HELD_OUT_SEED_START
from ..inference.images import as_rgb_uint8
from ..inference.transforms import ResizeLongestSide


@dataclass
class MaskBatch:
    images: torch.Tensor  # Bi x 3 x S x S float (0..255), zero-padded bottom/right
    targets: torch.Tensor  # B x S x S bool
    image_index: torch.Tensor  # B: image of each target

    def pin_memory(self) -> MaskBatch:
        """The batch in page-locked memory (a DataLoader with ``pin_memory=True`` calls this): faster to a GPU."""
        return MaskBatch(self.images.pin_memory(), self.targets.pin_memory(), self.image_index.pin_memory())


class BatchSource(Protocol):
    def batch(self, step: int, num_images: int, masks_per_image: int) -> MaskBatch: ...


class _StepBatches(torch.utils.data.Dataset):
    """Batch number ``step`` of a source, as a map-style data set (what a DataLoader's workers call)."""

    def __init__(self, source: BatchSource, num_images: int, masks_per_image: int) -> None:
        self.source, self.num_images, self.masks_per_image = source, num_images, masks_per_image

    def __getitem__(self, step: int) -> MaskBatch:
        return self.source.batch(step, self.num_images, self.masks_per_image)


def step_batches(source: BatchSource, start: int, stop: int, num_images: int, masks_per_image: int,
                 workers: int = 0, pin_memory: bool = False) -> Iterator[MaskBatch]:
    """The batches of steps ``start .. stop - 1`` in order: the same batches whatever ``workers`` is.

    A batch depends only on its step number (every source seeds from it), so ``workers`` processes
    can prepare the next batches while the model trains on this one (a ``DataLoader`` keeping
    ``4 * workers`` batches ready), without changing what is trained on. ``workers=0`` makes each
    batch on the calling process when it is needed.
    """
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    if workers == 0:
        return (source.batch(step, num_images, masks_per_image) for step in range(start, stop))
    loader = torch.utils.data.DataLoader(
        _StepBatches(source, num_images, masks_per_image), batch_size=None, sampler=range(start, stop),
        num_workers=workers, prefetch_factor=4, pin_memory=pin_memory)
    return iter(loader)


def _pad_square(array: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad an H x W (x C) array at the bottom/right to size x size."""
    pad = [(0, size - array.shape[0]), (0, size - array.shape[1])] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, pad)


def stack_batch(images: list[np.ndarray], targets: list[np.ndarray], index: list[int]) -> MaskBatch:
    """Stack H x W x 3 images and H x W masks (mask k on image index[k]) into one MaskBatch of tensors."""
    return MaskBatch(
        images=torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float(),
        targets=torch.from_numpy(np.stack(targets)),
        image_index=torch.tensor(index, dtype=torch.long),
    )


class ProceduralSource:
    """Scenes from :class:`samwidgets.data.SceneGenerator`; step s, image i uses seed s * num_images + i."""

    def __init__(self, image_size: int, seed_offset: int = 0, **generator_kwargs) -> None:
        from ..data import SceneGenerator

        self.generator = SceneGenerator(image_size=image_size, **generator_kwargs)
        self.seed_offset = seed_offset

    def batch(self, step: int, num_images: int, masks_per_image: int) -> MaskBatch:
        images, targets, index = [], [], []
        for i in range(num_images):
            seed = self.seed_offset + step * num_images + i
            scene = self.generator(seed)
            while len(scene.masks) == 0:  # small images can lose every object to min_visible_pixels
                seed += 104_729  # a deterministic stand-in (a prime stride)
                scene = self.generator(seed)
            if seed >= HELD_OUT_SEED_START:
                raise ValueError(f"training scene seed {seed} is in the held-out range (from {HELD_OUT_SEED_START}): "
                                 "use a smaller run seed (samwidgets.data.seeds.train_seed_offset)")
            rng = np.random.default_rng(seed)
            # each level (whole, part, subpart) equally likely: small parts outnumber whole objects
            counts = np.bincount(scene.levels, minlength=3)[scene.levels]
            weights = 1.0 / counts
            chosen = rng.choice(len(scene.masks), size=masks_per_image, p=weights / weights.sum())
            images.append(scene.image)
            targets.extend(scene.masks[j] for j in chosen)
            index.extend([i] * masks_per_image)
        return stack_batch(images, targets, index)


class CocoSource:
    """A folder of images with COCO-format instance annotations (RLE or polygons).

    Images are resized (longest side = image_size, PIL bilinear as at
    inference) and zero-padded; masks are resized with nearest neighbour.
    Annotations with ``iscrowd`` or fewer than min_area pixels are skipped.
    """

    def __init__(self, images_dir: str | Path, annotations: str | Path, image_size: int,
                 min_area: int = 16, seed: int = 0) -> None:
        try:
            from pycocotools.coco import COCO
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("COCO data needs pycocotools: pip install pycocotools") from e
        self.images_dir = Path(images_dir)
        self.image_size = image_size
        self.resize = ResizeLongestSide(image_size)
        self.coco = COCO(str(annotations))
        self.min_area = min_area
        self.seed = seed
        self.image_ids = [
            img_id for img_id in sorted(self.coco.getImgIds())
            if any(not a.get("iscrowd", 0) and a.get("area", min_area) >= min_area
                   for a in self.coco.loadAnns(self.coco.getAnnIds(imgIds=[img_id])))
        ]
        if not self.image_ids:
            raise ValueError(f"{annotations} has no usable (non-crowd, area >= {min_area}) annotations")

    def __len__(self) -> int:
        return len(self.image_ids)

    def _load(self, image_id: int) -> tuple[np.ndarray, list[np.ndarray]]:
        info = self.coco.loadImgs([image_id])[0]
        rgb = as_rgb_uint8(self.images_dir / info["file_name"])
        anns = [a for a in self.coco.loadAnns(self.coco.getAnnIds(imgIds=[image_id]))
                if not a.get("iscrowd", 0) and a.get("area", self.min_area) >= self.min_area]
        resized = self.resize.apply_image(rgb)
        h, w = resized.shape[:2]
        masks = []
        for ann in anns:
            full = self.coco.annToMask(ann).astype(np.uint8) * 255
            small = np.asarray(Image.fromarray(full).resize((w, h), Image.Resampling.NEAREST)) > 0
            if small.any():
                masks.append(_pad_square(small, self.image_size))
        return _pad_square(resized, self.image_size), masks

    def batch(self, step: int, num_images: int, masks_per_image: int) -> MaskBatch:
        rng = np.random.default_rng([self.seed, step])
        images, targets, index = [], [], []
        for image_id in rng.choice(self.image_ids, size=num_images, replace=len(self.image_ids) < num_images):
            image, masks = self._load(int(image_id))
            if not masks:
                continue
            chosen = rng.integers(0, len(masks), size=masks_per_image)
            index.extend([len(images)] * masks_per_image)
            images.append(image)
            targets.extend(masks[j] for j in chosen)
        if not images:
            raise ValueError("no masks left after resizing in this batch")
        return stack_batch(images, targets, index)


class MixedSource:
    """Each image of a batch drawn from one of several sources with the given probabilities.

    Image i of step s comes from source k with probability weights[k] (a
    generator seeded by (seed, s, i) decides); that source is asked for its
    batch number s * num_images + i of one image, so its own sequence of
    images never repeats.
    """

    def __init__(self, sources: list[BatchSource], weights: list[float], seed: int = 0) -> None:
        if len(sources) != len(weights) or not sources or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError("give one non-negative weight per source, not all zero")
        self.sources = sources
        self.probabilities = np.asarray(weights, dtype=np.float64) / sum(weights)
        self.seed = seed

    def batch(self, step: int, num_images: int, masks_per_image: int) -> MaskBatch:
        parts = []
        for i in range(num_images):
            k = np.random.default_rng([self.seed, 1, step, i]).choice(len(self.sources), p=self.probabilities)
            parts.append(self.sources[k].batch(step * num_images + i, 1, masks_per_image))
        return MaskBatch(
            images=torch.cat([p.images for p in parts]),
            targets=torch.cat([p.targets for p in parts]),
            image_index=torch.cat([p.image_index + i for i, p in enumerate(parts)]),
        )


class AnnotatedSource:
    """Images with lists of masks held in memory (the data engine's output), for training.

    Images must already be at the model's input size on their long side
    (they are zero-padded to a square). Step s draws images and masks with a
    generator seeded by (seed, s), uniformly over each image's masks.
    """

    def __init__(self, images: list[np.ndarray], masks: list[list[np.ndarray]], image_size: int, seed: int = 0
                 ) -> None:
        usable = [(im, ms) for im, ms in zip(images, masks, strict=True) if len(ms)]
        if not usable:
            raise ValueError("no image has a mask to train on")
        for im, _ in usable:
            if max(im.shape[:2]) != image_size:
                raise ValueError(f"images must have a long side of {image_size} (the model's input size), "
                                 f"got {im.shape[:2]}; resize them with ResizeLongestSide first")
        self.images = [_pad_square(im, image_size) for im, _ in usable]
        self.masks = [[_pad_square(m, image_size) for m in ms] for _, ms in usable]
        self.seed = seed

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, step: int, num_images: int, masks_per_image: int) -> MaskBatch:
        rng = np.random.default_rng([self.seed, step])
        chosen_images = rng.choice(len(self.images), size=num_images, replace=len(self.images) < num_images)
        images, targets, index = [], [], []
        for i, k in enumerate(chosen_images):
            images.append(self.images[k])
            targets.extend(self.masks[k][j] for j in rng.integers(0, len(self.masks[k]), size=masks_per_image))
            index.extend([i] * masks_per_image)
        return stack_batch(images, targets, index)
