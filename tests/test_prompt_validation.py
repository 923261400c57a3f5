"""The prompt checks at their edges, worked out by hand: what is inside the image, what a box is, which shapes pass.

`check_points`, `check_box` and `check_mask_input` stand between a user's prompt and the model; a mistake there
would pass a wrong prompt silently (a point below the image, a box of zero width) or refuse a right one (a point on
the image's last pixel edge). These cases were written to kill the mutants that survived the predictor's tests
(.ci/mutation).
"""

from __future__ import annotations

import numpy as np
import pytest

from samwidgets.errors import UserInputError
from samwidgets.inference.prompts import check_box, check_mask_input, check_points

HW = (40, 60)  # H, W: x in [0, 60], y in [0, 40]


@pytest.mark.parametrize("point", [(0, 0), (60, 40), (60, 0), (0, 40), (30.5, 39.9)])
def test_points_on_the_image_edges_are_inside(point):
    coords, labels = check_points([point], [1], HW)
    assert coords.dtype == np.float64 and coords.tolist() == [list(map(float, point))]
    assert labels.dtype == np.int64 and labels.tolist() == [1]


@pytest.mark.parametrize("point", [(-0.5, 10), (60.5, 10), (10, -0.5), (10, 40.5)])
def test_a_point_past_any_edge_is_refused_by_name(point):
    with pytest.raises(UserInputError, match=rf"point \({point[0]:g}, {point[1]:g}\) lies outside the image of "
                                             r"width 60 and height 40"):
        check_points([(5, 5), point], [1, 0], HW)  # the offending point is named, not the first one


def test_one_point_may_be_given_flat():
    coords, labels = check_points(np.array([3.0, 4.0]), 0, HW)
    assert coords.shape == (1, 2) and coords.tolist() == [[3.0, 4.0]] and labels.tolist() == [0]


@pytest.mark.parametrize("coords, pattern", [
    (np.zeros(3), r"N x 2 .* got \(3,\)"),
    (np.zeros((2, 3)), r"N x 2 .* got \(2, 3\)"),
    (np.zeros((0, 2)), r"N >= 1 .* got \(0, 2\)"),
    (np.zeros((1, 1, 2)), r"N x 2 .* got \(1, 1, 2\)"),
])
def test_point_shapes_are_named(coords, pattern):
    with pytest.raises(UserInputError, match=pattern):
        check_points(coords, np.ones(len(coords)), HW)


@pytest.mark.parametrize("labels, pattern", [
    ([1], r"point_labels must have shape \(2,\), one label per point, got \(1,\)"),
    ([[1, 1]], r"point_labels must have shape \(2,\), one label per point, got \(1, 2\)"),
    ([1, 2], r"1 \(foreground\) or 0 \(background\), got \[1.0, 2.0\]"),
    ([1, float("nan")], r"point_labels contains NaN"),
    (["a", "b"], r"point_labels must be numeric, got list"),
])
def test_labels_are_checked_and_named(labels, pattern):
    with pytest.raises(UserInputError, match=pattern):
        check_points([(1, 1), (2, 2)], labels, HW)


def test_coordinates_are_named_when_not_numbers():
    with pytest.raises(UserInputError, match=r"point_coords must be numeric"):
        check_points([("a", "b")], [1], HW)
    with pytest.raises(UserInputError, match=r"point_coords contains NaN"):
        check_points([(np.inf, 1)], [1], HW)


@pytest.mark.parametrize("box", [(0, 0, 60, 40), (0, 0, 1, 1), (59, 39, 60, 40), [[2, 3, 4, 5]]])
def test_boxes_touching_the_edges_are_inside(box):
    arr = check_box(box, HW)
    assert arr.shape == (1, 4) and arr.dtype == np.float64 and arr.ravel().tolist() == np.ravel(box).tolist()


@pytest.mark.parametrize("box", [(5, 5, 5, 9), (5, 5, 9, 5), (9, 5, 5, 9), (5, 9, 9, 5)])
def test_an_empty_or_flipped_box_is_refused(box):
    with pytest.raises(UserInputError, match=r"x0 < x1 and y0 < y1"):
        check_box(box, HW)


@pytest.mark.parametrize("box", [(-1, 0, 5, 5), (0, -1, 5, 5), (0, 0, 61, 5), (0, 0, 5, 41)])
def test_a_box_past_any_edge_is_refused(box):
    with pytest.raises(UserInputError, match=r"reaches outside the image of width 60 and height 40; clip it first, "
                                             r"e\.g\. np\.clip\(box, 0, \[W, H, W, H\]\)"):
        check_box(box, HW)


@pytest.mark.parametrize("box", [np.zeros((2, 4)), np.zeros(5), np.zeros((1, 1, 4))])
def test_several_boxes_are_sent_to_predict_torch(box):
    with pytest.raises(UserInputError, match=r"one XYXY box .* for several boxes use predict_torch with a B x 4"):
        check_box(box, HW)


def test_mask_input_shapes():
    low = np.arange(16, dtype=np.float64).reshape(4, 4)
    for given in (low, low[None]):
        arr = check_mask_input(given, 4)
        assert arr.shape == (1, 4, 4) and arr.dtype == np.float32 and arr[0].tolist() == low.tolist()
    with pytest.raises(UserInputError, match=r"1 x 4 x 4 .* got \(2, 4, 4\)"):
        check_mask_input(np.zeros((2, 4, 4)), 4)
    with pytest.raises(UserInputError, match=r"mask_input contains NaN"):
        check_mask_input(np.full((4, 4), np.nan), 4)
