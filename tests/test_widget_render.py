"""Display mapping and mask drawing of the canvas layers."""

from __future__ import annotations

import numpy as np

from samwidgets.widget import render
from samwidgets.widget.state import AnnotatedObject, Edit, ImageState, Prediction, Prompt


def test_display_grid_maps_both_ways_and_samples_nearest():
    grid = render.DisplayGrid((300, 400), 200)  # shown at half size
    assert (grid.width, grid.height, grid.scale) == (200, 150, 0.5)
    assert grid.to_image(100, 50) == (200.0, 100.0) and grid.to_display(200, 100) == (100.0, 50.0)
    assert grid.to_image(-3, 999) == (0.0, 300.0)  # clamped to the image
    image = np.arange(300 * 400).reshape(300, 400)
    small = grid.sample(image)
    assert small.shape == (150, 200) and small[0, 0] == image[1, 1] and small[-1, -1] == image[299, 399]
    assert grid.image(np.zeros((300, 400, 3), np.uint8)).shape == (150, 200, 3)


def test_edges_are_the_mask_pixels_next_to_the_outside():
    mask = np.zeros((7, 7), bool)
    mask[1:6, 1:6] = True
    ring = render.edges(mask)
    assert ring.sum() == 16 and not ring[3, 3] and ring[1, 3] and not ring[0, 0]


def test_overlay_draws_objects_in_their_colours_and_the_edit_on_top():
    h = w = 20
    a = np.zeros((h, w), bool)
    a[2:10, 2:10] = True
    b = np.zeros((h, w), bool)
    b[5:15, 5:15] = True
    obj = AnnotatedObject(1, a, "a", 0.9, (255, 0, 0))
    edit = Edit(Prompt(points=((7.0, 7.0),), labels=(1,)),
                Prediction(masks=b[None], scores=np.array([0.8]), low_res=np.zeros((1, 4, 4))))
    rgba = render.overlay(ImageState(objects=(obj,), edit=edit, selected=None), render.DisplayGrid((h, w), w))
    assert tuple(rgba[3, 3]) == (255, 0, 0, render.FILL_ALPHA)  # only the object
    assert tuple(rgba[7, 7, :3]) == render.EDIT_COLOR  # the edited mask is drawn over the object
    assert rgba[5, 5, 3] == render.EDGE_ALPHA and rgba[18, 18, 3] == 0
    selected = render.overlay(ImageState(objects=(obj,), selected=1), render.DisplayGrid((h, w), w))
    assert selected[5, 5, 3] == render.SELECTED_ALPHA and selected[2, 5, 3] == render.EDGE_ALPHA
    blended = render.blend(np.zeros((h, w, 3), np.uint8), rgba)
    assert blended[3, 3, 0] > 0 and blended[18, 18].sum() == 0
