"""The project's one COCO writer: what a file holds when the caller leaves things out (mutation testing found
these unchecked)."""

from __future__ import annotations

import json

import numpy as np
from pycocotools import mask as mask_utils

from samwidgets.io.coco import DEFAULT_CATEGORIES, decode_segmentation, write_coco


def test_defaults_and_what_is_given(tmp_path):
    path = write_coco(tmp_path / "a.json", [{"id": 1}], [])
    data = json.loads(path.read_text())
    assert list(data) == ["images", "annotations", "categories"]  # no "info" unless given
    assert data["categories"] == [{"id": 1, "name": "object"}] and data["categories"] is not DEFAULT_CATEGORIES
    assert "\n" not in path.read_text()  # compact unless asked
    path = write_coco(tmp_path / "b.json", [], [], categories=[{"id": 3, "name": "cat"}], info={"v": 1}, indent=2)
    text = path.read_text()
    data = json.loads(text)
    assert list(data) == ["info", "images", "annotations", "categories"]
    assert data["info"] == {"v": 1} and data["categories"] == [{"id": 3, "name": "cat"}]
    assert '\n  "images"' in text
    assert json.loads(write_coco(tmp_path / "c.json", [], [], categories=[]).read_text())["categories"] == []


def test_segmentations_decode_from_rle_and_polygons():
    mask = np.zeros((6, 8), bool)
    mask[1:4, 2:7] = True
    rle = mask_utils.encode(np.asfortranarray(mask))
    rle["counts"] = rle["counts"].decode()
    assert np.array_equal(decode_segmentation(rle, 6, 8), mask)
    square = [[2.0, 1.0, 7.0, 1.0, 7.0, 4.0, 2.0, 4.0]]  # polygon of the same region
    decoded = decode_segmentation(square, 6, 8)
    assert decoded.dtype == bool and decoded.shape == (6, 8) and decoded[2, 4] and not decoded[5, 0]
