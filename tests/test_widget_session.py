"""The annotation logic behind SamCanvas: prompts, the paper's refinement loop, objects, undo/redo, image sets.

The session's predictor runs on ``test_device`` (tests/on_device.py), the background encodes included."""

from __future__ import annotations

import numpy as np
import pytest

from samwidgets import SamPredictor
from samwidgets.widget import AnnotationSession
from samwidgets.widget.state import History, ImageState


class SpyPredictor(SamPredictor):
    """A real predictor that records the arguments of every predict call."""

    def __init__(self, model):
        super().__init__(model)
        self.calls: list[dict] = []

    def predict(self, **kwargs):
        self.calls.append(kwargs)
        return super().predict(**kwargs)


def _images(n: int, size: int = 48) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (size, size + 8 * i, 3), dtype=np.uint8) for i in range(n)]


@pytest.fixture()
def session(device_sam):
    s = AnnotationSession(SpyPredictor(device_sam), _images(3), prefetch=False)
    yield s
    s.close()


def test_first_click_gives_three_candidates_and_keeps_the_most_confident(session):
    prediction = session.add_point(10, 12)
    call = session.predictor.calls[-1]
    assert call["multimask_output"] is True and call["mask_input"] is None
    np.testing.assert_array_equal(call["point_coords"], [[10, 12]])
    np.testing.assert_array_equal(call["point_labels"], [1])
    assert prediction.masks.shape == (3, 48, 48) and prediction.scores.shape == (3,)
    assert prediction.chosen == int(np.argmax(prediction.scores))
    np.testing.assert_array_equal(session.current_mask, prediction.masks[prediction.chosen])


def test_later_prompts_refine_from_the_kept_masks_logits(session):
    first = session.add_point(10, 12)
    keep = (first.chosen + 1) % 3
    session.choose(keep)
    second = session.add_point(30, 30, positive=False)
    call = session.predictor.calls[-1]
    assert call["multimask_output"] is False
    np.testing.assert_array_equal(call["mask_input"], first.low_res[keep][None])  # 1 x 256 x 256
    np.testing.assert_array_equal(call["point_labels"], [1, 0])
    assert second.masks.shape == (1, 48, 48) and not second.is_ambiguous
    session.set_box((40, 44, 2, 3))  # corners in any order
    call = session.predictor.calls[-1]
    np.testing.assert_array_equal(call["box"], [2, 3, 40, 44])
    np.testing.assert_array_equal(call["mask_input"], second.low_res[0][None])
    assert session.state.edit.prompt.points == ((10.0, 12.0), (30.0, 30.0))


def test_a_box_first_asks_for_one_mask(session):
    prediction = session.set_box((5, 5, 30, 30))
    assert session.predictor.calls[-1]["multimask_output"] is False
    assert prediction.masks.shape[0] == 1


def test_commit_select_rename_delete_and_ids(session):
    assert session.commit() is None  # nothing to keep yet
    session.add_point(10, 12)
    kept_mask = session.current_mask
    first = session.commit()
    assert (first.id, first.label) == (1, "object") and np.array_equal(first.mask, kept_mask)
    assert session.state.edit.is_empty and session.state.selected == 1
    session.add_point(30, 30)
    second = session.commit("cup")
    assert second.id == 2 and second.label == "cup" and second.color != first.color
    assert [m is o.mask for m, o in zip(session.masks, session.state.objects)] == [True, True]
    session.rename(1, "  saucer ")
    assert session.state.object(1).label == "saucer"
    session.select(2)
    assert session.delete().id == 2
    assert [o.id for o in session.state.objects] == [1] and session.state.selected is None
    with pytest.raises(ValueError, match="no object selected"):
        session.delete()
    with pytest.raises(ValueError, match="must not be empty"):
        session.rename(1, "   ")
    with pytest.raises(KeyError, match="ids here: \\[1\\]"):
        session.select(7)
    session.add_point(20, 20)
    assert session.commit().id == 3  # ids are never reused, even after a delete


def test_every_action_undoes_and_redoes_exactly(session):
    states = [session.state]
    steps = [
        lambda: session.add_point(10, 12),
        lambda: session.choose((session.state.edit.prediction.chosen + 1) % 3),
        lambda: session.add_point(30, 30, positive=False),
        lambda: session.commit(),
        lambda: session.rename(1, "cat"),
        lambda: session.add_point(5, 40),
        lambda: session.clear(),
        lambda: session.select(None),
        lambda: session.select(1),
        lambda: session.delete(1),
        lambda: session.add_point(8, 8),
        lambda: session.commit(),
        lambda: session.clear_all(),
    ]
    for step in steps:
        step()
        states.append(session.state)
    assert session.state.objects == () and session.state.next_id == 3

    names = []
    for expected in reversed(states[:-1]):
        names.append(session.undo())
        assert session.state is expected  # the very same state: nothing recomputed, nothing lost
    assert session.undo() is None
    assert names[0] == "clear all" and names[-1] == "point"
    for expected in states[1:]:
        assert session.redo() is not None
        assert session.state is expected
    assert session.redo() is None
    calls = len(session.predictor.calls)
    for _ in range(5):
        session.undo()
    assert len(session.predictor.calls) == calls  # undo never runs the model


def test_a_new_action_after_undo_drops_the_redo_branch(session):
    session.add_point(10, 12)
    session.add_point(20, 20)
    session.undo()
    session.add_point(30, 30)
    assert session.redo() is None
    assert session.state.edit.prompt.points == ((10.0, 12.0), (30.0, 30.0))


def test_history_keeps_the_newest_steps_within_its_limit():
    history = History(limit=3)
    states = [ImageState(next_id=i) for i in range(5)]
    for i, state in enumerate(states):
        history.push(f"a{i}", state)
    assert history.state is states[-1]
    assert history.undo() == "a4" and history.undo() == "a3" and history.undo() is None
    assert history.state is states[2]
    with pytest.raises(ValueError):
        History(limit=0)


def test_bad_prompts_raise_and_leave_the_state_as_it_was(session):
    session.add_point(10, 12)
    before = session.state
    with pytest.raises(ValueError, match="outside the image"):
        session.add_point(100, 5)
    with pytest.raises(ValueError, match="candidate must be in 0..2"):
        session.choose(3)
    with pytest.raises(ValueError, match="4 numbers"):
        session.set_box((1, 2, 3))
    assert session.state is before


def test_images_keep_their_own_objects_and_history(session):
    session.add_point(10, 12)
    session.commit()
    assert session.next() and session.index == 1
    assert session.state.objects == () and session.image.shape == (48, 56, 3)
    session.add_point(3, 3)
    assert session.next() and not session.next() and session.index == 2
    assert session.previous() and session.previous() and not session.previous()
    assert len(session.state.objects) == 1 and session.encode_source == "cached"
    assert session.state_of(1).edit.prompt.points == ((3.0, 3.0),)
    with pytest.raises(IndexError, match="the set has 3 images"):
        session.open(3)


def test_the_next_image_is_encoded_in_the_background(device_sam):
    images = _images(3)
    session = AnnotationSession(SamPredictor(device_sam), images, prefetch=True)
    try:
        assert session.encode_source == "encoded"
        session._prefetcher._futures[1].result(timeout=60)  # the background thread did the work
        assert session.predictor.cache_key(images[1]) in session.predictor.cache
        session.next()
        assert session.encode_source == "prefetched" and session.encode_seconds > 0
        session.previous()
        assert session.encode_source == "cached" and session.encode_seconds == 0
    finally:
        session.close()


def test_an_unreadable_image_is_reported_when_reached(device_sam, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    session = AnnotationSession(SamPredictor(device_sam), [_images(1)[0], broken], prefetch=True)
    try:
        with pytest.raises(ValueError, match="broken.png"):
            session.next()
        assert session.index == 0  # still on the first image, its work intact
    finally:
        session.close()


def test_restore_checks_that_masks_fit_the_image(session):
    from samwidgets.widget.state import AnnotatedObject

    good = AnnotatedObject(4, np.zeros((48, 48), bool), "a", 0.9, (1, 2, 3))
    session.restore(0, [good])
    assert session.state.next_id == 5
    bad = AnnotatedObject(1, np.zeros((10, 10), bool), "b", 0.9, (1, 2, 3))
    with pytest.raises(ValueError, match="belongs to other images"):
        session.restore(0, [bad])


def test_warm_up_records_nothing(session):
    before = session.state
    session.warm_up()
    assert session.state is before and not session.history().can_undo


def test_no_images_is_a_clear_error(device_sam):
    with pytest.raises(ValueError, match="empty"):
        AnnotationSession(SamPredictor(device_sam), [], prefetch=False)
