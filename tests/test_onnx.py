"""The decoder exported to ONNX (samwidgets export-onnx), run by onnxruntime, against SamPredictor.predict."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx_prompts import onnx_prompt
from small_configs import CNN_SMALL

from samwidgets import SamPredictor, build_sam, load_default
from samwidgets.cli.export_onnx import main as export_main
from samwidgets.inference.amg_utils import stability_score
from samwidgets.inference.onnx import INPUT_NAMES, OUTPUT_NAMES, SamOnnxModel, export_onnx

TOLERANCE = 1e-4  # max abs difference of logits and scores


@pytest.fixture(scope="module")
def bundled():
    model = load_default("cpu")
    predictor = SamPredictor(model)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (300, 420, 3), dtype=np.uint8)
    image[80:200, 100:260] = (200, 60, 40)  # an object to click on
    predictor.set_image(image)
    return model, predictor


@pytest.fixture(scope="module")
def bundled_session(bundled, tmp_path_factory):
    path = export_onnx(bundled[0], tmp_path_factory.mktemp("onnx") / "decoder.onnx")
    return ort.InferenceSession(str(path))


def onnx_inputs(predictor: SamPredictor, points=None, labels=None, box=None, mask_input=None) -> dict:
    """The reference demo's inputs: coordinates in the resized frame, a padding point when there is no box."""
    coords, codes = onnx_prompt(points, labels, box)
    coords = predictor.transform.apply_coords(coords, predictor.original_size)
    size = predictor.model.config.low_res_mask_size
    return {
        "image_embeddings": predictor.get_image_embedding().numpy(),
        "point_coords": coords[None].astype(np.float32),
        "point_labels": codes[None].astype(np.float32),
        "mask_input": (np.zeros((1, 1, size, size)) if mask_input is None else mask_input[None]).astype(np.float32),
        "has_mask_input": np.array([0.0 if mask_input is None else 1.0], np.float32),
        "orig_im_size": np.array(predictor.original_size, np.float32),
    }


def assert_same(onnx_out, ours, rows):
    masks, scores, low_res = onnx_out
    ref_masks, ref_scores, ref_low = ours
    assert masks.shape[2:] == ref_masks.shape[1:]
    np.testing.assert_allclose(masks[0, rows], ref_masks, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(scores[0, rows], ref_scores, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(low_res[0, rows], ref_low, atol=TOLERANCE, rtol=0)


def test_the_graph_has_the_reference_interface(bundled_session):
    assert [i.name for i in bundled_session.get_inputs()] == INPUT_NAMES
    assert [o.name for o in bundled_session.get_outputs()] == OUTPUT_NAMES
    coords = bundled_session.get_inputs()[1]
    assert coords.shape[1] == "num_points" and coords.type == "tensor(float)"


@pytest.mark.parametrize("case", ["point", "two_points", "box", "box_and_point"])
@pytest.mark.parametrize("multimask", [True, False])
def test_onnxruntime_gives_the_predictors_masks(bundled, bundled_session, case, multimask):
    _, predictor = bundled
    prompt = {
        "point": {"points": [[180, 140]], "labels": [1]},
        "two_points": {"points": [[180, 140], [40, 260]], "labels": [1, 0]},
        "box": {"box": [90, 70, 270, 210]},
        "box_and_point": {"points": [[180, 140]], "labels": [0], "box": [90, 70, 270, 210]},
    }[case]
    ours = predictor.predict(point_coords=np.array(prompt["points"]) if "points" in prompt else None,
                             point_labels=np.array(prompt["labels"]) if "labels" in prompt else None,
                             box=np.array(prompt["box"]) if "box" in prompt else None,
                             multimask_output=multimask, return_logits=True)
    out = bundled_session.run(None, onnx_inputs(predictor, **prompt))
    assert out[0].shape[1] == 4  # all four mask tokens, as the reference's graph
    assert_same(out, ours, slice(1, 4) if multimask else slice(0, 1))


def test_a_mask_prompt_refines_as_in_the_predictor(bundled, bundled_session):
    _, predictor = bundled
    _, scores, low_res = predictor.predict(np.array([[180, 140]]), np.array([1]), multimask_output=True)
    previous = low_res[int(np.argmax(scores))]
    ours = predictor.predict(np.array([[180, 140], [120, 100]]), np.array([1, 1]), mask_input=previous[None],
                             multimask_output=False, return_logits=True)
    out = bundled_session.run(None, onnx_inputs(predictor, [[180, 140], [120, 100]], [1, 1], mask_input=previous[None]))
    assert_same(out, ours, slice(0, 1))


def test_the_number_of_points_is_dynamic(bundled, bundled_session):
    _, predictor = bundled
    rng = np.random.default_rng(1)
    for n in (1, 3, 7):
        points = rng.uniform(0, 300, (n, 2))
        labels = rng.integers(0, 2, n)
        ours = predictor.predict(points, labels, multimask_output=True, return_logits=True)
        assert_same(bundled_session.run(None, onnx_inputs(predictor, points, labels)), ours, slice(1, 4))


def test_single_mask_and_extra_metrics_as_the_reference(bundled, tmp_path):
    model, predictor = bundled
    path = export_onnx(model, tmp_path / "single.onnx", return_single_mask=True, return_extra_metrics=True)
    session = ort.InferenceSession(str(path))
    assert [o.name for o in session.get_outputs()] == ["masks", "iou_predictions", "stability_scores", "areas",
                                                       "low_res_masks"]
    # one point (+ the padding point: 2 points): the best scored of outputs 1..3
    masks, scores, stability, areas, low_res = session.run(None, onnx_inputs(predictor, [[180, 140]], [1]))
    all_masks, all_scores, _ = predictor.predict(np.array([[180, 140]]), np.array([1]), multimask_output=True,
                                                 return_logits=True)
    best = int(np.argmax(all_scores))
    assert masks.shape[1] == 1 and abs(scores[0, 0] - all_scores[best]) <= TOLERANCE
    np.testing.assert_allclose(masks[0, 0], all_masks[best], atol=TOLERANCE, rtol=0)
    logits = torch.from_numpy(masks)
    np.testing.assert_allclose(stability, stability_score(logits, 0.0, 1.0).numpy(), atol=1e-6)
    assert areas[0, 0] == int((masks[0, 0] > 0).sum())
    # a box and a point (3 points): output 0, the single-mask output
    masks3, scores3, *_ = session.run(None, onnx_inputs(predictor, [[180, 140]], [1], box=[90, 70, 270, 210]))
    single, single_score, _ = predictor.predict(np.array([[180, 140]]), np.array([1]), box=np.array([90, 70, 270, 210]),
                                                multimask_output=False, return_logits=True)
    np.testing.assert_allclose(masks3[0, 0], single[0], atol=TOLERANCE, rtol=0)
    assert abs(scores3[0, 0] - single_score[0]) <= TOLERANCE


def test_stability_score_instead_of_the_iou_head(bundled, tmp_path):
    model, predictor = bundled
    session = ort.InferenceSession(str(export_onnx(model, tmp_path / "s.onnx", use_stability_score=True)))
    _, scores, low_res = session.run(None, onnx_inputs(predictor, [[180, 140]], [1]))
    np.testing.assert_allclose(scores, stability_score(torch.from_numpy(low_res), 0.0, 1.0).numpy(), atol=1e-6)


def test_gelu_approximate_stays_close(bundled, bundled_session, tmp_path):
    model, predictor = bundled
    session = ort.InferenceSession(str(export_onnx(model, tmp_path / "tanh.onnx", gelu_approximate=True)))
    inputs = onnx_inputs(predictor, [[180, 140]], [1])
    exact, approx = bundled_session.run(None, inputs)[2], session.run(None, inputs)[2]
    difference = np.abs(exact - approx).max()
    assert 0 < difference < 0.05
    assert all(type(m).__name__ != "GELU" or m.approximate == "none" for m in model.modules())  # model untouched


def test_export_leaves_the_model_as_it_was(bundled):
    model, _ = bundled
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fast = type(model.mask_decoder)
    SamOnnxModel(model, gelu_approximate=True)
    assert type(model.mask_decoder) is fast
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("dense_prompts", [False, True])
def test_with_and_without_dense_prompt_maps(tmp_path, dense_prompts):
    """The bundled model draws clicks and the box on the grid (config.dense_prompts; the tests above): the graph
    draws them from the reference's inputs. A model without them (the official layout) adds nothing there."""
    torch.manual_seed(0)
    model = build_sam(CNN_SMALL.replace(dense_prompts=dense_prompts)).eval()
    if dense_prompts:  # a random init of these vectors is small: make the maps matter to the masks
        torch.nn.init.normal_(model.prompt_encoder.dense_prompt_embed.weight, std=1.0)
    predictor = SamPredictor(model)
    predictor.set_image(np.random.default_rng(3).integers(0, 256, (120, 90, 3), dtype=np.uint8))
    session = ort.InferenceSession(str(export_onnx(model, tmp_path / "m.onnx")))
    prompts = ({"points": [[40, 60]], "labels": [1]}, {"points": [[40, 60]], "labels": [0], "box": [10, 20, 70, 100]})
    for prompt in prompts:
        ours = predictor.predict(np.array(prompt["points"]), np.array(prompt["labels"]),
                                 box=np.array(prompt["box"]) if "box" in prompt else None,
                                 multimask_output=True, return_logits=True)
        assert_same(session.run(None, onnx_inputs(predictor, **prompt)), ours, slice(1, 4))


@pytest.mark.usefixtures("without_onnx")
def test_export_without_onnx_says_what_to_install(bundled, tmp_path):
    with pytest.raises(ImportError, match="pip install onnx onnxruntime"):
        export_onnx(bundled[0], tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.slow
def test_official_configuration_from_the_command_line(tmp_path):
    """vit_b with random weights, exported by `samwidgets export-onnx --model vit_b --weights FILE`."""
    torch.manual_seed(0)
    model = build_sam("vit_b")
    weights = tmp_path / "vit_b.pt"
    torch.save(model.state_dict(), weights)
    out = tmp_path / "vit_b_decoder.onnx"
    assert export_main(["--model", "vit_b", "--weights", str(weights), "--out", str(out)]) == 0
    onnx.checker.check_model(str(out))
    predictor = SamPredictor(build_sam("vit_b", weights))
    rng = np.random.default_rng(2)
    predictor.set_image(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8))
    session = ort.InferenceSession(str(out))
    for points, labels in (([[320, 240]], [1]), ([[320, 240], [100, 400]], [1, 0])):
        ours = predictor.predict(np.array(points), np.array(labels), multimask_output=True, return_logits=True)
        assert_same(session.run(None, onnx_inputs(predictor, points, labels)), ours, slice(1, 4))
