"""The canvas fuzzer (tests/canvas_fuzzer.py): 10,000 random events on the bundled model, and proof that it fails.

The long run checks the real canvas. The short runs break the canvas on purpose, one way each, and show that the
fuzzer catches every break: a prompt path that raises, every prompt refused as if the user were wrong, an undo
that skips a state, an undo that does nothing, a handler whose dict lookup raises ``KeyError``, an error raised
in mouse-down (wiped from the status line by mouse-up), and a commit that keeps nothing.
"""

from __future__ import annotations

import os

import pytest
from canvas_fuzzer import assert_the_run_did_work, fuzz_canvas

from samwidgets import SamPredictor, load_default
from samwidgets.data import SceneGenerator
from samwidgets.data.seeds import HELD_OUT_SEED_START
from samwidgets.errors import UserInputError
from samwidgets.inference.predictor import SamPredictor as PredictorClass
from samwidgets.widget import SamCanvas
from samwidgets.widget import canvas as canvas_module
from samwidgets.widget.session import AnnotationSession
from samwidgets.widget.state import History

EVENTS = int(os.environ.get("FUZZ_EVENTS", 10_000))  # FUZZ_EVENTS=500 for a quick look
SABOTAGE_EVENTS = 300


@pytest.fixture()
def canvas():
    generator = SceneGenerator(image_size=256)
    images = [generator(HELD_OUT_SEED_START + 40 + i).image for i in range(2)]
    images.append(images[0][:100, :180].copy())  # a smaller, non-square image too
    canvas = SamCanvas(SamPredictor(load_default(device="cpu")), images, width=300)
    yield canvas
    canvas.close()


@pytest.mark.slow
def test_ten_thousand_random_events_keep_the_state_consistent(canvas):
    report = fuzz_canvas(canvas, EVENTS)
    print(report.summary())
    assert_the_run_did_work(report, EVENTS)


def test_a_short_run_of_the_real_canvas_passes(canvas):
    # the sabotage tests below use this length: the fuzzer must pass on the real canvas at it
    assert_the_run_did_work(fuzz_canvas(canvas, SABOTAGE_EVENTS), SABOTAGE_EVENTS)


def _broken_predict(self, *args, **kwargs):
    raise RuntimeError("a bug in the prompt path")


def _refusing_predict(self, *args, **kwargs):
    raise UserInputError("every prompt refused, as if the user were wrong")


def _undo_two_steps(self):
    if not self.can_undo:
        return None
    action = self._entries[self._cursor][0]
    self._cursor = max(self._cursor - 2, 0)  # skips a state
    return action


def _undo_nothing(self):
    return self._entries[self._cursor][0] if self.can_undo else None  # says it undid, changes nothing


def _on_key_down_by_lookup(self, key, shift=False, ctrl=False, meta=False):
    action = {"n": "toggle_mode", "z": "undo", "y": "redo", "c": "clear"}[key]  # KeyError on other keys
    getattr(self, action)()


def _mouse_down_that_fails(self, x, y):
    self._drag_start = (x, y)
    self._dragging = False
    raise RuntimeError("mouse-down failed after setting the drag start")


def _commit_nothing(self, label=None):
    return None


#: sabotage -> (class, attribute, replacement, is an event handler, what the fuzzer's failure says)
SABOTAGE = {
    "a prompt path that raises": (PredictorClass, "predict", _broken_predict, False, "RuntimeError: a bug"),
    "every prompt refused as a user error": (PredictorClass, "predict", _refusing_predict, False, "every prompt"),
    "an undo that skips a state": (History, "undo", _undo_two_steps, False, "not the identity"),
    "an undo that changes nothing": (History, "undo", _undo_nothing, False, "changed nothing"),
    "a dict lookup raising KeyError in a handler": (SamCanvas, "_on_key_down", _on_key_down_by_lookup, True,
                                                     "KeyError"),
    "an error in mouse-down, wiped by mouse-up": (SamCanvas, "_on_mouse_down", _mouse_down_that_fails, True,
                                                  "mouse-down failed"),
    "a commit that keeps nothing": (AnnotationSession, "commit", _commit_nothing, False, "was not kept"),
}


@pytest.mark.parametrize("sabotage", sorted(SABOTAGE))
def test_the_fuzzer_fails_on_a_broken_canvas(canvas, monkeypatch, sabotage):
    owner, name, replacement, handler, says = SABOTAGE[sabotage]
    if handler:  # an event handler: wrapped like the real ones, so its error goes to the status line
        replacement = canvas_module._guarded(replacement, clears=name != "_on_mouse_down")
    monkeypatch.setattr(owner, name, replacement)
    with pytest.raises(AssertionError, match=says):
        fuzz_canvas(canvas, SABOTAGE_EVENTS)
