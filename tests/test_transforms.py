"""ResizeLongestSide by hand: the reference's rounding, coordinates scaled per axis, numpy and torch alike.

A wrong scale here moves every click and box a few pixels, which a user would not see as a bug but as a worse
mask; the figures below are worked out by hand.
"""

from __future__ import annotations

import numpy as np
import torch

from samwidgets.inference.transforms import ResizeLongestSide, get_preprocess_shape


def test_preprocess_shape_rounds_half_up():
    assert get_preprocess_shape(480, 640, 1024) == (768, 1024)
    assert get_preprocess_shape(640, 480, 1024) == (1024, 768)
    assert get_preprocess_shape(3, 1000, 1024) == (3, 1024)  # 3.072 -> 3
    assert get_preprocess_shape(1000, 5, 10) == (10, 0)  # 0.05 -> 0: the reference's rounding, kept
    assert get_preprocess_shape(100, 3, 10) == (10, 0)  # 0.3 -> 0
    assert get_preprocess_shape(2, 3, 5) == (3, 5)  # 3.333 -> 3
    assert get_preprocess_shape(5, 2, 4) == (4, 2)  # 1.6 -> 2
    assert get_preprocess_shape(8, 5, 4) == (4, 3)  # 2.5 -> 3: half up
    assert get_preprocess_shape(64, 64, 64) == (64, 64)


def test_coordinates_and_boxes_scale_per_axis():
    t = ResizeLongestSide(10)
    original = (4, 8)  # H, W -> 5 x 10: x scales by 10/8, y by 5/4
    coords = np.array([[0.0, 0.0], [8.0, 4.0], [2.0, 1.0]])
    out = t.apply_coords(coords, original)
    assert out.tolist() == [[0.0, 0.0], [10.0, 5.0], [2.5, 1.25]]
    assert coords.tolist() == [[0.0, 0.0], [8.0, 4.0], [2.0, 1.0]]  # the caller's array is not changed
    boxes = t.apply_boxes(np.array([[0, 0, 8, 4], [2, 1, 4, 3]]), original)
    assert boxes.shape == (2, 4) and boxes.tolist() == [[0.0, 0.0, 10.0, 5.0], [2.5, 1.25, 5.0, 3.75]]
    assert t.apply_boxes(np.array([2, 1, 4, 3]), original).tolist() == [[2.5, 1.25, 5.0, 3.75]]


def test_torch_coordinates_and_boxes_match_numpy():
    t = ResizeLongestSide(10)
    original = (8, 3)  # -> 10 x 4 (3.75 -> 4): y by 10/8, x by 4/3
    coords = np.array([[[3.0, 8.0], [1.5, 2.0]]])  # B x N x 2
    expected = [[[4.0, 10.0], [2.0, 2.5]]]
    c = torch.tensor(coords, dtype=torch.float64)
    out = t.apply_coords_torch(c, original)
    assert out.dtype == torch.float32 and np.allclose(out.numpy(), expected)
    assert c.tolist() == coords.tolist()  # not changed in place
    assert np.allclose(t.apply_coords(coords, original), expected)
    boxes = torch.tensor([[0.0, 0.0, 3.0, 8.0], [1.5, 2.0, 3.0, 4.0]])
    out = t.apply_boxes_torch(boxes, original)
    assert out.shape == (2, 4) and np.allclose(out.numpy(), [[0, 0, 4, 10], [2, 2.5, 4, 5]])
    assert boxes.tolist() == [[0.0, 0.0, 3.0, 8.0], [1.5, 2.0, 3.0, 4.0]]


def test_images_resize_to_the_longest_side():
    t = ResizeLongestSide(8)
    image = np.zeros((4, 16, 3), np.uint8)
    image[:, 8:] = 200  # right half bright
    out = t.apply_image(image)
    assert out.shape == (2, 8, 3) and out.dtype == np.uint8
    assert out[:, :3].max() == 0 and out[:, 5:].min() == 200  # the halves stay where they were
    same = np.arange(8 * 6 * 3, dtype=np.uint8).reshape(8, 6, 3)
    assert np.array_equal(t.apply_image(same), same)  # already the right size: unchanged

    batch = torch.zeros(2, 3, 4, 16)
    batch[..., 8:] = 1.0
    resized = t.apply_image_torch(batch)
    assert resized.shape == (2, 3, 2, 8)
    assert resized[..., :3].abs().max() < 1e-6 and (resized[..., 5:] - 1).abs().max() < 1e-6


def test_torch_resize_is_antialiased_and_samples_pixel_centres():
    # the reference resizes batched tensors with antialiased bilinear, align_corners=False
    transform = ResizeLongestSide(64)  # 256 -> 64: four pixels per output pixel
    noise = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    # averaging about 4 x 4 pixels cuts white noise's spread about fourfold (sampling two would halve it)
    assert transform.apply_image_torch(noise).std() < 0.25 * noise.std()
    ramp = torch.arange(256.0).repeat(1, 3, 256, 1)  # value = x
    out = transform.apply_image_torch(ramp)[0, 0, 0]
    # output pixel i covers input pixels 4i..4i+3: its centre is 4i + 1.5 (inside the image, where the filter fits)
    assert torch.allclose(out[1:-1], 4 * torch.arange(1.0, 63.0) + 1.5, atol=1e-4)
