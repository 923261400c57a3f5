"""The prompt of the exported decoders' ONNX inputs, as the reference SAM demo packs it (SAM 2's export keeps it).

Shared by tests/test_onnx.py (SAM) and tests/test_sam2_onnx.py (SAM 2), which each turn it into their model's
input frame and add their own image features.
"""

from __future__ import annotations

import numpy as np


def onnx_prompt(points=None, labels=None, box=None, padding: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The clicks, then the box's two corners (labels 2, 3), else one padding point (0, 0) with label -1
    (``padding=False``: never a padding point): N x 2 coordinates in the image's pixels and N labels, float64."""
    coords, codes = np.zeros((0, 2)), np.zeros(0)
    if points is not None:
        coords, codes = np.asarray(points, float), np.asarray(labels, float)
    if box is not None:
        coords = np.concatenate([coords, np.asarray(box, float).reshape(2, 2)])
        codes = np.concatenate([codes, [2, 3]])
    elif padding:
        coords, codes = np.concatenate([coords, [[0.0, 0.0]]]), np.concatenate([codes, [-1]])
    return coords, codes
