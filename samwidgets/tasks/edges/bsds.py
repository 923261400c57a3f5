"""The BSDS500 edge benchmark's ground truth: every annotator's boundary map of a photo.

Each BSDS500 photo was segmented by 4 to 9 people; its ``groundTruth/<split>/<id>.mat`` holds, for
annotator j, the label image ``["groundTruth"][0, j]["Segmentation"][0, 0]`` (read by
:class:`samwidgets.data.bsds.BsdsDataset`) and the H x W boundary map of that partition,
``["groundTruth"][0, j]["Boundaries"][0, 0]``, which the edge benchmark scores against (all
annotators at once, see :func:`.metrics.edge_metrics`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["BSDS_LAYOUT", "check_bsds_root", "load_bsds_boundaries"]

#: The folder layout the BSDS500 readers expect (the official archive's ``BSDS500/data``).
BSDS_LAYOUT = ("ROOT/images/{split}/<id>.jpg and ROOT/groundTruth/{split}/<id>.mat (MATLAB v5): the folder "
               "BSDS500/data of the official archive (https://github.com/BIDS/BSDS500)")


def check_bsds_root(root: str | Path, split: str) -> Path:
    """``root`` as a Path if it holds ``images/<split>`` and ``groundTruth/<split>``; else a
    FileNotFoundError that names the expected layout."""
    root = Path(root)
    missing = [str(root / folder / split) for folder in ("images", "groundTruth")
               if not (root / folder / split).is_dir()]
    if missing:
        raise FileNotFoundError(f"no BSDS500 {split!r} split at {root} ({', '.join(missing)} missing); expected "
                                + BSDS_LAYOUT.format(split=split))
    return root


def load_bsds_boundaries(path: str | Path) -> np.ndarray:
    """Every annotator's boundary map from a BSDS500 ground-truth .mat file: A x H x W bool."""
    from scipy.io import loadmat

    try:
        gt = loadmat(str(path))["groundTruth"]
        maps = [np.asarray(gt[0, j]["Boundaries"][0, 0]).astype(bool) for j in range(gt.shape[1])]
    except Exception as e:
        raise ValueError(f"{path} is not a BSDS500 ground-truth file (a MATLAB v5 file with a 'groundTruth' cell "
                         f"array of structs with 'Boundaries'): {type(e).__name__}: {e}") from e
    if not maps or len({m.shape for m in maps}) != 1 or maps[0].ndim != 2:
        raise ValueError(f"{path}: expected one H x W boundary map per annotator, got {[m.shape for m in maps]}")
    return np.stack(maps)
