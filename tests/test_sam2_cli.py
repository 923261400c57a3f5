"""``samwidgets export-onnx`` with a SAM 2 model: ``--model sam2.1_hiera_t --weights FILE``."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from samwidgets.cli.export_onnx import main as export_main
from samwidgets.cli.export_onnx import sam2_config
from samwidgets.sam2 import SAM2ImagePredictor, build_sam2
from samwidgets.sam2.onnx import INPUT_NAMES, OUTPUT_NAMES, image_inputs

CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"


def test_model_names_that_are_sam2():
    assert sam2_config("sam2.1_hiera_t") == CONFIG
    assert sam2_config(CONFIG) == CONFIG and sam2_config("./" + CONFIG) == CONFIG
    assert sam2_config("sam2_hiera_b+") == "configs/sam2/sam2_hiera_b+.yaml"
    assert sam2_config("sam2.1_hiera_tiny") == CONFIG  # a checkpoint name
    assert sam2_config("vit_b") is None and sam2_config("default_cnn") is None and sam2_config(None) is None


def test_sam1_only_options_and_a_configuration_without_weights_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        export_main(["--model", "sam2.1_hiera_t", "--weights", "w.pt", "--gelu-approximate", "--out", "x.onnx"])
    assert exit_info.value.code == 2 and "--gelu-approximate" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        export_main(["--model", "sam2.1_hiera_t", "--out", str(tmp_path / "x.onnx")])
    assert "--weights FILE" in capsys.readouterr().err


@pytest.mark.slow
def test_official_sam2_configuration_from_the_command_line(tmp_path):
    """sam2.1_hiera_t with random weights: the graph has the official sizes and gives the predictor's masks."""
    torch.manual_seed(0)
    weights = tmp_path / "sam2.1_hiera_t.pt"
    torch.save({"model": build_sam2(CONFIG, None, device="cpu").state_dict()}, weights)
    out = tmp_path / "sam2_decoder.onnx"
    assert export_main(["--model", "sam2.1_hiera_t", "--weights", str(weights), "--out", str(out),
                        "--return-single-mask"]) == 0
    onnx.checker.check_model(str(out))
    session = ort.InferenceSession(str(out))
    assert [i.name for i in session.get_inputs()] == INPUT_NAMES
    assert [o.name for o in session.get_outputs()] == OUTPUT_NAMES
    shapes = {i.name: i.shape for i in session.get_inputs()}
    assert shapes["image_embed"] == [1, 256, 64, 64]
    assert shapes["high_res_feats_0"] == [1, 32, 256, 256] and shapes["high_res_feats_1"] == [1, 64, 128, 128]
    assert shapes["mask_input"] == [1, 1, 256, 256]

    predictor = SAM2ImagePredictor(build_sam2(CONFIG, weights, device="cpu"))
    image = np.random.default_rng(2).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    predictor.set_image(image)
    ours = predictor.predict(np.array([[50.0, 20.0]]), np.array([1]), multimask_output=False, return_logits=True)
    feed = {**image_inputs(predictor),
            "point_coords": (np.array([[[50.0, 20.0], [0.0, 0.0]]]) / [80, 60] * 1024).astype(np.float32),
            "point_labels": np.array([[1.0, -1.0]], np.float32), "mask_input": np.zeros((1, 1, 256, 256), np.float32),
            "has_mask_input": np.zeros(1, np.float32), "orig_im_size": np.array([60.0, 80.0], np.float32)}
    for got, expected in zip(session.run(None, feed), ours):
        assert got.shape[1:] == expected.shape
        np.testing.assert_allclose(got[0], expected, atol=1e-4, rtol=0)
