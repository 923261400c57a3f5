"""Prompts are validated: every call returns valid output or raises ValueError, never anything else.

The predictor runs on ``test_device`` (tests/on_device.py): the tiny model there, numpy in and out."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from samwidgets import SamPredictor

H, W = 150, 200  # the parity image


def test_predict_before_set_image(device_sam):
    with pytest.raises(RuntimeError, match="set_image"):
        SamPredictor(device_sam).predict(np.array([[1.0, 1.0]]), np.array([1]))


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"point_coords": np.array([[10.0, 10.0]])}, "point_labels must be given"),
        ({"point_labels": np.array([1])}, "without point_coords"),
        ({"point_coords": np.array([[10.0, 10.0, 1.0]]), "point_labels": np.array([1])}, "N x 2"),
        ({"point_coords": np.array([[10.0, 10.0]]), "point_labels": np.array([1, 0])}, "one label per point"),
        ({"point_coords": np.array([[10.0, 10.0]]), "point_labels": np.array([2])}, "1 \\(foreground\\) or 0"),
        ({"point_coords": np.array([[250.0, 10.0]]), "point_labels": np.array([1])}, "outside the image of width 200"),
        ({"point_coords": np.array([[np.nan, 10.0]]), "point_labels": np.array([1])}, "NaN"),
        ({"box": np.array([50.0, 50.0, 10.0, 80.0])}, "x0 < x1"),
        ({"box": np.array([0.0, 0.0, 10.0])}, "XYXY"),
        ({"box": np.array([[0, 0, 10, 10], [5, 5, 20, 20]])}, "predict_torch"),
        ({"box": np.array([0.0, 0.0, 300.0, 100.0])}, "outside the image"),
        ({"mask_input": np.zeros((1, 64, 64))}, "1 x 256 x 256"),
        ({"point_coords": "abc", "point_labels": [1]}, "numeric"),
    ],
)
def test_bad_prompts_name_the_problem(device_predictor, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        device_predictor.predict(**kwargs)


def test_accepts_lists_and_2d_mask_input(device_predictor):
    masks, iou, low = device_predictor.predict([[100, 62]], [1], box=[57, 27, 142, 97])
    masks2, _, _ = device_predictor.predict([[100, 62]], [1], box=[57, 27, 142, 97], mask_input=low[0])
    assert masks.shape == masks2.shape == (3, H, W)


def _check_output(out, multimask):
    masks, iou, low = out
    m = 3 if multimask else 1
    assert masks.shape == (m, H, W) and masks.dtype == np.bool_
    assert iou.shape == (m,) and iou.dtype == np.float32
    assert low.shape == (m, 256, 256) and low.dtype == np.float32


floats = st.one_of(st.floats(min_value=-50, max_value=300), st.sampled_from([np.nan, np.inf, -np.inf]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    coords=st.one_of(st.none(), hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
                                           elements=floats)),
    labels=st.one_of(st.none(), hnp.arrays(np.int64, hnp.array_shapes(min_dims=0, max_dims=2, max_side=4),
                                           elements=st.integers(-2, 3))),
    box=st.one_of(st.none(), hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=2, max_side=5),
                                        elements=floats)),
    mask_shape=st.one_of(st.none(), st.sampled_from([(1, 256, 256), (256, 256), (1, 64, 64), (2, 256, 256)])),
    multimask=st.booleans(),
)
def test_random_prompts_give_valid_output_or_value_error(device_predictor, coords, labels, box, mask_shape, multimask):
    mask_input = None if mask_shape is None else np.zeros(mask_shape, np.float32)
    try:
        out = device_predictor.predict(coords, labels, box, mask_input, multimask_output=multimask)
    except ValueError:
        return
    _check_output(out, multimask)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 4),
    xs=st.lists(st.floats(0, W), min_size=4, max_size=4),
    ys=st.lists(st.floats(0, H), min_size=4, max_size=4),
    labels=st.lists(st.integers(0, 1), min_size=4, max_size=4),
    multimask=st.booleans(),
)
def test_valid_points_anywhere_in_the_image_work(device_predictor, n, xs, ys, labels, multimask):
    coords = np.stack([xs[:n], ys[:n]], axis=1)
    _check_output(device_predictor.predict(coords, np.array(labels[:n]), multimask_output=multimask), multimask)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"point_coords": np.zeros((1, 2, 2)), "point_labels": None}, "together"),
        ({"point_coords": np.zeros((1, 2, 2)), "point_labels": np.zeros((1, 3))}, "B x N x 2"),
        ({"point_coords": None, "point_labels": None, "boxes": np.zeros((2, 5))}, "B x 4"),
        ({"point_coords": np.zeros((2, 1, 2)), "point_labels": np.ones((2, 1)), "boxes": np.zeros((3, 4))}, "batch"),
    ],
)
def test_predict_torch_checks_shapes(device_predictor, kwargs, pattern):
    import torch

    kwargs = {k: None if v is None else torch.as_tensor(v, dtype=torch.float, device=device_predictor.device)
              for k, v in kwargs.items()}
    with pytest.raises(ValueError, match=pattern):
        device_predictor.predict_torch(**kwargs)
