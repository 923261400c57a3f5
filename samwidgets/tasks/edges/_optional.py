"""The optional dependencies of edge detection, imported when first needed, with an install hint.

scikit-image thins edge maps (the detectors' last step, and each binarised map in the metric,
as BSDS does); scipy's distance transform matches edge pixels within a tolerance (the metric).
Neither is a core dependency of the kit, so importing :mod:`samwidgets.tasks.edges` needs neither.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import numpy as np


def skimage_thin() -> Callable[[np.ndarray], np.ndarray]:
    """``skimage.morphology.thin`` (H x W bool -> H x W bool skeleton), or an ImportError saying what to
    install."""
    try:
        from skimage.morphology import thin
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("edge thinning needs scikit-image: pip install scikit-image") from e
    return thin


def scipy_distance_transform() -> Callable[..., np.ndarray]:
    """``scipy.ndimage.distance_transform_edt`` (H x W -> H x W float64 distances), or an ImportError saying
    what to install."""
    try:
        from scipy.ndimage import distance_transform_edt
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("edge matching needs scipy: pip install scipy") from e
    # called for distances only (no indices asked for), it returns just the distance array
    return cast(Callable[..., np.ndarray], distance_transform_edt)
