"""A fuzzer for the canvas: 10,000 random events on the bundled model, the state's invariants after each.

Events: clicks inside and outside the image, drags of every shape (empty, inverted, off the canvas),
every shortcut key and a few that mean nothing, undo/redo past both ends, select/rename/delete of real
and missing objects, commits with and without a mask, image switches. Each event goes through the
canvas's own handlers, which turn an error into a status line: the fuzzer requires that such an error
is a ValueError or KeyError that says what was wrong (a mistake of the user's), never anything else.
"""

from __future__ import annotations

import numpy as np
import pytest

from samwidgets import SamPredictor, load_default
from samwidgets.data import SceneGenerator
from samwidgets.data.seeds import HELD_OUT_SEED_START
from samwidgets.widget import SamCanvas
from samwidgets.widget.canvas import KEY_ACTIONS

EVENTS = int(__import__("os").environ.get("FUZZ_EVENTS", 10_000))  # FUZZ_EVENTS=500 for a quick look
USER_ERRORS = (ValueError, KeyError)


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


@pytest.mark.slow
def test_ten_thousand_random_events_keep_the_state_consistent():
    generator = SceneGenerator(image_size=256)
    images = [generator(HELD_OUT_SEED_START + 40 + i).image for i in range(2)]
    images.append(images[0][:100, :180].copy())  # a smaller, non-square image too
    sizes = [im.shape[:2] for im in images]
    canvas = SamCanvas(SamPredictor(load_default(device="cpu")), images, width=300)
    rng = np.random.default_rng(0)
    keys = list(KEY_ACTIONS) + ["q", "F5", " "]
    counts: dict[str, int] = {}
    user_errors: dict[str, int] = {}
    try:
        for step in range(EVENTS):
            canvas_w, canvas_h = canvas.grid.width, canvas.grid.height
            kind = str(rng.choice(["click", "click", "click", "drag", "key", "key", "undo_redo", "select", "rename",
                               "delete", "commit", "image"]))
            counts[kind] = counts.get(kind, 0) + 1
            if kind in ("click", "drag"):
                x0, y0 = rng.uniform(-40, canvas_w + 40), rng.uniform(-40, canvas_h + 40)  # outside too
                x1, y1 = (x0, y0) if kind == "click" else (rng.uniform(-40, canvas_w + 40),
                                                             rng.uniform(-40, canvas_h + 40))
                canvas._on_mouse_down(x0, y0)
                if kind == "drag":
                    canvas._on_mouse_move((x0 + x1) / 2, (y0 + y1) / 2)
                    if rng.random() < 0.1:
                        canvas._on_mouse_out(x1, y1)  # left the canvas mid-drag
                canvas._on_mouse_up(x1, y1)
            elif kind == "key":
                canvas._on_key_down(str(rng.choice(keys)), shift=bool(rng.random() < 0.3))
            elif kind == "undo_redo":
                before = canvas.session.state
                history = canvas.session.history()
                if history.can_undo and rng.random() < 0.5:
                    canvas.undo()
                    canvas.redo()
                    assert canvas.session.state is before  # undo then redo is the identity
                for _ in range(int(rng.integers(1, 6))):  # and past either end
                    canvas.undo() if rng.random() < 0.5 else canvas.redo()
            elif kind == "select":
                ids = [o.id for o in canvas.session.state.objects] + [None, 999]
                canvas.select(ids[int(rng.integers(len(ids)))])
            elif kind == "rename":
                canvas.rename(label=str(rng.choice(["cat", "", "  ", "a" * 200, "émoji 🐈"])))
            elif kind == "delete":
                ids = [o.id for o in canvas.session.state.objects] + [None, 999]
                canvas.delete(ids[int(rng.integers(len(ids)))])
            elif kind == "commit":
                canvas.new_object()  # with or without a mask under way
            else:
                canvas.next_image() if rng.random() < 0.5 else canvas.previous_image()
            error = canvas.last_error
            if error is not None:
                assert isinstance(error, USER_ERRORS), f"event {step} ({kind}): {type(error).__name__}: {error}"
                assert str(error).strip(), f"event {step} ({kind}): an error without a message"
                what = f"{type(error).__name__}: " + str(error).split(";")[0][:48]
                user_errors[what] = user_errors.get(what, 0) + 1
            check_invariants(canvas, sizes)
        made = sum(len(canvas.session.state_of(i).objects) for i in range(len(images)))
        print(f"{EVENTS} events {counts}: {sum(user_errors.values())} shown as user errors "
              f"{sorted(user_errors.items(), key=lambda kv: -kv[1])}; {made} objects at the end")
        assert set(counts) == {"click", "drag", "key", "undo_redo", "select", "rename", "delete", "commit", "image"}
    finally:
        canvas.close()
