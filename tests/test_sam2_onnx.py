"""SAM 2's decoder exported to ONNX (samwidgets.sam2.onnx), run by onnxruntime, against SAM2ImagePredictor.predict.

The predictor's outputs are the reference sam2 package's (tests/test_sam2_parity.py, same model, same image).
The model is the small one of ``sam2_parity_small.pt`` (random weights), built with SAM 2's dynamic multimask
(one mask asked: the single mask if stable, else the best of three) at a stability threshold of 0.86 instead
of 0.98: with random weights every single mask has a stability near 0.85, so at 0.98 it would always be
replaced; at 0.86 it is kept for the "point" prompt (0.90) and replaced for the others (0.82 to 0.85), and
the exported ``torch.where`` / ``argmax`` are checked both ways.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from onnx_prompts import onnx_prompt
from sam2_small import build_small

from samwidgets.sam2 import SAM2Base, SAM2ImagePredictor
from samwidgets.sam2.onnx import INPUT_NAMES, OUTPUT_NAMES, SAM2OnnxModel, export_sam2_onnx, image_inputs

TOLERANCE = 1e-4  # max abs difference of logits and scores
STABILITY_THRESH = 0.86
DYNAMIC_MULTIMASK = ("++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true",
                     "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05",
                     f"++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh={STABILITY_THRESH}")

PROMPTS = {  # on the 36 x 52 image of sam2_parity_small.pt
    "point": {"points": [[20, 15]], "labels": [1]},
    "points_with_a_negative": {"points": [[40, 12], [10, 30]], "labels": [1, 0]},
    "box": {"box": [28, 5, 50, 30]},
    "box_and_point": {"points": [[26, 20]], "labels": [0], "box": [5, 4, 30, 33]},
}


@pytest.fixture(scope="module")
def model(small) -> SAM2Base:
    return build_small(small, extra_overrides=DYNAMIC_MULTIMASK, apply_postprocessing=False)


@pytest.fixture(scope="module")
def predictor(model, small) -> SAM2ImagePredictor:
    predictor = SAM2ImagePredictor(model)
    predictor.set_image(small["image"].numpy())
    return predictor


@pytest.fixture(scope="module")
def sessions(model, tmp_path_factory) -> dict[bool, ort.InferenceSession]:
    """The graph exported with multimask_output True and False."""
    folder = tmp_path_factory.mktemp("sam2_onnx")
    return {multimask: ort.InferenceSession(str(export_sam2_onnx(model, folder / f"decoder_{multimask}.onnx",
                                                                 multimask_output=multimask)))
            for multimask in (True, False)}


def onnx_inputs(predictor: SAM2ImagePredictor, points=None, labels=None, box=None, mask_input=None,
                padding: bool = True) -> dict[str, np.ndarray]:
    """SAM 1's ONNX convention: clicks, then the box's corners (labels 2, 3), else a padding point (label -1);
    coordinates stretched to the model's S x S input frame. ``padding=False``: never a padding point."""
    coords, codes = onnx_prompt(points, labels, box, padding)
    h, w = predictor._orig_hw[0]
    size = predictor.model.image_size
    coords = coords / np.array([w, h]) * size
    low = 4 * predictor.model.image_size // predictor.model.backbone_stride
    embed = predictor.get_image_embedding()
    high_res = predictor._features["high_res_feats"]
    return {
        "image_embed": embed.numpy(), "high_res_feats_0": high_res[0].numpy(), "high_res_feats_1": high_res[1].numpy(),
        "point_coords": coords[None].astype(np.float32), "point_labels": codes[None].astype(np.float32),
        "mask_input": (np.zeros((1, 1, low, low)) if mask_input is None else mask_input[None]).astype(np.float32),
        "has_mask_input": np.array([0.0 if mask_input is None else 1.0], np.float32),
        "orig_im_size": np.array([h, w], np.float32),
    }


def predict(predictor: SAM2ImagePredictor, multimask: bool, points=None, labels=None, box=None, mask_input=None):
    return predictor.predict(point_coords=None if points is None else np.array(points, float),
                             point_labels=None if labels is None else np.array(labels),
                             box=None if box is None else np.array(box, float), mask_input=mask_input,
                             multimask_output=multimask, return_logits=True)


def max_differences(onnx_out, ours) -> list[float]:
    """Largest |difference| of masks, IoU predictions, low-res logits (ONNX 1 x M x ..., predictor M x ...)."""
    assert [o.shape[1:] for o in onnx_out] == [r.shape for r in ours]
    return [float(np.abs(o[0] - r).max()) for o, r in zip(onnx_out, ours)]


def test_the_graph_has_the_documented_interface(sessions, model):
    for session in sessions.values():
        assert [i.name for i in session.get_inputs()] == INPUT_NAMES
        assert [o.name for o in session.get_outputs()] == OUTPUT_NAMES
        shapes = {i.name: i.shape for i in session.get_inputs()}
        c, h = model.hidden_dim, model.image_size // model.backbone_stride
        assert shapes["image_embed"] == [1, c, h, h]
        assert shapes["high_res_feats_0"] == [1, c // 8, 4 * h, 4 * h]
        assert shapes["high_res_feats_1"] == [1, c // 4, 2 * h, 2 * h]
        assert shapes["point_coords"] == [1, "num_points", 2] and shapes["point_labels"] == [1, "num_points"]
        assert shapes["mask_input"] == [1, 1, 4 * h, 4 * h] and shapes["has_mask_input"] == [1]
        assert shapes["orig_im_size"] == [2]
        assert all(i.type == "tensor(float)" for i in session.get_inputs())


@pytest.mark.parametrize("multimask", [True, False])
@pytest.mark.parametrize("case", list(PROMPTS))
def test_onnxruntime_gives_the_predictors_masks(predictor, sessions, case, multimask):
    prompt = PROMPTS[case]
    out = sessions[multimask].run(None, onnx_inputs(predictor, **prompt))
    assert out[0].shape[1] == (3 if multimask else 1)
    differences = max_differences(out, predict(predictor, multimask, **prompt))
    print(f"{case}, multimask {multimask}: masks, scores, low-res {differences}")
    assert max(differences) <= TOLERANCE


@pytest.mark.parametrize("multimask", [True, False])
def test_a_mask_prompt_refines_as_in_the_predictor(predictor, sessions, multimask):
    _, scores, low_res = predict(predictor, True, [[20, 15]], [1])
    previous = low_res[int(np.argmax(scores))][None]  # 1 x 4h x 4w
    ours = predict(predictor, multimask, [[20, 15], [30, 22]], [1, 1], mask_input=previous)
    out = sessions[multimask].run(None, onnx_inputs(predictor, [[20, 15], [30, 22]], [1, 1], mask_input=previous))
    differences = max_differences(out, ours)
    print(f"mask prompt, multimask {multimask}: masks, scores, low-res {differences}")
    assert max(differences) <= TOLERANCE
    no_mask = sessions[multimask].run(None, onnx_inputs(predictor, [[20, 15], [30, 22]], [1, 1]))
    assert np.abs(no_mask[1] - out[1]).max() > 1e-3  # the mask prompt does change the result


def test_the_graph_adds_the_padding_point_sam2_always_has(predictor, sessions):
    """Inputs without any padding point (samexporter's convention) give the same masks: SAM 2 decodes one."""
    inputs = onnx_inputs(predictor, [[40, 12], [10, 30]], [1, 0], padding=False)
    assert (inputs["point_labels"] != -1).all()
    ours = predict(predictor, True, [[40, 12], [10, 30]], [1, 0])
    assert max(max_differences(sessions[True].run(None, inputs), ours)) <= TOLERANCE


def test_the_number_of_points_and_the_image_size_are_dynamic(predictor, sessions):
    rng = np.random.default_rng(1)
    h, w = predictor._orig_hw[0]
    for n in (1, 4, 9):
        points, labels = rng.uniform(0, [w, h], (n, 2)), rng.integers(0, 2, n)
        out = sessions[True].run(None, onnx_inputs(predictor, points, labels))
        assert max(max_differences(out, predict(predictor, True, points, labels))) <= TOLERANCE
    inputs = onnx_inputs(predictor, [[20, 15]], [1])
    inputs["orig_im_size"] = np.array([100.0, 150.0], np.float32)
    assert sessions[True].run(None, inputs)[0].shape == (1, 3, 100, 150)


def test_both_branches_of_the_dynamic_multimask_are_exercised(model, predictor):
    """Among the prompts, SAM 2's single mask is kept for some (stable) and replaced by the best of the three
    for others: the tests above (multimask False) check the exported torch.where / argmax both ways."""
    decoder = model.sam_mask_decoder
    assert decoder.dynamic_multimask_via_stability and decoder.dynamic_multimask_stability_thresh == STABILITY_THRESH
    kept = []
    for prompt in PROMPTS.values():
        _, single_iou, single = predict(predictor, False, **prompt)
        _, ious, multi = predict(predictor, True, **prompt)
        best = int(np.argmax(ious))
        replaced = np.allclose(single[0], multi[best], atol=1e-6) and np.isclose(single_iou[0], ious[best])
        kept.append(not replaced)
    assert kept == [True, False, False, False], kept  # the point's single mask is stable, the others are not


def test_image_inputs_reads_the_predictors_features(predictor):
    inputs = image_inputs(predictor)
    assert np.array_equal(inputs["image_embed"], predictor.get_image_embedding().numpy())
    assert np.array_equal(inputs["high_res_feats_1"], predictor._features["high_res_feats"][1].numpy())
    assert inputs["high_res_feats_0"].shape[1:] == (predictor.model.hidden_dim // 8, 64, 64)
    with pytest.raises(RuntimeError, match="set_image"):
        image_inputs(SAM2ImagePredictor(predictor.model))


def test_export_leaves_the_model_as_it_was(model):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    wrapper = SAM2OnnxModel(model, multimask_output=False)
    assert wrapper.model is not model and not wrapper.model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.usefixtures("without_onnx")
def test_export_without_onnx_says_what_to_install(model, tmp_path):
    with pytest.raises(ImportError, match="pip install onnx onnxruntime"):
        export_sam2_onnx(model, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
