"""SamCanvas: click on an image in a notebook and watch SAM answer.

An ipycanvas ``MultiCanvas`` with three layers (image, masks, prompts) and
ipywidgets controls around it, bound to an
:class:`~samwidgets.widget.session.AnnotationSession` that does the work.

Mouse: click = a positive point (a negative one in negative mode); drag = a box.
Keys (the canvas has focus after a click):

=================  ==========================================
``n``              toggle positive / negative clicks
``Enter`` / ``a``  new object: keep the current mask, start the next
``1`` ``2`` ``3``  keep SAM's 1st / 2nd / 3rd mask after a single click
``z`` / ``y``      undo / redo (with or without Ctrl)
``Escape`` / ``c`` clear the object being edited
``Delete``         delete the selected object
``→`` / ``←``      next / previous image
=================  ==========================================
"""

from __future__ import annotations

import base64
import html
import os
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np
from ipycanvas import MultiCanvas, hold_canvas

from ..errors import UserInputError
from ..inference.images import ImageLike
from ..inference.predictor import SamPredictor
from ..modeling import CONFIGS, Sam
from ..sam2 import CONFIGS as SAM2_CONFIGS
from ..sam2 import SAM2Base, SAM2ImagePredictor
from . import export, render
from .environment import enable_colab_widgets
from .session import AnnotationSession
from .snapshot import widget_snapshot

#: Width of the three candidate thumbnails, display pixels.
THUMBNAIL_WIDTH = 150
#: A press-and-release shorter than this (display pixels) is a click, longer a box.
DRAG_THRESHOLD = 5.0

KEY_ACTIONS = {
    "n": "toggle_mode", "N": "toggle_mode",
    "Enter": "new_object", "a": "new_object",
    "1": "choose_0", "2": "choose_1", "3": "choose_2",
    "z": "undo", "Z": "redo", "y": "redo",
    "Escape": "clear", "c": "clear",
    "Delete": "delete", "Backspace": "delete",
    "ArrowRight": "next", "ArrowLeft": "previous", ".": "next", ",": "previous",
}


#: What SamCanvas takes as its model: a predictor of SAM (MobileSAM's too) or of SAM 2, or a model of either.
MODEL_TYPES = (SamPredictor, Sam, SAM2ImagePredictor, SAM2Base)


def as_predictor(model: SamPredictor | Sam | SAM2ImagePredictor | SAM2Base) -> SamPredictor | SAM2ImagePredictor:
    """The predictor the canvas uses: ``model`` itself, or a new predictor of SAM's or SAM 2's kind for a model."""
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
            except Exception as e:  # noqa: BLE001 - shown to the user, never swallowed
                self.outcomes.append(HandlerOutcome(method.__name__, self._depth, e))
                self._show_error(e)
                return None
            finally:
                self._depth -= 1
            self.outcomes.append(HandlerOutcome(method.__name__, self._depth + 1, None))
            return result

        return run

    return decorate(method) if method is not None else decorate


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
    """

    def __init__(self, model: SamPredictor | Sam | SAM2ImagePredictor | SAM2Base | ImageLike | None = None,
                 images: ImageLike | Sequence[ImageLike] | None = None, *, width: int = 640,
                 names: Sequence[str] | None = None, autosave: str | os.PathLike | None = None,
                 prefetch: bool = True, model_name: str | None = None) -> None:
        enable_colab_widgets()
        if images is None and model is not None and not isinstance(model, MODEL_TYPES):
            model, images = None, model  # SamCanvas(image)
        if model is None:
            from ..hub.default_model import DEFAULT_MODEL_NAME, load_default

            model, model_name = load_default(), model_name or DEFAULT_MODEL_NAME
        predictor = as_predictor(model)
        if width < 16:
            raise UserInputError(f"width must be at least 16 display pixels, got {width}")
        self.model_name = model_name or _model_name(predictor.model)
        self.display_width = int(width)
        self.autosave_path = Path(autosave) if autosave is not None else None
        self.last_error: Exception | None = None
        #: the newest OUTCOMES_KEPT handler outcomes, oldest first (errors wiped from the status line stay here)
        self.outcomes: deque[HandlerOutcome] = deque(maxlen=OUTCOMES_KEPT)
        self.negative = False
        self._drag_start: tuple[float, float] | None = None
        self._dragging = False
        self._message = ""
        self._depth = 0  # nesting of guarded actions
        self._syncing = False  # True while the side panel is updated from the state

        self.session = AnnotationSession(predictor, images, names=names, prefetch=prefetch)
        self.session.warm_up()
        self.grid = render.DisplayGrid(self.session.image.shape[:2], self.display_width)
        self.canvas = MultiCanvas(3, width=self.grid.width, height=self.grid.height)
        self.canvas.layout.width = f"{self.grid.width}px"
        self.canvas.layout.height = f"{self.grid.height}px"
        self.canvas.on_mouse_down(self._on_mouse_down)
        self.canvas.on_mouse_move(self._on_mouse_move)
        self.canvas.on_mouse_up(self._on_mouse_up)
        self.canvas.on_mouse_out(self._on_mouse_out)
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

        self._mode_button = widgets.ToggleButton(value=False, description="positive clicks",
                                                 tooltip="n: switch between positive and negative clicks",
                                                 layout=widgets.Layout(width="140px"))
        self._mode_button.observe(lambda change: self._set_mode(change["new"]), "value")
        self._buttons = {
            "new_object": button("new object", "Enter / a: keep this mask as an object, start the next",
                                 self.new_object, "plus"),
            "undo": button("undo", "z", self.undo, "undo"),
            "redo": button("redo", "y", self.redo, "repeat"),
            "clear": button("clear", "Esc / c: clear the object being edited", self.clear, "eraser"),
            "previous": button("", "←: previous image", self.previous_image, "arrow-left"),
            "next": button("", "→: next image", self.next_image, "arrow-right"),
        }
        b = self._buttons
        self._toolbar = widgets.HBox([self._mode_button, b["new_object"], b["undo"], b["redo"], b["clear"],
                                      b["previous"], b["next"]])

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
        positive = (not self.negative) if positive is None else positive
        self.session.add_point(x, y, positive)
        self._message = ""
        self._after_prompt()

    @_guarded
    def set_box(self, box: Sequence[float]) -> None:
        """Set the box (XYXY image pixels) of the object being edited."""
        self.session.set_box(box)
        self._message = ""
        self._after_prompt()

    @_guarded
    def choose(self, candidate: int) -> None:
        """Keep SAM's mask number candidate (0, 1, 2) of the three after a single click."""
        self.session.choose(candidate)
        self._message = ""
        self._after_prompt()

    @_guarded
    def new_object(self, label: str | None = None) -> None:
        """Commit the current mask as an object with its own colour and start the next one."""
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
        action = self.session.undo()
        self._message = f"undid {action}" if action else "nothing to undo"
        self._after_objects_changed()

    @_guarded
    def redo(self) -> None:
        action = self.session.redo()
        self._message = f"redid {action}" if action else "nothing to redo"
        self._after_objects_changed()

    @_guarded
    def clear(self) -> None:
        """Clear the prompts and mask of the object being edited (undoable)."""
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

    def _set_mode(self, negative: bool) -> None:
        self.negative = bool(negative)
        if self._mode_button.value != self.negative:
            self._mode_button.value = self.negative
        self._mode_button.description = "negative clicks" if self.negative else "positive clicks"
        self._mode_button.button_style = "danger" if self.negative else ""
        self._update_status()

    def toggle_mode(self) -> None:
        """Switch between positive and negative clicks."""
        self._set_mode(not self.negative)

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
        self._drag_start = (x, y)
        self._dragging = False

    @_guarded(clears=False)
    def _on_mouse_move(self, x: float, y: float) -> None:
        if self._drag_start is None:
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
        if self._dragging or max(abs(x - x0), abs(y - y0)) >= DRAG_THRESHOLD:
            self._dragging = False
            self.set_box((*self.grid.to_image(x0, y0), *self.grid.to_image(x, y)))
        else:
            self.add_point(*self.grid.to_image(x, y))

    @_guarded(clears=False)
    def _on_mouse_out(self, x: float, y: float) -> None:
        if self._drag_start is not None:  # left the image mid-drag: drop the rubber band
            self._drag_start = None
            self._dragging = False
            self._draw_prompts()

    @_guarded
    def _on_key_down(self, key: str, shift: bool = False, ctrl: bool = False, meta: bool = False) -> None:
        action = KEY_ACTIONS.get(key)
        if action is None:
            return
        if action == "undo" and shift:
            action = "redo"
        if action.startswith("choose_"):
            self.choose(int(action[-1]))
        else:
            getattr(self, {"next": "next_image", "previous": "previous_image"}.get(action, action))()

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
    def _after_prompt(self) -> None:
        self._refresh()

    def _after_objects_changed(self, autosave: bool = True) -> None:
        self._refresh()
        if autosave and self.autosave_path is not None:
            self.to_coco(self.autosave_path)

    def _after_image_changed(self) -> None:
        self._set_display_images()
        self._drag_start = None
        self._redraw_all()

    def _set_display_images(self) -> None:
        """The current image resampled once for the canvas and for the candidate thumbnails."""
        image = self.session.image
        self.grid = render.DisplayGrid(image.shape[:2], self.display_width)
        self._display_rgb = self.grid.image(image)
        self._thumb_grid = render.DisplayGrid(image.shape[:2], THUMBNAIL_WIDTH)
        self._thumb_rgb = self._thumb_grid.image(image)

    def _redraw_all(self) -> None:
        if (self.canvas.width, self.canvas.height) != (self.grid.width, self.grid.height):
            self.canvas.width, self.canvas.height = self.grid.width, self.grid.height
            self.canvas.layout.width, self.canvas.layout.height = f"{self.grid.width}px", f"{self.grid.height}px"
        opaque = np.dstack([self._display_rgb, np.full(self._display_rgb.shape[:2], 255, np.uint8)])
        self.canvas[0].clear()
        self.canvas[0].put_image_data(opaque, 0, 0)  # RGBA goes as PNG (lossless); RGB would go as JPEG
        self._refresh()

    def _refresh(self) -> None:
        """Redraw masks and prompts and update the side panels from the session state."""
        state = self.session.state
        with hold_canvas():
            self.canvas[1].clear()  # put_image_data composites: clear first
            self.canvas[1].put_image_data(render.overlay(state, self.grid), 0, 0)
            self._draw_prompts(hold=False)
        self._update_objects_list()
        self._update_candidates()
        self._update_status()

    def _draw_prompts(self, rubber_band: tuple[float, float, float, float] | None = None, hold: bool = True) -> None:
        layer = self.canvas[2]
        prompt = self.session.state.edit.prompt

        def draw() -> None:
            layer.clear()
            if prompt.box is not None:
                x0, y0 = self.grid.to_display(*prompt.box[:2])
                x1, y1 = self.grid.to_display(*prompt.box[2:])
                layer.line_width, layer.stroke_style = 2, "#32cd32"
                layer.stroke_rect(x0, y0, x1 - x0, y1 - y0)
            if rubber_band is not None:
                x0, y0, x1, y1 = rubber_band
                layer.line_width, layer.stroke_style = 1.5, "#ffffff"
                layer.set_line_dash([6, 4])
                layer.stroke_rect(min(x0, x1), min(y0, y1), abs(x1 - x0), abs(y1 - y0))
                layer.set_line_dash([])
            for (x, y), label in zip(prompt.points, prompt.labels):
                dx, dy = self.grid.to_display(x, y)
                layer.fill_style = "#32cd32" if label else "#ff3030"
                layer.fill_circle(dx, dy, 6)
                layer.line_width, layer.stroke_style = 1.5, "#ffffff"
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
            selected = state.object(state.selected) if self._objects.value is not None else None
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
        """The status line as plain text: model, image i/n, encoder time or cached, decoder ms, mode."""
        s = self.session
        encoder = {"cached": "embedding cached", "prefetched": f"encoded in background in {s.encode_seconds:.2f} s"}
        parts = [
            self.model_name,
            f"image {s.index + 1}/{len(s.images)} ({s.images.name(s.index)})",
            encoder.get(s.encode_source, f"encoder {s.encode_seconds:.2f} s"),
            f"decoder {s.decoder_ms:.1f} ms" if s.decoder_ms is not None else "decoder -",
            "negative clicks" if self.negative else "positive clicks",
        ]
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
        except Exception:  # noqa: BLE001 - the status itself failed; the traceback below still shows
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
        return widget_snapshot(self).pixels

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        """The widget, plus a PNG of the whole widget (:meth:`snapshot`) for viewers that cannot run widgets."""
        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict):
            try:
                picture = self.snapshot()
            except Exception:  # noqa: BLE001 - never let the still picture stop the live widget from showing
                picture = render.blend(self._display_rgb, render.overlay(self.session.state, self.grid))
            data["image/png"] = base64.b64encode(render.png_bytes(picture)).decode("ascii")
        return bundle
