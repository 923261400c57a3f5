"""The kit's one error for a user's mistake: raised where input is checked, still the built-in type users catch."""

from __future__ import annotations

import numpy as np
import pytest

from samwidgets import UserInputError
from samwidgets.errors import OutOfRangeError, UnknownObjectError
from samwidgets.widget.session import AnnotationSession


@pytest.fixture()
def session(tiny_predictor, parity):
    image = parity["image"].numpy()
    session = AnnotationSession(tiny_predictor, [image, image[:40, :50].copy()], prefetch=False)
    yield session
    session.close()


def test_a_bad_prompt_is_a_user_error_and_a_value_error(tiny_predictor):
    with pytest.raises(UserInputError, match="outside the image") as caught:
        tiny_predictor.predict(point_coords=np.array([[-50.0, 3.0]]), point_labels=np.array([1]))
    assert isinstance(caught.value, ValueError)  # what code written for the reference catches


def test_a_bad_image_is_a_user_error(tiny_predictor):
    with pytest.raises(UserInputError, match="NaN"):
        tiny_predictor.set_image(np.full((8, 8, 3), np.nan, np.float32))


def test_an_unknown_object_is_a_user_error_and_a_key_error_with_a_readable_message(session):
    with pytest.raises(UnknownObjectError) as caught:
        session.select(999)
    assert isinstance(caught.value, UserInputError) and isinstance(caught.value, KeyError)
    assert str(caught.value).startswith("no object with id 999")  # no quotes around it, as KeyError would add


def test_an_image_index_past_the_end_is_a_user_error_and_an_index_error(session):
    with pytest.raises(OutOfRangeError) as caught:
        session.open(5)
    assert isinstance(caught.value, IndexError) and "0..1" in str(caught.value)


def test_choosing_without_a_prediction_is_a_user_error(session):
    with pytest.raises(UserInputError, match="click on the image first"):
        session.choose(0)
