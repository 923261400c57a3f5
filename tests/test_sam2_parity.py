"""samwidgets.sam2 against the reference package sam2 1.1.0: the same outputs for the same weights and inputs.

The expected values were recorded by tests/record/record_sam2_parity.py with the reference:

- ``sam2_parity_small.pt``: a small model (sam2.1_hiera_t shrunk by Hydra overrides, which the test passes to
  samwidgets' build_sam2 unchanged), its state dict, and the reference predictor's outputs for many prompts;
- ``sam2_parity_tiny.pt``: sam2.1_hiera_t at its real size, with weights that both sides make from the official
  key list (``tests/data/sam2.1_hiera_t_state_dict.txt``) by :func:`portable_random_weights`.

Tolerances: logits and scores 1e-4, embeddings 1e-5 (absolute); 0/1 masks equal wherever |logit| > 1e-3.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from random_weights import portable_random_weights, read_shapes, test_image
from sam2_small import float_state_dict

from samwidgets.sam2 import SAM2ImagePredictor, VideoWeightsIgnoredWarning, build_sam2

DATA = Path(__file__).parent / "data"
LOGIT_ATOL = 1e-4
EMBED_ATOL = 1e-5



def max_diff(ours, reference) -> float:
    ours, reference = torch.as_tensor(np.asarray(ours)), torch.as_tensor(np.asarray(reference))
    assert ours.shape == reference.shape, f"shape {tuple(ours.shape)} != reference {tuple(reference.shape)}"
    return float((ours.double() - reference.double()).abs().max()) if ours.numel() else 0.0


def assert_masks_match(masks: np.ndarray, reference_masks: torch.Tensor, reference_logits: torch.Tensor,
                       every: int = 1) -> None:
    """0/1 masks equal to the reference's wherever the reference's logit is clearly away from 0."""
    masks = torch.from_numpy(masks)[..., ::every, ::every]
    reference_masks = reference_masks[..., ::every, ::every]
    assert masks.shape == reference_masks.shape
    clear = reference_logits.abs() > 1e-3
    assert torch.equal(masks.bool()[clear], reference_masks[clear])


def check_case(predictor: SAM2ImagePredictor, expected: dict, low_res_every: int, logits_every: int = 1) -> dict:
    """Run one recorded predict() case both ways (masks and logits) and compare; returns the max differences."""
    masks, iou, low_res = predictor.predict(**expected["inputs"])
    logits, iou_l, low_res_l = predictor.predict(**expected["inputs"], return_logits=True)
    assert masks.dtype == np.float32 and logits.dtype == np.float32 and iou.dtype == np.float32
    assert str(masks.dtype) == expected["masks_dtype"]
    ref_logits = expected["logits"] if "logits" in expected else expected[f"logits_every{logits_every}"]
    diffs = {
        "logits": max_diff(logits[..., ::logits_every, ::logits_every], ref_logits),
        "iou": max_diff(iou, expected["iou_predictions"]),
        "low_res": max_diff(low_res[..., ::low_res_every, ::low_res_every], expected[f"low_res_every{low_res_every}"]),
    }
    assert diffs["logits"] < LOGIT_ATOL and diffs["iou"] < LOGIT_ATOL and diffs["low_res"] < LOGIT_ATOL, diffs
    assert np.array_equal(iou, iou_l) and np.array_equal(low_res, low_res_l)
    assert masks.shape == tuple(expected["masks"].shape)
    assert_masks_match(masks[..., ::logits_every, ::logits_every], expected["masks"][..., ::logits_every,
                                                                                      ::logits_every], ref_logits)
    return diffs


# ---- the small model --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_model(small):
    """samwidgets' build_sam2 with the reference's own arguments: base config, Hydra overrides, checkpoint."""
    state_dict = float_state_dict(small)
    with pytest.warns(VideoWeightsIgnoredWarning):
        model = build_sam2(small["base_config"], {"model": state_dict}, device="cpu",
                           hydra_overrides_extra=small["overrides"])
    assert model.sam_mask_decoder.dynamic_multimask_via_stability == small["dynamic_multimask_via_stability"]
    return model


@pytest.fixture(scope="module")
def small_predictor(small, small_model) -> SAM2ImagePredictor:
    predictor = SAM2ImagePredictor(small_model)
    predictor.set_image(small["image"].numpy())
    return predictor


def test_small_image_features(small, small_model, small_predictor):
    """Transform, trunk + neck (each level, and the sine encodings), conv_s0/s1, no_mem_embed."""
    image = small["image"].numpy()
    input_image = small_predictor._transforms(image)[None]
    backbone = small["backbone"]
    assert max_diff(input_image[..., ::4, ::4], backbone["input_image_every4"]) < 1e-6
    assert max_diff(input_image[0].mean(dim=(1, 2)), backbone["input_image_stats"]["mean"]) < 1e-6
    with torch.no_grad():
        out = small_model.forward_image(input_image)
    for ours, ref in zip(out["backbone_fpn"], backbone["backbone_fpn"], strict=True):
        assert max_diff(ours, ref) < EMBED_ATOL
    for ours, ref in zip(out["vision_pos_enc"], backbone["vision_pos_enc_every8"], strict=True):
        assert max_diff(ours[:, ::4, ::8, ::8], ref) < 1e-6
    features = small_predictor._features
    assert max_diff(small_predictor.get_image_embedding(), small["features"]["image_embed"]) < EMBED_ATOL
    for ours, ref in zip(features["high_res_feats"], small["features"]["high_res_feats"], strict=True):
        assert max_diff(ours, ref) < EMBED_ATOL


@pytest.mark.parametrize("case", ["point", "point_single", "points_pos_neg", "box", "box_and_point", "boxes_batch",
                                  "boxes_batch_with_points", "normalized_coords", "no_prompt",
                                  "refine_with_mask_input", "mask_input_only"])
def test_small_predict(small, small_predictor, case):
    diffs = check_case(small_predictor, small["cases"][case], low_res_every=2)
    print(f"{case}: {diffs}")


def test_small_predict_batch(small, small_model):
    batch = small["batch"]
    predictor = SAM2ImagePredictor(small_model)
    predictor.set_image_batch([image.numpy() for image in batch["images"]])
    assert max_diff(predictor.get_image_embedding(), batch["image_embed"]) < EMBED_ATOL
    masks, ious, low_res = predictor.predict_batch(**batch["inputs"])
    logits, _, _ = predictor.predict_batch(**batch["inputs"], return_logits=True)
    assert len(masks) == len(ious) == len(low_res) == 2
    for i in range(2):
        assert max_diff(logits[i], batch["logits"][i]) < LOGIT_ATOL
        assert max_diff(ious[i], batch["iou_predictions"][i]) < LOGIT_ATOL
        assert max_diff(low_res[i][..., ::2, ::2], batch["low_res_every2"][i]) < LOGIT_ATOL
        assert_masks_match(masks[i], batch["masks"][i], batch["logits"][i])
    with pytest.raises(RuntimeError, match="set_image_batch"):
        small_predictor_single = SAM2ImagePredictor(small_model)
        small_predictor_single.set_image(batch["images"][0].numpy())
        small_predictor_single.predict_batch(**batch["inputs"])


def test_small_large_image_is_downsampled_with_antialiasing(small, small_model):
    """A 300 x 280 image into a 256 px model: the resize shrinks it (antialiasing matters only then)."""
    large = small["large_image"]
    image = test_image(300, 280, seed=14)
    assert image.shape == tuple(large["shape"]) and int(image.astype(np.int64).sum()) == large["pixel_sum"]
    predictor = SAM2ImagePredictor(small_model)
    predictor.set_image(image)
    assert max_diff(predictor.get_image_embedding(), large["image_embed"]) < EMBED_ATOL
    logits, iou, low_res = predictor.predict(**large["inputs"], return_logits=True)
    assert max_diff(logits[..., ::8, ::8], large["logits_every8"]) < LOGIT_ATOL
    assert max_diff(iou, large["iou_predictions"]) < LOGIT_ATOL
    assert max_diff(low_res[..., ::2, ::2], large["low_res_every2"]) < LOGIT_ATOL


def test_small_pil_image_gives_the_same_embedding(small, small_predictor):
    from PIL import Image

    predictor = SAM2ImagePredictor(small_predictor.model)
    predictor.set_image(Image.fromarray(small["image"].numpy()))
    assert predictor._orig_hw == small_predictor._orig_hw
    assert torch.equal(predictor.get_image_embedding(), small_predictor.get_image_embedding())


def test_small_forward_sam_heads_gates_masks_by_object_score(small, small_model, small_predictor):
    """SAM2Base.forward_sam_heads (the reference's _forward_sam_heads): where the object score is negative,
    every mask logit is -1024."""
    inputs = small["heads_inputs"]
    embed = small_predictor._features["image_embed"].expand(4, -1, -1, -1)
    high_res = [f.expand(4, -1, -1, -1) for f in small_predictor._features["high_res_feats"]]
    points = {"point_coords": inputs["point_coords"], "point_labels": inputs["point_labels"]}
    for variant, kwargs in (("points_multi", dict(multimask_output=True)),
                            ("points_and_mask_single",
                             dict(multimask_output=False, mask_inputs=inputs["mask_inputs"]))):
        expected = small["heads"][variant]
        with torch.no_grad():
            low_multi, high_multi, ious, low_best, _, scores = small_model.forward_sam_heads(
                embed, point_inputs=points, high_res_features=high_res, **kwargs)
        assert max_diff(scores, expected["object_score_logits"]) < LOGIT_ATOL
        assert max_diff(ious, expected["ious"]) < LOGIT_ATOL
        assert max_diff(low_multi[..., ::2, ::2], expected["low_res_multimasks_every2"]) < LOGIT_ATOL
        assert max_diff(high_multi[..., ::16, ::16], expected["high_res_every16"]) < LOGIT_ATOL
        assert max_diff(low_best[..., ::2, ::2], expected["low_res_masks_every2"]) < LOGIT_ATOL
    # the fixture does show the gating: two prompts with an object, two without
    gated = (small["heads"]["points_multi"]["low_res_multimasks_every2"] == -1024).flatten(1).all(dim=1)
    assert gated.tolist() == (small["heads"]["points_multi"]["object_score_logits"].flatten() <= 0).tolist()
    assert 0 < int(gated.sum()) < 4


# ---- sam2.1_hiera_t at its real size ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny() -> dict:
    return torch.load(DATA / "sam2_parity_tiny.pt", weights_only=False)


@pytest.fixture(scope="module")
def tiny_predictor(tiny) -> SAM2ImagePredictor:
    """The official key list (video keys included) with portable random weights, loaded strictly."""
    weights = portable_random_weights(read_shapes(DATA / "sam2.1_hiera_t_state_dict.txt"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = build_sam2(tiny["config"], {"model": weights}, device="cpu")
    assert [w.category for w in caught] == [VideoWeightsIgnoredWarning]
    assert "video is out of scope" in str(caught[0].message)
    predictor = SAM2ImagePredictor(model)
    predictor.set_image(tiny["image"].numpy())
    return predictor


def test_tiny_image_features(tiny, tiny_predictor):
    embed = tiny_predictor.get_image_embedding()
    s0, s1 = tiny_predictor._features["high_res_feats"]
    assert tuple(embed.shape) == (1, 256, 64, 64) and tuple(s0.shape) == (1, 32, 256, 256) \
        and tuple(s1.shape) == (1, 64, 128, 128)
    for name, ours, step in (("image_embed", embed, 8), ("feat_s0", s0, 16), ("feat_s1", s1, 8)):
        assert max_diff(ours[..., ::step, ::step], tiny[f"{name}_every{step}"]) < EMBED_ATOL, name
        stats = tiny[f"{name}_stats"]
        assert max_diff(ours[0].mean(dim=(1, 2)), stats["mean"]) < EMBED_ATOL, name
        assert max_diff(ours[0].std(dim=(1, 2)), stats["std"]) < EMBED_ATOL, name


@pytest.mark.parametrize("case", ["point", "box_and_negative_point", "two_boxes", "points_pos_neg"])
def test_tiny_predict(tiny, tiny_predictor, case):
    diffs = check_case(tiny_predictor, tiny["cases"][case], low_res_every=4, logits_every=2)
    print(f"{case}: {diffs}")
