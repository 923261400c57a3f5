"""Writing tiny BSDS500-format data sets for tests: the official layout, built here, never copied.

``images/<split>/<id>.jpg`` and ``groundTruth/<split>/<id>.mat``, where the .mat holds a 1 x J cell
array of 1 x 1 structs with each annotator's ``Segmentation`` (label image) and ``Boundaries``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.io import savemat


def label_boundaries(labels: np.ndarray) -> np.ndarray:
    """H x W uint8: 1 where a pixel's label differs from its left or upper neighbour's."""
    edge = np.zeros(labels.shape, np.uint8)
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    return edge


def write_bsds_photo(root: Path, split: str, image_id: str, image: np.ndarray,
                     segmentations: Sequence[np.ndarray]) -> None:
    """One photo (H x W x 3 uint8) and its annotators' label images, written as the BSDS500 files are."""
    for folder in ("images", "groundTruth"):
        (root / folder / split).mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(root / "images" / split / f"{image_id}.jpg", quality=95)
    cells = np.empty((1, len(segmentations)), dtype=object)  # a 1 x J cell array of 1 x 1 structs
    for j, labels in enumerate(segmentations):
        struct = np.empty((1, 1), dtype=[("Segmentation", object), ("Boundaries", object)])
        struct[0, 0]["Segmentation"] = labels
        struct[0, 0]["Boundaries"] = label_boundaries(labels)
        cells[0, j] = struct
    savemat(root / "groundTruth" / split / f"{image_id}.mat", {"groundTruth": cells})
