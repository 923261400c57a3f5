"""The exercises of notebooks 00-04 check themselves: every checker says "not answered" to None (without
raising), rejects a typical wrong answer with a hint, and accepts the answer that the solution notebook
(notebooks/solutions/) computes, computed here the same way.

The solving helpers live here and in the solution notebooks, never in the checker modules: a checker measures
an answer, it does not know it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from exercise_checks import accepted, rejected, unanswered
from scipy import ndimage

from samwidgets import CONFIGS, Sam, SamCanvas, SamConfig, SamPredictor, load_default
from samwidgets.data import SceneGenerator
from samwidgets.data.masks import mask_iou
from samwidgets.data.scenes import Scene
from samwidgets.data.seeds import EVALUATE_SEED_START, HELD_OUT_SEED_START
from samwidgets.evaluation.clicks import interior_centre, next_click
from samwidgets.hub.registry import BUNDLED_MODEL_NAME
from samwidgets.inference.transforms import ResizeLongestSide
from samwidgets.teaching import unseen_photos
from samwidgets.teaching.exercises.ambiguity import check_starting_radii, check_whole_picker
from samwidgets.teaching.exercises.architecture import check_decoder_tokens, check_grid_cell, check_padding_tokens
from samwidgets.teaching.exercises.prompting import (
    check_batched_points,
    check_box_margin,
    check_fewest_clicks,
    grown_box,
    masks_after_clicks,
)
from samwidgets.teaching.exercises.quickstart import check_one_click, check_saved_objects
from samwidgets.teaching.exercises.training import (
    check_focal_weight,
    check_iou_head_loss,
    check_winning_target,
    iou_head_errors,
)
from samwidgets.training.losses import dice_loss, sam_loss, sigmoid_focal_loss


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One thread, as the notebooks run the bundled model: its many small operations gain nothing from two, and
    lose a lot when another process holds the other core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def sam() -> Sam:
    return load_default(device="cpu")


@pytest.fixture(scope="module")
def predictor(sam) -> SamPredictor:
    return SamPredictor(sam)


def whole_named(scene: Scene, name: str) -> int:
    return next(j for j in range(len(scene)) if scene.names[j] == name and scene.levels[j] == 0)


def assert_exercise(check, answer, *args, capsys) -> str:
    """Two of the three outcomes of ``check(answer, *args)``, for the exercises of this file: without an answer
    (None) it says "not answered" and raises nothing, and it accepts the solution's ``answer``; returns what it
    printed when it accepted. (The third, a wrong answer rejected with a hint, is each test's own.)"""
    unanswered(check, *args, capsys=capsys)
    return accepted(check, answer, *args, capsys=capsys)


# -- 00_quickstart -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quickstart_scenes() -> list[Scene]:
    generator = SceneGenerator(image_size=256)
    return [generator(HELD_OUT_SEED_START + seed) for seed in (0, 8, 15)]


def solve_one_click(predictor: SamPredictor, scene: Scene, name: str) -> tuple[float, float, int]:
    """The solution: click at the object's centre, keep the mask closest to the ground truth."""
    target = scene.masks[whole_named(scene, name)]
    x, y = interior_centre(target)
    predictor.set_image(scene.image)
    masks, _, _ = predictor.predict(point_coords=np.array([[x, y]]), point_labels=np.array([1]))
    return x, y, int(np.argmax([mask_iou(m, target) for m in masks]))


def test_one_click_quickstart(predictor, quickstart_scenes, capsys) -> None:
    scene = quickstart_scenes[2]
    x, y, k = solve_one_click(predictor, scene, "die")
    assert_exercise(check_one_click, (x, y, k), predictor, scene, "die", capsys=capsys)
    assert "(x, y) = (column, row)" in rejected(check_one_click, (y, x, k), predictor, scene, "die")
    wrong_k = next(i for i in range(3) if i != k)
    masks, _, _ = predictor.predict(point_coords=np.array([[x, y]]), point_labels=np.array([1]))
    target = scene.masks[whole_named(scene, "die")]
    if mask_iou(masks[wrong_k], target) < mask_iou(masks[k], target) - 0.02:
        assert "the scores are the model's guesses" in rejected(check_one_click, (x, y, wrong_k), predictor,
                                                                scene, "die")
    off = np.argwhere(~target)[0]  # (row, col) of a pixel off the die
    assert "is not on the die" in rejected(check_one_click, (off[1], off[0], k), predictor, scene, "die")


def annotate_with_canvas(predictor: SamPredictor, scenes: list[Scene], path, image: int = 2) -> str:
    """The solution: on image ``image`` of a canvas, the two largest whole objects, each clicked at its centre
    and then where the mask is most wrong until IoU 0.9 (six clicks at most), kept with its name."""
    names = ["scene_a.png", "scene_b.png", "scene_c.png"]
    canvas = SamCanvas(predictor, [s.image for s in scenes], names=names)
    canvas.go_to(image)
    scene = scenes[image]
    wholes = np.flatnonzero(scene.levels == 0)
    for j in wholes[np.argsort(-scene.areas[wholes])][:2]:
        target = scene.masks[j]
        canvas.add_point(*interior_centre(target), positive=True)
        for _ in range(5):
            click = next_click(canvas.current_mask, target)
            if mask_iou(canvas.current_mask, target) >= 0.9 or click is None:
                break
            canvas.add_point(click[0], click[1], positive=bool(click[2]))
        canvas.new_object(scene.names[j])
    written = canvas.to_coco(path)
    canvas.close()
    return str(written)


def test_saved_objects_quickstart(predictor, quickstart_scenes, tmp_path, capsys) -> None:
    scene = quickstart_scenes[2]
    path = annotate_with_canvas(predictor, quickstart_scenes, tmp_path / "solution" / "annotations.json")
    assert_exercise(check_saved_objects, path, scene, "scene_c.png", capsys=capsys)
    assert "holds no image called scene_d.png" in rejected(check_saved_objects, path, scene, "scene_d.png")
    # one object only: the canvas's first object, kept alone
    canvas = SamCanvas(predictor, [s.image for s in quickstart_scenes], names=["a.png", "b.png", "scene_c.png"])
    canvas.go_to(2)
    house = whole_named(scene, "house")
    canvas.set_box(scene.boxes()[house])
    canvas.new_object("roof")  # the mask of the house, labelled with the wrong name
    canvas.add_point(*interior_centre(scene.masks[whole_named(scene, "die")]), positive=True)
    canvas.set_box(scene.boxes()[whole_named(scene, "die")])
    canvas.new_object("die")
    wrong = canvas.to_coco(tmp_path / "wrong" / "annotations.json")
    assert "labelled 'roof'" in rejected(check_saved_objects, wrong, scene, "scene_c.png")
    canvas.delete(1)
    only_one = canvas.to_coco(tmp_path / "one" / "annotations.json")
    canvas.close()
    assert "1 saved object(s)" in rejected(check_saved_objects, only_one, scene, "scene_c.png")
    assert "cannot be read as a COCO file" in rejected(check_saved_objects, tmp_path / "none.json", scene)


# -- 01_architecture -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_sam() -> Sam:
    """The notebook's small random model: official 1024 px geometry, 64 channels, 4 blocks."""
    small = SamConfig(encoder_embed_dim=64, encoder_depth=4, encoder_num_heads=2, encoder_global_attn_indexes=(1, 3),
                      prompt_embed_dim=64, decoder_mlp_dim=128, decoder_num_heads=2, iou_head_hidden_dim=64)
    torch.manual_seed(0)
    return Sam(small).eval()


def solve_padding(image: np.ndarray, model: Sam) -> tuple[int, int]:
    """The solution: the resized width says how many columns are padding; a token column is padding only when
    it starts at or after the last real column."""
    size, patch = model.config.image_size, model.config.patch_size
    height, width = ResizeLongestSide(size).apply_image(image).shape[:2]
    assert height == size  # a portrait: the padding is on the right
    grid = size // patch
    first_padding_only = -(-width // patch)  # ceil: the first token column with no real pixel
    return size - width, (grid - first_padding_only) * grid


def test_padding_tokens_architecture(small_sam, capsys) -> None:
    portrait = unseen_photos()["grace_hopper"]  # 600 x 512: taller than wide
    columns, tokens = solve_padding(portrait, small_sam)
    assert (columns, tokens) == (150, 9 * 64)
    assert_exercise(check_padding_tokens, (columns, tokens), portrait, small_sam, capsys=capsys)
    assert "resized" in rejected(check_padding_tokens, (512, tokens), portrait, small_sam)
    assert "not padding only" in rejected(check_padding_tokens, (columns, round(columns / 16 * 64)), portrait,
                                          small_sam)


def solve_grid_cell(click: np.ndarray, original_size: tuple[int, int], sam: Sam) -> tuple[int, int]:
    """The solution: map the click to the model's input frame, then divide by the input pixels per cell."""
    x, y = ResizeLongestSide(sam.config.image_size).apply_coords(np.asarray(click, float), original_size)[0]
    per_cell = sam.config.image_size / sam.config.embedding_size
    return int(y // per_cell), int(x // per_cell)


def test_grid_cell_architecture(sam, capsys) -> None:
    scene = SceneGenerator(image_size=256)(HELD_OUT_SEED_START + 111)
    click = np.array([interior_centre(scene.masks[5])])  # the face of section 1
    row, col = solve_grid_cell(click, (256, 256), sam)
    assert row != col
    printed = assert_exercise(check_grid_cell, (row, col), click, (256, 256), sam, capsys=capsys)
    assert "positional encoding peaks" in printed
    assert "puts the column first" in rejected(check_grid_cell, (col, row), click, (256, 256), sam)
    unresized = (int(click[0, 1] // 16), int(click[0, 0] // 16))
    assert "resized" in rejected(check_grid_cell, unresized, click, (256, 256), sam)


def solve_decoder_tokens(model: Sam) -> tuple[int, int, int]:
    """The solution: run the prompt encoder on each prompt and add the decoder's 1 + 4 output tokens."""
    s = float(model.config.image_size)
    clicks = torch.tensor([[[s / 4, s / 4], [s / 2, s / 2], [3 * s / 4, s / 2]]])  # 1 x 3 x 2
    labels = torch.tensor([[1, 1, 0]])
    box = torch.tensor([[s / 8, s / 8, s / 2, s / 2]])
    output_tokens = model.mask_decoder.iou_token.weight.shape[0] + model.mask_decoder.mask_tokens.weight.shape[0]
    counts = []
    with torch.no_grad():
        for points, boxes in [((clicks, labels), None), (None, box), ((clicks[:, :2], labels[:, :2]), box)]:
            sparse, _ = model.prompt_encoder(points=points, boxes=boxes, masks=None)
            counts.append(output_tokens + sparse.shape[1])
    return tuple(counts)


def test_decoder_tokens_architecture(small_sam, capsys) -> None:
    counts = solve_decoder_tokens(small_sam)
    assert counts == (9, 7, 9)
    assert_exercise(check_decoder_tokens, counts, small_sam, capsys=capsys)
    assert "appends one more token" in rejected(check_decoder_tokens, (8, 7, 9), small_sam)
    assert "prompt's tokens alone" in rejected(check_decoder_tokens, (4, 2, 4), small_sam)
    assert "corners" in rejected(check_decoder_tokens, (9, 6, 9), small_sam)
    assert "only when there is no box" in rejected(check_decoder_tokens, (9, 7, 10), small_sam)


# -- 02_losses_and_training ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rim_prediction() -> tuple[torch.Tensor, torch.Tensor]:
    """The notebook's section 3: the rim of a wheel and a prediction shifted and blurred, as logits."""
    scene = SceneGenerator(image_size=128)(seed=1)
    target = torch.from_numpy(scene.masks[1])  # 128 x 128 bool: the rim
    shifted = np.roll(scene.masks[1].astype(float), shift=(2, 3), axis=(0, 1))
    logits = torch.from_numpy(8 * (ndimage.gaussian_filter(shifted, sigma=2.0) - 0.5)).float()
    return logits, target


def solve_focal_weight(logits: torch.Tensor, target: torch.Tensor, side: int = 384) -> float:
    """The solution: compute both losses in the grown image; the balancing weight is their ratio."""
    pad = (0, side - logits.shape[-1], 0, side - logits.shape[-2])
    big_logits, big_target = torch.nn.functional.pad(logits, pad, value=-10.0), torch.nn.functional.pad(target, pad)
    return float(dice_loss(big_logits, big_target) / sigmoid_focal_loss(big_logits, big_target))


def test_focal_weight_training(rim_prediction, capsys) -> None:
    logits, target = rim_prediction
    weight = solve_focal_weight(logits, target)
    assert weight > 100  # far from 20 at 384 px
    assert_exercise(check_focal_weight, weight, logits, target, capsys=capsys)
    assert "times more pixels" in rejected(check_focal_weight, 20, logits, target)
    assert "is 0." in rejected(check_focal_weight, weight / 2, logits, target)
    rejected(check_focal_weight, weight * 1.5, logits, target)


SECTION_2_SEEDS = range(HELD_OUT_SEED_START + 200, HELD_OUT_SEED_START + 212)


def solve_iou_head_loss(predictor: SamPredictor) -> float:
    """The solution: one click per whole object, the squared error of all three predicted IoUs, averaged."""
    scenes = SceneGenerator(image_size=256)
    errors = []
    for seed in SECTION_2_SEEDS:
        scene = scenes(seed)
        predictor.set_image(scene.image)
        for j in np.flatnonzero(scene.levels == 0):
            masks, scores, _ = predictor.predict(point_coords=np.array([interior_centre(scene.masks[j])]),
                                                 point_labels=np.array([1]))
            errors += [(s - mask_iou(m, scene.masks[j])) ** 2 for m, s in zip(masks, scores)]
    return float(np.mean(errors))


def test_iou_head_loss_training(predictor, capsys) -> None:
    scenes = SceneGenerator(image_size=256)
    mse = solve_iou_head_loss(predictor)
    assert_exercise(check_iou_head_loss, mse, predictor, scenes, SECTION_2_SEEDS, capsys=capsys)
    scores, true = iou_head_errors(predictor, scenes, SECTION_2_SEEDS)
    assert "root of the mean squared error" in rejected(check_iou_head_loss, float(np.sqrt(mse)), predictor, scenes,
                                                        SECTION_2_SEEDS)
    confident = np.argmax(scores, axis=1)
    only_confident = float(np.mean((scores - true)[np.arange(len(scores)), confident] ** 2))
    if abs(only_confident - mse) > max(0.003, 0.03 * mse):
        assert "the losers are scored too" in rejected(check_iou_head_loss, only_confident, predictor, scenes,
                                                       SECTION_2_SEEDS)
    rejected(check_iou_head_loss, mse * 2, predictor, scenes, SECTION_2_SEEDS)


@pytest.fixture(scope="module")
def tiny_candidates() -> tuple[torch.Tensor, Callable[[int, int], torch.Tensor]]:
    """The notebook's section 5: three 12 x 12 candidates (too small, about right, too large) as logits."""
    yy, xx = torch.meshgrid(torch.arange(12), torch.arange(12), indexing="ij")

    def square(lo: int, hi: int) -> torch.Tensor:
        return ((yy >= lo) & (yy < hi) & (xx >= lo) & (xx < hi)).float()

    torch.manual_seed(0)
    logits = torch.stack([square(5, 7), square(3, 9), square(1, 11)])
    return (6 * (logits - 0.5) + 0.3 * torch.randn(3, 12, 12))[None], square  # 1 x 3 x 12 x 12


def solve_winning_target(logits: torch.Tensor, square, learner: int = 2) -> torch.Tensor:
    """The solution: try every centred square as the target; keep the smallest one the learner wins."""
    for half in range(1, 7):
        target = square(6 - half, 6 + half).bool()
        out = sam_loss(logits, torch.full((1, 3), 0.5), target[None], multimask=True)
        if int(out.best_index) == learner:
            return target
    raise AssertionError("no square target makes the learner win")


def test_winning_target_training(tiny_candidates, capsys) -> None:
    logits, square = tiny_candidates
    target = solve_winning_target(logits, square)
    assert_exercise(check_winning_target, target, logits, capsys=capsys)
    assert "candidate 1 has the lowest" in rejected(check_winning_target, square(3, 9).bool(), logits)
    assert "shape" in rejected(check_winning_target, torch.ones(8, 8, dtype=torch.bool), logits)


# -- 03_prompting --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prompting_scene() -> Scene:
    return SceneGenerator(image_size=256)(EVALUATE_SEED_START + 15)


def solve_box_margin(predictor: SamPredictor, scene: Scene, index: int, tolerance: float = 0.05) -> int:
    """The solution: grow the box one pixel at a time until the IoU drops more than ``tolerance`` below the
    tight box's; the answer is the margin before."""
    target = scene.masks[index]
    box = scene.boxes()[index]
    predictor.set_image(scene.image)

    def iou(margin: int) -> float:
        masks, _, _ = predictor.predict(box=grown_box(box, margin, *target.shape), multimask_output=False)
        return mask_iou(masks[0], target)

    tight = iou(0)
    margin = 0
    while margin < 64 and iou(margin + 1) >= tight - tolerance:
        margin += 1
    return margin


def test_box_margin_prompting(predictor, prompting_scene, capsys) -> None:
    tree = whole_named(prompting_scene, "tree")
    margin = solve_box_margin(predictor, prompting_scene, tree)
    assert_exercise(check_box_margin, margin, predictor, prompting_scene, tree, capsys=capsys)
    assert "too loose already" in rejected(check_box_margin, margin + 8, predictor, prompting_scene, tree)
    if margin > 0:
        assert "still gives IoU" in rejected(check_box_margin, margin - 1, predictor, prompting_scene, tree)
    assert "whole number" in rejected(check_box_margin, 2.5, predictor, prompting_scene, tree)


def error_centres(mask: np.ndarray, target: np.ndarray) -> list[tuple[float, float, int]]:
    """Candidate next clicks: the centre of every region where ``mask`` is wrong, labelled by the kind of error."""
    candidates = []
    for region, label in [(target & ~mask, 1), (mask & ~target, 0)]:
        pieces, count = ndimage.label(region)
        for k in range(1, count + 1):
            if (pieces == k).sum() >= 4:  # a click on a sliver does not help
                candidates.append((*interior_centre(pieces == k), label))
    return candidates


def solve_fewest_clicks(predictor: SamPredictor, scene: Scene, index: int, goal: float = 0.9,
                        max_clicks: int = 10) -> list[tuple[float, float, int]]:
    """The solution: a search. The first click is the best of a grid of points on the object; every next click
    is the best of the error regions' centres. Stops at the goal."""
    target = scene.masks[index]
    predictor.set_image(scene.image)
    ys, xs = np.nonzero(target[::6, ::6])
    firsts = [(6.0 * x, 6.0 * y, 1) for x, y in zip(xs, ys)] + [(*interior_centre(target), 1)]
    clicks = [max(firsts, key=lambda c: mask_iou(masks_after_clicks(predictor, [c])[-1], target))]
    mask = masks_after_clicks(predictor, clicks)[-1]
    while mask_iou(mask, target) < goal and len(clicks) < max_clicks:
        tries = [clicks + [c] for c in error_centres(mask, target) or [next_click(mask, target)]]
        clicks = max(tries, key=lambda t: mask_iou(masks_after_clicks(predictor, t)[-1], target))
        mask = masks_after_clicks(predictor, clicks)[-1]
    return clicks


def test_fewest_clicks_prompting(predictor, prompting_scene, capsys) -> None:
    die = whole_named(prompting_scene, "die")
    clicks = solve_fewest_clicks(predictor, prompting_scene, die)
    assert_exercise(check_fewest_clicks, clicks, predictor, prompting_scene, die, capsys=capsys)
    target = prompting_scene.masks[die]
    # one click more than needed, a click that keeps the goal: it is reached before the last click
    mask = masks_after_clicks(predictor, clicks)[-1]
    keeps = [clicks + [c] for c in error_centres(mask, target)
             if mask_iou(masks_after_clicks(predictor, clicks + [c])[-1], target) >= 0.9]
    if keeps:
        assert "already" in rejected(check_fewest_clicks, keeps[0], predictor, prompting_scene, die)
    centre = (*interior_centre(target), 1)
    if mask_iou(masks_after_clicks(predictor, [centre])[-1], target) < 0.9:
        assert "after your 1 click(s)" in rejected(check_fewest_clicks, [centre], predictor, prompting_scene, die)
    assert "first click is negative" in rejected(check_fewest_clicks, [(*centre[:2], 0)], predictor,
                                                 prompting_scene, die)
    assert "list of 1 to 10 clicks" in rejected(check_fewest_clicks, [centre] * 11, predictor, prompting_scene, die)


def solve_batched_points(predictor: SamPredictor, scene: Scene) -> torch.Tensor:
    """The solution: every whole object's centre, mapped to the model's frame, in one predict_torch call."""
    predictor.set_image(scene.image)
    centres = [interior_centre(scene.masks[j]) for j in np.flatnonzero(scene.levels == 0)]
    points = torch.tensor(centres, dtype=torch.float, device=predictor.device)[:, None]  # B x 1 x 2
    points = predictor.transform.apply_coords_torch(points, predictor.original_size)
    labels = torch.ones(points.shape[:2], dtype=torch.int, device=predictor.device)  # B x 1
    masks, _, _ = predictor.predict_torch(points, labels, multimask_output=True)
    return masks.cpu()


def test_batched_points_prompting(predictor, prompting_scene, capsys) -> None:
    masks = solve_batched_points(predictor, prompting_scene)
    assert_exercise(check_batched_points, masks, predictor, prompting_scene, capsys=capsys)
    centres = [interior_centre(prompting_scene.masks[j]) for j in np.flatnonzero(prompting_scene.levels == 0)]
    raw = torch.tensor(centres, dtype=torch.float)[:, None]  # not mapped to the model's frame
    unmapped, _, _ = predictor.predict_torch(raw, torch.ones(len(centres), 1, dtype=torch.int), multimask_output=True)
    assert "apply_coords_torch" in rejected(check_batched_points, unmapped, predictor, prompting_scene)
    assert "multimask_output=True" in rejected(check_batched_points, masks[:, :1], predictor, prompting_scene)


# -- 04_ambiguity --------------------------------------------------------------------------------------------


def largest_mask(masks: np.ndarray, scores: np.ndarray) -> int:
    """The solution's rule: a whole object contains its parts, so its mask is the largest of the three."""
    return int(np.argmax(masks.reshape(len(masks), -1).sum(axis=1)))


@pytest.mark.slow
def test_whole_picker_ambiguity(predictor, capsys) -> None:
    scenes = SceneGenerator(image_size=CONFIGS[BUNDLED_MODEL_NAME].image_size)
    seeds = range(EVALUATE_SEED_START, EVALUATE_SEED_START + 10)
    assert_exercise(check_whole_picker, largest_mask, predictor, scenes, seeds, capsys=capsys)
    assert "the most confident" in rejected(check_whole_picker, lambda masks, scores: int(np.argmax(scores)),
                                            predictor, scenes, seeds)
    assert "0, 1 or 2" in rejected(check_whole_picker, lambda masks, scores: 3, predictor, scenes, seeds)


@pytest.fixture(scope="module")
def ambiguous_point() -> tuple[Scene, list[int], tuple[float, float]]:
    """The notebook's section 1: a held-out scene and the middle of a subpart with a part and a whole above it."""
    scene = SceneGenerator(image_size=256)(HELD_OUT_SEED_START + 310)
    subparts = [j for j in range(len(scene)) if len(scene.chain(j)) == 3 and scene.areas[j] > 150]
    chain = scene.chain(subparts[0])
    return scene, chain, interior_centre(scene.masks[chain[0]])


def solve_starting_radii(scene: Scene, chain: list[int]) -> list[float]:
    """The solution: start each output as a disc as large as one level (the radius of a disc of its area)."""
    return [float(np.sqrt(scene.areas[j] / np.pi)) for j in chain]


def test_starting_radii_ambiguity(ambiguous_point, capsys) -> None:
    scene, chain, point = ambiguous_point
    radii = solve_starting_radii(scene, chain)
    assert_exercise(check_starting_radii, radii, scene, chain, point, capsys=capsys)
    assert "won no round" in rejected(check_starting_radii, (4, 16, 48), scene, chain, point)
    assert "three positive radii" in rejected(check_starting_radii, (4, 16), scene, chain, point)
