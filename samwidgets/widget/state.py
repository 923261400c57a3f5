"""The state of an annotation on one image, as immutable values, and its undo history.

Every user action produces a new :class:`ImageState` that shares unchanged
arrays with the old one, so undo and redo are just moves along a list of
states: no prediction is recomputed and nothing is ever lost by undoing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from ..errors import UnknownObjectError, UserInputError

#: Distinct, readable colours (RGB) given to objects in turn.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
    (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128),
)


def color_for(object_id: int) -> tuple[int, int, int]:
    """The palette colour of an object id (ids start at 1)."""
    return PALETTE[(object_id - 1) % len(PALETTE)]


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """XYXY bounding box of a mask's pixels, ends exclusive (x1 - x0 is the width); None for an empty mask."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return None
    return (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


@dataclass(frozen=True)
class Prompt:
    """The prompts of the object being edited, in original-image pixels."""

    points: tuple[tuple[float, float], ...] = ()  # (x, y) each
    labels: tuple[int, ...] = ()  # 1 positive, 0 negative
    box: tuple[float, float, float, float] | None = None  # XYXY

    @property
    def is_empty(self) -> bool:
        return not self.points and self.box is None

    def with_point(self, x: float, y: float, label: int) -> Prompt:
        return replace(self, points=(*self.points, (float(x), float(y))), labels=(*self.labels, int(label)))

    def with_box(self, box: tuple[float, float, float, float]) -> Prompt:
        return replace(self, box=tuple(float(v) for v in box))

    def arrays(self) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        """(point_coords N x 2, point_labels N, box 4) for :meth:`SamPredictor.predict`; None where absent."""
        coords = np.asarray(self.points, dtype=np.float64) if self.points else None
        labels = np.asarray(self.labels, dtype=np.int64) if self.points else None
        box = np.asarray(self.box, dtype=np.float64) if self.box is not None else None
        return coords, labels, box


@dataclass(frozen=True)
class Prediction:
    """SAM's answer to a prompt: 3 ambiguity candidates after a single click, else 1."""

    masks: np.ndarray  # M x H x W bool
    scores: np.ndarray  # M, predicted IoU
    low_res: np.ndarray  # M x s x s logits, fed back as the next round's mask prompt
    chosen: int = 0  # index of the candidate the user keeps

    @property
    def mask(self) -> np.ndarray:
        return self.masks[self.chosen]

    @property
    def score(self) -> float:
        return float(self.scores[self.chosen])

    @property
    def logits(self) -> np.ndarray:
        """1 x s x s low-res logits of the chosen candidate (the ``mask_input`` of the next round)."""
        return self.low_res[self.chosen][None]

    @property
    def is_ambiguous(self) -> bool:
        return len(self.masks) > 1

    @cached_property
    def bbox(self) -> tuple[int, int, int, int] | None:
        """XYXY box of the chosen mask (see :func:`mask_bbox`): drawing crops to it."""
        return mask_bbox(self.mask)


@dataclass(frozen=True)
class Edit:
    """The object currently being edited: its prompts and SAM's latest answer."""

    prompt: Prompt = field(default_factory=Prompt)
    prediction: Prediction | None = None

    @property
    def is_empty(self) -> bool:
        return self.prompt.is_empty and self.prediction is None


@dataclass(frozen=True)
class AnnotatedObject:
    """A committed object: its mask, a label, SAM's predicted IoU and the prompts that made it."""

    id: int
    mask: np.ndarray  # H x W bool
    label: str
    score: float
    color: tuple[int, int, int]
    prompt: Prompt = field(default_factory=Prompt)

    # computed once per object: the side panel lists every object's area on every redraw
    @cached_property
    def area(self) -> int:
        return int(self.mask.sum())

    @cached_property
    def box(self) -> tuple[int, int, int, int] | None:
        """XYXY box of the mask (see :func:`mask_bbox`): drawing crops to it."""
        return mask_bbox(self.mask)

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        """COCO bbox (x, y, width, height) in pixels; zeros for an empty mask."""
        if self.box is None:
            return (0, 0, 0, 0)
        x0, y0, x1, y1 = self.box
        return (x0, y0, x1 - x0, y1 - y0)


@dataclass(frozen=True)
class ImageState:
    """Everything the user made on one image."""

    objects: tuple[AnnotatedObject, ...] = ()
    edit: Edit = field(default_factory=Edit)
    selected: int | None = None  # id of the selected object
    next_id: int = 1

    def object(self, object_id: int) -> AnnotatedObject:
        for obj in self.objects:
            if obj.id == object_id:
                return obj
        raise UnknownObjectError(f"no object with id {object_id}; ids here: {[o.id for o in self.objects]}")


class History:
    """Undo/redo over the states of one image: a list of (action, state) and a cursor."""

    def __init__(self, initial: ImageState | None = None, limit: int = 200) -> None:
        if limit < 1:
            raise UserInputError("limit must be >= 1")
        self._entries: list[tuple[str, ImageState]] = [("start", initial or ImageState())]
        self._cursor = 0
        self.limit = limit

    @property
    def state(self) -> ImageState:
        return self._entries[self._cursor][1]

    @property
    def can_undo(self) -> bool:
        return self._cursor > 0

    @property
    def can_redo(self) -> bool:
        return self._cursor < len(self._entries) - 1

    def push(self, action: str, state: ImageState) -> None:
        """Record a new state; anything that could have been redone is dropped, as in every editor."""
        del self._entries[self._cursor + 1:]
        self._entries.append((action, state))
        if len(self._entries) > self.limit:  # forget the oldest steps, keep the newest
            del self._entries[: len(self._entries) - self.limit]
        self._cursor = len(self._entries) - 1

    def undo(self) -> str | None:
        """Step back; returns the name of the undone action, or None if there is nothing to undo."""
        if not self.can_undo:
            return None
        action = self._entries[self._cursor][0]
        self._cursor -= 1
        return action

    def redo(self) -> str | None:
        """Step forward again; returns the name of the redone action, or None."""
        if not self.can_redo:
            return None
        self._cursor += 1
        return self._entries[self._cursor][0]
