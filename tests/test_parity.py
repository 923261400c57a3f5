"""samwidgets gives the reference implementation's outputs for the same weights and inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from samwidgets import CONFIGS, Sam, SamPredictor
from samwidgets.inference.transforms import ResizeLongestSide

DATA = Path(__file__).parent / "data"

CASES = ["point", "points_pos_neg", "box", "box_and_point", "refine_with_mask_input"]


def _numpy_inputs(inputs: dict) -> dict:
    return {k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}


def test_resize_matches_reference(parity):
    resized = ResizeLongestSide(1024).apply_image(parity["image"].numpy())
    assert resized.shape[:2] == tuple(parity["input_size"])
    np.testing.assert_array_equal(resized, parity["resized_image"].numpy())


def test_image_embedding_matches_reference(tiny_predictor, parity):
    assert tiny_predictor.input_size == tuple(parity["input_size"])
    assert tiny_predictor.original_size == tuple(parity["original_size"])
    torch.testing.assert_close(tiny_predictor.get_image_embedding(), parity["image_embedding"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("case", CASES)
def test_predict_matches_reference(tiny_predictor, parity, case):
    ref = parity["cases"][case]
    inputs = _numpy_inputs(ref["inputs"])
    masks, iou, low_res = tiny_predictor.predict(**inputs)
    logits, _, _ = tiny_predictor.predict(**inputs, return_logits=True)

    assert masks.dtype == np.bool_ and iou.dtype == np.float32 and low_res.dtype == np.float32
    assert logits.dtype == np.float32
    assert masks.shape == tuple(ref["masks"].shape)
    np.testing.assert_allclose(low_res, ref["low_res_logits"].numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(logits, ref["logits"].numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(iou, ref["iou_predictions"].numpy(), atol=1e-5, rtol=0)
    decided = np.abs(ref["logits"].numpy()) > 1e-3
    np.testing.assert_array_equal(masks[decided], ref["masks"].numpy()[decided])


def test_predict_torch_batch_equals_single_calls(tiny_predictor, parity):
    """Two prompts in one batched call give what two single calls give."""
    pts = np.array([[100.0, 62.0], [15.0, 130.0]])
    coords = torch.as_tensor(tiny_predictor.transform.apply_coords(pts, tiny_predictor.original_size),
                             dtype=torch.float)[:, None, :]  # 2 x 1 x 2
    labels = torch.ones(2, 1, dtype=torch.int)
    masks, iou, low = tiny_predictor.predict_torch(coords, labels, multimask_output=True)
    assert masks.shape == (2, 3, 150, 200) and iou.shape == (2, 3) and low.shape == (2, 3, 256, 256)
    for i in range(2):
        _, iou_i, low_i = tiny_predictor.predict(pts[i : i + 1], np.array([1]))
        np.testing.assert_allclose(low[i].numpy(), low_i, atol=1e-5)
        np.testing.assert_allclose(iou[i].numpy(), iou_i, atol=1e-6)


def test_sam_forward_batched_api_matches_predictor(tiny_sam, tiny_predictor, parity):
    ref = parity["cases"]["box"]
    box = tiny_predictor.transform.apply_boxes(ref["inputs"]["box"].numpy(), tiny_predictor.original_size)
    image = torch.as_tensor(parity["resized_image"].numpy()).permute(2, 0, 1)
    out = tiny_sam([{"image": image, "original_size": (150, 200), "boxes": torch.as_tensor(box, dtype=torch.float)}],
                   multimask_output=False)[0]
    np.testing.assert_allclose(out["low_res_logits"][0].numpy(), ref["low_res_logits"].numpy(), atol=1e-4)
    assert out["masks"].dtype == torch.bool and out["masks"].shape == (1, 1, 150, 200)


def _reference_keys(name: str) -> dict[str, tuple[int, ...]]:
    keys = {}
    for line in (DATA / f"sam_{name}_state_dict.txt").read_text().splitlines():
        key, shape = line.split("\t")
        keys[key] = tuple(int(s) for s in shape.strip("()").split(",") if s.strip())
    return keys


@pytest.mark.parametrize("name", ["vit_b", "vit_l", "vit_h"])
def test_official_configs_have_the_official_keys_and_shapes(name):
    """Every key and shape of the official checkpoints, nothing more (strict loading)."""
    with torch.device("meta"):
        model = Sam(CONFIGS[name])
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == _reference_keys(name)


@pytest.mark.parametrize("name", ["vit_b", "vit_l", "vit_h"])
def test_official_state_dict_loads_strictly(name):
    """A state dict with exactly the official keys and shapes loads with strict=True."""
    state_dict = {k: torch.zeros(shape, device="meta") for k, shape in _reference_keys(name).items()}
    with torch.device("meta"):
        model = Sam(CONFIGS[name])
    result = model.load_state_dict(state_dict, strict=True, assign=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_registry_matches_reference_names():
    from samwidgets import sam_model_registry

    assert set(sam_model_registry) >= {"default", "vit_b", "vit_l", "vit_h"}


def test_predictor_uses_model_device_and_dtype(tiny_sam):
    predictor = SamPredictor(tiny_sam)
    assert predictor.device == torch.device("cpu")
