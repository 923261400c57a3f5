"""A reader for the Berkeley Segmentation Data Set (BSDS500) in its official layout.

BSDS500 (Arbelaez, Maire, Fowlkes and Malik, "Contour Detection and
Hierarchical Image Segmentation", TPAMI 2011) has 500 photos (481 x 321 or
321 x 481), each segmented by 4 to 9 people. Every annotator's segmentation
is a full partition of the photo at their own granularity: one draws
"person", another "face", "shirt" and "hands". So a point on a photo
honestly has several valid masks, the ambiguity SAM's three outputs are for.

Get it from the public mirror (https://github.com/BIDS/BSDS500) or the
Berkeley site; the folder this module reads is ``BSDS500/data``::

    ROOT/images/{train,val,test}/<id>.jpg
    ROOT/groundTruth/{train,val,test}/<id>.mat   # MATLAB v5, read with scipy.io.loadmat

    >>> data = BsdsDataset("BSDS500/data", "val")        # doctest: +SKIP
    >>> photo = data[0]                                   # doctest: +SKIP
    >>> photo.image.shape, len(photo.segmentations)       # doctest: +SKIP
    ((321, 481, 3), 5)
    >>> masks = photo.segments()                          # every annotator's segments, H x W bool each

The GrabCut benchmark's object masks (Rother et al. 2004) exist for 20
BSDS photos; :func:`load_grabcut_masks` reads a folder of them.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .masks import mask_iou

__all__ = ["BsdsDataset", "BsdsPhoto", "BSDS_SPLITS", "evaluation_segments", "load_grabcut_masks",
           "unique_segment_keys", "unique_segments"]

BSDS_SPLITS = ("train", "val", "test")
_WHERE = "get BSDS500 from https://github.com/BIDS/BSDS500 (the folder BSDS500/data) or the Berkeley site"


@dataclass
class BsdsPhoto:
    """One BSDS500 photo and its human segmentations."""

    image_id: str
    image: np.ndarray  # H x W x 3 uint8 RGB
    segmentations: list[np.ndarray]  # one H x W label image (1..K) per annotator

    def segments(self, annotator: int | None = None) -> list[np.ndarray]:
        """The segments of one annotator (or of all, in annotator order) as H x W bool masks."""
        chosen = self.segmentations if annotator is None else [self.segmentations[annotator]]
        return [labels == k for labels in chosen for k in np.unique(labels)]

    def segments_at(self, x: int, y: int) -> list[np.ndarray]:
        """Every annotator's segment that contains pixel (x, y): the valid masks for a click there."""
        return [labels == labels[y, x] for labels in self.segmentations]


def _read_segmentations(path: Path) -> list[np.ndarray]:
    from scipy.io import loadmat

    try:
        gt = loadmat(str(path))["groundTruth"]
    except Exception as e:
        raise ValueError(f"{path} is not a BSDS500 ground-truth file (a MATLAB v5 file with a 'groundTruth' "
                         f"cell array): {type(e).__name__}: {e}") from e
    return [np.asarray(gt[0, j]["Segmentation"][0, 0]).astype(np.int32) for j in range(gt.shape[1])]


class BsdsDataset:
    """The photos of one BSDS500 split with every annotator's segmentation, read on demand.

    root is the folder that holds ``images/`` and ``groundTruth/`` (``BSDS500/data``
    in the official archive). Photos are sorted by id; ``ids`` restricts to some of them.
    """

    def __init__(self, root: str | Path, split: str = "train", ids: list[str] | None = None) -> None:
        if split not in BSDS_SPLITS:
            raise ValueError(f"unknown BSDS500 split {split!r}; use one of {BSDS_SPLITS}")
        self.root = Path(root)
        self.split = split
        self.image_dir = self.root / "images" / split
        self.truth_dir = self.root / "groundTruth" / split
        for folder in (self.image_dir, self.truth_dir):
            if not folder.is_dir():
                raise FileNotFoundError(
                    f"{folder} does not exist: --bsds must be the folder holding images/{split} and "
                    f"groundTruth/{split} (BSDS500/data in the official archive); {_WHERE}")
        found = sorted(p.stem for p in self.truth_dir.glob("*.mat") if (self.image_dir / f"{p.stem}.jpg").is_file())
        if not found:
            raise FileNotFoundError(f"no photo in {self.image_dir} has a ground-truth file in {self.truth_dir}; "
                                    f"{_WHERE}")
        if ids is not None:
            missing = sorted(set(ids) - set(found))
            if missing:
                raise KeyError(f"BSDS500 {split} has no photo {missing[0]!r} ({len(missing)} ids not found)")
            found = [i for i in found if i in set(ids)]
        self.ids = found

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> BsdsPhoto:
        return self.load(self.ids[index])

    def __iter__(self):
        return (self.load(i) for i in self.ids)

    def load(self, image_id: str) -> BsdsPhoto:
        """The photo ``image_id`` (e.g. "100075") with its segmentations."""
        from PIL import Image

        with Image.open(self.image_dir / f"{image_id}.jpg") as im:
            image = np.asarray(im.convert("RGB"))
        segmentations = _read_segmentations(self.truth_dir / f"{image_id}.mat")
        for labels in segmentations:
            if labels.shape != image.shape[:2]:
                raise ValueError(f"{image_id}: a segmentation is {labels.shape}, the photo {image.shape[:2]}")
        return BsdsPhoto(image_id, image, segmentations)


def unique_segment_keys(photo: BsdsPhoto, min_fraction: float = 0.0, max_fraction: float = 1.0,
                        duplicate_iou: float = 0.9) -> list[tuple[int, int]]:
    """(annotator, label) of every segment whose area is within [min_fraction, max_fraction] of the
    photo, with near-duplicates (IoU >= duplicate_iou with one already kept; annotators often agree)
    dropped. In annotator order, then label order, so the result is deterministic."""
    total = photo.image.shape[0] * photo.image.shape[1]
    keys: list[tuple[int, int]] = []
    kept: list[np.ndarray] = []
    for a, labels in enumerate(photo.segmentations):
        for k in np.unique(labels):
            mask = labels == k
            if not min_fraction <= np.count_nonzero(mask) / total <= max_fraction:
                continue
            if all(mask_iou(mask, other) < duplicate_iou for other in kept):
                keys.append((a, int(k)))
                kept.append(mask)
    return keys


def unique_segments(photo: BsdsPhoto, min_fraction: float = 0.0, max_fraction: float = 1.0,
                    duplicate_iou: float = 0.9) -> list[np.ndarray]:
    """The masks of :func:`unique_segment_keys`: every annotator's distinct segments of the given size."""
    return [photo.segmentations[a] == k for a, k in unique_segment_keys(photo, min_fraction, max_fraction,
                                                                        duplicate_iou)]


def evaluation_segments(photo: BsdsPhoto, count: int = 4, min_fraction: float = 0.01, max_fraction: float = 0.5,
                        ) -> list[np.ndarray]:
    """The segments a benchmark scores on this photo: ``count`` of its distinct human segments that
    cover ``min_fraction`` to ``max_fraction`` of it, drawn with a generator seeded by the photo id
    (the same segments on every machine and for every model)."""
    candidates = unique_segments(photo, min_fraction, max_fraction)
    rng = np.random.default_rng(zlib.crc32(photo.image_id.encode()))
    order = rng.permutation(len(candidates))[:count]
    return [candidates[i] for i in sorted(order)]


def load_grabcut_masks(folder: str | Path, ids: list[str] | None = None) -> dict[str, np.ndarray]:
    """GrabCut benchmark object masks (PNG, 0 background / 255 object) by photo id, as H x W bool.

    Pixels of other values (some releases mark an unknown band with 128) count as background.
    """
    from PIL import Image

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder of GrabCut ground-truth PNGs (<id>.png, 0/255)")
    masks = {}
    for path in sorted(folder.glob("*.png")):
        if ids is None or path.stem in ids:
            with Image.open(path) as im:
                masks[path.stem] = np.asarray(im.convert("L")) > 200
    return masks
