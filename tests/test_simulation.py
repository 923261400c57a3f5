"""Each rule of the interactive prompt simulation (paper, appendix A)."""

from __future__ import annotations

import torch

from samwidgets.training import simulation


def _random_masks(b=64, h=40, w=50, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    masks = torch.zeros(b, h, w, dtype=torch.bool)
    for i in range(b):
        x0, y0 = torch.randint(0, w - 10, (1,), generator=g).item(), torch.randint(0, h - 10, (1,), generator=g).item()
        x1 = x0 + torch.randint(2, w - x0, (1,), generator=g).item()
        y1 = y0 + torch.randint(2, h - y0, (1,), generator=g).item()
        masks[i, y0:y1, x0:x1] = True
    return masks


def test_first_point_lies_in_the_mask():
    masks = _random_masks()
    coords, found = simulation.sample_uniform_points(masks, torch.Generator().manual_seed(1))
    assert found.all()
    xs, ys = coords[:, 0].long(), coords[:, 1].long()
    assert masks[torch.arange(len(masks)), ys, xs].all()


def test_uniform_sampling_covers_the_mask_evenly():
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[0, 1:3, 1:3] = True  # 4 pixels
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(4, 4)
    coords, _ = simulation.sample_uniform_points(mask.expand(4000, 4, 4), g)
    for x, y in coords.long().tolist():
        counts[y, x] += 1
    assert counts[~mask[0]].sum() == 0
    assert (counts[mask[0]] / 4000 - 0.25).abs().max() < 0.04


def test_empty_mask_reports_not_found():
    coords, found = simulation.sample_uniform_points(torch.zeros(2, 5, 5, dtype=torch.bool))
    assert not found.any() and (coords == 0).all()


def test_mask_boxes_are_tight():
    masks = torch.zeros(2, 10, 12, dtype=torch.bool)
    masks[0, 2:5, 3:9] = True
    assert simulation.mask_boxes(masks).tolist() == [[3.0, 2.0, 9.0, 5.0], [0.0, 0.0, 0.0, 0.0]]


def test_box_noise_has_ten_percent_std_capped_at_20px():
    masks = torch.zeros(4000, 300, 300, dtype=torch.bool)
    masks[:2000, 100:150, 100:200] = True  # 100 wide, 50 tall: std 10 px and 5 px
    masks[2000:, 0:300, 0:300] = True  # 300 px sides: 30 px capped to 20
    noisy = simulation.noisy_boxes(masks, torch.Generator().manual_seed(0))
    small = noisy[:2000] - torch.tensor([100.0, 100.0, 200.0, 150.0])
    std = small.std(dim=0)
    assert abs(std[0] - 10) < 1 and abs(std[2] - 10) < 1 and abs(std[1] - 5) < 0.5 and abs(std[3] - 5) < 0.5
    big = noisy[2000:]  # clipped to the image, so look at the inward side only
    assert abs(big[:, 0][big[:, 0] > 0].mean() - 20 * 0.798) < 1.5  # E|N(0, 20)| = 20 * sqrt(2/pi)
    assert (noisy[:, 0] < noisy[:, 2]).all() and (noisy[:, 1] < noisy[:, 3]).all()
    assert (noisy >= 0).all() and (noisy <= 300).all()


def test_error_point_lies_in_the_error_region_with_the_right_label():
    target = _random_masks(seed=2)
    pred = _random_masks(seed=3)
    coords, labels = simulation.sample_error_points(pred, target, torch.Generator().manual_seed(4))
    rows = torch.arange(len(target))
    xs, ys = coords[:, 0].long(), coords[:, 1].long()
    in_target, in_pred = target[rows, ys, xs], pred[rows, ys, xs]
    has_error = (target ^ pred).flatten(1).any(1)
    assert (in_target != in_pred)[has_error].all()  # inside the error region
    assert (labels[has_error & in_target] == 1).all()  # false negative -> positive point
    assert (labels[has_error & in_pred] == 0).all()  # false positive -> negative point
    assert (labels[~has_error] == -1).all()


def test_perfect_prediction_adds_no_point():
    target = _random_masks(b=3)
    _, labels = simulation.sample_error_points(target.clone(), target)
    assert (labels == -1).all()


def test_two_rounds_without_a_new_point():
    seen_middle = set()
    for seed in range(200):
        silent = simulation.rounds_without_new_point(torch.Generator().manual_seed(seed))
        assert len(silent) == 2 and simulation.NUM_ROUNDS - 1 in silent
        (middle,) = silent - {simulation.NUM_ROUNDS - 1}
        assert 1 <= middle <= 9  # among the 8 sampled rounds' slots, never the initial prompt
        seen_middle.add(middle)
    assert seen_middle == set(range(1, 10))
