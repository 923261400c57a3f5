"""The ground truth for edges on procedural scenes: the one-pixel boundaries of their masks.

A procedural scene knows every region it drew (:class:`samwidgets.data.scenes.Scene`), so its
boundary map is exact; :func:`scene_boundaries` draws it the way BSDS's ``seg2bmap`` does, at a
chosen level of the object > part > subpart hierarchy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["scene_boundaries"]


def scene_boundaries(scene: Any, level: str | int = "subpart") -> np.ndarray:
    """Ground-truth boundary map of a procedural scene: H x W bool, one pixel wide.

    level: the finest level whose boundaries are included: "whole" (0) the
    visible outlines of whole objects, "part" (1) also their parts,
    "subpart" (2, the default) also the subparts, i.e. every drawn region.

    Why the default is every level: the scene generator paints each part and
    subpart with a fill chosen to contrast with its surroundings, so their
    outlines are real, visible image edges; with whole objects only, every
    detector would be charged false positives for edges that are plainly
    there. BSDS annotators likewise mark region boundaries at the
    granularity they see, not only object outlines. (Edges *inside* a fill,
    such as stripes, checkers or photo texture, are not in the ground truth
    at any level, as on BSDS.)

    A pixel is a boundary pixel when a mask changes between it and its right
    or lower neighbour (as BSDS's ``seg2bmap``), so boundaries are one pixel
    wide and the image frame is not a boundary.
    """
    finest = _level_index(level)
    masks = np.asarray(scene.masks, dtype=bool)[np.asarray(scene.levels) <= finest]  # M' x H x W
    boundary = np.zeros(np.asarray(scene.image).shape[:2], dtype=bool)  # H x W
    for mask in masks:
        boundary[:, :-1] |= mask[:, :-1] != mask[:, 1:]  # changes to the right neighbour
        boundary[:-1, :] |= mask[:-1, :] != mask[1:, :]  # changes to the lower neighbour
    return boundary


def _level_index(level: str | int) -> int:
    """'whole' / 'part' / 'subpart' (or 0 / 1 / 2) -> 0 / 1 / 2."""
    names = ("whole", "part", "subpart")  # in the order of their index in Scene.levels
    if isinstance(level, str):
        if level not in names:
            raise ValueError(f"level must be one of {names} (or 0, 1, 2), got {level!r}")
        return names.index(level)
    if int(level) not in (0, 1, 2):
        raise ValueError(f"level must be one of {names} (or 0, 1, 2), got {level!r}")
    return int(level)
