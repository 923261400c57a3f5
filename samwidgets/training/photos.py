"""Training batches from BSDS500 photos and their human segmentations, with augmentation.

Every annotator's segments are targets (near-duplicates across annotators
counted once), so a point on a photo is trained towards each granularity
people chose for it, the ambiguity SAM's three outputs learn. Never give it
the split you evaluate on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.bsds import BsdsDataset, unique_segment_keys
from .augment import GeometricAugment, PhotometricAugment
from .datasets import MaskBatch, stack_batch


class BsdsSource:
    """Augmented BSDS500 photos with masks drawn among every annotator's distinct segments.

    Step s, image i uses a generator seeded by (seed, s, i): a photo drawn
    uniformly, scaled / cropped / flipped (:class:`GeometricAugment`),
    recoloured (:class:`PhotometricAugment`), then ``masks_per_image``
    segments drawn among those still covering at least ``min_fraction`` of
    the visible photo (and at most ``max_fraction``), with probability
    proportional to the square root of their area.
    All photos and label images are held in memory (about 0.5 GB for the 200 train photos).
    """

    def __init__(self, root: str | Path, image_size: int, split: str = "train", seed: int = 0,
                 min_fraction: float = 0.004, max_fraction: float = 0.9,
                 geometric: GeometricAugment | None = None, photometric: PhotometricAugment | None = None) -> None:
        if split == "val":
            raise ValueError("BSDS500 val is the evaluation split: train on 'train' (or 'test')")
        data = BsdsDataset(root, split)
        self.image_size = image_size
        self.seed = seed
        self.min_fraction, self.max_fraction = min_fraction, max_fraction
        self.geometric = geometric or GeometricAugment()
        self.photometric = photometric or PhotometricAugment()
        self.photos: list[tuple[np.ndarray, list[np.ndarray], list[tuple[int, int]]]] = []
        for photo in data:
            # (annotator, label) of each distinct segment, found once at full resolution
            keys = unique_segment_keys(photo, min_fraction=0.0005)
            self.photos.append((photo.image, [lab.astype(np.uint16) for lab in photo.segmentations], keys))

    def __len__(self) -> int:
        return len(self.photos)

    def sample(self, rng: np.random.Generator, masks_per_image: int) -> tuple[np.ndarray, list[np.ndarray]]:
        """One augmented S x S image and ``masks_per_image`` S x S bool target masks."""
        s = self.image_size
        for _ in range(20):  # a crop can lose every usable segment: draw again
            image, labels, keys = self.photos[int(rng.integers(len(self.photos)))]
            photo, crops, (h, w) = self.geometric(image, labels, s, rng)
            photo[:h, :w] = self.photometric(np.ascontiguousarray(photo[:h, :w]), rng)
            visible = h * w
            candidates, areas = [], []
            for a, k in keys:
                mask = crops[a] == k
                area = np.count_nonzero(mask)
                if self.min_fraction * visible <= area <= self.max_fraction * visible:
                    candidates.append(mask)
                    areas.append(area)
            if candidates:
                # weights ~ sqrt(area): fine annotators draw many tiny segments, which would otherwise dominate
                weights = np.sqrt(np.asarray(areas, dtype=np.float64))
                chosen = rng.choice(len(candidates), size=masks_per_image, p=weights / weights.sum())
                return photo, [candidates[j] for j in chosen]
        raise RuntimeError("20 augmented crops in a row had no usable segment; check min_fraction")

    def batch(self, step: int, num_images: int, masks_per_image: int) -> MaskBatch:
        images, targets, index = [], [], []
        for i in range(num_images):
            image, masks = self.sample(np.random.default_rng([self.seed, step, i]), masks_per_image)
            images.append(image)
            targets.extend(masks)
            index.extend([i] * masks_per_image)
        return stack_batch(images, targets, index)
