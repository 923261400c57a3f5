"""The canvas of issue 27: hover preview (throttled, latest wins, a click first), layers redrawn only when they
changed, masks sent as small patches, several boxes in one decoder call, zoom and pan in image coordinates."""

from __future__ import annotations

import numpy as np
import pytest
import test_widget_render
import torch

from samwidgets import SamCanvas
from samwidgets.errors import UserInputError
from samwidgets.widget import canvas as canvas_module
from samwidgets.widget import render
from samwidgets.widget.session import AnnotationSession, torch_threads
from samwidgets.widget.throttle import Throttle

WIDTH = 512  # 256 px scenes at twice their size
predictor, scene = test_widget_render.predictor, test_widget_render.scene  # the bundled model, a held-out scene


class FakeLoop:
    """A clock and call_later the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[list] = []  # [due, callback, cancelled]

    def clock(self) -> float:
        return self.now

    def call_later(self, delay, callback):
        timer = [self.now + delay, callback, False]
        self.timers.append(timer)

        class Handle:
            def cancel(self_inner):
                timer[2] = True

        return Handle()

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for timer in list(self.timers):
            if not timer[2] and timer[0] <= self.now:
                self.timers.remove(timer)
                timer[1]()


def test_throttle_runs_the_newest_request_once_per_interval_and_a_cancel_drops_it():
    loop, ran = FakeLoop(), []

    def work(x):
        ran.append(x)
        loop.now += 0.010  # the work takes 10 ms

    throttle = Throttle(work, min_interval=0.05, headroom=2.0, clock=loop.clock, call_later=loop.call_later)
    throttle.request(1)  # due: runs at once
    assert ran == [1]
    for x in (2, 3, 4):  # within the interval: only the newest is kept
        throttle.request(x)
    assert ran == [1] and throttle.pending and throttle.dropped == 2
    loop.advance(0.05)
    assert ran == [1, 4] and not throttle.pending  # no queue: 2 and 3 never run
    throttle.request(5)
    throttle.cancel()  # a click came first
    loop.advance(1.0)
    assert ran == [1, 4]


def test_throttle_lowers_its_rate_for_slow_work():
    loop, ran, starts = FakeLoop(), [], []

    def slow(x):
        ran.append(x)
        starts.append(loop.now)
        loop.now += 0.2  # a slow model: 200 ms a preview

    throttle = Throttle(slow, min_interval=1 / 30, headroom=2.0, clock=loop.clock, call_later=loop.call_later)
    throttle.request(0)
    assert throttle.interval == pytest.approx(0.4)  # twice the work's time, not 1/30 s
    for k in range(1, 21):  # a pointer moving for a second at 20 moves a second
        loop.advance(0.05)
        throttle.request(k)
    loop.advance(1.0)
    assert min(np.diff(starts)) >= 0.4 - 1e-9  # never closer than twice the work's time: no backlog
    assert len(ran) < 21 and ran[-1] == 20  # requests dropped, the last run at the newest position


def test_throttle_without_an_event_loop_waits_for_flush():
    ran = []
    throttle = Throttle(ran.append, min_interval=10.0, call_later=lambda delay, callback: None)
    throttle.request(1)
    throttle.request(2)
    assert ran == [1] and throttle.pending
    throttle.flush()
    assert ran == [1, 2]


def test_view_maps_both_ways_at_any_zoom_and_keeps_the_pointer_in_place():
    view = render.View((200, 300), 600)  # 2 display pixels per image pixel
    assert view.to_image(100, 50) == (50.0, 25.0)
    view.zoom_at(4.0, 300, 200)  # about the display centre: image point (150, 100)
    assert view.scale == 8.0 and view.to_image(300, 200) == pytest.approx((150.0, 100.0))
    for point in [(0, 0), (123.5, 77.25), (599, 399)]:
        assert view.to_display(*view.to_image(*point)) == pytest.approx(point)
    view.pan(10_000, 10_000)  # dragged far beyond the corner: stops at the image's edge
    assert view.origin == (0.0, 0.0)
    view.pan(-10_000, -10_000)
    x0, y0, x1, y1 = view.visible()
    assert (x1, y1) == pytest.approx((300.0, 200.0)) and x1 - x0 == pytest.approx(600 / 8)
    view.zoom_at(100.0, 0, 0)
    assert view.zoom == view.MAX_ZOOM
    view.zoom_at(0.001, 0, 0)
    assert view.zoom == 1.0 and view.origin == (0.0, 0.0)
    rgb = np.random.default_rng(0).integers(0, 255, (200, 300, 3), dtype=np.uint8)
    assert np.array_equal(view.image(rgb), view.fit.image(rgb))  # the fit view is the grid's picture


@pytest.mark.parametrize("image_hw, width", [((64, 96), 192), ((300, 400), 100)])  # enlarged, shrunk
def test_a_patch_drawn_where_it_says_is_the_overlay(image_hw, width):
    h, w = image_hw
    yy, xx = np.mgrid[:h, :w]
    mask = (yy - h / 2) ** 2 + (xx - w / 3) ** 2 < (h / 4) ** 2
    view = render.View(image_hw, width)
    patch = render.mask_patch([render.MaskStyle(mask, (10, 20, 30), 99)], view)
    # the browser's drawing: each patch pixel sx x sy display pixels, nearest neighbour
    drawn = np.zeros((view.height, view.width), dtype=bool)
    rows = np.arange(view.height)
    cols = np.arange(view.width)
    pr = np.floor((rows + 0.5 - patch.y) / patch.sy).astype(int)
    pc = np.floor((cols + 0.5 - patch.x) / patch.sx).astype(int)
    inside_r = (pr >= 0) & (pr < patch.rgba.shape[0])
    inside_c = (pc >= 0) & (pc < patch.rgba.shape[1])
    drawn[np.ix_(inside_r, inside_c)] = patch.rgba[np.ix_(pr[inside_r], pc[inside_c])][..., 3] == 99
    expected = view.fit.sample(mask)
    assert (drawn != expected).mean() < 0.01  # the same pixels but for rounding at the edge
    assert patch.rgba.shape[0] * patch.rgba.shape[1] <= min(h * w, view.width * view.height)
    if view.scale > 1:  # an enlarged image: the patch is at image resolution, the browser scales it
        assert patch.sx == patch.sy == view.scale
    assert render.mask_patch([render.MaskStyle(np.zeros_like(mask), (1, 2, 3), 9)], view) is None


def test_preview_records_nothing_and_a_click_there_reuses_its_answer(predictor, scene):
    session = AnnotationSession(predictor, scene.image, prefetch=False)
    entries = len(session.history()._entries)
    preview = session.preview(100, 120)
    assert len(session.history()._entries) == entries and session.state.edit.prediction is None
    calls = []
    original = predictor.predict
    predictor.predict = lambda *a, **k: (calls.append(1), original(*a, **k))[1]
    try:
        assert session.add_point(100, 120).masks is preview.masks and not calls and session.reused_preview
        session.preview(30, 40)  # a preview elsewhere...
        session.add_point(50, 60)  # ...is not the answer to a click here
        assert len(calls) == 2 and not session.reused_preview
    finally:
        del predictor.predict
    session.close()


def test_several_boxes_make_one_object_each_from_one_call_and_one_undo(predictor, scene):
    session = AnnotationSession(predictor, scene.image, prefetch=False)
    boxes = [(10, 10, 100, 100), (120, 120, 250, 250), (50, 60, 70, 90)]
    made = session.add_boxes(boxes)
    assert [o.prompt.box for o in made] == [tuple(float(v) for v in b) for b in boxes]
    assert len({o.color for o in made}) == 3 and [o.id for o in made] == [1, 2, 3]
    for obj, box in zip(made, boxes):  # the batch gives what one box at a time gives
        masks, scores, _ = predictor.predict(box=np.array(box), multimask_output=False)
        assert np.array_equal(masks[0], obj.mask) and scores[0] == pytest.approx(obj.score, abs=1e-5)
    assert session.undo() == "boxes" and session.state.objects == ()
    before = session.state
    with pytest.raises(UserInputError, match="outside the image"):
        session.add_boxes([(0, 0, 10, 10), (0, 0, 300, 10)])
    with pytest.raises(UserInputError, match="no boxes"):
        session.add_boxes([])
    assert session.state is before
    session.close()


def test_torch_threads_sets_and_restores_and_answers_the_same(predictor, scene):
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    one = AnnotationSession(predictor, scene.image, prefetch=False, decoder_threads=1).add_point(100, 120)
    default = AnnotationSession(predictor, scene.image, prefetch=False).add_point(100, 120)
    assert np.array_equal(one.masks, default.masks)


@pytest.fixture()
def canvas(predictor, scene):
    canvas = SamCanvas(predictor, scene.image, width=WIDTH, prefetch=False, hover_preview=True)
    yield canvas
    canvas.close()


def test_hovering_draws_a_preview_and_changes_nothing(canvas):
    state, entries = canvas.session.state, len(canvas.session.history()._entries)
    canvas._on_mouse_move(200, 240)
    assert canvas.previews == 1 and canvas._preview_shown
    assert canvas.session.state is state and len(canvas.session.history()._entries) == entries
    canvas._on_mouse_move(-5, 10)  # off the image: the preview goes (once the interval is over)
    canvas._hover.flush()
    assert not canvas._preview_shown
    canvas._on_key_down("p")
    assert not canvas.preview_enabled and "preview off" in canvas.status_text()
    canvas._on_mouse_move(200, 240)
    assert canvas.previews == 1


def test_a_click_cancels_the_waiting_preview_and_reuses_the_shown_one(canvas):
    canvas._on_mouse_move(200, 240)  # runs at once
    canvas._on_mouse_move(300, 300)  # waits for the interval
    assert canvas._hover.pending
    canvas._on_mouse_move(200, 240)
    canvas._hover.flush()
    canvas._on_mouse_move(60, 60)
    canvas._on_mouse_down(200, 240)  # the click comes first
    assert not canvas._hover.pending
    canvas._on_mouse_up(200, 240)
    assert canvas.session.state.edit.prompt.points == ((100.0, 120.0),)
    assert canvas.timings[-1].reused_preview and canvas.timings[-1].decoder_ms == 0.0
    assert not canvas._preview_shown  # the click's mask replaced the preview


def test_a_click_redraws_only_the_edited_mask(canvas, monkeypatch):
    canvas.add_point(100, 120)
    canvas.new_object()
    sent = {}
    for index in range(5):
        layer = canvas.canvas[index]
        monkeypatch.setattr(layer, "put_image_data", lambda *a, i=index, **k: sent.setdefault(i, []).append(a))
    canvas.add_point(30, 200)
    assert set(sent) == {canvas_module.EDIT_LAYER}  # neither the image nor the committed object again
    patch = sent[canvas_module.EDIT_LAYER][0][0]
    assert patch.shape[0] * patch.shape[1] < 256 * 256  # the mask's box at image size, not the 512 px layer
    sent.clear()
    canvas.undo()  # the edit goes back to nothing: only its layer changes
    assert not sent
    canvas.undo()  # the commit undone: the objects layer is empty, the edit is back
    assert set(sent) == {canvas_module.EDIT_LAYER}


def test_zoom_keeps_prompts_in_image_pixels_and_the_status_says_it(canvas):
    canvas._on_mouse_move(256, 256)
    canvas._on_mouse_wheel(0, -100)  # zoom in about the pointer
    canvas._view_redraw.flush()
    assert canvas.view.zoom == pytest.approx(1.25) and "zoom 1.2x" in canvas.status_text()
    canvas._on_mouse_down(100, 100)
    canvas._on_mouse_up(100, 100)
    expected = canvas.view.to_image(100, 100)
    assert canvas.session.state.edit.prompt.points[-1] == expected
    assert expected == pytest.approx((128 - 128 / 1.25 + 100 / 2.5, 128 - 128 / 1.25 + 100 / 2.5))
    canvas._on_key_down("ArrowRight", shift=True)  # pan: the image moves left, the view right
    assert canvas.view.origin[0] > 128 - 128 / 1.25
    canvas._on_key_down("0")
    assert canvas.view.zoom == 1.0 and canvas.view.origin == (0.0, 0.0)
    canvas._on_key_down("m")  # pan mode: a drag moves the image, draws no box
    canvas._on_key_down("+")
    origin, state = canvas.view.origin, canvas.session.state
    canvas._on_mouse_down(300, 300)
    canvas._on_mouse_move(250, 280)
    canvas._on_mouse_up(250, 280)
    assert canvas.session.state is state and canvas.view.origin == pytest.approx(
        (origin[0] + 50 / canvas.view.scale, origin[1] + 20 / canvas.view.scale))


def test_several_boxes_by_drags_and_enter(canvas):
    canvas._on_key_down("b")
    for x0, y0, x1, y1 in ((20, 20, 200, 200), (260, 260, 480, 480)):
        canvas._on_mouse_down(x0, y0)
        canvas._on_mouse_move(x1, y1)
        canvas._on_mouse_up(x1, y1)
    assert canvas.pending_boxes == [(10.0, 10.0, 100.0, 100.0), (130.0, 130.0, 240.0, 240.0)]
    assert "2 boxes drawn" in canvas.status_text()
    canvas._on_key_down("z")  # undo takes back the last box drawn
    assert canvas.pending_boxes == [(10.0, 10.0, 100.0, 100.0)]
    canvas._on_mouse_down(260, 260)
    canvas._on_mouse_move(480, 480)
    canvas._on_mouse_up(480, 480)
    canvas._on_key_down("Enter")
    assert len(canvas.objects) == 2 and not canvas.pending_boxes and "made 2 objects" in canvas.status_text()
    canvas._on_key_down("z")
    assert len(canvas.objects) == 0


def test_the_preview_is_off_by_default_for_a_slow_decoder(predictor, scene, monkeypatch):
    monkeypatch.setattr(canvas_module, "PREVIEW_AUTO_MS", -1.0)  # every decoder is "slow"
    slow = SamCanvas(predictor, scene.image, width=WIDTH, prefetch=False)
    assert not slow.preview_enabled and "preview off" in slow.status_text()
    slow.close()
    monkeypatch.setattr(canvas_module, "PREVIEW_AUTO_MS", 10_000.0)
    fast = SamCanvas(predictor, scene.image, width=WIDTH, prefetch=False)
    assert fast.preview_enabled
    fast.close()
