"""Zero-shot edge detection (samwidgets.tasks.edges): the BSDS metrics, the filters, and SAM's edges."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("scipy")
pytest.importorskip("skimage")

from samwidgets.tasks import edges as E  # noqa: E402


def _disc(size: int = 128, radius: float = 40.0) -> np.ndarray:
    """size x size bool disc centred in the image."""
    yy, xx = np.mgrid[:size, :size]
    c = (size - 1) / 2
    return (xx - c) ** 2 + (yy - c) ** 2 < radius**2


def _boundary(mask: np.ndarray) -> np.ndarray:
    """One-pixel boundary of a mask (as scene_boundaries draws it)."""
    b = np.zeros_like(mask)
    b[:, :-1] |= mask[:, :-1] != mask[:, 1:]
    b[:-1] |= mask[:-1] != mask[1:]
    return b


# -- metric -----------------------------------------------------------------------------------------


def test_perfect_prediction_scores_one():
    gt = [_boundary(_disc()), _boundary(_disc(radius=25))]
    m = E.edge_metrics([g.astype(np.float32) for g in gt], gt)
    for key in ("ods", "ois", "ap", "r50"):
        assert m[key] == pytest.approx(1.0, abs=1e-6), key


def test_empty_prediction_scores_zero():
    gt = [_boundary(_disc())]
    m = E.edge_metrics([np.zeros(gt[0].shape, np.float32)], gt)
    assert m["ods"] == m["ois"] == m["ap"] == m["r50"] == 0.0


def test_shift_within_tolerance_matches_and_far_shift_does_not():
    gt = _boundary(_disc())  # 128 px: tolerance 0.0075 * 181 = 1.36 px
    near = E.edge_metrics([np.roll(gt, 1, axis=1).astype(np.float32)], [gt])
    far = E.edge_metrics([np.roll(gt, 10, axis=1).astype(np.float32)], [gt])
    assert near["ods"] > 0.99
    assert far["ods"] < 0.3  # only where the shifted circle happens to cross the original


def test_metric_interpolates_between_good_and_noisy_maps():
    rng = np.random.default_rng(0)
    gt = _boundary(_disc())
    noisy = np.where(gt, 0.9, 0.0) + 0.5 * (rng.random(gt.shape) < 0.02)  # true edges strong, noise weak
    m = E.edge_metrics([noisy.astype(np.float32)], [gt])
    assert m["ods"] == pytest.approx(1.0, abs=1e-6)  # a threshold above the noise separates them
    assert m["precision"][0] < 0.9  # low thresholds let the noise in...
    assert m["ap"] == pytest.approx(1.0, abs=1e-6)  # ...but AP uses the best precision at each recall
    assert m["ods_threshold"] > 0.5


def test_metric_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="same H x W"):
        E.edge_metrics([np.zeros((4, 4))], [np.zeros((4, 5), bool)])
    with pytest.raises(ValueError, match="2 prediction maps but 1"):
        E.edge_metrics([np.zeros((4, 4))] * 2, [np.zeros((4, 4), bool)])


# -- filters ----------------------------------------------------------------------------------------


def test_edge_nms_thins_a_blurred_step_to_one_pixel():
    x = np.arange(64, dtype=np.float32)
    step = 1 / (1 + np.exp(-(x - 31.5) / 2.0))  # a soft step over ~10 px
    image = torch.as_tensor(np.tile(step, (32, 1)))[None]  # 1 x 32 x 64
    gx, gy = E.sobel(image)
    magnitude = torch.hypot(gx, gy)[0].numpy()
    assert (magnitude[16] > 0.1 * magnitude.max()).sum() >= 5  # wide before
    thin = E.edge_nms(magnitude, gx[0].numpy(), gy[0].numpy())
    per_row = (thin > 0).sum(axis=1)
    assert (per_row == 1).all()
    assert set(np.nonzero(thin)[1]) <= {31, 32}


def test_sobel_responses_away_from_the_boundary_are_zeroed():
    mask = torch.as_tensor(_disc(64, 20))[None]  # 1 x 64 x 64
    band = E.mask_boundary_band(mask, radius=1)[0].numpy()
    yy, xx = np.mgrid[:64, :64]
    r = np.hypot(xx - 31.5, yy - 31.5)
    assert band[np.abs(r - 20) <= 0.5].all()  # the boundary itself is kept
    assert not band[np.abs(r - 20) > 3].any()  # nothing far from it
    # a probability map with a second, unrelated ramp: its Sobel response is removed
    ramp = 0.3 * torch.linspace(0, 1, 64)[None, None, :] * torch.as_tensor(yy < 8)  # 1 x 64 x 64, top rows only
    prob = torch.sigmoid((mask.float() - 0.5) * 8) + ramp
    gx, gy = E.sobel(prob)
    kept = torch.where(torch.as_tensor(band)[None], torch.hypot(gx, gy), torch.zeros(()))[0].numpy()
    assert torch.hypot(gx, gy)[0, :6].max() > 0  # the ramp does respond...
    assert kept[:6].max() == 0  # ...but away from the disc's boundary it is zeroed


def test_mask_touching_the_frame_gives_no_frame_edge():
    mask = torch.zeros(1, 16, 16, dtype=torch.bool)
    mask[:, :, :8] = True  # left half, touches the top, bottom and left frame
    band = E.mask_boundary_band(mask, radius=1)[0].numpy()
    assert not band[:, :6].any()
    assert band[:, 7:10].all()


# -- ground truth -----------------------------------------------------------------------------------


def test_scene_boundaries_levels():
    from samwidgets.data.scenes import SceneGenerator

    scene = SceneGenerator(image_size=96)(1_000_070_000)
    whole = E.scene_boundaries(scene, "whole")
    every = E.scene_boundaries(scene)
    assert whole.shape == every.shape == (96, 96) and whole.dtype == bool
    assert whole.any()
    assert (every >= whole).all()  # finer levels only add boundaries
    with pytest.raises(ValueError, match="level must be one of"):
        E.scene_boundaries(scene, "object")


# -- SAM's edges ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def disc_edges():
    from samwidgets import load_default

    disc = _disc(256, 60)
    image = np.where(disc[..., None], 220, 30).astype(np.uint8).repeat(3, axis=-1)  # 256 x 256 x 3
    return disc, E.detect_edges(load_default("cpu"), image, points_per_side=16)  # the paper's 768 masks


def test_detect_edges_output(disc_edges):
    _, edges = disc_edges
    assert edges.shape == (256, 256) and edges.dtype == np.float32
    assert edges.min() >= 0.0 and edges.max() == pytest.approx(1.0)


def test_detect_edges_finds_the_disc(disc_edges):
    # Measured with the bundled model (16 x 16 / 8 x 8 grid): the mean edge strength within 3 px of the disc's
    # boundary is 4.2x / 5.7x the mean elsewhere; an edge >= 0.2 lies within 2 px of 98% / 98% of the
    # boundary, >= 0.4 of 98% / 93%. The weak model also outlines many blob-shaped sub-regions of the disc
    # and the background, so the very strongest pixels are not all on the disc (precision is low).
    disc, edges = disc_edges
    yy, xx = np.mgrid[:256, :256]
    r = np.hypot(xx - 127.5, yy - 127.5)
    near, far = np.abs(r - 60) <= 3, np.abs(r - 60) > 6
    assert edges[near].mean() > 2.0 * edges[far].mean()
    from scipy.ndimage import distance_transform_edt

    distance = distance_transform_edt(~(edges >= 0.3))
    assert (distance[_boundary(disc)] <= 2).mean() > 0.85


def test_sobel_baseline_on_the_disc():
    disc = _disc(128, 40)
    image = np.where(disc[..., None], 220, 30).astype(np.uint8).repeat(3, axis=-1)
    edges = E.sobel_baseline(image)
    assert edges.shape == (128, 128) and edges.dtype == np.float32
    assert E.edge_metrics([edges], [_boundary(disc)])["ods"] > 0.95


def test_detect_edges_rejects_bad_settings(tiny_sam):
    image = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="points_per_side"):
        E.detect_edges(tiny_sam, image, points_per_side=0)
    with pytest.raises(ValueError, match="boundary_radius"):
        E.detect_edges(tiny_sam, image, boundary_radius=-1)


def test_detect_edges_with_a_predictor_and_a_non_square_image(tiny_sam):
    from samwidgets import SamPredictor

    image = np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8)
    edges = E.detect_edges(SamPredictor(tiny_sam), image, points_per_side=2)
    assert edges.shape == (40, 56) and edges.dtype == np.float32
    assert 0.0 <= edges.min() and edges.max() <= 1.0
