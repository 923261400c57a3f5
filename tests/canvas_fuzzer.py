"""A fuzzer for the canvas: random events through the canvas's own handlers, checked after every event.

Events: clicks inside and outside the image, drags of every shape (empty, inverted, off the canvas), every
shortcut key (modes, zoom and Shift + arrows included) and a few that mean nothing, undo/redo past both ends,
select/rename/delete of real and missing objects, commits with and without a mask, image switches, the pointer
hovering (the preview), several boxes segmented at once, wheel zooms and pans. Clicks and drags land in whatever
mode the keys left (negative, several boxes, pan) and at whatever zoom.

What it requires, so that it can fail (tests/test_widget_fuzz.py breaks the canvas on purpose to show it does):
- every handler's outcome of the event is read (``SamCanvas.outcomes``: nested calls too, not only the last
  error shown), and the only error allowed is the kit's ``UserInputError`` with a message;
- an event that must succeed does: a click (clamped into the image) gives a prediction for a prompt that ends
  with that point, in image pixels at any zoom; a drag of a real box gives a prediction for that box (or, in
  several-boxes mode, one more box drawn; in pan mode, no change to the state); undo with something to undo
  changes the state and redo restores exactly the state before (and undo only steps back over what was done);
  hovering changes no state and previews the click the pointer is over; boxes segmented at once make one object
  each and one undo removes them all; a zoom keeps the image point under the pointer in place;
- the state's invariants hold after every event (unique ids, a live selection, masks of the image's size, a
  history cursor in range, a zoom in 1..16 showing only the image);
- the run as a whole did work: objects committed, masks shown, undo and redo exercised with something to undo,
  previews drawn, boxes segmented, zoomed clicks answered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from samwidgets.errors import UserInputError
from samwidgets.widget import SamCanvas
from samwidgets.widget.canvas import DRAG_THRESHOLD, KEY_ACTIONS, SHIFT_ARROWS

KINDS = ("click", "click", "click", "drag", "key", "key", "undo_redo", "select", "rename", "delete", "commit",
         "image", "hover", "boxes", "zoom", "pan")
#: the events that call the canvas's method of their name with an object's id: a real one, None, or one that no
#: object has (looked up on the canvas when called, so that a test's patch of the method is what runs)
BY_OBJECT_ID = ("select", "delete")


@dataclass
class FuzzReport:
    """What a run did: events per kind, user errors shown, and the work that succeeded."""

    events: dict[str, int] = field(default_factory=dict)
    user_errors: dict[str, int] = field(default_factory=dict)
    predictions: int = 0  # clicks and boxes answered with masks
    commits: int = 0  # objects made
    undos: int = 0  # undos with something to undo
    redos: int = 0  # redos with something to redo
    previews: int = 0  # hover previews drawn
    box_batches: int = 0  # several boxes segmented in one call
    zoomed_clicks: int = 0  # clicks answered while zoomed in

    def summary(self) -> str:
        errors = sorted(self.user_errors.items(), key=lambda kv: -kv[1])
        return (f"{sum(self.events.values())} events {self.events}: {self.predictions} masks shown "
                f"({self.zoomed_clicks} clicks zoomed in), {self.commits} objects made, {self.box_batches} box "
                f"batches, {self.previews} previews, {self.undos} undos and {self.redos} redos with something to "
                f"do; {sum(self.user_errors.values())} user errors {errors}")


def check_invariants(canvas: SamCanvas, sizes: list[tuple[int, int]]) -> None:
    session = canvas.session
    for i, (h, w) in enumerate(sizes):
        history = session.history(i)
        state = session.state_of(i)
        ids = [o.id for o in state.objects]
        assert len(ids) == len(set(ids)), f"image {i}: duplicate object ids {ids}"
        assert all(i < state.next_id for i in ids), f"image {i}: next_id {state.next_id} is not new"
        assert state.selected is None or state.selected in ids, f"image {i}: selected {state.selected} is gone"
        for obj in state.objects:
            assert obj.mask.shape == (h, w) and obj.mask.dtype == bool, f"image {i}: object {obj.id} mask"
        assert history.state is state
        assert 0 <= history._cursor < len(history._entries) <= history.limit
    edit = session.state.edit
    h, w = sizes[session.index]
    if edit.prediction is not None:
        assert all(m.shape == (h, w) for m in edit.prediction.masks)
    view = canvas.view
    assert 1.0 <= view.zoom <= view.MAX_ZOOM, f"zoom {view.zoom} out of range"
    x0, y0, x1, y1 = view.visible()
    assert -1e-9 <= x0 <= x1 <= w + 1e-9 and -1e-9 <= y0 <= y1 <= h + 1e-9, f"the view shows {view.visible()}"
    assert x1 - x0 >= min(w, view.width / view.scale) - 1e-6, f"the view shows margin beyond the image: {x0, x1}"
    for box in canvas.pending_boxes:
        assert 0 <= box[0] < box[2] <= w and 0 <= box[1] < box[3] <= h, f"a pending box off the image: {box}"


def _errors_of_event(canvas: SamCanvas, step: int, kind: str, report: FuzzReport) -> list[Exception]:
    """The errors of every handler call of this event; fails on anything but a UserInputError with a message."""
    errors = [o.error for o in canvas.outcomes if o.error is not None]
    for error in errors:
        assert isinstance(error, UserInputError), (
            f"event {step} ({kind}): {type(error).__name__}: {error} (only UserInputError is a user's mistake)")
        assert str(error).strip(), f"event {step} ({kind}): an error without a message"
        what = f"{type(error).__name__}: " + str(error).split(";")[0][:48]
        report.user_errors[what] = report.user_errors.get(what, 0) + 1
    return errors


def fuzz_canvas(canvas: SamCanvas, events: int, seed: int = 0) -> FuzzReport:
    """Send ``events`` random events to ``canvas``; an AssertionError names the first event that broke a rule."""
    sizes = [canvas.session.images.rgb(i).shape[:2] for i in range(len(canvas.session.images))]
    rng = np.random.default_rng(seed)
    keys = list(KEY_ACTIONS) + list(SHIFT_ARROWS) + ["q", "F5", " "]
    report = FuzzReport()
    for step in range(events):
        canvas_w, canvas_h = canvas.view.width, canvas.view.height
        kind = str(rng.choice(KINDS))
        report.events[kind] = report.events.get(kind, 0) + 1
        canvas.outcomes.clear()
        session = canvas.session
        before = session.state
        if kind in ("click", "drag"):
            x0, y0 = rng.uniform(-40, canvas_w + 40), rng.uniform(-40, canvas_h + 40)  # outside too
            x1, y1 = (x0, y0) if kind == "click" else (rng.uniform(-40, canvas_w + 40),
                                                         rng.uniform(-40, canvas_h + 40))
            left = kind == "drag" and rng.random() < 0.1  # the pointer leaves the canvas mid-drag
            pending = len(canvas.pending_boxes)
            (a, b), (c, d) = canvas.view.to_image(x0, y0), canvas.view.to_image(x1, y1)  # before a pan moves it
            canvas._on_mouse_down(x0, y0)
            if kind == "drag":
                canvas._on_mouse_move((x0 + x1) / 2, (y0 + y1) / 2)
                if left:
                    canvas._on_mouse_out(x1, y1)
                else:
                    canvas._on_mouse_move(x1, y1)
            canvas._on_mouse_up(x1, y1)
            errors = _errors_of_event(canvas, step, kind, report)
            is_box = max(abs(x1 - x0), abs(y1 - y0)) >= DRAG_THRESHOLD
            box = (min(a, c), min(b, d), max(a, c), max(b, d))
            if canvas.pan_mode:
                assert not errors and session.state is before, f"event {step} (a drag in pan mode): {errors}"
            elif not left and (kind == "click" or not is_box):
                assert not errors, f"event {step} (click at {x1:.0f}, {y1:.0f}): {errors}"
                point = canvas.view.to_image(x1, y1)
                prompt = session.state.edit.prompt
                assert session.state.edit.prediction is not None and prompt.points[-1] == point, (
                    f"event {step} (click at image {point}): no prediction for the click")
                report.predictions += 1
                report.zoomed_clicks += canvas.view.zoom > 1
            elif not left and box[2] > box[0] and box[3] > box[1]:  # a real box (one off the image may be flat)
                assert not errors, f"event {step} (box {box}): {errors}"
                if canvas.box_mode:
                    assert canvas.pending_boxes[-1:] == [box] and len(canvas.pending_boxes) == pending + 1, (
                        f"event {step} (box {box} in several-boxes mode): not drawn")
                    assert session.state is before, f"event {step}: drawing a box changed the state"
                else:
                    assert session.state.edit.prediction is not None and session.state.edit.prompt.box == box, (
                        f"event {step} (box {box}): no prediction for the box")
                    report.predictions += 1
        elif kind == "key":
            canvas._on_key_down(str(rng.choice(keys)), shift=bool(rng.random() < 0.3))
            _errors_of_event(canvas, step, kind, report)
        elif kind == "hover":
            history = session.history()
            entries, previews = len(history._entries), canvas.previews
            for _ in range(int(rng.integers(1, 8))):
                x, y = rng.uniform(-20, canvas_w + 20), rng.uniform(-20, canvas_h + 20)
                canvas._on_mouse_move(x, y)
            canvas._hover.flush()  # the newest position (the kernel's event loop does this after the interval)
            errors = _errors_of_event(canvas, step, kind, report)
            assert not errors, f"event {step}: hovering failed: {errors}"
            assert session.state is before and len(history._entries) == entries, (
                f"event {step}: hovering changed the state")
            if canvas.preview_enabled and canvas.view.contains(x, y):
                assert canvas.previews > previews, f"event {step}: no preview at ({x:.0f}, {y:.0f})"
                point = canvas.view.to_image(x, y)
                assert session._previewed[2].points[-1] == point, f"event {step}: the preview is not at the pointer"
                report.previews += 1
            canvas._on_mouse_out(x, y)
        elif kind == "boxes":
            if canvas.pending_boxes:  # boxes a drag left: dropped first, so that this batch is known exactly
                canvas.clear()
            was_box_mode = canvas.box_mode
            if not canvas.box_mode:
                canvas.toggle_boxes()
            h, w = sizes[session.index]
            drawn = []
            for _ in range(int(rng.integers(1, 4))):
                x0, y0 = rng.uniform(0, w - 8), rng.uniform(0, h - 8)
                box = (x0, y0, rng.uniform(x0 + 4, w), rng.uniform(y0 + 4, h))
                canvas._add_pending_box(box)
                drawn.append(box)
            before = session.state
            canvas._on_key_down("Enter")
            errors = _errors_of_event(canvas, step, kind, report)
            assert not errors, f"event {step}: segmenting boxes failed: {errors}"
            made = session.state.objects[len(before.objects):]
            assert [o.prompt.box for o in made] == drawn and not canvas.pending_boxes, (
                f"event {step}: {len(drawn)} boxes made {len(made)} objects")
            canvas.undo()
            assert session.state is before, (
                f"event {step}: one undo did not remove every box's object (an undo that changed nothing, or too "
                "little)")
            canvas.redo()
            assert session.state.objects[len(before.objects):] == made, f"event {step}: redo lost the boxes"
            report.box_batches += 1
            if canvas.box_mode != was_box_mode:
                canvas.toggle_boxes()
        elif kind == "zoom":
            x, y = rng.uniform(0, canvas_w), rng.uniform(0, canvas_h)
            canvas._on_mouse_move(x, y)
            canvas._hover.cancel()
            anchor, zoom = canvas.view.to_image(x, y), canvas.view.zoom
            if rng.random() < 0.5:
                canvas._on_mouse_wheel(0, float(rng.choice([-100, 100])))
                canvas._view_redraw.flush()
            else:
                canvas.zoom_by(float(rng.choice([0.5, 1.5, 3.0])))
            assert not _errors_of_event(canvas, step, kind, report), f"event {step}: zooming failed"
            view = canvas.view
            h, w = sizes[session.index]
            # the image point under the pointer stays there, unless that would show margin beyond the image
            ox, oy = anchor[0] - x / view.scale, anchor[1] - y / view.scale
            if 0 <= ox <= w - view.width / view.scale and 0 <= oy <= h - view.height / view.scale:
                after = view.to_image(x, y)
                assert max(abs(after[0] - anchor[0]), abs(after[1] - anchor[1])) < 1e-6, (
                    f"event {step}: the zoom from {zoom} to {view.zoom} moved the point under the pointer "
                    f"from {anchor} to {after}")
        elif kind == "pan":
            canvas.pan_by(rng.uniform(-200, 200), rng.uniform(-200, 200))
            assert not _errors_of_event(canvas, step, kind, report), f"event {step}: panning failed"
        elif kind == "undo_redo":
            history = session.history()
            if canvas.pending_boxes:  # undo takes back the last box drawn first
                boxes = canvas.pending_boxes
                canvas.undo()
                assert canvas.pending_boxes == boxes[:-1] and session.state is before, (
                    f"event {step}: undo did not take back the last box drawn")
            if history.can_undo and rng.random() < 0.5 and not canvas.pending_boxes:
                canvas.undo()
                undone = session.state
                assert undone is not before, f"event {step}: undo with something to undo changed nothing"
                assert history.can_redo, f"event {step}: nothing to redo right after an undo"
                canvas.redo()
                assert session.state is before, f"event {step}: undo then redo is not the identity"
                report.undos, report.redos = report.undos + 1, report.redos + 1
            for _ in range(int(rng.integers(1, 6))):  # and past either end
                canvas.undo() if rng.random() < 0.5 else canvas.redo()
            _errors_of_event(canvas, step, kind, report)
        elif kind in BY_OBJECT_ID:
            ids = [o.id for o in session.state.objects] + [None, 999]
            getattr(canvas, kind)(ids[int(rng.integers(len(ids)))])
            _errors_of_event(canvas, step, kind, report)
        elif kind == "rename":
            canvas.rename(label=str(rng.choice(["cat", "", "  ", "a" * 200, "émoji 🐈"])))
            _errors_of_event(canvas, step, kind, report)
        elif kind == "commit":
            had_mask = before.edit.prediction is not None
            boxes = canvas.pending_boxes
            canvas.new_object()  # with or without a mask under way
            assert not _errors_of_event(canvas, step, kind, report), f"event {step}: committing failed"
            if boxes:  # Enter with boxes drawn in several-boxes mode makes one object per box
                made = session.state.objects[len(before.objects):]
                assert [o.prompt.box for o in made] == boxes and session.state.edit is before.edit, (
                    f"event {step}: {len(boxes)} boxes drawn made {len(made)} objects")
                report.box_batches += 1
            elif had_mask:
                objects = session.state.objects
                assert len(objects) == len(before.objects) + 1 and objects[-1].mask is not None, (
                    f"event {step}: the mask under way was not kept as an object")
                report.commits += 1
        else:
            canvas.next_image() if rng.random() < 0.5 else canvas.previous_image()
            _errors_of_event(canvas, step, kind, report)
        check_invariants(canvas, sizes)
    return report


def assert_the_run_did_work(report: FuzzReport, events: int) -> None:
    """A run of ``events`` events made objects, showed masks and undid and redid something."""
    assert set(report.events) == set(KINDS), f"not every kind of event was sent: {report.events}"
    assert report.predictions >= events // 10, f"too few masks shown: {report.summary()}"
    assert report.commits >= events // 50, f"too few objects made: {report.summary()}"
    assert report.undos >= events // 100 and report.redos >= events // 100, (
        f"undo/redo never had anything to do: {report.summary()}")
    assert report.previews >= events // 100, f"too few previews drawn: {report.summary()}"
    assert report.box_batches >= events // 100, f"too few boxes segmented: {report.summary()}"
    assert report.zoomed_clicks >= events // 200, f"too few clicks while zoomed in: {report.summary()}"
