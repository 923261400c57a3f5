"""The annotation logic behind :class:`~samwidgets.widget.SamCanvas`, free of any widget.

An :class:`AnnotationSession` binds a :class:`~samwidgets.SamPredictor` to a
set of images. Each action (a click, a box, picking one of SAM's three
masks, committing an object, deleting, renaming, clearing) becomes a new
:class:`~samwidgets.widget.state.ImageState` in that image's
:class:`~samwidgets.widget.state.History`, so every action can be undone and
redone. Prompts run only SAM's decoder on the cached image embedding, and
refine from the previous round's low-res logits, as in the paper's
interactive loop. Tests drive this class directly; the widget only turns
mouse and key events into these calls and draws the result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import torch

from ..errors import OutOfRangeError, UserInputError
from ..inference.images import ImageLike
from ..inference.predictor import SamPredictor
from ..inference.prompts import check_box
from ..sam2 import SAM2ImagePredictor
from .imageset import ImageSet
from .state import AnnotatedObject, Edit, History, ImageState, Prediction, Prompt, color_for

POSITIVE, NEGATIVE = 1, 0


class Prefetcher:
    """Encodes images into the predictor's cache on one background thread."""

    def __init__(self, predictor: SamPredictor | SAM2ImagePredictor) -> None:
        self.predictor = predictor
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="samwidgets-prefetch")
        self._futures: dict[int, Future] = {}

    def submit(self, index: int, load: Callable[[], np.ndarray]) -> None:
        if index not in self._futures:
            self._futures[index] = self._executor.submit(lambda: self.predictor.precompute(load()))

    def wait(self, index: int) -> float | None:
        """Block until image index is encoded; its encoder seconds, or None if it was never submitted.

        An error in the background (an unreadable file, say) is raised here,
        when the user reaches that image, not lost in the thread.
        """
        future = self._futures.pop(index, None)
        return None if future is None else future.result()

    def shutdown(self) -> None:
        """Drop queued work; an encode already running finishes on its own (closing never blocks)."""
        self._executor.shutdown(wait=False, cancel_futures=True)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads of torch (None: as they are), and restore the count after.

    The decoder is small: one thread does it in about 1.5x the time of two on an idle two-core machine, but
    when the browser shares the machine (JupyterLab on a laptop), two threads wait on each other and took 3x
    as long as one (105 against 36 ms, measured in tests/test_browser.py).
    """
    before = torch.get_num_threads()
    if n is None or n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def predict_boxes(predictor: SamPredictor | SAM2ImagePredictor, boxes: np.ndarray,
                  image_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One mask per box from one batched decoder call on the predictor's current image of size ``image_hw``:
    boxes B x 4 (XYXY image pixels) -> masks B x H x W (bool) and predicted IoUs B. The reference's ``predict``
    takes one box; SAM's ``predict_torch`` (boxes in the resized frame) and SAM 2's ``predict`` take a batch."""
    h, w = image_hw
    if isinstance(predictor, SamPredictor):
        resized = predictor.transform.apply_boxes(boxes, (h, w))  # B x 4 in the model's input frame
        boxes_t = torch.as_tensor(resized, dtype=torch.float, device=predictor.device)
        masks, scores, _ = predictor.predict_torch(None, None, boxes_t, multimask_output=False)  # B x 1 x H x W
        masks, scores = masks.cpu().numpy(), scores.float().cpu().numpy()
    else:
        masks, scores, _ = predictor.predict(box=boxes, multimask_output=False)
    masks = np.asarray(masks).reshape(len(boxes), -1, h, w)[:, 0].astype(bool, copy=False)  # B x H x W
    return masks, np.asarray(scores, dtype=np.float32).reshape(len(boxes), -1)[:, 0]


def _xyxy(box: np.ndarray) -> tuple[float, float, float, float]:
    """A box of 4 numbers as the (x0, y0, x1, y1) floats a Prompt holds."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return x0, y0, x1, y1


class AnnotationSession:
    """Interactive segmentation of a set of images with one predictor.

    Args:
        predictor: the predictor (its embedding cache makes revisiting an image free).
        images: one image (array, PIL image, path) or a list of them.
        names: file names to use on export (default: the paths' names, or ``image_0000.png``...).
        prefetch: encode the next image on a background thread while the user works.
        history_limit: undo steps kept per image.
        decoder_threads: torch threads for the decoder calls (None: torch's setting; see :func:`torch_threads`).
    """

    def __init__(self, predictor: SamPredictor | SAM2ImagePredictor, images: ImageLike | Sequence[ImageLike], *,
                 names: Sequence[str] | None = None, prefetch: bool = True, history_limit: int = 200,
                 decoder_threads: int | None = None) -> None:
        self.predictor = predictor
        self.decoder_threads = decoder_threads
        self.images = ImageSet(images, names)
        self.history_limit = history_limit
        self._histories: dict[int, History] = {}
        self._prefetcher = Prefetcher(predictor) if prefetch else None
        self.index = -1
        #: how the current image's embedding was obtained: "encoded", "cached" or "prefetched"
        self.encode_source = ""
        #: encoder seconds of the current image (spent now, or earlier in the background)
        self.encode_seconds = 0.0
        #: milliseconds of the last decoder call (prompt encoder + mask decoder + upsampling)
        self.decoder_ms: float | None = None
        #: milliseconds of the last hover preview's decoder call
        self.preview_ms: float | None = None
        #: whether the last prompt's answer was the hover preview's at the same spot (no decoder call)
        self.reused_preview = False
        self._previewed: tuple | None = None  # (image index, edit, prompt, prediction, ms) of the last preview
        self.open(0)

    # -- images ---------------------------------------------------------------
    def open(self, index: int) -> None:
        """Make image ``index`` current (its embedding from the cache when possible)."""
        n = len(self.images)
        if not 0 <= index < n:
            raise OutOfRangeError(f"image index {index} out of range: the set has {n} images (0..{n - 1})")
        rgb = self.images.rgb(index)
        background = self._prefetcher.wait(index) if self._prefetcher else None
        self.predictor.set_image(rgb)
        if background:  # encoded ahead of time on the background thread
            self.encode_source, self.encode_seconds = "prefetched", background
        elif self.predictor.last_set_image_cached:
            self.encode_source, self.encode_seconds = "cached", 0.0
        else:
            self.encode_source, self.encode_seconds = "encoded", self.predictor.last_encode_seconds
        self.index = index
        self.decoder_ms = None
        self._previewed = None
        if self._prefetcher and index + 1 < n:
            self._prefetcher.submit(index + 1, lambda i=index + 1: self.images.rgb(i))

    def warm_up(self) -> None:
        """Run the decoder once on the current image and forget the answer.

        The first call of a fresh model pays one-off costs (memory
        allocation, the per-image projections); paying them here keeps the
        user's first click as fast as every later one. Nothing is recorded.
        """
        h, w = self.image.shape[:2]
        with torch_threads(self.decoder_threads):
            self.predictor.predict(point_coords=[[w / 2, h / 2]], point_labels=[1], multimask_output=True)

    def next(self) -> bool:
        """Go to the next image; False (and no change) on the last one."""
        if self.index + 1 >= len(self.images):
            return False
        self.open(self.index + 1)
        return True

    def previous(self) -> bool:
        """Go to the previous image; False (and no change) on the first one."""
        if self.index == 0:
            return False
        self.open(self.index - 1)
        return True

    @property
    def image(self) -> np.ndarray:
        """The current image, H x W x 3 uint8."""
        return self.images.rgb(self.index)

    # -- state ----------------------------------------------------------------
    def history(self, index: int | None = None) -> History:
        index = self.index if index is None else index
        if index not in self._histories:
            self._histories[index] = History(limit=self.history_limit)
        return self._histories[index]

    @property
    def state(self) -> ImageState:
        return self.history().state

    def state_of(self, index: int) -> ImageState:
        """The state of any image of the set (an untouched image has an empty state)."""
        return self._histories[index].state if index in self._histories else ImageState()

    def _push(self, action: str, state: ImageState) -> ImageState:
        self.history().push(action, state)
        return state

    @property
    def current_mask(self) -> np.ndarray | None:
        """The mask of the object being edited (H x W bool), or None."""
        prediction = self.state.edit.prediction
        return None if prediction is None else prediction.mask

    @property
    def masks(self) -> list[np.ndarray]:
        """The committed objects' masks on the current image, one H x W bool array each."""
        return [obj.mask for obj in self.state.objects]

    # -- prompts --------------------------------------------------------------
    def add_point(self, x: float, y: float, positive: bool = True) -> Prediction:
        """Add a positive (or negative) click at image pixel (x, y) and predict."""
        edit = self.state.edit
        return self._predict("point", edit.prompt.with_point(x, y, POSITIVE if positive else NEGATIVE), edit)

    def set_box(self, box: Sequence[float]) -> Prediction:
        """Set the box (XYXY image pixels, corners in any order) of the current object and predict."""
        if len(box) != 4:
            raise UserInputError(f"a box is 4 numbers (x0, y0, x1, y1), got {len(box)}")
        x0, y0, x1, y1 = (float(v) for v in box)
        box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        edit = self.state.edit
        return self._predict("box", edit.prompt.with_box(box), edit)

    def preview(self, x: float, y: float, positive: bool = True) -> Prediction:
        """What a click at image pixel (x, y) would give, without recording anything (the hover preview).

        The answer is kept: a click at the same spot right after reuses it instead of running the decoder
        again (the same prompt on the same state gives the same masks).
        """
        edit = self.state.edit
        prompt = edit.prompt.with_point(x, y, POSITIVE if positive else NEGATIVE)
        prediction, ms, _ = self._answer(prompt, edit)
        self._previewed = (self.index, edit, prompt, prediction, ms)
        self.preview_ms = ms
        return prediction

    def _answer(self, prompt: Prompt, previous: Edit) -> tuple[Prediction, float, bool]:
        """SAM's answer to ``prompt`` refining ``previous``, the decoder's milliseconds, and whether it is the
        last preview's answer (the same prompt on the same edit of the same image)."""
        if self._previewed is not None:
            index, edit, previewed, prediction, ms = self._previewed
            if index == self.index and edit is previous and previewed == prompt:
                return prediction, ms, True
        coords, labels, box = prompt.arrays()
        single_click = len(prompt.points) == 1 and prompt.box is None
        # The paper's loop: a lone click is ambiguous (3 masks); every later prompt refines the
        # mask the user kept, given back to SAM as its low-res logits, and asks for one mask.
        mask_input = previous.prediction.logits if previous.prediction is not None and not single_click else None
        start = time.perf_counter()
        with torch_threads(self.decoder_threads):
            masks, scores, low_res = self.predictor.predict(
                point_coords=coords, point_labels=labels, box=box, mask_input=mask_input,
                multimask_output=single_click,
            )
        masks = masks.astype(bool, copy=False)  # SAM 2's predictor gives 0/1 floats, SAM's booleans
        ms = 1000 * (time.perf_counter() - start)
        chosen = int(np.argmax(scores))  # the most confident mask is the default
        return Prediction(masks=masks, scores=scores, low_res=low_res, chosen=chosen), ms, False

    def _predict(self, action: str, prompt: Prompt, previous: Edit) -> Prediction:
        prediction, self.decoder_ms, self.reused_preview = self._answer(prompt, previous)
        self._previewed = None
        self._push(action, replace(self.state, edit=Edit(prompt, prediction)))
        return prediction

    def add_boxes(self, boxes: Sequence[Sequence[float]], label: str | None = None) -> tuple[AnnotatedObject, ...]:
        """One new object per box (XYXY image pixels), all from one batched decoder call; one undo removes them.

        The object being edited stays as it is. Returns the new objects, in the order of the boxes.
        """
        if len(boxes) == 0:
            raise UserInputError("no boxes given: draw at least one box")
        h, w = self.image.shape[:2]
        rows = []
        for box in boxes:
            if len(box) != 4:
                raise UserInputError(f"a box is 4 numbers (x0, y0, x1, y1), got {len(box)}")
            x0, y0, x1, y1 = (float(v) for v in box)
            rows.append(check_box((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), (h, w))[0])
        start = time.perf_counter()
        with torch_threads(self.decoder_threads):
            masks, scores = predict_boxes(self.predictor, np.stack(rows), (h, w))
        self.decoder_ms, self.reused_preview = 1000 * (time.perf_counter() - start), False
        state = self.state
        new = tuple(
            AnnotatedObject(id=state.next_id + k, mask=masks[k], label=label or "object", score=float(scores[k]),
                            color=color_for(state.next_id + k), prompt=Prompt(box=_xyxy(row)))
            for k, row in enumerate(rows)
        )
        self._push("boxes", replace(state, objects=(*state.objects, *new), selected=new[-1].id,
                                    next_id=state.next_id + len(new)))
        return new

    def choose(self, candidate: int) -> Prediction:
        """Keep candidate 0, 1 or 2 of SAM's three masks (after a single click)."""
        prediction = self.state.edit.prediction
        if prediction is None:
            raise UserInputError("there is no prediction to choose from: click on the image first")
        if not 0 <= candidate < len(prediction.masks):
            raise UserInputError(f"candidate must be in 0..{len(prediction.masks) - 1}, got {candidate}")
        if candidate == prediction.chosen:
            return prediction
        chosen = replace(prediction, chosen=candidate)
        self._push("choose", replace(self.state, edit=replace(self.state.edit, prediction=chosen)))
        return chosen

    # -- objects --------------------------------------------------------------
    def commit(self, label: str | None = None) -> AnnotatedObject | None:
        """Keep the current mask as a new object (its own colour) and start the next one.

        Returns the object, or None when there is no mask to keep.
        """
        state = self.state
        prediction = state.edit.prediction
        if prediction is None:
            return None
        obj = AnnotatedObject(
            id=state.next_id, mask=prediction.mask.copy(), label=label or "object",
            score=prediction.score, color=color_for(state.next_id), prompt=state.edit.prompt,
        )
        self._push("commit", ImageState(objects=(*state.objects, obj), edit=Edit(), selected=obj.id,
                                        next_id=state.next_id + 1))
        return obj

    def select(self, object_id: int | None) -> None:
        """Select an object by id (None: no selection)."""
        if object_id is not None:
            self.state.object(object_id)  # KeyError naming the ids there are
        if object_id != self.state.selected:
            self._push("select", replace(self.state, selected=object_id))

    def delete(self, object_id: int | None = None) -> AnnotatedObject:
        """Delete an object (default: the selected one)."""
        state = self.state
        object_id = state.selected if object_id is None else object_id
        if object_id is None:
            raise UserInputError("no object selected: select one in the list, or pass its id")
        obj = state.object(object_id)
        objects = tuple(o for o in state.objects if o.id != object_id)
        self._push("delete", replace(state, objects=objects, selected=None))
        return obj

    def rename(self, object_id: int | None, label: str) -> AnnotatedObject:
        """Give an object (default: the selected one) a new label."""
        state = self.state
        object_id = state.selected if object_id is None else object_id
        if object_id is None:
            raise UserInputError("no object selected: select one in the list, or pass its id")
        label = str(label).strip()
        if not label:
            raise UserInputError("a label must not be empty")
        current = state.object(object_id)
        if current.label == label:
            return current
        renamed = replace(current, label=label)
        objects = tuple(renamed if o.id == object_id else o for o in state.objects)
        self._push("rename", replace(state, objects=objects))
        return renamed

    def clear(self) -> bool:
        """Drop the prompts and mask of the object being edited (committed objects stay). False if empty."""
        if self.state.edit.is_empty:
            return False
        self._push("clear", replace(self.state, edit=Edit()))
        return True

    def clear_all(self) -> bool:
        """Remove every object and the current edit of this image (undoable). False if already empty."""
        state = self.state
        if not state.objects and state.edit.is_empty:
            return False
        self._push("clear all", ImageState(next_id=state.next_id))
        return True

    def undo(self) -> str | None:
        """Undo the last action on this image; its name, or None if there is nothing to undo."""
        return self.history().undo()

    def redo(self) -> str | None:
        """Redo the last undone action on this image; its name, or None."""
        return self.history().redo()

    # -- restoring --------------------------------------------------------------
    def restore(self, index: int, objects: Sequence[AnnotatedObject]) -> None:
        """Start image ``index`` from saved objects (used by ``SamCanvas.load``)."""
        h, w = self.images.rgb(index).shape[:2]
        for obj in objects:
            if obj.mask.shape != (h, w):
                raise UserInputError(
                    f"object {obj.id} ({obj.label!r}) has a {obj.mask.shape[1]} x {obj.mask.shape[0]} mask but "
                    f"image {index} ({self.images.name(index)}) is {w} x {h}: the saved file belongs to other images"
                )
        next_id = max((o.id for o in objects), default=0) + 1
        self._histories[index] = History(ImageState(objects=tuple(objects), next_id=next_id),
                                         limit=self.history_limit)

    def close(self) -> None:
        """Stop the background encoder."""
        if self._prefetcher:
            self._prefetcher.shutdown()
