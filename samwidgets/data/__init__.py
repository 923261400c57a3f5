"""Procedural training / evaluation data for SAM: scenes of objects > parts > subparts.

    >>> from samwidgets.data import SceneGenerator, sample_point_on
    >>> scene = SceneGenerator(image_size=128)(seed=3)
    >>> len(scene) == scene.masks.shape[0]
    True
"""

from .fills import FILL_KINDS, PALETTE_NAMES
from .scenes import LEVEL_NAMES, Scene, SceneGenerator, sample_point_on
from .shapes import OBJECT_KINDS

__all__ = [
    "FILL_KINDS",
    "LEVEL_NAMES",
    "OBJECT_KINDS",
    "PALETTE_NAMES",
    "Scene",
    "SceneGenerator",
    "sample_point_on",
]
