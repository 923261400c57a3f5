"""A fuzzer for the canvas: random events through the canvas's own handlers, checked after every event.

Events: clicks inside and outside the image, drags of every shape (empty, inverted, off the canvas), every
shortcut key and a few that mean nothing, undo/redo past both ends, select/rename/delete of real and missing
objects, commits with and without a mask, image switches.

What it requires, so that it can fail (tests/test_widget_fuzz.py breaks the canvas on purpose to show it does):
- every handler's outcome of the event is read (``SamCanvas.outcomes``: nested calls too, not only the last
  error shown), and the only error allowed is the kit's ``UserInputError`` with a message;
- an event that must succeed does: a click (clamped into the image) gives a prediction for a prompt that ends
  with that point; a drag of a real box gives a prediction for that box; undo with something to undo changes
  the state and redo restores exactly the state before (and undo only steps back over what was done);
- the state's invariants hold after every event (unique ids, a live selection, masks of the image's size, a
  history cursor in range);
- the run as a whole did work: objects committed, masks shown, undo and redo exercised with something to undo.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from samwidgets.errors import UserInputError
from samwidgets.widget import SamCanvas
from samwidgets.widget.canvas import DRAG_THRESHOLD, KEY_ACTIONS

KINDS = ("click", "click", "click", "drag", "key", "key", "undo_redo", "select", "rename", "delete", "commit",
         "image")


@dataclass
class FuzzReport:
    """What a run did: events per kind, user errors shown, and the work that succeeded."""

    events: dict[str, int] = field(default_factory=dict)
    user_errors: dict[str, int] = field(default_factory=dict)
    predictions: int = 0  # clicks and boxes answered with masks
    commits: int = 0  # objects made
    undos: int = 0  # undos with something to undo
    redos: int = 0  # redos with something to redo

    def summary(self) -> str:
        errors = sorted(self.user_errors.items(), key=lambda kv: -kv[1])
        return (f"{sum(self.events.values())} events {self.events}: {self.predictions} masks shown, "
                f"{self.commits} objects made, {self.undos} undos and {self.redos} redos with something to do; "
                f"{sum(self.user_errors.values())} user errors {errors}")


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
    if edit.prediction is not None:
        h, w = sizes[session.index]
        assert all(m.shape == (h, w) for m in edit.prediction.masks)


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
    keys = list(KEY_ACTIONS) + ["q", "F5", " "]
    report = FuzzReport()
    for step in range(events):
        canvas_w, canvas_h = canvas.grid.width, canvas.grid.height
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
            canvas._on_mouse_down(x0, y0)
            if kind == "drag":
                canvas._on_mouse_move((x0 + x1) / 2, (y0 + y1) / 2)
                if left:
                    canvas._on_mouse_out(x1, y1)
            canvas._on_mouse_up(x1, y1)
            errors = _errors_of_event(canvas, step, kind, report)
            is_box = max(abs(x1 - x0), abs(y1 - y0)) >= DRAG_THRESHOLD
            if not left and (kind == "click" or not is_box):
                assert not errors, f"event {step} (click at {x1:.0f}, {y1:.0f}): {errors}"
                point = canvas.grid.to_image(x1, y1)
                prompt = session.state.edit.prompt
                assert session.state.edit.prediction is not None and prompt.points[-1] == point, (
                    f"event {step} (click at image {point}): no prediction for the click")
                report.predictions += 1
            elif not left:
                (a, b), (c, d) = canvas.grid.to_image(x0, y0), canvas.grid.to_image(x1, y1)
                box = (min(a, c), min(b, d), max(a, c), max(b, d))
                if box[2] > box[0] and box[3] > box[1]:  # a real box (one off the image may be flat)
                    assert not errors, f"event {step} (box {box}): {errors}"
                    assert session.state.edit.prediction is not None and session.state.edit.prompt.box == box, (
                        f"event {step} (box {box}): no prediction for the box")
                    report.predictions += 1
        elif kind == "key":
            canvas._on_key_down(str(rng.choice(keys)), shift=bool(rng.random() < 0.3))
            _errors_of_event(canvas, step, kind, report)
        elif kind == "undo_redo":
            history = session.history()
            if history.can_undo and rng.random() < 0.5:
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
        elif kind == "select":
            ids = [o.id for o in session.state.objects] + [None, 999]
            canvas.select(ids[int(rng.integers(len(ids)))])
            _errors_of_event(canvas, step, kind, report)
        elif kind == "rename":
            canvas.rename(label=str(rng.choice(["cat", "", "  ", "a" * 200, "émoji 🐈"])))
            _errors_of_event(canvas, step, kind, report)
        elif kind == "delete":
            ids = [o.id for o in session.state.objects] + [None, 999]
            canvas.delete(ids[int(rng.integers(len(ids)))])
            _errors_of_event(canvas, step, kind, report)
        elif kind == "commit":
            had_mask = before.edit.prediction is not None
            canvas.new_object()  # with or without a mask under way
            assert not _errors_of_event(canvas, step, kind, report), f"event {step}: committing failed"
            if had_mask:
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
