"""The fast paths (samwidgets.modeling.fast) against the plain modeling code: the same outputs within float
tolerance, the same gradients, the same state dict; and the switch itself.

The comparisons run on ``test_device`` ($SAMWIDGETS_TEST_DEVICE: the CPU by default, CUDA in tests/device/run.sh):
weights and inputs are drawn on the CPU, then moved, so both devices see the same numbers; float tolerances come
from ``tolerance`` (the CPU's own values on the CPU), exact comparisons stay exact."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from on_device import tolerance
from small_configs import CNN_SMALL, SMALL

from samwidgets import CONFIGS, SamPredictor, build_sam, load_default
from samwidgets.data import SceneGenerator
from samwidgets.data.seeds import HELD_OUT_SEED_START
from samwidgets.inference.automatic_mask_generator import SamAutomaticMaskGenerator
from samwidgets.modeling import fast, image_encoder, mask_decoder, sam, transformer
from samwidgets.modeling.fast import (
    FEW_KEYS,
    FastAttention,
    FastBlock,
    FastDecoderAttention,
    FastMaskDecoder,
    FastSam,
    Projections,
    attend,
    enable_fast_paths,
    fast_paths,
    fast_paths_enabled,
    window_partition_filled,
    window_unpartition_cropped,
)
from samwidgets.modeling.image_encoder import Attention, Block, window_partition, window_unpartition

LOGITS_TOL = dict(atol=1e-4, rtol=0)  # on mask logits and IoU predictions, plain vs fast
CASES = ["point", "points_pos_neg", "box", "box_and_point", "refine_with_mask_input"]


def _pair(model):
    """(plain model, fast model): the same weights, in two module trees."""
    fast_model = enable_fast_paths(copy.deepcopy(model))
    return enable_fast_paths(model, False), fast_model


# -- the switch ---------------------------------------------------------------------------------------

def test_switching_on_then_off_restores_the_plain_classes_and_keeps_the_state_dict():
    torch.manual_seed(0)
    model = build_sam(SMALL)
    before = {k: (v.data_ptr(), v.clone()) for k, v in model.state_dict().items()}
    plain_types = [type(m) for m in model.modules()]
    assert not fast_paths_enabled(model) and type(model) is sam.Sam  # built plain

    enable_fast_paths(model)
    assert fast_paths_enabled(model)
    assert type(model) is FastSam and type(model.mask_decoder) is FastMaskDecoder
    block = model.image_encoder.blocks[0]
    assert type(block) is FastBlock and type(block.attn) is FastAttention
    assert type(model.mask_decoder.transformer.final_attn_token_to_image) is FastDecoderAttention
    assert isinstance(model.mask_decoder.transformer.layers[0].self_attn, transformer.Attention)
    after = model.state_dict()
    assert list(after) == list(before)
    for k, v in after.items():  # the very same tensors: nothing copied, nothing re-registered
        assert v.data_ptr() == before[k][0] and torch.equal(v, before[k][1])

    enable_fast_paths(model, False)
    assert [type(m) for m in model.modules()] == plain_types and not fast_paths_enabled(model)
    assert list(model.state_dict()) == list(before)

    with fast_paths(model):
        assert type(model.mask_decoder) is FastMaskDecoder
    assert type(model.mask_decoder) is mask_decoder.MaskDecoder


def test_the_switch_leaves_subclasses_alone():
    class MyAttention(Attention):
        pass

    block = Block(16, 2, 2.0, True, True, 4, (8, 8), 1e-6)
    block.attn.__class__ = MyAttention
    enable_fast_paths(block)
    assert type(block) is FastBlock and type(block.attn) is MyAttention


def test_predictor_turns_the_switch(test_device):
    model = build_sam(SMALL).to(test_device)
    assert SamPredictor(model).fast and fast_paths_enabled(model)
    predictor = SamPredictor(model, fast=False)
    assert not predictor.fast and not fast_paths_enabled(model)
    predictor.set_image(np.zeros((48, 64, 3), np.uint8))
    assert predictor.prepared_image() is None  # the plain decoder has no per-image preparation
    predictor.predict(np.array([[10.0, 20.0]]), np.array([1]))
    assert type(model.mask_decoder) is mask_decoder.MaskDecoder  # still plain after predicting


def test_the_predictor_reuses_the_fast_decoders_preparation(test_device):
    """The predictor asks every decoder the same way (prepare_image, then prepared=): the fast decoder's
    preparation is made once per image, reaches the decoder, and a switch of mode is not answered from the
    other mode's cache."""
    model = build_sam(SMALL).to(test_device)
    predictor = SamPredictor(model, fast=False)
    predictor.set_image(np.zeros((48, 64, 3), np.uint8))
    assert predictor.prepared_image() is None
    SamPredictor(model, fast=True)  # predictors share their model's mode: it now runs the fast paths
    prepared = predictor.prepared_image()
    assert isinstance(prepared, fast.PreparedImage) and predictor.prepared_image() is prepared
    seen = []
    model.mask_decoder.register_forward_pre_hook(lambda m, args, kwargs: seen.append(kwargs.get("prepared")),
                                                 with_kwargs=True)
    predictor.predict(np.array([[10.0, 20.0]]), np.array([1]))
    assert len(seen) == 1 and seen[0] is prepared


# -- (a) the parity fixture: plain, fast and the reference -------------------------------------------

@pytest.fixture(scope="module")
def parity_predictors(parity, tiny_config, test_device):
    """(plain, fast) predictors of the reference-parity model on the test device, its image set."""
    plain, fast_model = _pair(build_sam(tiny_config, parity["state_dict"]).to(test_device))
    predictors = SamPredictor(plain, fast=False), SamPredictor(fast_model, fast=True)
    for p in predictors:
        p.set_image(parity["image"].numpy())
    return predictors


def test_parity_embeddings_plain_and_fast(parity_predictors, parity, test_device):
    plain, fast_p = parity_predictors
    assert not plain.fast and fast_p.fast
    tol = tolerance(test_device, atol=1e-5, rtol=0)
    for p in parity_predictors:
        torch.testing.assert_close(p.get_image_embedding().cpu(), parity["image_embedding"], **tol)
    torch.testing.assert_close(plain.get_image_embedding(), fast_p.get_image_embedding(), **tol)


@pytest.mark.parametrize("case", CASES)
def test_parity_cases_plain_and_fast(parity_predictors, parity, case, test_device):
    """Both paths give the reference's outputs (the tolerances of test_parity) and each other's."""
    ref = parity["cases"][case]
    inputs = {k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in ref["inputs"].items()}
    outs = []
    for p in parity_predictors:
        logits, iou, low_res = p.predict(**inputs, return_logits=True)  # numpy: back on the CPU
        np.testing.assert_allclose(low_res, ref["low_res_logits"].numpy(), **tolerance(test_device, atol=1e-4, rtol=0))
        np.testing.assert_allclose(logits, ref["logits"].numpy(), **tolerance(test_device, atol=1e-4, rtol=0))
        np.testing.assert_allclose(iou, ref["iou_predictions"].numpy(), **tolerance(test_device, atol=1e-5, rtol=0))
        outs.append((logits, iou, low_res))
    for plain_out, fast_out in zip(*outs, strict=True):
        np.testing.assert_allclose(plain_out, fast_out, **tolerance(test_device, **LOGITS_TOL))


def test_parity_sam_forward_plain_and_fast(parity, tiny_config, test_device):
    """Sam.forward, the batched end-to-end API: plain = fast = the reference."""
    plain, fast_model = _pair(build_sam(tiny_config, parity["state_dict"]).to(test_device))
    predictor = SamPredictor(copy.deepcopy(plain), fast=False)  # only for its transform
    hw = tuple(parity["original_size"])
    image = torch.as_tensor(parity["resized_image"].numpy()).permute(2, 0, 1).to(test_device)
    ref_box = parity["cases"]["box"]
    box = predictor.transform.apply_boxes(ref_box["inputs"]["box"].numpy(), hw)
    points = predictor.transform.apply_coords(np.array([[100.0, 62.0], [15.0, 130.0]]), hw)
    batch = [
        {"image": image, "original_size": hw, "boxes": torch.as_tensor(box, dtype=torch.float, device=test_device)},
        {"image": image, "original_size": hw,
         "point_coords": torch.as_tensor(points, dtype=torch.float, device=test_device)[:, None],
         "point_labels": torch.ones(2, 1, dtype=torch.int, device=test_device)},
    ]
    out_plain = plain(batch, multimask_output=False)
    out_fast = fast_model(batch, multimask_output=False)
    np.testing.assert_allclose(out_plain[0]["low_res_logits"][0].cpu().numpy(), ref_box["low_res_logits"].numpy(),
                               **tolerance(test_device, atol=1e-4))
    for a, b in zip(out_plain, out_fast, strict=True):
        torch.testing.assert_close(a["low_res_logits"], b["low_res_logits"], **tolerance(test_device, **LOGITS_TOL))
        torch.testing.assert_close(a["iou_predictions"], b["iou_predictions"], **tolerance(test_device, **LOGITS_TOL))
        assert a["masks"].shape == b["masks"].shape and a["masks"].dtype == torch.bool
    assert out_plain[1]["masks"].shape == (2, 1, *hw)


# -- (b) the bundled model through the predictor ------------------------------------------------------

def _compare_predictors(plain: SamPredictor, fast_p: SamPredictor, image: np.ndarray) -> None:
    """Points, a box, a mask prompt, multimask on and off, batched prompts: the same outputs (on the models' device)."""
    device = plain.device
    logits_tol = tolerance(device, **LOGITS_TOL)
    for p in (plain, fast_p):
        p.set_image(image)
    torch.testing.assert_close(plain.features, fast_p.features, **tolerance(device, atol=1e-5, rtol=1e-5))
    h, w = image.shape[:2]
    points = np.array([[0.3 * w, 0.4 * h], [0.7 * w, 0.6 * h]])
    box = np.array([0.1 * w, 0.2 * h, 0.6 * w, 0.9 * h])

    def both(**kwargs):
        outs = [p.predict(**kwargs, return_logits=True) for p in (plain, fast_p)]
        for a, b in zip(*outs, strict=True):
            np.testing.assert_allclose(a, b, **logits_tol)
        return outs[1]

    for multimask in (True, False):
        both(point_coords=points[:1], point_labels=np.array([1]), multimask_output=multimask)
        both(point_coords=points, point_labels=np.array([1, 0]), multimask_output=multimask)
        both(box=box, multimask_output=multimask)
        _, _, low_res = both(point_coords=points[:1], point_labels=np.array([1]), box=box,
                             multimask_output=multimask)
        both(point_coords=points[1:], point_labels=np.array([1]), mask_input=low_res[:1],
             multimask_output=multimask)

    # several prompts in one batch (prompts in the resized frame), with and without boxes and masks
    coords = torch.as_tensor(plain.transform.apply_coords(points, (h, w)), dtype=torch.float,
                             device=device)[:, None]  # 2 x 1 x 2
    labels = torch.ones(2, 1, dtype=torch.int, device=device)
    boxes = torch.as_tensor(plain.transform.apply_boxes(np.stack([box, box / 2]), (h, w)), dtype=torch.float,
                            device=device)
    s = plain.model.config.low_res_mask_size
    masks_in = torch.randn(2, 1, s, s, generator=torch.Generator().manual_seed(0)).to(device)
    batches = [dict(point_coords=coords, point_labels=labels),
               dict(point_coords=None, point_labels=None, boxes=boxes),
               dict(point_coords=coords, point_labels=labels, boxes=boxes, mask_input=masks_in)]
    for kwargs in batches:
        for multimask in (True, False):
            outs = [p.predict_torch(**kwargs, multimask_output=multimask, return_logits=True) for p in (plain, fast_p)]
            for a, b in zip(*outs, strict=True):
                torch.testing.assert_close(a, b, **logits_tol)


def test_bundled_model_plain_and_fast_predictors_agree(test_device):
    plain, fast_model = _pair(load_default(test_device))
    image = SceneGenerator(image_size=256)(HELD_OUT_SEED_START).image[:192]  # landscape: the encoder pads
    _compare_predictors(SamPredictor(plain, fast=False), SamPredictor(fast_model), np.ascontiguousarray(image))


def test_cnn_model_with_high_res_features_and_dense_prompts_plain_and_fast_agree(test_device):
    """The CNN encoder's packed early features and points drawn into the dense embedding, both paths."""
    torch.manual_seed(0)
    model = build_sam(CNN_SMALL.replace(dense_prompts=True)).eval()
    with torch.no_grad():  # non-zero dense-prompt vectors, so the points really change the dense embedding
        model.prompt_encoder.dense_prompt_embed.weight.normal_()
    plain, fast_model = _pair(model.to(test_device))
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    _compare_predictors(SamPredictor(plain, fast=False), SamPredictor(fast_model), image)


def test_decode_tokens_then_masks_of_rows_plain_and_fast(test_device):
    """The automatic mask generator's two-step decoding: decode all prompts, upscale some rows."""
    torch.manual_seed(0)
    for config in (SMALL, CNN_SMALL):
        plain, fast_model = _pair(build_sam(config).eval().to(test_device))
        with torch.no_grad():
            emb = plain.image_encoder(torch.randn(1, 3, 64, 64).to(test_device))
            coords = (torch.rand(5, 1, 2) * 64).to(test_device)
            labels = torch.ones(5, 1, dtype=torch.int, device=test_device)
            rows = torch.tensor([0, 3, 4], device=test_device)
            out = []
            for model in (plain, fast_model):
                sparse, dense = model.prompt_encoder(points=(coords, labels), boxes=None, masks=None)
                decoder = model.mask_decoder
                decoded = decoder.decode_tokens(emb, model.prompt_encoder.get_dense_pe(), sparse, dense)
                out.append((decoded.iou_pred, decoder.masks_of(decoded, rows), decoder.masks_of(decoded)))
        for a, b in zip(*out, strict=True):
            torch.testing.assert_close(a, b, **tolerance(test_device, **LOGITS_TOL))
        torch.testing.assert_close(out[0][1], out[0][2][rows])


def test_automatic_mask_generator_in_both_modes(test_device):
    """The generator's predictor is fast; switched to plain, it runs the plain decoder: the same predictions."""
    torch.manual_seed(0)
    model = build_sam(SMALL).eval().to(test_device)
    kwargs = dict(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    plain_gen = SamAutomaticMaskGenerator(copy.deepcopy(model), **kwargs)
    enable_fast_paths(plain_gen.predictor.model, False)
    fast_gen = SamAutomaticMaskGenerator(model, **kwargs)
    assert fast_gen.predictor.fast and not plain_gen.predictor.fast
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    points = np.array([[10.0, 20.0], [40.0, 30.0], [60.0, 5.0]])
    outs = []
    for generator in (plain_gen, fast_gen):
        generator.predictor.set_image(image)
        logits, rows, iou = generator._low_res_predictions(points, (48, 64))
        assert logits.shape == (9, 32, 32) and rows.tolist() == list(range(9)) and iou.shape == (9,)
        outs.append((logits, iou))
        assert isinstance(generator.generate(image), list)
    for a, b in zip(*outs, strict=True):
        torch.testing.assert_close(a, b, **tolerance(test_device, **LOGITS_TOL))


# -- (c) unit-level equivalences ------------------------------------------------------------------------

@pytest.mark.parametrize("num_keys", [1, 5, 7, FEW_KEYS, FEW_KEYS + 1, 64])
@pytest.mark.parametrize("batch_q, batch_k", [(1, 1), (3, 3), (1, 3)])
def test_attention_over_few_keys_equals_sdpa(num_keys, batch_q, batch_k, test_device):
    torch.manual_seed(num_keys)
    q = torch.randn(batch_q, 4, 256, 16).to(test_device).expand(max(batch_q, batch_k), -1, -1, -1)  # B x heads x Nq x c
    k = torch.randn(batch_k, 4, num_keys, 16).to(test_device)
    v = torch.randn(batch_k, 4, num_keys, 16).to(test_device)
    torch.testing.assert_close(attend(q, k, v), F.scaled_dot_product_attention(q, k, v),
                               **tolerance(test_device, atol=2e-6, rtol=1e-5))


@pytest.mark.parametrize("batch_q, batch_k", [(3, 3), (1, 3), (3, 1)])
def test_decoder_attention_with_a_shared_side_equals_the_plain_per_prompt_attention(batch_q, batch_k, test_device):
    """A batch-1 side (the image shared by all prompts) against the plain attention on copies of it."""
    torch.manual_seed(0)
    plain = transformer.Attention(32, 4, downsample_rate=2).to(test_device)
    fast_attn = enable_fast_paths(copy.deepcopy(plain))
    q, k = torch.randn(batch_q, 300, 32).to(test_device), torch.randn(batch_k, 7, 32).to(test_device)
    b = max(batch_q, batch_k)
    expected = plain(q.expand(b, -1, -1), k.expand(b, -1, -1), k.expand(b, -1, -1))
    tol = tolerance(test_device, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast_attn(q, k, k), expected, **tol)
    projected = Projections(k=fast_attn.project(k, "k"))  # an input projected beforehand gives the same
    torch.testing.assert_close(fast_attn(q, None, k, projected=projected), expected, **tol)


@pytest.mark.parametrize("direction", ["tokens_to_image", "image_to_tokens", "image_to_tokens_prepared"])
@pytest.mark.parametrize("batch_q, batch_k", [(1, 1), (2, 2), (1, 2), (2, 1)])
def test_few_tokens_meet_the_image_without_projecting_it(direction, batch_q, batch_k, test_device):
    """The folded projections (the image's 4096 tokens never projected) equal the plain attention."""
    torch.manual_seed(1)
    plain = transformer.Attention(256, 8, downsample_rate=2).to(test_device)  # the decoder's cross-attention widths
    fast_attn = enable_fast_paths(copy.deepcopy(plain))
    tokens, image = torch.randn(batch_q, 7, 256), torch.randn(batch_k, 1024, 256)
    if direction != "tokens_to_image":
        tokens, image = torch.randn(batch_k, 7, 256), torch.randn(batch_q, 1024, 256)
    tokens, image = tokens.to(test_device), image.to(test_device)
    b = max(batch_q, batch_k)
    if direction == "tokens_to_image":  # queries: the tokens; keys and values: the image
        expected = plain(tokens.expand(b, -1, -1), image.expand(b, -1, -1), image.expand(b, -1, -1))
        got = fast_attn(tokens, image, image)
    else:  # queries: the image; keys and values: the tokens
        expected = plain(image.expand(b, -1, -1), tokens.expand(b, -1, -1), tokens.expand(b, -1, -1))
        projected = Projections(q=fast_attn.project(image, "q")) if direction.endswith("prepared") else None
        got = fast_attn(None if projected else image, tokens, tokens, projected=projected)
    torch.testing.assert_close(got, expected, **tolerance(test_device, atol=2e-5, rtol=1e-5))


def test_the_folds_are_the_paths_taken_for_one_prompt(monkeypatch, test_device):
    """A single-point predict on a vit-sized decoder runs both folds (not the projecting path)."""
    calls = []
    for name in ("_tokens_to_image", "_image_to_tokens"):
        original = getattr(FastDecoderAttention, name)
        monkeypatch.setattr(FastDecoderAttention, name,
                            lambda self, *a, _f=original, _n=name: calls.append(_n) or _f(self, *a))
    predictor = SamPredictor(load_default(test_device))
    predictor.set_image(np.zeros((64, 64, 3), np.uint8))
    predictor.predict(np.array([[20, 30]]), np.array([1]))
    assert {"_tokens_to_image", "_image_to_tokens"} <= set(calls)


@pytest.mark.parametrize("hw", [(8, 8), (7, 9), (12, 5)])
@pytest.mark.parametrize("block_tokens", [1024, 9, 1])
def test_fast_global_attention_equals_plain(hw, block_tokens, test_device):
    """SDPA with the rel-pos bias as attn_mask, in blocks of query rows, equals the explicit softmax."""
    torch.manual_seed(0)
    plain = Attention(16, 2, qkv_bias=True, use_rel_pos=True, input_size=(8, 8))
    with torch.no_grad():
        plain.rel_pos_h.normal_()
        plain.rel_pos_w.normal_()
    plain.to(test_device)
    fast_attn = enable_fast_paths(copy.deepcopy(plain))
    fast_attn.query_block_tokens = block_tokens
    x = torch.randn(2, *hw, 16).to(test_device)
    with torch.no_grad():
        torch.testing.assert_close(fast_attn(x), plain(x), **tolerance(test_device, rtol=1e-5, atol=1e-5))


@pytest.mark.parametrize("hw", [(7, 9), (10, 10), (4, 11)])
def test_windowed_attention_with_bias_fill_equals_zero_padding_then_attending(hw, test_device):
    torch.manual_seed(0)
    block = Block(dim=16, num_heads=2, mlp_ratio=2.0, qkv_bias=True, use_rel_pos=True, window_size=5,
                  input_size=(12, 12), eps=1e-6).eval()
    with torch.no_grad():
        block.attn.qkv.bias.normal_()  # a non-zero bias: the padded tokens' q, k, v
        block.attn.rel_pos_h.normal_()
        block.attn.rel_pos_w.normal_()
    block.to(test_device)
    fast_block = enable_fast_paths(copy.deepcopy(block))
    x = torch.randn(2, *hw, 16).to(test_device)  # B x H x W x D
    tol = tolerance(test_device, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        normed = block.norm1(x)
        windows, pad_hw = window_partition(normed, 5)  # the plain path: zero padding
        expected = window_unpartition(block.attn(windows), 5, pad_hw, hw)
        torch.testing.assert_close(fast_block._windowed_attention(normed), expected, **tol)
        torch.testing.assert_close(fast_block(x), block(x), **tol)


def test_window_partition_filled(test_device):
    x = torch.ones(1, 3, 3, 2, device=test_device)
    windows, pad_hw = window_partition_filled(x, 2, torch.tensor([5.0, 7.0], device=test_device))
    assert pad_hw == (4, 4) and windows.shape == (4, 2, 2, 2)
    assert windows[3, 1, 1].tolist() == [5.0, 7.0] and windows[0, 0, 0].tolist() == [1.0, 1.0]
    torch.testing.assert_close(window_unpartition(windows, 2, pad_hw, (3, 3)), x)
    zeros, _ = window_partition_filled(x, 2, torch.zeros(2, device=test_device))
    assert torch.equal(zeros, window_partition(x, 2)[0])


@pytest.mark.parametrize("hw", [(14, 14), (64, 64), (13, 5), (5, 13), (15, 29), (3, 3)])
def test_one_pass_windows_equal_padding_then_permuting(hw, test_device):
    """window_partition_filled / window_unpartition_cropped against the plain pad-permute-reshape-crop."""
    torch.manual_seed(0)
    x = torch.randn(2, *hw, 6).to(test_device)
    fill = torch.randn(6).to(test_device)
    padded = fill.expand(2, -(-hw[0] // 7) * 7, -(-hw[1] // 7) * 7, 6).clone()
    padded[:, : hw[0], : hw[1]] = x
    expected, pad_hw = window_partition(padded, 7)
    windows, got_pad = window_partition_filled(x, 7, fill)
    assert got_pad == pad_hw and torch.equal(windows, expected)
    assert torch.equal(window_unpartition_cropped(windows, 7, pad_hw, hw), window_unpartition(windows, 7, pad_hw, hw))
    assert torch.equal(window_unpartition_cropped(windows, 7, pad_hw, hw), x)


@pytest.mark.parametrize("config", [SMALL, CONFIGS["default_tiny"], CONFIGS["default_cnn"]],
                         ids=["small", "default_tiny", "default_cnn"])
@pytest.mark.parametrize("input_hw", [None, (0.75, 1.0), (1.0, 0.15), (1, 5), (-1, -3)])
@pytest.mark.parametrize("resize", [False, True])
def test_upsampling_only_the_kept_rows_changes_no_value(config, input_hw, resize, test_device):
    """FastSam.postprocess_masks upsamples only the low-res rows/columns the crop reads: bit-identical to the
    plain (the reference's) upsample-everything-then-crop-then-resize, on every device."""
    size, low = config.image_size, config.low_res_mask_size
    if input_hw is None:
        h, w = size, size
    elif isinstance(input_hw[0], float):
        h, w = int(size * input_hw[0]), int(size * input_hw[1])
    elif input_hw[0] < 0:
        h, w = size + input_hw[0], size + input_hw[1]
    else:
        h, w = input_hw
    original = (2 * h + 1, w + 3) if resize else (h, w)
    plain, fast_model = _pair(build_sam(config).to(test_device))
    logits = torch.randn(2, 3, low, low).to(test_device)
    expected = plain.postprocess_masks(logits, (h, w), original)
    assert torch.equal(fast_model.postprocess_masks(logits, (h, w), original), expected)
    if not resize:
        reference = F.interpolate(logits, (size, size), mode="bilinear", align_corners=False)[..., :h, :w]
        assert torch.equal(expected, reference)


# -- (d) gradients ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("config", [SMALL.replace(window_size=3), CNN_SMALL.replace(dense_prompts=True)],
                         ids=["vit_padded_windows", "cnn_high_res_dense_prompts"])
def test_gradients_plain_and_fast_agree(config, test_device):
    """A loss on the mask decoder's outputs, backpropagated through the whole model: the same gradients."""
    torch.manual_seed(0)
    model = build_sam(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "rel_pos" in name or "qkv.bias" in name or "dense_prompt_embed" in name:
                p.normal_(std=0.5)  # non-zero: the padding's q, k, v and the rel-pos bias matter
    plain, fast_model = _pair(model.to(test_device))
    pixels = torch.randn(2, 3, 64, 64).to(test_device)
    coords = (torch.rand(2, 2, 2) * 64).to(test_device)
    labels = torch.tensor([[1, 0], [1, 1]], device=test_device)
    grads, outs = [], []
    for m in (plain, fast_model):
        m.train()
        emb = m.image_encoder(pixels)  # 2 x C x h x w: one image per prompt, as the training code passes
        sparse, dense = m.prompt_encoder(points=(coords, labels), boxes=None, masks=None)
        low_res, iou = m.mask_decoder(emb, m.prompt_encoder.get_dense_pe(), sparse, dense, multimask_output=True)
        ramp = torch.linspace(-1, 1, low_res.shape[-1], device=test_device)
        loss = (low_res.sigmoid() * ramp).sum() + iou.square().sum()
        loss.backward()
        outs.append((low_res.detach(), iou.detach()))
        grads.append({n: p.grad for n, p in m.named_parameters() if p.grad is not None})
    for a, b in zip(*outs, strict=True):
        torch.testing.assert_close(a, b, **tolerance(test_device, **LOGITS_TOL))
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 0
    for name, g in grads[0].items():
        scale = max(1.0, float(g.abs().max()))
        torch.testing.assert_close(grads[1][name], g, **tolerance(test_device, atol=1e-4 * scale, rtol=1e-4), msg=name)


def test_concurrent_encodes_do_not_share_bias_buffers(test_device):
    """Two threads encoding at once with one model (the widget prefetches in a thread) get their own scratch."""
    import threading

    torch.manual_seed(0)
    model = enable_fast_paths(build_sam(SMALL).to(test_device))
    images = [torch.randn(1, 3, SMALL.image_size, SMALL.image_size).to(test_device) for _ in range(4)]
    with torch.no_grad():
        expected = [model.image_encoder(x) for x in images]
        results: dict[int, torch.Tensor] = {}

        def encode(i: int) -> None:
            for _ in range(5):
                results[i] = model.image_encoder(images[i])

        threads = [threading.Thread(target=encode, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for i in range(4):
        torch.testing.assert_close(results[i], expected[i], **tolerance(test_device, atol=1e-5, rtol=1e-5))
    assert getattr(fast._encoder_scratch, "buffers", None) is None  # nothing kept after the encodes


def test_fast_module_holds_every_fast_class():
    """Every plain class with a fast twin is listed in the switch, and each twin subclasses its plain class."""
    for plain_cls, fast_cls in fast.FAST_CLASSES.items():
        assert issubclass(fast_cls, plain_cls)
        assert not {"__init__"} & set(vars(fast_cls))  # no state of its own: the same parameters and buffers
    assert {image_encoder.Attention, image_encoder.Block, sam.Sam} <= set(fast.FAST_CLASSES)
