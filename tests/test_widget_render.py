"""Display mapping and mask drawing of the canvas layers, and the still picture of the whole widget."""

from __future__ import annotations

import base64
import io
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from samwidgets.widget import render, snapshot
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


# -- the still picture of the whole widget (what a notebook viewer without a kernel shows) ------------------------
WIDTH = 512  # the 256 px scenes shown at twice their size


@pytest.fixture(scope="module")
def predictor():
    from samwidgets import SamPredictor, load_default

    return SamPredictor(load_default(device="cpu"))


@pytest.fixture(scope="module")
def scene():
    from samwidgets.data import SceneGenerator
    from samwidgets.data.seeds import HELD_OUT_SEED_START

    return SceneGenerator(image_size=256)(HELD_OUT_SEED_START + 7)


@pytest.fixture()
def canvas(predictor, scene):
    from samwidgets import SamCanvas

    c = SamCanvas(predictor, [scene.image, scene.image[::-1].copy()], width=WIDTH)
    yield c
    c.close()


def _centre(mask: np.ndarray) -> tuple[int, int]:
    distance = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(np.argmax(distance), mask.shape)
    return int(x), int(y)


def _crop(snap: snapshot.Snapshot, name: str) -> np.ndarray:
    x0, y0, x1, y1 = snap.regions[name]
    return snap.pixels[y0:y1, x0:x1]


def _has(pixels: np.ndarray, color) -> bool:
    return bool(np.all(pixels == np.asarray(color, np.uint8), axis=-1).any())


def _reddish(pixels: np.ndarray) -> int:
    p = pixels.astype(int)
    return int(((p[..., 0] > 150) & (p[..., 1] < 90) & (p[..., 2] < 90)).sum())


def test_snapshot_is_the_whole_widget_around_the_exact_image(canvas, scene):
    canvas.add_point(*_centre(scene.masks[0]))
    canvas.new_object("disc")  # a committed, selected object; no prompt left on the image
    snap = snapshot.widget_snapshot(canvas)
    pixels = snap.pixels
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3
    np.testing.assert_array_equal(canvas.snapshot(), pixels)  # the method is the same picture
    h, w = canvas.grid.height, canvas.grid.width
    assert pixels.shape[0] > h + 150 and pixels.shape[1] > w + 200  # toolbar, thumbnails, status; side panel
    x0, y0, x1, y1 = snap.regions["image"]
    assert (x1 - x0, y1 - y0) == (w, h)
    expected = render.blend(canvas._display_rgb, render.overlay(canvas.session.state, canvas.grid))
    np.testing.assert_array_equal(pixels[y0:y1, x0:x1], expected)  # exactly the canvas's layers
    assert not np.array_equal(expected, canvas._display_rgb)  # ... with the object's mask on it
    # the parts do not overlap the image and lie inside the picture
    for name, (a0, b0, a1, b1) in snap.regions.items():
        assert 0 <= a0 < a1 <= pixels.shape[1] and 0 <= b0 < b1 <= pixels.shape[0], name
        if name != "image":
            assert a1 <= x0 or a0 >= x1 or b1 <= y0 or b0 >= y1, name
    toolbar = _crop(snap, "toolbar")
    assert _has(toolbar, snapshot.BUTTON) and (toolbar.sum(-1) < 200).sum() > 100  # buttons with dark labels


def test_snapshot_shows_the_toggle_and_the_prompts(canvas, scene):
    before = snapshot.widget_snapshot(canvas)
    assert not _has(_crop(before, "toolbar"), snapshot.DANGER)
    canvas.toggle_mode()
    negative = snapshot.widget_snapshot(canvas)
    assert _has(_crop(negative, "toolbar"), snapshot.DANGER)  # "negative clicks" is red, as in the widget
    x, y = _centre(scene.masks[0])
    canvas.add_point(x, y, positive=True)
    snap = snapshot.widget_snapshot(canvas)
    dx, dy = canvas.grid.to_display(x, y)
    x0, y0 = snap.regions["image"][:2]
    assert tuple(snap.pixels[y0 + int(dy), x0 + int(dx)]) == render.PROMPT_POSITIVE  # the click's green dot
    canvas.toggle_mode()
    if canvas.preview_enabled:
        canvas.toggle_preview()
    assert not _has(_crop(snapshot.widget_snapshot(canvas), "toolbar"), snapshot.INFO)  # every toggle off
    for toggle in (canvas.toggle_preview, canvas.toggle_boxes, canvas.toggle_pan):  # each on, as in the widget
        toggle()
        assert _has(_crop(snapshot.widget_snapshot(canvas), "toolbar"), snapshot.INFO), toggle.__name__
        toggle()


def test_the_widget_and_its_snapshot_draw_one_toolbar(canvas):
    """The live toolbar's controls and the snapshot's buttons both come from widget/toolbar.py, in its order;
    every tool does something (a button's click, a toggle's value) and the snapshot can draw its icon."""
    from samwidgets.widget import toolbar as spec

    controls = canvas._toolbar.children  # the clicks switch, then the tools
    assert [c.description for c in controls] == [spec.MODE_TEXT[False]] + [t.text for t in spec.TOOLBAR]
    assert [c.icon for c in controls[1:]] == [t.icon for t in spec.TOOLBAR]
    assert [c.tooltip for c in controls[1:]] == [t.tooltip for t in spec.TOOLBAR]
    buttons = snapshot._toolbar(canvas.widget_view())
    assert [(b.text, b.icon) for b in buttons[1:]] == [(t.text, t.icon) for t in spec.TOOLBAR]
    for tool in spec.TOOLBAR:  # each icon is drawn (not left blank)
        image = Image.new("RGB", (20, 20), (255, 255, 255))
        snapshot._icon(ImageDraw.Draw(image), tool.icon, 10, 10, (0, 0, 0))
        assert np.asarray(image).min() < 128, tool.icon


def test_candidates_appear_after_a_single_click(canvas, scene):
    before = snapshot.widget_snapshot(canvas)
    canvas.add_point(*_centre(scene.masks[0]))
    prediction = canvas.session.state.edit.prediction
    assert prediction.is_ambiguous
    after = snapshot.widget_snapshot(canvas)
    assert before.regions["candidates"] == after.regions["candidates"]
    assert not np.array_equal(_crop(before, "candidates"), _crop(after, "candidates"))
    x0, y0 = after.regions["candidates"][:2]
    tw, th = canvas._thumb_grid.width, canvas._thumb_grid.height
    for k in range(3):  # each thumbnail is SAM's candidate k over the image (inside the chosen one's frame)
        x = x0 + k * (tw + snapshot.GAP)
        expected = render.candidate_picture(canvas._thumb_rgb, prediction.masks[k], canvas._thumb_grid)
        np.testing.assert_array_equal(after.pixels[y0 + 2:y0 + th - 2, x + 2:x + tw - 2], expected[2:-2, 2:-2])

    def chosen_button(snap: snapshot.Snapshot) -> list[bool]:  # which buttons are in the "info" colour
        y = y0 + th + snapshot.GAP + 2
        return [tuple(snap.pixels[y, x0 + k * (tw + snapshot.GAP) + 3]) == snapshot.INFO for k in range(3)]

    assert chosen_button(after) == [k == prediction.chosen for k in range(3)]
    other = (prediction.chosen + 1) % 3
    canvas.choose(other)
    assert chosen_button(snapshot.widget_snapshot(canvas)) == [k == other for k in range(3)]


def test_object_list_changes_after_new_object(canvas, scene):
    canvas.add_point(*_centre(scene.masks[0]))
    before = snapshot.widget_snapshot(canvas)
    canvas.new_object("disc")
    obj = canvas.objects[0]
    after = snapshot.widget_snapshot(canvas)
    listed = _crop(after, "objects")
    assert not np.array_equal(_crop(before, "objects"), listed)
    assert _has(listed, obj.color) and not _has(_crop(before, "objects"), obj.color)  # the colour swatch
    assert _has(listed, snapshot.SELECTED_ROW)  # the new object is selected and highlighted
    canvas.select(None)
    unselected = _crop(snapshot.widget_snapshot(canvas), "objects")
    assert _has(unselected, obj.color) and not _has(unselected, snapshot.SELECTED_ROW)
    # the candidates are gone with the edit: back to the empty frames
    np.testing.assert_array_equal(_crop(after, "candidates"), _crop(snapshot.render_view(
        replace(canvas.widget_view(), state=ImageState())), "candidates"))


def test_status_line_and_the_error_appear(canvas, scene):
    canvas.add_point(*_centre(scene.masks[0]))
    good = snapshot.widget_snapshot(canvas)
    assert _reddish(_crop(good, "status")) == 0
    canvas.add_point(300, 10)  # outside the 256 x 256 image
    assert canvas.last_error is not None
    failed = snapshot.widget_snapshot(canvas)
    assert _reddish(_crop(failed, "status")) > 50  # the error, in red, as in the widget
    np.testing.assert_array_equal(_crop(good, "image"), _crop(failed, "image"))  # nothing else changed
    view = canvas.widget_view()
    assert "outside the image" in view.error and view.status == canvas.status_text()
    other = snapshot.render_view(replace(view, status=view.status.replace("image 1/2", "image 2/2")))
    assert not np.array_equal(_crop(failed, "status"), _crop(other, "status"))  # the status text is drawn
    canvas.add_point(100, 100)
    assert canvas.last_error is None and _reddish(_crop(snapshot.widget_snapshot(canvas), "status")) == 0


def test_repr_mimebundle_carries_the_snapshot_as_png(canvas, scene):
    canvas.add_point(*_centre(scene.masks[0]))
    bundle = canvas._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in data
    decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(data["image/png"]))).convert("RGB"))
    np.testing.assert_array_equal(decoded, canvas.snapshot())


def _view(n_objects: int, selected: int | None, label: str = "obj") -> snapshot.WidgetView:
    """A view without a model: n square objects on a grey 64 x 96 image."""
    rgb = np.full((64, 96, 3), 120, np.uint8)
    objects = []
    for i in range(n_objects):
        mask = np.zeros((64, 96), bool)
        mask[i % 8 * 8:i % 8 * 8 + 6, i // 8 * 8:i // 8 * 8 + 6] = True
        objects.append(AnnotatedObject(i + 1, mask, f"{label} {i + 1}", 0.9, (10 * i, 200, 255 - 10 * i)))
    grid, thumb = render.DisplayGrid((64, 96), 192), render.DisplayGrid((64, 96), 150)
    return snapshot.WidgetView(picture=grid.image(rgb), grid=grid,
                               state=ImageState(objects=tuple(objects), selected=selected),
                               thumb_picture=thumb.image(rgb), thumb_grid=thumb, status="model · image 1/1")


def test_long_object_lists_scroll_to_the_selected_object():
    first = _crop(snapshot.render_view(_view(14, selected=1)), "objects")
    last = _crop(snapshot.render_view(_view(14, selected=14)), "objects")
    assert _has(first, (0, 200, 255)) and not _has(first, (130, 200, 125))  # objects 1..10 shown
    assert _has(last, (130, 200, 125)) and not _has(last, (0, 200, 255))  # scrolled: objects 5..14
    assert _has(first, snapshot.SELECTED_ROW) and _has(last, snapshot.SELECTED_ROW)
    long = snapshot.render_view(_view(2, selected=None, label="a very long label " * 10))
    assert long.pixels.shape == snapshot.render_view(_view(2, selected=None)).pixels.shape  # cut, not widened


def test_snapshot_falls_back_to_pillows_bitmap_font(monkeypatch):
    """Without DejaVu and on Pillow < 10.1 (no load_default(size=)), the picture is still drawn."""
    def no_truetype(*args, **kwargs):
        raise OSError("no such font")

    bitmap = getattr(ImageFont, "load_default_imagefont", ImageFont.load_default)  # Pillow < 10.1's default

    def old_load_default(size=None):
        if size is not None:
            raise TypeError("load_default() got an unexpected keyword argument 'size'")
        return bitmap()

    monkeypatch.setattr(ImageFont, "truetype", no_truetype)
    monkeypatch.setattr(ImageFont, "load_default", old_load_default)
    snapshot.font.cache_clear()
    try:
        view = replace(_view(3, selected=2, label="ünïcødé →"), error="ValueError: bad · thing")
        snap = snapshot.render_view(view)
        assert not isinstance(snapshot.font(), ImageFont.FreeTypeFont)
        assert _reddish(_crop(snap, "status")) > 0 and _has(_crop(snap, "objects"), snapshot.SELECTED_ROW)
    finally:
        snapshot.font.cache_clear()


def test_the_canvas_and_its_snapshot_draw_prompts_in_the_same_colours():
    """One specification (render.py): the live canvas takes it as CSS, the snapshot as RGB."""
    assert render.css_color(render.PROMPT_POSITIVE) == "#32cd32"  # limegreen, the clicks' colour since the start
    assert render.css_color(render.PROMPT_NEGATIVE) == "#ff3030"
    assert render.css_color(render.PENDING_BOX) == "#ffd700" and render.css_color(render.RING) == "#ffffff"
    assert not hasattr(snapshot, "PROMPT_POSITIVE")  # no second copy
