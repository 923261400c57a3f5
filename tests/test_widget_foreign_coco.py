"""SamCanvas.load on COCO files written by other tools: pycocotools RLE, CVAT-style polygons, uncompressed
RLE, missing optional fields, images found by file name; and clear errors for malformed files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from samwidgets import SamPredictor, load_default
from samwidgets.widget import SamCanvas

H, W = 60, 80


@pytest.fixture(scope="module")
def predictor():
    return SamPredictor(load_default(device="cpu"))


@pytest.fixture()
def folder(tmp_path):
    """Two photos in an images/ subfolder, as CVAT and most tools lay out an export."""
    (tmp_path / "images").mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.jpg"):
        Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(tmp_path / "images" / name)
    return tmp_path


def rect(y0, y1, x0, x1) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def compressed_rle(mask: np.ndarray) -> dict:
    """As pycocotools writes it: compressed counts, decoded from bytes to str for JSON."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


def uncompressed_rle(mask: np.ndarray) -> dict:
    """Run lengths over the column-major pixels, starting with a run of zeros (COCO's iscrowd=1 form)."""
    flat = mask.flatten(order="F").astype(np.uint8)
    counts, value, run = [], 0, 0
    for pixel in flat:
        if pixel == value:
            run += 1
        else:
            counts.append(run)
            value, run = pixel, 1
    counts.append(run)
    return {"size": [H, W], "counts": counts}


def write(folder, data) -> str:
    path = folder / "instances.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_pycocotools_rle_with_categories_and_no_extra_fields(predictor, folder):
    cat, dog = rect(5, 30, 10, 40), rect(35, 55, 50, 75)
    data = {
        "images": [{"id": 7, "file_name": "images/a.png", "width": W, "height": H}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 3, "segmentation": compressed_rle(cat), "area": int(cat.sum()),
             "bbox": [10, 5, 30, 25], "iscrowd": 0},
            {"id": 2, "image_id": 7, "category_id": 5, "segmentation": compressed_rle(dog), "iscrowd": 0},
        ],
        "categories": [{"id": 3, "name": "cat", "supercategory": "animal"}, {"id": 5, "name": "dog"}],
    }
    canvas = SamCanvas.load(write(folder, data), predictor)
    try:
        objects = canvas.session.state_of(0).objects
        assert [o.label for o in objects] == ["cat", "dog"] and [o.id for o in objects] == [1, 2]
        np.testing.assert_array_equal(objects[0].mask, cat)
        np.testing.assert_array_equal(objects[1].mask, dog)
        assert all(o.score == 1.0 for o in objects)
    finally:
        canvas.close()


def test_cvat_style_polygons_and_uncompressed_rle_across_images(predictor, folder):
    crowd = rect(0, 20, 0, 20)
    data = {  # CVAT's COCO 1.0 export: licenses, info, attributes, polygon lists, empty urls
        "licenses": [{"name": "", "id": 0, "url": ""}],
        "info": {"contributor": "", "date_created": "", "description": "", "url": "", "version": "", "year": ""},
        "categories": [{"id": 1, "name": "house", "supercategory": ""}, {"id": 2, "name": "tree", "supercategory": ""}],
        "images": [
            {"id": 1, "width": W, "height": H, "file_name": "images/a.png", "license": 0, "flickr_url": "",
             "coco_url": "", "date_captured": 0},
            {"id": 2, "width": W, "height": H, "file_name": "images/b.jpg", "license": 0, "flickr_url": "",
             "coco_url": "", "date_captured": 0},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[10.0, 10.0, 50.0, 10.0, 50.0, 40.0,
                                                                          10.0, 40.0]],
             "area": 1200.0, "bbox": [10.0, 10.0, 40.0, 30.0], "iscrowd": 0, "attributes": {"occluded": False}},
            {"id": 2, "image_id": 2, "category_id": 2, "segmentation": uncompressed_rle(crowd), "area": 400.0,
             "bbox": [0, 0, 20, 20], "iscrowd": 1, "attributes": {"occluded": False}},
        ],
    }
    canvas = SamCanvas.load(write(folder, data), predictor)
    try:
        house = canvas.session.state_of(0).objects[0]
        assert house.label == "house" and canvas.session.images.name(0) == "images/a.png"
        expected = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(data["annotations"][0]["segmentation"],
                                                                             H, W))).astype(bool)
        np.testing.assert_array_equal(house.mask, expected)
        assert 1100 < house.mask.sum() < 1300  # about the 40 x 30 rectangle
        tree = canvas.session.state_of(1).objects[0]
        assert tree.label == "tree"
        np.testing.assert_array_equal(tree.mask, crowd)
    finally:
        canvas.close()


def test_an_object_without_a_category_gets_a_name(predictor, folder):
    data = {"images": [{"id": 1, "file_name": "images/a.png", "width": W, "height": H}],
            "annotations": [{"id": 9, "image_id": 1, "segmentation": compressed_rle(rect(1, 9, 1, 9))}]}
    canvas = SamCanvas.load(write(folder, data), predictor)
    try:
        assert canvas.session.state_of(0).objects[0].label == "object 1"
    finally:
        canvas.close()


@pytest.mark.parametrize("break_it, message", [
    (lambda d: d["images"][0].pop("width"), r"image entry 0 lacks \['width'\]"),
    (lambda d: d["images"].append(dict(d["images"][0])), "two image entries have the id 1"),
    (lambda d: d["annotations"][0].update(image_id=99), "annotation 1 refers to unknown image 99"),
    (lambda d: d["annotations"][0].pop("segmentation"), "annotation 1 has no usable segmentation"),
    (lambda d: d["annotations"][0].update(segmentation=[[1, 2, 3, 4]]), "at least 3 points"),
    (lambda d: d["annotations"][0]["segmentation"].update(size=[H, W + 1]), "RLE is 60 x 81 but its image"),
    (lambda d: d["annotations"][0]["segmentation"].update(counts="@@@@"), "cannot be decoded"),
    (lambda d: d.update(annotations={}), "needs the lists 'images' and 'annotations'"),
    (lambda d: d["categories"].append({"name": "no id"}), "has no id"),
])
def test_malformed_files_are_rejected_with_the_problem_named(predictor, folder, break_it, message):
    data = {"images": [{"id": 1, "file_name": "images/a.png", "width": W, "height": H}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1,
                             "segmentation": compressed_rle(rect(1, 9, 1, 9))}],
            "categories": [{"id": 1, "name": "thing"}]}
    break_it(data)
    with pytest.raises(ValueError, match=message):
        SamCanvas.load(write(folder, data), predictor)
