"""The evaluation protocol on hand-made cases whose every figure is worked out by hand in this file.

A scripted stand-in replaces the predictor: its masks and scores are chosen here, and it records every call
(click positions, labels, which low-res mask came back as ``mask_input``). The expected values below were
computed by hand from those choices (the comments show the arithmetic), never by the code under test:
the interior centre and the next click, the NoC curve and NoC@85/90, mIoU of the most confident and of the
best of three outputs after 1 and more clicks, the box mIoU, the ambiguity-aware score and the IoU head's
calibration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from bsds_fixture import write_bsds_photo
from PIL import Image
from scipy.stats import spearmanr

from samwidgets.evaluation import photos
from samwidgets.evaluation.clicks import click_protocol, interior_centre, next_click
from samwidgets.evaluation.photos import NOC_MAX_CLICKS, CalibrationStats, evaluate_bsds, noc, noc_curve


def box_mask(shape: tuple[int, int], rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[rows[0]:rows[1], cols[0]:cols[1]] = True
    return mask


# ---- the simulated clicks, on a 10 x 10 image with a 6 x 6 square object at rows and columns 2..7 ----------------
SHAPE10 = (10, 10)
SQUARE = box_mask(SHAPE10, (2, 8), (2, 8))  # 36 pixels
LEFT = box_mask(SHAPE10, (2, 8), (2, 5))  # its columns 2..4: 18 pixels, IoU 18 / 36 = 0.5
MOST = box_mask(SHAPE10, (2, 8), (2, 7))  # its columns 2..6: 30 pixels, IoU 30 / 36
EVERYTHING = np.ones(SHAPE10, bool)  # IoU 36 / 100


def test_the_first_click_is_the_pixel_farthest_inside():
    # distance to the nearest outside pixel: 3 at rows and columns 4 and 5 (2 + 3 - 1 = 4, 8 - 3 = 5); the first
    # of them in row-major order is row 4, column 4
    assert interior_centre(SQUARE) == (4.0, 4.0)


def test_the_next_click_goes_to_the_largest_error_farthest_from_its_edge():
    # missed: columns 5..7 of rows 2..7; distance 2 on column 6 for rows 3..6 (row 2 touches row 1); first: (6, 3)
    assert next_click(LEFT, SQUARE) == (6.0, 3.0, 1)
    # spilled: columns 8..9 of rows 2..7 (the image border counts as an edge): distance 1 everywhere; first: (8, 2)
    spill = SQUARE | box_mask(SHAPE10, (2, 8), (8, 10))
    assert next_click(spill, SQUARE) == (8.0, 2.0, 0)
    assert next_click(SQUARE, SQUARE) is None  # perfect: nothing to click


@dataclass
class Call:
    coords: list[list[float]] | None
    labels: list[int] | None
    box: list[float] | None
    mask_input_tag: float | None  # the value the scripted low-res mask that came back was filled with
    multimask: bool


@dataclass
class ScriptedPredictor:
    """A stand-in for SamPredictor: ``answer(call)`` chooses (masks, scores); every call is recorded.

    The low-res masks are tagged: candidate k of a multi-mask answer is filled with k + 1, a single answer
    with 10, so a test can tell which one came back as ``mask_input``.
    """

    answer: object
    calls: list[Call] = field(default_factory=list)

    def set_image(self, image: np.ndarray) -> None:
        pass

    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None, multimask_output=True):
        call = Call(None if point_coords is None else np.asarray(point_coords).tolist(),
                    None if point_labels is None else np.asarray(point_labels).tolist(),
                    None if box is None else np.asarray(box).tolist(),
                    None if mask_input is None else float(np.asarray(mask_input).flat[0]), multimask_output)
        self.calls.append(call)
        masks, scores = self.answer(call)
        masks, scores = np.stack(masks), np.asarray(scores, dtype=np.float32)
        tags = np.arange(1, len(masks) + 1) if multimask_output else np.array([10])
        low_res = np.ones((len(masks), 4, 4), np.float32) * tags[:, None, None]
        return masks, scores, low_res


def test_noc_curve_and_noc_by_hand():
    def answer(call):
        if call.multimask:  # the first click: LEFT (0.5) is the most confident, MOST (0.83) the best
            return [LEFT, MOST, EVERYTHING], [0.9, 0.5, 0.1]
        return [SQUARE], [0.7]  # the second click: perfect

    predictor = ScriptedPredictor(answer)
    curve = noc_curve(predictor, SQUARE)
    # click 1 keeps LEFT (IoU 0.5); click 2 at (6, 3), positive (the missed columns), gives the object; then
    # nothing is left to click and the curve stays at 1
    assert curve == pytest.approx([0.5] + [1.0] * (NOC_MAX_CLICKS - 1))
    assert noc(curve, 0.85) == 2 and noc(curve, 0.90) == 2
    first, second = predictor.calls
    assert first.coords == [[4.0, 4.0]] and first.labels == [1] and first.multimask and first.mask_input_tag is None
    assert second.coords == [[4.0, 4.0], [6.0, 3.0]] and second.labels == [1, 1] and not second.multimask
    assert second.mask_input_tag == 1  # the kept candidate's (LEFT, number 0) low-res logits, fed back
    assert len(predictor.calls) == 2  # no click after a perfect mask


def test_noc_of_a_curve_that_never_gets_there():
    assert noc([0.5, 0.86, 0.88, 0.95], 0.85) == 2
    assert noc([0.5, 0.86, 0.88, 0.95], 0.90) == 4
    assert noc([0.85, 0.9, 1.0], 0.85) == 1  # reaching the threshold counts (IoU >= 0.85)
    assert noc([0.89] * NOC_MAX_CLICKS, 0.90) == NOC_MAX_CLICKS  # counted as the maximum, as RITM does


def test_click_protocol_confident_and_best_of_three_by_hand():
    def answer(call):
        if call.multimask and len(call.coords) == 1:
            return [LEFT, MOST, EVERYTHING], [0.9, 0.5, 0.1]
        if call.multimask:  # later clicks, three outputs: only the oracle reads these
            return [MOST, LEFT, EVERYTHING], [0.1, 0.2, 0.3]
        return [LEFT], [0.8]  # later clicks, one output: what the confident curve follows

    predictor = ScriptedPredictor(answer)
    confident, oracle = click_protocol(predictor, SQUARE, max_points=3)
    # click 1: confident LEFT 0.5, oracle MOST 30 / 36; clicks 2 and 3: confident LEFT 0.5, oracle MOST 30 / 36
    assert confident == pytest.approx([0.5, 0.5, 0.5])
    assert oracle == pytest.approx([30 / 36] * 3)
    # clicks 2 and 3 both go to (6, 3): LEFT is kept each time and misses the same columns
    singles = [c for c in predictor.calls[1:] if not c.multimask]
    assert [c.coords for c in singles] == [[[4.0, 4.0], [6.0, 3.0]], [[4.0, 4.0], [6.0, 3.0], [6.0, 3.0]]]
    assert [c.mask_input_tag for c in singles] == [1, 10]  # first LEFT of the three, then the single answer's


def test_calibration_by_hand():
    stats = CalibrationStats.of([0.9, 0.5, 0.1], [0.5, 30 / 36, 0.36])
    assert stats.pairs == 3
    assert stats.mae == pytest.approx((0.4 + (30 / 36 - 0.5) + 0.26) / 3)
    # ranks 3, 2, 1 against 2, 3, 1: d = 1, -1, 0; rho = 1 - 6 * 2 / (3 * (9 - 1)) = 0.5
    assert stats.spearman == pytest.approx(0.5)
    constant = CalibrationStats.of([0.8, 0.8], [0.1, 0.9])
    assert constant.mae == pytest.approx(0.4) and np.isnan(constant.spearman)  # no ranking without spread


# ---- the whole BSDS500 evaluation on one 20 x 20 photo with two annotators -----------------------------------------
SHAPE20 = (20, 20)
S = box_mask(SHAPE20, (5, 15), (5, 15))  # annotator A's object: 100 of 400 pixels (25%)
L = box_mask(SHAPE20, (5, 15), (5, 10))  # annotator B splits it: left half, 50 pixels
R = box_mask(SHAPE20, (5, 15), (10, 15))  # and right half, 50 pixels
F = np.ones(SHAPE20, bool)  # the whole photo, 400 pixels
# IoUs: S-L = S-R = 0.5, L-R = 0, F-S = 0.25, F-L = F-R = 0.125


def scripted_answer(call):
    if call.box is not None:
        return [S], [0.8]  # every box: A's object
    if call.multimask:
        return [S, R, F], [0.3, 0.9, 0.6]  # a click: R is the most confident
    return [S], [0.9]  # later clicks, one output


@pytest.fixture()
def one_photo(tmp_path):
    a = np.where(S, 2, 1).astype(np.uint16)  # labels: 1 the background (75%: too large to score), 2 the object
    b = np.where(L, 2, np.where(R, 3, 1)).astype(np.uint16)
    image = np.zeros((*SHAPE20, 3), np.uint8)
    write_bsds_photo(tmp_path / "bsds", "val", "100", image, [a, b])
    grabcut = tmp_path / "grabcut"
    grabcut.mkdir()
    Image.fromarray(np.where(S, 255, 0).astype(np.uint8)).save(grabcut / "100.png")
    return tmp_path / "bsds", grabcut


def test_the_bsds_evaluation_by_hand(one_photo, monkeypatch):
    root, grabcut = one_photo
    predictor = ScriptedPredictor(scripted_answer)
    monkeypatch.setattr(photos, "SamPredictor", lambda model, cache_size=1: predictor)
    result = evaluate_bsds(None, root, "val", grabcut_dir=grabcut, grabcut_baseline=False, model_name="scripted")

    # the scored segments: S (A), L and R (B); the backgrounds cover 75% and are left out
    assert result.segments == 3 and result.photos == 1
    # first clicks: S at (9, 9) (distance 5 on rows and columns 9 and 10), L at (7, 7), R at (12, 7)
    firsts = [c.coords for c in predictor.calls if c.coords is not None and c.mask_input_tag is None]
    assert firsts == [[[9.0, 9.0]], [[9.0, 9.0]], [[7.0, 7.0]], [[12.0, 7.0]]]  # NoC's first click, then S, L, R
    # 1 point, most confident (R): S 0.5, L 0, R 1 -> 0.5; best of three: S 1 (S), L 0.5 (S), R 1 (R) -> 2.5 / 3
    assert result.miou_confident[1] == pytest.approx(0.5)
    assert result.miou_oracle[1] == pytest.approx(2.5 / 3)
    # later clicks answer S: confident S 1, L 0.5, R 0.5 -> 2 / 3; the oracle adds the three outputs [S, R, F]:
    # S 1, L max(0.5, 0.5, 0, 0.125) = 0.5, R max(0.5, 0.5, 1, 0.125) = 1 -> 2.5 / 3
    for k in (2, 3, 5, 9):
        assert result.miou_confident[k] == pytest.approx(2 / 3), k
        assert result.miou_oracle[k] == pytest.approx(2.5 / 3), k
    # any annotator's segment under the click: (9, 9) lies in S and L, (7, 7) in S and L, (12, 7) in S and R; S
    # is among the three outputs, so every click is answered exactly for one annotator -> 1.0
    assert result.ambiguity_score == pytest.approx(1.0)
    # boxes: S for every box: IoU 1, 0.5, 0.5 -> 2 / 3; the filled tight box of each segment is the segment
    assert result.miou_box == pytest.approx(2 / 3)
    assert result.baseline_filled_box == pytest.approx(1.0)
    # NoC on the GrabCut mask S: click 1 keeps R (0.5); click 2 at L's centre (7, 7), positive, gives S (1.0)
    noc_second = predictor.calls[1]
    assert noc_second.coords == [[9.0, 9.0], [7.0, 7.0]] and noc_second.labels == [1, 1]
    assert noc_second.mask_input_tag == 2  # R's logits, candidate 1
    assert result.noc_curves["100"] == pytest.approx([0.5] + [1.0] * (NOC_MAX_CLICKS - 1))
    assert result.noc85 == 2 and result.noc90 == 2 and result.noc90_failures == 0
    # the IoU head, 1-point outputs: scores (0.3, 0.9, 0.6) against S (1, 0.5, 0.25), L (0.5, 0, 0.125),
    # R (0.5, 1, 0.125): |errors| 0.7 + 0.4 + 0.35 + 0.2 + 0.9 + 0.475 + 0.2 + 0.1 + 0.475 = 3.8 over 9
    assert result.calibration_point.pairs == 9
    assert result.calibration_point.mae == pytest.approx(3.8 / 9)
    # with the boxes: 0.8 against 1, 0.5, 0.5 adds 0.2 + 0.3 + 0.3 = 0.8: 4.6 over 12
    assert result.calibration_all.pairs == 12
    assert result.calibration_all.mae == pytest.approx(4.6 / 12)
    scores = [0.3, 0.9, 0.6] * 3 + [0.8] * 3
    ious = [1, 0.5, 0.25, 0.5, 0, 0.125, 0.5, 1, 0.125, 1, 0.5, 0.5]
    assert result.calibration_all.spearman == pytest.approx(spearmanr(scores, ious).statistic)
    assert np.isnan(result.calibration_box.spearman)  # every box scored 0.8: no ranking
