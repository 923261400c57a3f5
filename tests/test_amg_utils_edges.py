"""amg_utils by hand where the generator's tests do not look: deeper crop layers, region sizes exactly at the
limit, diagonal neighbours, categories side by side in NMS (cases found by mutation testing, .ci/mutation)."""

from __future__ import annotations

import numpy as np
import torch

from samwidgets.inference.amg_utils import (
    batched_nms,
    generate_crop_boxes,
    is_box_near_crop_edge,
    mask_to_uncompressed_rle,
    remove_small_regions,
)


def test_crop_boxes_of_two_layers_by_hand():
    boxes, layers = generate_crop_boxes((100, 200), n_layers=2, overlap_ratio=0.25)
    # layer 1: 2 x 2 crops, overlap int(0.25 * 100) = 25, crop w = ceil((25 + 200) / 2) = 113, h = ceil(125 / 2) = 63
    layer1 = [[0, 0, 113, 63], [0, 38, 113, 100], [88, 0, 200, 63], [88, 38, 200, 100]]
    # layer 2: 4 x 4 crops, overlap int(25 * 2 / 4) = 12, w = ceil((3 * 12 + 200) / 4) = 59, h = ceil(136 / 4) = 34
    xs, ys = [0, 47, 94, 141], [0, 22, 44, 66]
    layer2 = [[x, y, min(x + 59, 200), min(y + 34, 100)] for x in xs for y in ys]
    assert boxes == [[0, 0, 200, 100]] + layer1 + layer2
    assert layers == [0] + [1] * 4 + [2] * 16
    boxes3, layers3 = generate_crop_boxes((100, 200), n_layers=3, overlap_ratio=0.25)
    assert layers3.count(3) == 64 and len(boxes3) == 1 + 4 + 16 + 64  # 2**i crops a side


def test_categories_never_suppress_each_other_even_at_threshold_zero():
    # box 0 spans every coordinate: category 1 must be moved by more than its width (10 + 1), or its boxes touch it
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 9.0, 9.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    kept = batched_nms(boxes, scores, torch.tensor([0, 1, 1]), iou_threshold=0.0)
    assert kept.tolist() == [0, 1]  # box 2 overlaps box 1 of its own category; box 1 is alone in category 1
    empty = batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64), 0.5)
    assert empty.dtype == torch.int64 and empty.shape == (0,)


def test_islands_at_exactly_the_minimum_area_stay():
    mask = np.zeros((12, 12), bool)
    mask[0:2, 0:2] = True  # 4 pixels: exactly min_area, kept
    mask[5, 5:8] = True  # 3 pixels: removed
    mask[9:12, 9:12] = True  # 9 pixels: kept
    out, changed = remove_small_regions(mask, 4, "islands")
    expected = mask.copy()
    expected[5, 5:8] = False
    assert changed and out.dtype == bool and np.array_equal(out, expected)


def test_diagonal_neighbours_are_one_region():
    mask = np.zeros((6, 6), bool)
    mask[1, 1] = mask[2, 2] = True  # touching at a corner: one region of 2 pixels (8-connected)
    out, changed = remove_small_regions(mask, 2, "islands")
    assert not changed and np.array_equal(out, mask)
    holes = ~mask  # the same shape as a hole of the mask
    filled, changed = remove_small_regions(holes, 2, "holes")
    assert not changed and np.array_equal(filled, holes)


def test_nothing_to_do_is_reported_as_unchanged():
    empty = np.zeros((5, 5), bool)
    out, changed = remove_small_regions(empty, 10, "islands")
    assert not changed and not out.any()
    full = np.ones((5, 5), bool)
    out, changed = remove_small_regions(full, 10, "holes")
    assert not changed and out.all()
    one = np.zeros((5, 5), bool)
    one[2, 2] = True  # a single island, smaller than min_area: the largest island stays, but it was checked
    out, changed = remove_small_regions(one, 10, "islands")
    assert changed and np.array_equal(out, one)
    filled, changed = remove_small_regions(one.astype(np.uint8) * 255, 30, "holes")  # a 0/255 mask
    assert changed and filled.dtype == bool and filled.all()  # its background (24 pixels) is a small hole
    kept, changed = remove_small_regions(one.astype(np.uint8) * 255, 10, "holes")
    assert not changed and kept.dtype == bool and np.array_equal(kept, one)


def test_uncompressed_rle_reads_any_nonzero_value_as_the_mask():
    labels = np.array([[1, 0], [2, 0]], np.uint8)  # two nonzero values: one run of mask pixels
    assert mask_to_uncompressed_rle(labels) == mask_to_uncompressed_rle(labels > 0) == {"size": [2, 2],
                                                                                         "counts": [0, 2, 2]}


def test_near_a_crop_edge_means_within_20_pixels_exactly():
    crop, image = [1000, 0, 2000, 500], [0, 0, 3000, 500]  # the crop's left and right edges are inside the image
    boxes = torch.tensor([[1020.0, 100, 1500, 200],  # 20 px from the crop's left edge: near (the bound included)
                          [1020.005, 100, 1500, 200],  # 20.005 px: not near (no tolerance relative to 1000)
                          [1021.0, 100, 1500, 200],
                          [1500.0, 0, 1600, 200],  # on the crop's top edge, which is the image's: not cut
                          [1500.0, 100, 1985, 200]])  # 15 px from the crop's right edge
    assert is_box_near_crop_edge(boxes, crop, image).tolist() == [True, False, False, False, True]
