"""Augmentation for training on photos: labels stay aligned with pixels, padding is what inference pads,
and every draw is reproducible from its generator."""

from __future__ import annotations

import numpy as np
import torch

from samwidgets import SamConfig
from samwidgets.training.augment import GeometricAugment, PhotometricAugment


def _photo_and_labels(h: int = 60, w: int = 90) -> tuple[np.ndarray, list[np.ndarray]]:
    """A photo of 6 flat-coloured vertical bands and two annotators' label images of those bands."""
    band = np.arange(w) * 6 // w  # 0..5 per column
    colours = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200], [200, 200, 30], [30, 200, 200], [200, 30, 200]],
                       np.uint8)
    image = np.ascontiguousarray(np.broadcast_to(colours[band][None], (h, w, 3)))
    fine = np.broadcast_to(band[None] + 1, (h, w)).astype(np.uint16)  # 1..6
    coarse = (fine + 1) // 2  # 1..3: pairs of bands
    return image, [fine, coarse]


def test_geometric_keeps_labels_on_their_pixels():
    image, labels = _photo_and_labels()
    colour_of_band = {k + 1: image[0, (2 * k + 1) * 90 // 12] for k in range(6)}
    aug = GeometricAugment()
    for seed in range(20):
        out, crops, (h, w) = aug(image, labels, 64, np.random.default_rng(seed))
        assert out.shape == (64, 64, 3) and out.dtype == np.uint8 and 0 < h <= 64 and 0 < w <= 64
        fine, coarse = crops
        assert np.all(fine[h:] == 0) and np.all(fine[:, w:] == 0)  # 0 outside the photo
        assert np.array_equal(coarse > 0, fine > 0) and np.array_equal(coarse[fine > 0], (fine[fine > 0] + 1) // 2)
        for k, colour in colour_of_band.items():  # away from band edges (bilinear blends there), colours match
            inside = np.zeros_like(fine, bool)
            inside[:, 1:-1] = (fine[:, 1:-1] == k) & (fine[:, :-2] == k) & (fine[:, 2:] == k)
            if inside.any():
                assert np.abs(out[inside].astype(int) - colour).max() <= 2


def test_padding_is_what_the_model_pads_at_inference():
    image, labels = _photo_and_labels(30, 40)  # smaller than the window: padded right and below
    out, _, (h, w) = GeometricAugment(scale=(0.5, 0.5), flip=0.0)(image, labels, 96, np.random.default_rng(0))
    assert (h, w) == (36, 48)
    pad = torch.from_numpy(out[h:].reshape(-1, 3).astype(np.float32))  # P x 3
    config = SamConfig()
    normalised = (pad - torch.tensor(config.pixel_mean)) / torch.tensor(config.pixel_std)  # P x 3
    assert normalised.abs().max() < 0.01  # Sam.preprocess pads with zeros after normalising


def test_photometric_is_reproducible_and_changes_only_colours():
    image, _ = _photo_and_labels()
    aug = PhotometricAugment(jitter=1.0, grayscale=0.0, blur=0.0, noise=1.0, jpeg=1.0)
    a = aug(image, np.random.default_rng(3))
    b = aug(image, np.random.default_rng(3))
    assert a.shape == image.shape and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, image)
    gray = PhotometricAugment(jitter=0.0, grayscale=1.0, blur=0.0, noise=0.0, jpeg=0.0)(image, np.random.default_rng(0))
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])
