"""The canvas's state records at their edges: the undo limit, the first state, colours by id, prompt arrays.

Written to kill the mutants that survived the widget's tests (.ci/mutation): an undo history one step too short,
a start entry that redo could reach, an object drawn in its neighbour's colour, prompt arrays of the wrong dtype.
"""

from __future__ import annotations

import numpy as np
import pytest

from samwidgets.errors import UserInputError
from samwidgets.widget.state import PALETTE, History, ImageState, Prompt, color_for


def test_a_history_of_limit_one_keeps_only_the_present():
    history = History(limit=1)
    first, second = ImageState(next_id=1), ImageState(next_id=2)
    history.push("a", first)
    history.push("b", second)
    assert history.state is second and not history.can_undo and history.undo() is None
    with pytest.raises(UserInputError, match="limit must be >= 1"):
        History(limit=0)


def test_the_limit_counts_the_states_kept_exactly():
    for limit in (2, 3, 200):
        history = History(limit=limit)
        pushed = [ImageState(next_id=i) for i in range(limit + 5)]
        for i, state in enumerate(pushed):
            history.push(f"step {i}", state)
        undone = 0
        while history.undo() is not None:
            undone += 1
        assert undone == limit - 1 and history.state is pushed[-limit]  # limit states: the present and limit - 1


def test_the_default_history_keeps_200_states():
    history = History()
    assert history.limit == 200
    for i in range(250):
        history.push(f"step {i}", ImageState(next_id=i))
    undone = 0
    while history.undo() is not None:
        undone += 1
    assert undone == 199


def test_start_is_the_first_state_and_redo_after_a_new_step_is_gone():
    start = ImageState(next_id=7)
    history = History(start)
    assert history.state is start and not history.can_redo and history.redo() is None
    history.push("a", ImageState(next_id=8))
    history.push("b", ImageState(next_id=9))
    assert history.undo() == "b" and history.undo() == "a" and history.state is start
    assert history.redo() == "a" and history.state.next_id == 8
    history.push("c", ImageState(next_id=10))  # a new step drops what could have been redone ("b")
    assert not history.can_redo and history.redo() is None
    assert history.undo() == "c" and history.undo() == "a" and history.state is start
    assert History().state == ImageState()


def test_colours_follow_ids_from_one():
    assert color_for(1) == PALETTE[0] and color_for(2) == PALETTE[1]
    assert color_for(len(PALETTE)) == PALETTE[-1] and color_for(len(PALETTE) + 1) == PALETTE[0]


def test_prompt_arrays_have_the_predictors_dtypes():
    prompt = Prompt().with_point(3, 4, 1).with_point(5.5, 6, 0).with_box((1, 2, 30, 40))
    coords, labels, box = prompt.arrays()
    assert coords.dtype == np.float64 and coords.tolist() == [[3.0, 4.0], [5.5, 6.0]]
    assert labels.dtype == np.int64 and labels.tolist() == [1, 0]
    assert box.dtype == np.float64 and box.tolist() == [1.0, 2.0, 30.0, 40.0]
    assert Prompt().arrays() == (None, None, None)
    only_box = Prompt().with_box((1, 2, 3, 4)).arrays()
    assert only_box[0] is None and only_box[1] is None and only_box[2].tolist() == [1.0, 2.0, 3.0, 4.0]
