"""Every common kind of image is converted to H x W x 3 uint8 RGB; anything else is a clear ValueError."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from samwidgets.inference.images import as_rgb_uint8

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)


def test_rgb_uint8_is_unchanged():
    out = as_rgb_uint8(RGB)
    assert out.dtype == np.uint8 and out.shape == (20, 30, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, RGB)


def test_bgr_is_flipped():
    np.testing.assert_array_equal(as_rgb_uint8(RGB[:, :, ::-1], image_format="BGR"), RGB)


def test_grayscale_2d_and_3d():
    gray = RGB[:, :, 0]
    for g in (gray, gray[:, :, None]):
        out = as_rgb_uint8(g)
        assert out.shape == (20, 30, 3)
        np.testing.assert_array_equal(out[:, :, 1], gray)


def test_rgba_drops_alpha():
    rgba = np.concatenate([RGB, np.full((20, 30, 1), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(as_rgb_uint8(rgba), RGB)


def test_float_in_unit_range():
    np.testing.assert_array_equal(as_rgb_uint8(RGB / 255.0), RGB)
    np.testing.assert_array_equal(as_rgb_uint8((RGB / 255.0).astype(np.float32)), RGB)


def test_float_out_of_range_says_what_to_do():
    with pytest.raises(ValueError, match=r"\[0, 1\].*divide by 255"):
        as_rgb_uint8(RGB.astype(np.float32))


def test_uint16_is_scaled():
    out = as_rgb_uint8(RGB.astype(np.uint16) * 257)
    np.testing.assert_array_equal(out, RGB)


def test_pil_and_path(tmp_path):
    img = Image.fromarray(RGB)
    np.testing.assert_array_equal(as_rgb_uint8(img), RGB)
    np.testing.assert_array_equal(as_rgb_uint8(img.convert("RGBA")), RGB)
    path = tmp_path / "x.png"
    img.save(path)
    np.testing.assert_array_equal(as_rgb_uint8(path), RGB)
    np.testing.assert_array_equal(as_rgb_uint8(str(path)), RGB)
    Image.fromarray(RGB[:, :, 0].astype(np.uint16) * 257).save(tmp_path / "g16.png")
    np.testing.assert_array_equal(as_rgb_uint8(tmp_path / "g16.png")[:, :, 0], RGB[:, :, 0])


def test_torch_tensor():
    np.testing.assert_array_equal(as_rgb_uint8(torch.from_numpy(RGB)), RGB)


@pytest.mark.parametrize(
    "bad, pattern",
    [
        (np.zeros((3, 20, 30), np.uint8), "channels-first"),
        (np.zeros((20, 30, 2), np.uint8), r"shape \(20, 30, 2\)"),
        (np.zeros((20,), np.uint8), r"shape \(20,\)"),
        (np.zeros((0, 5, 3), np.uint8), "empty"),
        (np.full((4, 4, 3), np.nan), "NaN"),
        (np.zeros((4, 4, 3), np.complex64), "dtype"),
        ([[1, 2], [3, 4]], "list"),
        ("/no/such/file.png", "no image file"),
    ],
)
def test_bad_inputs_raise_clear_value_error(bad, pattern):
    with pytest.raises(ValueError, match=pattern) as info:
        as_rgb_uint8(bad)
    assert "accepted" in str(info.value)


def test_unreadable_file(tmp_path):
    path = tmp_path / "not_an_image.png"
    path.write_text("hello")
    with pytest.raises(ValueError, match="could not read"):
        as_rgb_uint8(path)


def test_bad_image_format():
    with pytest.raises(ValueError, match="image_format"):
        as_rgb_uint8(RGB, image_format="rgb")
