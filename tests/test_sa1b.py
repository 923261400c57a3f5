"""SA-1B per-image JSON: write / read round trip through pycocotools RLE, atomic writes, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from samwidgets import load_default
from samwidgets.data import SceneGenerator
from samwidgets.data.seeds import HELD_OUT_SEED_START
from samwidgets.inference import amg_utils as amg
from samwidgets.inference.automatic_mask_generator import SamAutomaticMaskGenerator
from samwidgets.io.sa1b import ANNOTATION_KEYS, read_sa1b, sa1b_masks, write_sa1b


def _records(masks: np.ndarray, mode: str) -> list[dict]:
    """Generator-like records for masks, with the segmentation in the given output mode."""
    records = []
    for k, mask in enumerate(masks):
        if mode == "binary_mask":
            seg = mask
        elif mode == "uncompressed_rle":
            seg = amg.mask_to_uncompressed_rle(mask)
        else:
            seg = amg.rle_to_json(amg.encode_rle(mask[None])[0])
        records.append({"segmentation": seg, "area": int(mask.sum()), "bbox": [k, 2, 3, 4],
                        "predicted_iou": 0.9 - k / 100, "point_coords": [[1.5 + k, 2.5]],
                        "stability_score": np.float32(0.96), "crop_box": [0, 0, mask.shape[1], mask.shape[0]]})
    return records


@pytest.fixture()
def masks() -> np.ndarray:
    rng = np.random.default_rng(0)
    out = rng.random((3, 20, 30)) > 0.5
    out[2] = False
    return out


@pytest.mark.parametrize("mode", ["binary_mask", "uncompressed_rle", "coco_rle"])
def test_round_trip(tmp_path, masks, mode):
    records = _records(masks, mode)
    path = write_sa1b(tmp_path / "sa_7.json", records, image_id=7, file_name="sa_7.jpg", width=30, height=20)
    data = read_sa1b(path)
    assert data["image"] == {"image_id": 7, "width": 30, "height": 20, "file_name": "sa_7.jpg"}
    assert [a["id"] for a in data["annotations"]] == [1, 2, 3]
    np.testing.assert_array_equal(sa1b_masks(data), masks)
    for ann, rec in zip(data["annotations"], records):
        assert set(ann) == set(ANNOTATION_KEYS)
        assert isinstance(ann["segmentation"]["counts"], str) and ann["segmentation"]["size"] == [20, 30]
        for key in ("bbox", "area", "point_coords", "crop_box"):
            assert ann[key] == rec[key]
        assert ann["predicted_iou"] == pytest.approx(rec["predicted_iou"])
        assert ann["stability_score"] == pytest.approx(0.96)
    assert [p.name for p in tmp_path.iterdir()] == ["sa_7.json"]  # no temporary file left behind


def test_generator_output_round_trips(tmp_path):
    image = SceneGenerator(image_size=96)(HELD_OUT_SEED_START).image[:80]  # 80 x 96
    generator = SamAutomaticMaskGenerator(load_default(device="cpu"), points_per_side=4, pred_iou_thresh=0.2,
                                          stability_score_thresh=0.0, output_mode="coco_rle")
    records = generator.generate(image)
    path = write_sa1b(tmp_path / "x.json", records, image_id=1, file_name="x.png", width=96, height=80)
    data = read_sa1b(path)
    assert len(data["annotations"]) == len(records) > 0
    for ann, rec in zip(data["annotations"], records):
        assert ann["segmentation"] == rec["segmentation"]
        assert ann["area"] == rec["area"] == int(amg.decode_rle(ann["segmentation"]).sum())
        assert ann["bbox"] == rec["bbox"] and ann["point_coords"] == rec["point_coords"]


def test_size_mismatch_is_refused_on_write(tmp_path, masks):
    with pytest.raises(ValueError, match="pass the size of the image"):
        write_sa1b(tmp_path / "a.json", _records(masks, "binary_mask"), image_id=1, file_name="a.jpg",
                   width=31, height=20)
    assert not (tmp_path / "a.json").exists()


def test_bad_files_raise_errors_that_name_them(tmp_path, masks):
    good = write_sa1b(tmp_path / "good.json", _records(masks, "coco_rle"), image_id=1, file_name="g.jpg",
                      width=30, height=20)
    truncated = tmp_path / "truncated.json"
    truncated.write_bytes(good.read_bytes()[:50])
    with pytest.raises(ValueError, match="truncated.json is not valid JSON"):
        read_sa1b(truncated)
    data = json.loads(good.read_text())
    del data["annotations"][1]["predicted_iou"]
    (tmp_path / "missing.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"annotation 1 lacks \['predicted_iou'\]"):
        read_sa1b(tmp_path / "missing.json")
    (tmp_path / "other.json").write_text(json.dumps({"images": [], "annotations": []}))
    with pytest.raises(ValueError, match="not an SA-1B file"):
        read_sa1b(tmp_path / "other.json")


def test_numbers_keep_their_kind_in_the_json(tmp_path, masks):
    import torch

    from samwidgets.io.sa1b import _number, sa1b_annotation

    assert _number(np.int64(3)) == 3 and type(_number(np.int64(3))) is int
    assert type(_number(torch.tensor(4))) is int and type(_number(torch.tensor(4.5))) is float
    assert type(_number(np.float32(2.5))) is float and _number(np.float32(2.5)) == 2.5
    assert type(_number(7)) is int and type(_number(2.0)) is float
    assert type(_number(True)) is float  # a bool is not a pixel count
    record = _records(masks, "binary_mask")[0]
    record["bbox"] = [np.int32(1), np.int64(2), 3, 4]
    record["crop_box"] = [np.float64(0.5), 0, 30, 20]
    ann = sa1b_annotation(record, 9)
    assert ann["id"] == 9 and [type(v) for v in ann["bbox"]] == [int] * 4 and ann["crop_box"][0] == 0.5
    del record["area"]
    with pytest.raises(ValueError, match=r"mask record 9 lacks \['area'\]; records come from "
                                         r"SamAutomaticMaskGenerator\.generate \(any output_mode\)"):
        sa1b_annotation(record, 9)


def test_a_mask_of_another_size_in_a_file_is_named(tmp_path, masks):
    good = write_sa1b(tmp_path / "good.json", _records(masks, "coco_rle"), image_id=1, file_name="g.jpg",
                      width=30, height=20)
    data = json.loads(good.read_text())
    data["annotations"][2]["segmentation"]["size"] = [20, 31]
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"bad\.json: annotation 2 has a mask of size \[20, 31\] \(H, W\) but the "
                                         r"image is \[20, 30\]"):
        read_sa1b(tmp_path / "bad.json")
    del data["annotations"][2]["segmentation"]["size"]
    (tmp_path / "nosize.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"annotation 2 has a mask of size None"):
        read_sa1b(tmp_path / "nosize.json")
    del data["image"]["file_name"]
    (tmp_path / "noname.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"noname\.json: the image entry lacks \['file_name'\]"):
        read_sa1b(tmp_path / "noname.json")
    loaded = sa1b_masks(read_sa1b(good))
    assert loaded.dtype == bool and loaded.shape == (3, 20, 30) and np.array_equal(loaded, masks)
    empty = sa1b_masks({"image": {"height": 4, "width": 5}, "annotations": []})
    assert empty.shape == (0, 4, 5) and empty.dtype == bool
