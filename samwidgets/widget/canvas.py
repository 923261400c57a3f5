"""SamCanvas: click on an image in a notebook and watch SAM answer.

An ipycanvas ``MultiCanvas`` with five named layers (image, objects, the
mask being edited, the hover preview, prompts) and ipywidgets controls around
it, bound to an :class:`~samwidgets.widget.session.AnnotationSession` that
does the work. Each layer is redrawn only when what it shows changed, and
masks go to the browser as small patches that the browser scales up
(:func:`~samwidgets.widget.render.mask_patch`): a click redraws one small layer.

Mouse: click = a positive point (a negative one in negative mode); drag = a box
(in "several boxes" mode each drag adds a box, and Enter makes one object per
box in one decoder call); hovering shows, faintly, the mask a click there would
give (the hover preview); the wheel zooms about the pointer; in pan mode a drag
moves the image. Keys (the canvas has focus after a click):

====================  ==========================================
``n``                 toggle positive / negative clicks
``Enter`` / ``a``     new object: keep the current mask, start the next (or segment the boxes drawn)
``1`` ``2`` ``3``     keep SAM's 1st / 2nd / 3rd mask after a single click
``z`` / ``y``         undo / redo (with or without Ctrl)
``Escape`` / ``c``    clear the object being edited (or the boxes drawn)
``Delete``            delete the selected object
``→`` / ``←``         next / previous image
``p``                 hover preview on / off
``b``                 several boxes mode on / off
``+`` / ``-`` / ``0`` zoom in / out / whole image
``m``                 pan mode on / off (a drag moves the image)
Shift + arrows        pan
====================  ==========================================
"""

from __future__ import annotations

import base64
import html
import os
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any, cast

import ipywidgets as widgets
import numpy as np
import traitlets
from ipycanvas import MultiCanvas, hold_canvas

from ..errors import UserInputError
from ..inference.images import ImageLike
from ..inference.predictor import SamPredictor
from ..modeling import CONFIGS, Sam
from ..sam2 import CONFIGS as SAM2_CONFIGS
from ..sam2 import SAM2Base, SAM2ImagePredictor
from . import export, render, toolbar
from .environment import enable_colab_widgets
from .session import AnnotationSession
from .snapshot import WidgetView, render_view
from .throttle import Throttle, call_later_in_running_loop

#: Width of the three candidate thumbnails, display pixels.
THUMBNAIL_WIDTH = 150
#: A press-and-release shorter than this (display pixels) is a click, longer a box.
DRAG_THRESHOLD = 5.0
#: The layers of the MultiCanvas, bottom to top.
IMAGE_LAYER, OBJECTS_LAYER, EDIT_LAYER, PREVIEW_LAYER, PROMPTS_LAYER = range(5)
#: The hover preview is on by default where a warm decoder call takes at most this (milliseconds).
PREVIEW_AUTO_MS = 100.0
#: A preview waits at least this many times its own duration after the last one: previews take at most 80% of
#: the kernel's time, and a click waits at most for the one preview under way.
PREVIEW_HEADROOM = 1.25
#: Seconds between drawing a prompt's mask and updating the side panels (in a kernel; at once elsewhere).
PANELS_DELAY = 0.05
#: Zoom factor of one key press (+ / -) and of one wheel step.
ZOOM_STEP, WHEEL_STEP = 1.5, 1.25
#: Shift + arrow moves the image by this share of the canvas.
PAN_STEP = 0.25

KEY_ACTIONS = {
    "n": "toggle_mode", "N": "toggle_mode",
    "Enter": "new_object", "a": "new_object",
    "1": "choose_0", "2": "choose_1", "3": "choose_2",
    "z": "undo", "Z": "redo", "y": "redo",
    "Escape": "clear", "c": "clear",
    "Delete": "delete", "Backspace": "delete",
    "ArrowRight": "next", "ArrowLeft": "previous", ".": "next", ",": "previous",
    "p": "toggle_preview", "b": "toggle_boxes", "m": "toggle_pan",
    "+": "zoom_in", "=": "zoom_in", "-": "zoom_out", "0": "reset_zoom",
}
#: With Shift, the arrows pan (a display-pixel step in x and y, times PAN_STEP of the canvas).
SHIFT_ARROWS = {"ArrowRight": (-1, 0), "ArrowLeft": (1, 0), "ArrowDown": (0, -1), "ArrowUp": (0, 1)}


#: What SamCanvas takes as its model: a predictor of SAM (MobileSAM's too) or of SAM 2, or a model of either.
MODEL_TYPES = (SamPredictor, Sam, SAM2ImagePredictor, SAM2Base)


def as_predictor(model: object) -> SamPredictor | SAM2ImagePredictor:
    """The predictor the canvas uses: ``model`` itself, or a new predictor of SAM's or SAM 2's kind for a model.

    model: a SamPredictor, a Sam model, a SAM2ImagePredictor or a SAM 2 model; anything else is a TypeError.
    """
    if isinstance(model, (SamPredictor, SAM2ImagePredictor)):
        return model
    if isinstance(model, Sam):
        return SamPredictor(model)
    if isinstance(model, SAM2Base):
        return SAM2ImagePredictor(model)
    raise TypeError(f"model must be a SamPredictor, a Sam model, a SAM2ImagePredictor, a SAM 2 model or None, "
                    f"got {type(model).__name__}")


def _model_name(model: Sam | SAM2Base) -> str:
    configs = SAM2_CONFIGS if isinstance(model, SAM2Base) else CONFIGS
    for name, config in configs.items():
        if config == model.config:
            return name.rsplit("/", 1)[-1].removesuffix(".yaml")
    return "SAM 2" if isinstance(model, SAM2Base) else "custom model"


#: How many handler outcomes ``SamCanvas.outcomes`` keeps (the newest).
OUTCOMES_KEPT = 1000


@dataclass(frozen=True)
class HandlerOutcome:
    """How one call of an event handler or action ended: ``error`` is None when it succeeded.

    ``depth`` is 1 for the call the user's event made and more for the actions it called (a mouse-up calls
    ``add_point``), so an error anywhere in an event is on record, not only the last one shown.
    """

    handler: str
    depth: int
    error: Exception | None


@dataclass(frozen=True)
class PromptTiming:
    """Where the kernel's time went for one prompt (a click, a box, a choice), in milliseconds.

    ``decoder_ms`` is SAM's prompt encoder, mask decoder and upsampling (0 when the answer of the hover preview
    at the same spot was reused); ``canvas_ms`` the layers redrawn and sent (mask patches encoded as PNG);
    ``panels_ms`` the object list, the three candidates and the status line, sent PANELS_DELAY after the canvas;
    ``total_ms`` from the start of the handler to the canvas's message sent. What the browser adds (the
    message, decoding the patch, painting) is measured in the browser (tests/test_browser.py).
    """

    action: str
    decoder_ms: float
    reused_preview: bool
    canvas_ms: float
    panels_ms: float
    total_ms: float


def _guarded(method: Callable | None = None, *, clears: bool = True) -> Callable:
    """Run an event handler; any error becomes a readable status line and a full traceback below it.

    The outermost action clears the previous error (clears=False for mere
    mouse moves, so an error stays readable while the mouse moves on). Every call's outcome, nested ones
    included, is appended to ``SamCanvas.outcomes``.
    """

    def decorate(method: Callable) -> Callable:
        @wraps(method)
        def run(self: SamCanvas, *args: Any, **kwargs: Any) -> Any:
            outermost = self._depth == 0
            if outermost and clears and self.last_error is not None:
                self.last_error = None
                self._error_output.layout.display = "none"
                self._error_output.outputs = ()
            self._depth += 1
            try:
                result = method(self, *args, **kwargs)
            except Exception as e:  # shown to the user, never swallowed
                self.outcomes.append(HandlerOutcome(method.__name__, self._depth, e))
                self._show_error(e)
                return None
            finally:
                self._depth -= 1
            self.outcomes.append(HandlerOutcome(method.__name__, self._depth + 1, None))
            return result

        return run

    return decorate(method) if method is not None else decorate


def _same(drawn: tuple | None, key: tuple) -> bool:
    """Whether a layer drawn for key ``drawn`` shows what ``key`` asks for. A key is (values, parts): values
    (the view, the selection) compare by value, parts of the state by identity (arrays cannot be compared
    cheaply; a part an action did not change is the same object in the new state)."""
    return drawn is not None and drawn[0] == key[0] and all(a is b for a, b in zip(drawn[1], key[1]))


#: the toolbar's toggles (widget/toolbar.py) -> the canvas's mode trait each one shows
MODE_TRAIT_OF_TOGGLE = {"preview": "preview_enabled", "boxes": "box_mode", "pan": "pan_mode"}


class SamCanvas(widgets.VBox):
    """Interactive SAM on one image or a set of images.

    Args:
        model: a :class:`~samwidgets.SamPredictor` (its cache is used), a
            :class:`~samwidgets.Sam` model (MobileSAM's included), SAM 2's
            :class:`~samwidgets.sam2.SAM2ImagePredictor` or model, or None for the bundled
            default model. As a shortcut, ``SamCanvas(image)`` also works.
        images: one image (array, PIL image or path) or a list of them.
        width: display width in pixels; prompts keep exact image coordinates.
        names: file names used on export (default: the paths' names).
        autosave: a path; the COCO file is rewritten there after every change
            to the objects, so a crashed kernel loses at most the object being edited.
        prefetch: encode the next image on a background thread.
        model_name: shown in the status line (default: guessed from the config).
        hover_preview: show the mask under the pointer before any click (None: on where a warm decoder call
            takes at most PREVIEW_AUTO_MS milliseconds).
        decoder_threads: torch threads for the decoder calls (1: the browser on the same machine does not slow
            them down; None: torch's setting).
    """

    # The modes, as traits (kernel-side, not synced to the browser): set them from code, the keyboard or the
    # toolbar, and observe them (``canvas.observe(handler, "negative")``); their buttons follow them.
    #: clicks add negative points (key n, or the toolbar's first button)
    negative = traitlets.Bool(False)
    #: the mask a click would give, shown faintly under the pointer before any click (key p)
    preview_enabled = traitlets.Bool(False)
    #: several boxes: each drag adds a box, Enter makes one object per box (key b)
    box_mode = traitlets.Bool(False)
    #: a drag moves the image instead of drawing a box (key m)
    pan_mode = traitlets.Bool(False)

    def __init__(self, model: SamPredictor | Sam | SAM2ImagePredictor | SAM2Base | ImageLike | None = None,
                 images: ImageLike | Sequence[ImageLike] | None = None, *, width: int = 640,
                 names: Sequence[str] | None = None, autosave: str | os.PathLike | None = None,
                 prefetch: bool = True, model_name: str | None = None,
                 hover_preview: bool | None = None, decoder_threads: int | None = 1) -> None:
        enable_colab_widgets()
        if images is None and model is not None and not isinstance(model, MODEL_TYPES):
            model, images = None, model  # SamCanvas(image)
        if model is None:
            from ..hub.default_model import BUNDLED_MODEL_NAME, load_default

            model, model_name = load_default(), model_name or BUNDLED_MODEL_NAME
        predictor = as_predictor(model)
        if width < 16:
            raise UserInputError(f"width must be at least 16 display pixels, got {width}")
        self.model_name = model_name or _model_name(predictor.model)
        self.display_width = int(width)
        self.autosave_path = Path(autosave) if autosave is not None else None
        self.last_error: Exception | None = None
        #: the newest OUTCOMES_KEPT handler outcomes, oldest first (errors wiped from the status line stay here)
        self.outcomes: deque[HandlerOutcome] = deque(maxlen=OUTCOMES_KEPT)
        #: the kernel's time per prompt, newest last (see PromptTiming)
        self.timings: deque[PromptTiming] = deque(maxlen=OUTCOMES_KEPT)
        self._pending_boxes: dict[int, list[tuple[float, float, float, float]]] = {}  # image index -> boxes
        self._drag_start: tuple[float, float] | None = None
        self._dragging = False
        self._pointer: tuple[float, float] | None = None  # the last mouse position on the canvas
        self._message = ""
        self._depth = 0  # nesting of guarded actions
        self._syncing = False  # True while the side panel is updated from the state
        self._drawn: dict[str, tuple] = {}  # layer -> what it shows now (see _draw_layers)
        self._preview_shown = False
        self._panels_timer: Any = None  # the side panels' deferred update after a prompt
        self._prompt_timing: dict | None = None  # the last prompt's PromptTiming, but for its panels' time
        #: hover previews drawn so far
        self.previews = 0

        self.session = AnnotationSession(predictor, images, names=names, prefetch=prefetch,
                                         decoder_threads=decoder_threads)
        self.session.warm_up()
        start = time.perf_counter()
        self.session.warm_up()  # a warm call: how fast previews can be
        warm_ms = 1000 * (time.perf_counter() - start)
        self.preview_enabled = warm_ms <= PREVIEW_AUTO_MS if hover_preview is None else bool(hover_preview)
        self._hover = Throttle(self._preview_at, headroom=PREVIEW_HEADROOM)  # latest wins; slow models: less often
        self._view_redraw = Throttle(self._redraw_view)  # wheel bursts and pan drags
        self.view = render.View(self.session.image.shape[:2], self.display_width)
        self.grid = self.view.fit  # the whole image at the canvas's size (the snapshot's and thumbnails' grid)
        self.canvas = MultiCanvas(5, width=self.grid.width, height=self.grid.height)
        self.canvas.layout.width = f"{self.grid.width}px"
        self.canvas.layout.height = f"{self.grid.height}px"
        self.canvas.on_mouse_down(self._on_mouse_down)
        self.canvas.on_mouse_move(self._on_mouse_move)
        self.canvas.on_mouse_up(self._on_mouse_up)
        self.canvas.on_mouse_out(self._on_mouse_out)
        self.canvas.on_mouse_wheel(self._on_mouse_wheel)
        self.canvas.on_key_down(self._on_key_down)
        self.canvas.on_client_ready(self._redraw_all)

        self._build_controls()
        super().__init__([self._toolbar, widgets.HBox([self.canvas, self._side_panel]), self._candidates_box,
                          self._status, self._error_output])
        self.add_class("samwidgets-canvas")
        self._set_display_images()
        self._redraw_all()

    # -- construction ---------------------------------------------------------
    def _build_controls(self) -> None:
        def button(description: str, tooltip: str, action: Callable, icon: str = "") -> widgets.Button:
            b = widgets.Button(description=description, tooltip=tooltip, icon=icon,
                               layout=widgets.Layout(width="auto"))
            b.on_click(lambda _: action())
            return b

        self._mode_button = widgets.ToggleButton(tooltip=toolbar.MODE_TOOLTIP,
                                                 layout=widgets.Layout(width=f"{toolbar.MODE_WIDTH}px"))

        def toggle(tool: toolbar.Tool) -> widgets.ToggleButton:
            return widgets.ToggleButton(description=tool.text, tooltip=tool.tooltip, icon=tool.icon,
                                        layout=widgets.Layout(width="auto"))

        # the toolbar's specification (widget/toolbar.py, which the snapshot draws too) -> what each tool does
        actions = {"new_object": self.new_object, "undo": self.undo, "redo": self.redo, "clear": self.clear,
                   "previous": self.previous_image, "next": self.next_image, "zoom_in": self.zoom_in,
                   "zoom_out": self.zoom_out, "reset_zoom": self.reset_zoom}
        self._toggles = {tool.name: toggle(tool) for tool in toolbar.TOOLBAR if tool.toggle}
        # each mode trait and its button hold the same value; the button's look and what depends on the mode
        # follow the trait (_on_mode_changed)
        traitlets.link((self, "negative"), (self._mode_button, "value"))
        for name, trait in MODE_TRAIT_OF_TOGGLE.items():
            traitlets.link((self, trait), (self._toggles[name], "value"))
        self.observe(self._on_mode_changed, names=["negative", *MODE_TRAIT_OF_TOGGLE.values()])
        self._style_mode_buttons()
        self._buttons = {tool.name: button(tool.text, tool.tooltip, actions[tool.name], tool.icon)
                         for tool in toolbar.TOOLBAR if not tool.toggle}
        controls = {**self._buttons, **self._toggles}
        self._toolbar = widgets.HBox([self._mode_button] + [controls[tool.name] for tool in toolbar.TOOLBAR],
                                     layout=widgets.Layout(flex_flow="row wrap"))  # a narrow notebook: two rows

        self._objects = widgets.Select(options=[], rows=10, layout=widgets.Layout(width="260px"))
        self._objects.observe(self._on_object_selected, "value")
        self._label = widgets.Text(placeholder="label of the selected object", continuous_update=False,
                                   layout=widgets.Layout(width="260px"))
        self._label.observe(self._on_label_edited, "value")
        self._side_panel = widgets.VBox([
            widgets.HTML("<b>objects</b>"), self._objects, self._label,
            widgets.HBox([button("rename", "give the selected object the label above", self.rename, "tag"),
                          button("delete", "Delete: delete the selected object", self.delete, "trash")]),
        ])

        self._candidate_images = [widgets.Image(format="png", layout=widgets.Layout(width="150px"))
                                  for _ in range(3)]
        self._candidate_buttons = [
            button(f"mask {k + 1}", f"{k + 1}: keep this one of SAM's three masks", lambda k=k: self.choose(k))
            for k in range(3)
        ]
        self._candidates_box = widgets.HBox([widgets.VBox([img, btn]) for img, btn in
                                             zip(self._candidate_images, self._candidate_buttons)])
        self._status = widgets.HTML()
        self._error_output = widgets.Output(layout=widgets.Layout(display="none"))

    # -- actions (also the public API: every button and key calls one of these) ----
    @_guarded
    def add_point(self, x: float, y: float, positive: bool | None = None) -> None:
        """Add a click at image pixel (x, y); positive unless negative mode is on (or positive=False)."""
        start = time.perf_counter()
        self._hover.cancel()  # a click takes priority over any preview waiting
        positive = (not self.negative) if positive is None else positive
        self.session.add_point(x, y, positive)
        self._message = ""
        self._after_prompt("point", start)

    @_guarded
    def set_box(self, box: Sequence[float]) -> None:
        """Set the box (XYXY image pixels) of the object being edited."""
        start = time.perf_counter()
        self._hover.cancel()
        self.session.set_box(box)
        self._message = ""
        self._after_prompt("box", start)

    @_guarded
    def choose(self, candidate: int) -> None:
        """Keep SAM's mask number candidate (0, 1, 2) of the three after a single click."""
        start = time.perf_counter()
        self.session.choose(candidate)
        self._message = ""
        self._after_prompt("choose", start)

    @_guarded
    def add_boxes(self, boxes: Sequence[Sequence[float]], label: str | None = None) -> None:
        """One new object per box (XYXY image pixels) from one batched decoder call; one undo removes them all."""
        self._hover.cancel()
        made = self.session.add_boxes(boxes, label)
        self._message = f"made {len(made)} object{'s' if len(made) > 1 else ''} from {len(made)} " \
                        f"box{'es' if len(made) > 1 else ''} in one decoder call"
        self._after_objects_changed()

    @_guarded
    def segment_boxes(self) -> None:
        """Make one object per box drawn in several-boxes mode (one decoder call, one undo step)."""
        boxes = self._pending_boxes.get(self.session.index)
        if not boxes:
            self._message = "no boxes drawn: turn on several boxes (b) and drag boxes first"
            self._update_status()
            return
        self.add_boxes(list(boxes))
        if self.last_error is None:
            self._pending_boxes.pop(self.session.index, None)
            self._draw_layers()

    @property
    def pending_boxes(self) -> list[tuple[float, float, float, float]]:
        """The boxes drawn in several-boxes mode on this image, waiting for Enter (XYXY image pixels)."""
        return list(self._pending_boxes.get(self.session.index, ()))

    @_guarded
    def new_object(self, label: str | None = None) -> None:
        """Commit the current mask as an object with its own colour and start the next one (with boxes drawn
        in several-boxes mode: one object per box)."""
        if self._pending_boxes.get(self.session.index):
            self.segment_boxes()
            return
        obj = self.session.commit(label)
        self._message = "nothing to keep yet: click on an object first" if obj is None else f"kept {obj.label}"
        self._after_objects_changed()

    @_guarded
    def delete(self, object_id: int | None = None) -> None:
        """Delete an object (default: the selected one)."""
        obj = self.session.delete(object_id)
        self._message = f"deleted {obj.label}"
        self._after_objects_changed()

    @_guarded
    def rename(self, object_id: int | None = None, label: str | None = None) -> None:
        """Rename an object (default: the selected one, with the text in the label box)."""
        obj = self.session.rename(object_id, self._label.value if label is None else label)
        self._message = f"renamed to {obj.label}"
        self._after_objects_changed()

    @_guarded
    def select(self, object_id: int | None) -> None:
        """Select an object by id (None: no selection)."""
        self.session.select(object_id)
        self._refresh()

    @_guarded
    def undo(self) -> None:
        """Undo the last action (with boxes drawn in several-boxes mode: remove the last box)."""
        boxes = self._pending_boxes.get(self.session.index)
        if boxes:
            boxes.pop()
            self._message = f"removed the last box ({len(boxes)} left)"
            self._refresh()
            return
        action = self.session.undo()
        self._message = f"undid {action}" if action else "nothing to undo"
        self._after_objects_changed()

    @_guarded
    def redo(self) -> None:
        """Redo the last undone action."""
        action = self.session.redo()
        self._message = f"redid {action}" if action else "nothing to redo"
        self._after_objects_changed()

    @_guarded
    def clear(self) -> None:
        """Clear the prompts and mask of the object being edited (undoable), or the boxes drawn in several-boxes
        mode."""
        boxes = self._pending_boxes.pop(self.session.index, None)
        if boxes:
            self._message = f"dropped {len(boxes)} box{'es' if len(boxes) > 1 else ''}"
        else:
            self._message = "cleared" if self.session.clear() else "nothing to clear"
        self._refresh()

    @_guarded
    def clear_all(self) -> None:
        """Remove every object of this image (undoable)."""
        self._message = "cleared all objects" if self.session.clear_all() else "nothing to clear"
        self._after_objects_changed()

    @_guarded
    def next_image(self) -> None:
        if not self.session.next():
            self._message = "this is the last image"
        self._after_image_changed()

    @_guarded
    def previous_image(self) -> None:
        if not self.session.previous():
            self._message = "this is the first image"
        self._after_image_changed()

    @_guarded
    def go_to(self, index: int) -> None:
        """Show image ``index`` of the set."""
        self.session.open(index)
        self._after_image_changed()

    def _on_mode_changed(self, change: dict[str, Any]) -> None:
        """A mode trait changed (from code, a key or its button): restyle the buttons, update what shows it."""
        self._style_mode_buttons()
        if change["name"] == "negative":
            self._clear_preview()  # it showed a click of the other kind
        elif change["name"] == "preview_enabled" and not change["new"]:
            self._hover.cancel()
            self._clear_preview()
        self._update_status()

    def _style_mode_buttons(self) -> None:
        self._mode_button.description = toolbar.MODE_TEXT[self.negative]
        self._mode_button.button_style = "danger" if self.negative else ""
        for name, trait in MODE_TRAIT_OF_TOGGLE.items():
            self._toggles[name].button_style = "info" if getattr(self, trait) else ""

    def toggle_mode(self) -> None:
        """Switch between positive and negative clicks."""
        self.negative = not self.negative

    def toggle_preview(self) -> None:
        """Hover preview on / off: the mask a click would give, shown faintly under the pointer."""
        self.preview_enabled = not self.preview_enabled

    def toggle_boxes(self) -> None:
        """Several-boxes mode on / off: each drag adds a box, Enter makes one object per box."""
        self.box_mode = not self.box_mode

    def toggle_pan(self) -> None:
        """Pan mode on / off: a drag moves the image instead of drawing a box."""
        self.pan_mode = not self.pan_mode

    # -- zoom and pan -------------------------------------------------------------
    @_guarded
    def zoom_by(self, factor: float, x: float | None = None, y: float | None = None) -> None:
        """Zoom by ``factor`` (> 1 in, < 1 out; 1x to 16x in all) keeping display point (x, y) in place
        (default: the pointer, or the canvas's centre)."""
        if not factor > 0:
            raise UserInputError(f"a zoom factor is a positive number (2 = twice as large), got {factor}")
        if x is None or y is None:
            x, y = self._pointer or (self.view.width / 2, self.view.height / 2)
        self.view.zoom_at(factor, x, y)
        self._redraw_view()

    def zoom_in(self) -> None:
        self.zoom_by(ZOOM_STEP)

    def zoom_out(self) -> None:
        self.zoom_by(1 / ZOOM_STEP)

    @_guarded
    def reset_zoom(self) -> None:
        """Show the whole image."""
        self.view.reset()
        self._redraw_view()

    @_guarded
    def pan_by(self, dx: float, dy: float) -> None:
        """Move the image by (dx, dy) display pixels, as a hand dragging it (within the image)."""
        self.view.pan(dx, dy)
        self._redraw_view()

    # -- results --------------------------------------------------------------
    @property
    def masks(self) -> list[np.ndarray]:
        """The objects' masks on the current image: one H x W bool array per object."""
        return self.session.masks

    @property
    def current_mask(self) -> np.ndarray | None:
        """The mask of the object being edited (H x W bool), or None."""
        return self.session.current_mask

    @property
    def objects(self):
        """The committed objects of the current image (id, mask, label, score, colour, prompts)."""
        return self.session.state.objects

    def to_coco(self, path: str | os.PathLike, save_images: bool = True) -> Path:
        """Write every image's objects as COCO JSON with RLE masks, labels and scores.

        Images given as arrays are saved as PNG under ``<json dir>/images`` so
        that :meth:`load` finds them again.
        """
        return export.to_coco(self.session, path, self.model_name, save_images)

    def save_png(self, directory: str | os.PathLike) -> list[Path]:
        """One black-and-white PNG per object; returns the paths."""
        return export.save_png(self.session, directory)

    @classmethod
    def load(cls, path: str | os.PathLike, model: SamPredictor | Sam | None = None,
             images: ImageLike | Sequence[ImageLike] | None = None, **kwargs: Any) -> SamCanvas:
        """Reopen a file written by :meth:`to_coco` (or autosave) to continue work.

        images: the images, if they should not be read from the paths stored in the file.
        """
        saved = export.read_coco(path)
        if not saved:
            raise UserInputError(f"{path} holds no images")
        if images is None:
            missing = [s.file_name for s in saved if s.path is None or not s.path.is_file()]
            if missing:
                raise UserInputError(
                    f"{path}: the image files of {missing[:3]} are not found; pass images=[...] to load() "
                    "with the same images in the same order"
                )
            images = [s.path for s in saved]
        kwargs.setdefault("names", [s.file_name for s in saved])
        canvas = cls(model, images, **kwargs)
        if len(canvas.session.images) != len(saved):
            raise UserInputError(f"{path} describes {len(saved)} images but {len(canvas.session.images)} were given")
        for i, s in enumerate(saved):
            canvas.session.restore(i, s.objects)
        canvas._after_objects_changed(autosave=False)
        return canvas

    def figure(self, title: str | None = None):
        """A static matplotlib figure of the current image and its masks (for reports, or where widgets don't
        render)."""
        s = self.session
        default = f"{s.images.name(s.index)}: {len(s.state.objects)} objects"
        return render.static_figure(s.image, s.state, default if title is None else title)

    def close(self) -> None:
        """Stop the background encoder and close the widget."""
        session = getattr(self, "session", None)  # absent if __init__ failed
        if session is not None:
            session.close()
        super().close()

    # -- events ----------------------------------------------------------------
    @_guarded(clears=False)
    def _on_mouse_down(self, x: float, y: float) -> None:
        self._hover.cancel()  # a click takes priority over any preview waiting
        self._drag_start = self._pointer = (x, y)
        self._dragging = False

    @_guarded(clears=False)
    def _on_mouse_move(self, x: float, y: float) -> None:
        last, self._pointer = self._pointer, (x, y)
        if self._drag_start is None:
            if self.preview_enabled:
                self._hover.request(x, y)
            return
        if self.pan_mode:
            if last is not None:
                self.view.pan(x - last[0], y - last[1])
                self._view_redraw.request()
            return
        x0, y0 = self._drag_start
        if not self._dragging and max(abs(x - x0), abs(y - y0)) < DRAG_THRESHOLD:
            return
        self._dragging = True
        self._draw_prompts(rubber_band=(x0, y0, x, y))

    @_guarded
    def _on_mouse_up(self, x: float, y: float) -> None:
        if self._drag_start is None:
            return
        x0, y0 = self._drag_start
        self._drag_start = None
        dragged = self._dragging or max(abs(x - x0), abs(y - y0)) >= DRAG_THRESHOLD
        self._dragging = False
        if self.pan_mode:
            self._view_redraw.flush()  # the image where the drag left it
            if not dragged:
                self._message = "pan mode: drag to move the image (m: back to clicks)"
                self._update_status()
            return
        if not dragged:
            self.add_point(*self.view.to_image(x, y))
            return
        box = (*self.view.to_image(x0, y0), *self.view.to_image(x, y))
        if self.box_mode:
            self._add_pending_box(box)
        else:
            self.set_box(box)

    @_guarded(clears=False)
    def _on_mouse_out(self, x: float, y: float) -> None:
        self._pointer = None
        self._hover.cancel()
        self._clear_preview()
        if self._drag_start is not None:  # left the image mid-drag: drop the rubber band
            self._drag_start = None
            self._dragging = False
            self._view_redraw.flush()
            self._draw_prompts()

    @_guarded(clears=False)
    def _on_mouse_wheel(self, dx: float, dy: float) -> None:
        if dy == 0:
            return
        x, y = self._pointer or (self.view.width / 2, self.view.height / 2)
        # a mouse's notch is 100 (pixels) in Chromium: one WHEEL_STEP; a trackpad's small deltas zoom smoothly
        self.view.zoom_at(WHEEL_STEP ** max(-3.0, min(3.0, -dy / 100)), x, y)
        self._view_redraw.request()

    @_guarded
    def _on_key_down(self, key: str, shift: bool = False, ctrl: bool = False, meta: bool = False) -> None:
        if shift and key in SHIFT_ARROWS:
            sx, sy = SHIFT_ARROWS[key]
            self.pan_by(sx * PAN_STEP * self.view.width, sy * PAN_STEP * self.view.height)
            return
        action = KEY_ACTIONS.get(key)
        if action is None:
            return
        if action == "undo" and shift:
            action = "redo"
        if action.startswith("choose_"):
            self.choose(int(action[-1]))
        else:
            getattr(self, {"next": "next_image", "previous": "previous_image"}.get(action, action))()

    @_guarded
    def _add_pending_box(self, box: tuple[float, float, float, float]) -> None:
        x0, y0, x1, y1 = box
        box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        if not (box[0] < box[2] and box[1] < box[3]):
            raise UserInputError(f"the box {tuple(round(v, 1) for v in box)} is flat: drag over the image")
        boxes = self._pending_boxes.setdefault(self.session.index, [])
        boxes.append(box)
        self._message = f"{len(boxes)} box{'es' if len(boxes) > 1 else ''} drawn: Enter makes one object per box"
        self._draw_prompts()
        self._update_status()

    # -- the hover preview -------------------------------------------------------
    @_guarded(clears=False)
    def _preview_at(self, x: float, y: float) -> None:
        """Draw, faintly, the mask a click at display (x, y) would give (nothing is recorded)."""
        if not self.preview_enabled or self._drag_start is not None:
            return
        if not self.view.contains(x, y):
            self._clear_preview()
            return
        prediction = self.session.preview(*self.view.to_image(x, y), positive=not self.negative)
        patch = render.mask_patch([render.MaskStyle(prediction.mask, render.EDIT_COLOR, render.PREVIEW_FILL_ALPHA,
                                                    render.PREVIEW_EDGE_ALPHA, bbox=prediction.bbox)], self.view)
        layer = self.canvas[PREVIEW_LAYER]
        with hold_canvas():
            self._paint_patch(layer, patch)
            layer.line_width, layer.stroke_style = 1.5, render.css_color(render.RING)
            layer.stroke_circle(x, y, 5)  # where the click would go
        self._preview_shown = True
        self.previews += 1

    def _clear_preview(self) -> None:
        if self._preview_shown:
            self._preview_shown = False
            layer = self.canvas[PREVIEW_LAYER]
            layer.reset_transform()
            layer.clear()

    def _on_label_edited(self, change: dict) -> None:
        # Enter or leaving the box renames the selected object (when the text really changed)
        state = self.session.state
        if not self._syncing and state.selected is not None and change["new"].strip() \
                and change["new"].strip() != state.object(state.selected).label:
            self.rename()

    def _on_object_selected(self, change: dict) -> None:
        if not self._syncing and change["new"] != self.session.state.selected:
            self.select(change["new"])

    # -- drawing ---------------------------------------------------------------
    def _after_prompt(self, action: str, start: float) -> None:
        previewed = self.session.reused_preview
        canvas_start = time.perf_counter()
        self._draw_layers()
        canvas_end = time.perf_counter()
        # recorded with the side panels' time when they are updated
        self._prompt_timing = dict(action=action, decoder_ms=0.0 if previewed else (self.session.decoder_ms or 0.0),
                                   reused_preview=previewed, canvas_ms=1000 * (canvas_end - canvas_start),
                                   total_ms=1000 * (canvas_end - start))
        # The side panels (three thumbnails, the list, the status) follow once the browser has had a frame to
        # paint the mask: sent at once, their messages would be handled first and delay the paint.
        if self._panels_timer is None:
            self._panels_timer = call_later_in_running_loop(PANELS_DELAY, self._deferred_panels)
        if self._panels_timer is None:  # no event loop (a script, a test): now
            self._update_panels()

    @_guarded(clears=False)
    def _deferred_panels(self) -> None:
        self._panels_timer = None
        self._update_panels()

    def _after_objects_changed(self, autosave: bool = True) -> None:
        self._refresh()
        if autosave and self.autosave_path is not None:
            self.to_coco(self.autosave_path)

    def _after_image_changed(self) -> None:
        self._hover.cancel()
        self._set_display_images()
        self._drag_start = None
        self._redraw_all()

    def _set_display_images(self) -> None:
        """The current image resampled once for the canvas and for the candidate thumbnails."""
        image = self.session.image
        self.view = render.View(image.shape[:2], self.display_width)
        self.grid = self.view.fit
        self._display_rgb = self.grid.image(image)
        self._thumb_grid = render.DisplayGrid(image.shape[:2], THUMBNAIL_WIDTH)
        self._thumb_rgb = self._thumb_grid.image(image)

    def _redraw_all(self) -> None:
        """Draw every layer anew (a new image, or a browser that connected and holds an empty canvas)."""
        if (self.canvas.width, self.canvas.height) != (self.view.width, self.view.height):
            self.canvas.width, self.canvas.height = self.view.width, self.view.height
            self.canvas.layout.width, self.canvas.layout.height = f"{self.view.width}px", f"{self.view.height}px"
        # Mask patches are scaled up by the browser, pixel for pixel (no blur). A resized or new canvas has
        # forgotten that setting while ipycanvas, which sends only changes, remembers it: set it both ways.
        for index in (OBJECTS_LAYER, EDIT_LAYER, PREVIEW_LAYER):
            self.canvas[index].image_smoothing_enabled = True
            self.canvas[index].image_smoothing_enabled = False
        self._drawn.clear()
        self._preview_shown = True  # whatever the browser shows there: cleared below
        self._refresh()

    def _redraw_view(self) -> None:
        """Redraw after a zoom or pan (the layers see that the view changed)."""
        self._draw_layers()
        self._update_status()

    def _refresh(self) -> None:
        """Redraw what changed on the canvas, then update the side panels from the session state."""
        self._draw_layers()
        self._update_panels()

    def _update_panels(self) -> None:
        if self._panels_timer is not None:  # a deferred update is overtaken by this one
            self._panels_timer.cancel()
            self._panels_timer = None
        start = time.perf_counter()
        self._update_objects_list()
        self._update_candidates()
        self._update_status()
        if self._prompt_timing is not None:
            self.timings.append(PromptTiming(**self._prompt_timing,
                                             panels_ms=1000 * (time.perf_counter() - start)))
            self._prompt_timing = None

    def _draw_layers(self) -> None:
        """Redraw each layer whose content changed since it was drawn, in one message to the browser.

        What a layer shows is remembered as a key: the view and the image for the image layer; the view, the
        objects (the state's tuple, shared by states that did not change them) and the selection for the
        objects layer; the view and the prediction for the edited mask. A click thus redraws the edited mask
        and the prompts only; undo, redo and image changes redraw what they changed.
        """
        state = self.session.state
        view = self.view.key
        prediction = state.edit.prediction
        image_key = (view, self.session.index)
        objects_key = ((view, state.selected), (state.objects,))
        edit_key = ((view,), (prediction,))
        with hold_canvas():
            stale_preview = False  # a preview shows a click on the state and view it was drawn for
            if self._drawn.get("image") != image_key:
                pixels = self._display_rgb if self.view.zoom == 1.0 else self.view.image(self.session.image)
                layer = self.canvas[IMAGE_LAYER]
                layer.clear()
                # RGBA goes as PNG (lossless); RGB would go as JPEG
                layer.put_image_data(np.dstack([pixels, np.full(pixels.shape[:2], 255, np.uint8)]), 0, 0)
                self._drawn["image"] = image_key
                stale_preview = True
            if not _same(self._drawn.get("objects"), objects_key):
                styles = [render.MaskStyle(o.mask, o.color, render.SELECTED_ALPHA if o.id == state.selected
                                           else render.FILL_ALPHA, render.EDGE_ALPHA if o.id == state.selected
                                           else None, bbox=o.box) for o in state.objects]
                self._paint_patch(self.canvas[OBJECTS_LAYER], render.mask_patch(styles, self.view))
                self._drawn["objects"] = objects_key
            if not _same(self._drawn.get("edit"), edit_key):
                patch = None if prediction is None else render.mask_patch(
                    [render.MaskStyle(prediction.mask, render.EDIT_COLOR, render.FILL_ALPHA + 20, render.EDGE_ALPHA,
                                      bbox=prediction.bbox)], self.view)
                self._paint_patch(self.canvas[EDIT_LAYER], patch)
                self._drawn["edit"] = edit_key
                stale_preview = True
            if stale_preview:
                self._clear_preview()
            self._draw_prompts(hold=False)

    @staticmethod
    def _paint_patch(layer: Any, patch: render.Patch | None) -> None:
        """Replace what ``layer`` shows by ``patch`` (None: nothing), scaled up by the browser."""
        layer.reset_transform()  # clearing is subject to the transform: clear the whole layer
        layer.clear()
        if patch is not None:
            layer.set_transform(patch.sx, 0, 0, patch.sy, patch.x, patch.y)
            layer.put_image_data(patch.rgba, 0, 0)
            layer.reset_transform()

    def _draw_prompts(self, rubber_band: tuple[float, float, float, float] | None = None, hold: bool = True) -> None:
        layer = self.canvas[PROMPTS_LAYER]
        prompt = self.session.state.edit.prompt
        to_display = self.view.to_display

        def draw() -> None:
            layer.clear()
            if prompt.box is not None:
                x0, y0 = to_display(*prompt.box[:2])
                x1, y1 = to_display(*prompt.box[2:])
                layer.line_width, layer.stroke_style = 2, render.css_color(render.PROMPT_POSITIVE)
                layer.stroke_rect(x0, y0, x1 - x0, y1 - y0)
            pending = self._pending_boxes.get(self.session.index, ())
            if pending:
                layer.line_width, layer.stroke_style = 2, render.css_color(render.PENDING_BOX)
                layer.set_line_dash([8, 4])
                for box in pending:
                    x0, y0 = to_display(*box[:2])
                    x1, y1 = to_display(*box[2:])
                    layer.stroke_rect(x0, y0, x1 - x0, y1 - y0)
                layer.set_line_dash([])
            if rubber_band is not None:
                x0, y0, x1, y1 = rubber_band
                layer.line_width = 1.5
                layer.stroke_style = render.css_color(render.PENDING_BOX if self.box_mode else render.RING)
                layer.set_line_dash([6, 4])
                layer.stroke_rect(min(x0, x1), min(y0, y1), abs(x1 - x0), abs(y1 - y0))
                layer.set_line_dash([])
            for (x, y), label in zip(prompt.points, prompt.labels):
                dx, dy = to_display(x, y)
                layer.fill_style = render.css_color(render.PROMPT_POSITIVE if label else render.PROMPT_NEGATIVE)
                layer.fill_circle(dx, dy, 6)
                layer.line_width, layer.stroke_style = 1.5, render.css_color(render.RING)
                layer.stroke_circle(dx, dy, 6)

        if hold:
            with hold_canvas():
                draw()
        else:
            draw()

    def _update_objects_list(self) -> None:
        state = self.session.state
        options = [(f"{o.id}: {o.label} · {o.area} px · IoU {o.score:.2f}", o.id) for o in state.objects]
        self._syncing = True
        try:
            if list(self._objects.options) != options:
                self._objects.options = options
            self._objects.value = state.selected if state.selected in [o.id for o in state.objects] else None
            shown = state.selected if self._objects.value is not None else None  # the list's selection, if any
            selected = state.object(shown) if shown is not None else None
            self._label.value = selected.label if selected else ""
        finally:
            self._syncing = False

    def _update_candidates(self) -> None:
        prediction = self.session.state.edit.prediction
        if prediction is None or not prediction.is_ambiguous:
            self._candidates_box.layout.display = "none"
            return
        self._candidates_box.layout.display = None
        for k, (img, btn) in enumerate(zip(self._candidate_images, self._candidate_buttons)):
            img.value = render.candidate_thumbnail(self._thumb_rgb, prediction.masks[k], self._thumb_grid)
            btn.description = f"mask {k + 1} · IoU {prediction.scores[k]:.2f}"
            btn.button_style = "info" if k == prediction.chosen else ""

    def status_text(self) -> str:
        """The status line as plain text: model, image i/n, encoder time or cached, decoder ms, mode, zoom,
        preview and boxes mode."""
        s = self.session
        encoder = {"cached": "embedding cached", "prefetched": f"encoded in background in {s.encode_seconds:.2f} s"}
        parts = [
            self.model_name,
            f"image {s.index + 1}/{len(s.images)} ({s.images.name(s.index)})",
            encoder.get(s.encode_source, f"encoder {s.encode_seconds:.2f} s"),
            f"decoder {s.decoder_ms:.1f} ms" if s.decoder_ms is not None else "decoder -",
            "negative clicks" if self.negative else "positive clicks",
            f"zoom {self.view.zoom:.1f}x" + (" · pan mode" if self.pan_mode else ""),
            "preview on" if self.preview_enabled else "preview off",
        ]
        if self.box_mode:
            parts.append(f"several boxes ({len(self.pending_boxes)} drawn)")
        mask = s.current_mask
        if mask is not None:
            parts.append(f"mask {int(mask.sum())} px")
        if self._message:
            parts.append(self._message)
        return " · ".join(parts)

    def _update_status(self, error: str = "") -> None:
        text = html.escape(self.status_text())
        if error:
            text += f' · <span style="color:#c00"><b>error:</b> {html.escape(error)}</span>'
        self._status.value = f'<span class="samwidgets-status" style="font-family:monospace">{text}</span>'

    def _show_error(self, error: Exception) -> None:
        self.last_error = error
        self._message = ""
        self._drag_start = None
        try:
            self._update_status(f"{type(error).__name__}: {error}")
        except Exception:  # the status itself failed; the traceback below still shows
            self._status.value = html.escape(f"error: {type(error).__name__}: {error}")
        self._error_output.layout.display = None
        self._error_output.outputs = ()
        self._error_output.append_stdout("".join(traceback.format_exception(error)))

    def __repr__(self) -> str:
        s = self.session
        return (f"SamCanvas({self.model_name}, {len(s.images)} image{'s' if len(s.images) > 1 else ''}, "
                f"shown at {self.grid.width} x {self.grid.height})")

    def snapshot(self) -> np.ndarray:
        """A picture of the whole widget as it is now (H x W x 3 uint8): toolbar, image with its masks and
        prompts, object list, SAM's three candidates, status line and error. Notebook viewers without a
        kernel (GitHub, nbviewer) show it in place of the widget."""
        return render_view(self.widget_view()).pixels

    def widget_view(self) -> WidgetView:
        """What the widget shows now, as the snapshot draws it (reads the widget, changes nothing)."""
        error = self.last_error
        return WidgetView(
            picture=self._display_rgb, grid=self.grid, state=self.session.state,
            thumb_picture=self._thumb_rgb, thumb_grid=self._thumb_grid, status=self.status_text(),
            negative=self.negative, preview=self.preview_enabled, box_mode=self.box_mode, pan_mode=self.pan_mode,
            error=None if error is None else f"{type(error).__name__}: {error}", label_text=self._label.value,
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> dict | tuple | None:
        """The widget, plus a PNG of the whole widget (:meth:`snapshot`) for viewers that cannot run widgets."""
        # ipywidgets is untyped (pyright guesses from its code); IPython allows a (data, metadata) pair as well
        bundle = cast(dict | tuple | None, super()._repr_mimebundle_(**kwargs))
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict):
            try:
                picture = self.snapshot()
            except Exception:  # never let the still picture stop the live widget from showing
                picture = render.blend(self._display_rgb, render.overlay(self.session.state, self.grid))
            data["image/png"] = base64.b64encode(render.png_bytes(picture)).decode("ascii")
        return bundle
