"""A bank of procedural scenes kept in memory, for training and evaluating text prompts.

Scenes cost about 35 ms each to draw, so both trainings of the text path draw
them once (in parallel processes), keep the images as uint8 and the masks
bit-packed, and sample batches of masks from the bank.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..data import SceneGenerator
from .phrases import mask_words


@dataclass
class SceneBank:
    """Scenes flattened to masks: M masks over N images, every array indexed by mask."""

    images: np.ndarray        # N x S x S x 3 uint8
    packed_masks: np.ndarray  # M x ceil(S*S/8) uint8, np.packbits of each S x S mask
    image_of_mask: np.ndarray  # M int64
    levels: np.ndarray        # M int8: 0 whole, 1 part, 2 subpart
    words: list               # M tuples (pattern, colour, shape, name)
    seeds: np.ndarray         # N int64: the scene seeds
    areas: np.ndarray         # M int64: visible pixels of each mask

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])

    def __len__(self) -> int:
        return int(self.image_of_mask.shape[0])

    def masks(self, indices: np.ndarray) -> np.ndarray:
        """len(indices) x S x S bool."""
        s = self.image_size
        return np.unpackbits(self.packed_masks[indices], axis=1, count=s * s).reshape(-1, s, s).astype(bool)

    def unique_in_image(self) -> np.ndarray:
        """M bool: no other mask of the same image has the same four words (a full phrase names it alone)."""
        seen: dict = {}
        for i, (img, w) in enumerate(zip(self.image_of_mask, self.words)):
            seen.setdefault((int(img), w), []).append(i)
        out = np.zeros(len(self), bool)
        for idx in seen.values():
            if len(idx) == 1:
                out[idx[0]] = True
        return out

    def sample(self, rng: np.random.Generator, count: int, min_area: int = 0,
               balance_levels: bool = True) -> np.ndarray:
        """``count`` mask indices among masks of at least ``min_area`` pixels; with ``balance_levels``
        each level (whole, part, subpart) is equally likely, else each mask."""
        allowed = self.areas >= min_area
        if not allowed.any():
            raise ValueError(f"no mask of the bank has {min_area} pixels or more")
        p = allowed.astype(float)
        if balance_levels:
            p /= np.maximum(np.bincount(self.levels[allowed], minlength=3)[self.levels], 1)
        return rng.choice(len(self), size=count, p=p / p.sum())

    def sample_by_image(self, rng: np.random.Generator, images: int, per_image: int, min_area: int = 0) -> np.ndarray:
        """Mask indices of ``images`` random images, up to ``per_image`` distinct masks of each (masks of at least
        ``min_area`` pixels): several objects of one image side by side, which a prompt must tell apart."""
        allowed = np.flatnonzero(self.areas >= min_area)
        if allowed.size == 0:
            raise ValueError(f"no mask of the bank has {min_area} pixels or more")
        owners = self.image_of_mask[allowed]
        chosen = rng.choice(np.unique(owners), size=min(images, np.unique(owners).size), replace=False)
        picks = [rng.choice(allowed[owners == img], size=min(per_image, int((owners == img).sum())), replace=False)
                 for img in chosen]
        return np.concatenate(picks)

    def batch(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Images Bi x S x S x 3 uint8 (each image once), masks B x S x S bool, image_index B."""
        image_ids, image_index = np.unique(self.image_of_mask[indices], return_inverse=True)
        return self.images[image_ids], self.masks(indices), image_index.reshape(-1)


def _draw(args: tuple[int, int, list[int]]) -> list:
    image_size, _, seeds = args
    generator = SceneGenerator(image_size=image_size)
    out = []
    for seed in seeds:
        scene = generator(seed)
        words = [mask_words(scene, i) for i in range(len(scene))]
        out.append((seed, scene.image, np.packbits(scene.masks.reshape(len(scene), -1), axis=1),
                    scene.levels.astype(np.int8), words, scene.areas.astype(np.int64)))
    return out


def build_bank(seeds: range | list[int], image_size: int = 256, processes: int = 1) -> SceneBank:
    """Draw the scenes of ``seeds`` (in ``processes`` worker processes) into a :class:`SceneBank`."""
    seeds = [int(s) for s in seeds]
    chunks = [(image_size, k, seeds[k::max(processes, 1)]) for k in range(max(processes, 1))]
    if processes > 1:
        with ProcessPoolExecutor(processes) as pool:
            parts = list(pool.map(_draw, chunks))
    else:
        parts = [_draw(chunks[0])]
    position = {seed: k for k, seed in enumerate(seeds)}
    drawn = sorted((item for part in parts for item in part), key=lambda item: position[item[0]])
    images, packed, image_of_mask, levels, words, areas = [], [], [], [], [], []
    for n, (_, image, bits, lev, w, area) in enumerate(drawn):
        areas.append(area)
        images.append(image)
        packed.append(bits)
        image_of_mask.append(np.full(len(w), n, np.int64))
        levels.append(lev)
        words.extend(w)
    return SceneBank(
        images=np.stack(images),
        packed_masks=np.concatenate(packed),
        image_of_mask=np.concatenate(image_of_mask),
        levels=np.concatenate(levels),
        words=words,
        seeds=np.array([d[0] for d in drawn], np.int64),
        areas=np.concatenate(areas),
    )
