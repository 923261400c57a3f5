"""The convolutional encoder (recipes/bsds_cnn) and its high-resolution features in the mask decoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from small_configs import CNN_SMALL

from samwidgets import SamConfig, SamPredictor, build_sam
from samwidgets.modeling import encoder_flops
from samwidgets.modeling.image_encoder_cnn import pack_high_res, split_image_embedding, unpack_high_res


def test_pack_unpack_is_the_decoders_pixel_layout():
    c, h, w = 3, 2, 5
    features = torch.arange(c * 4 * h * 4 * w, dtype=torch.float32).reshape(1, c, 4 * h, 4 * w)
    packed = pack_high_res(features)
    assert packed.shape == (1, 16 * c, h, w)
    layout = unpack_high_res(packed)  # 1 x h x w x 2 x 2 x 2 x 2 x c
    for y, x, i1, j1, i2, j2, ch in [(0, 0, 0, 0, 0, 0, 0), (1, 4, 1, 0, 1, 1, 2), (1, 2, 0, 1, 1, 0, 1)]:
        assert layout[0, y, x, i1, j1, i2, j2, ch] == features[0, ch, 4 * y + 2 * i1 + i2, 4 * x + 2 * j1 + j2]


def test_cnn_encoder_shapes_and_split():
    torch.manual_seed(0)
    model = build_sam(CNN_SMALL)
    out = model.image_encoder(torch.zeros(2, 3, 64, 64))
    assert out.shape == (2, 3 * 32, 4, 4)  # embedding + packed 1/4-resolution features
    embedding, high_res = split_image_embedding(out, CNN_SMALL)
    assert embedding.shape == (2, 32, 4, 4) and high_res.shape == (2, 64, 4, 4)
    with pytest.raises(ValueError, match="another model"):
        split_image_embedding(out[:, :32], CNN_SMALL)
    assert encoder_flops(CNN_SMALL) > 0


@torch.no_grad()
def test_forward_is_the_head_of_the_trunk():
    """forward = head(*trunk(x)) exactly, and head_modules() and the trunk (stem, stages) share out the weights."""
    torch.manual_seed(0)
    for config in (CNN_SMALL, CNN_SMALL.replace(high_res_features=False)):
        encoder = build_sam(config).image_encoder
        x = torch.randn(2, 3, 64, 64)
        f4, f8, f16, f32 = encoder.trunk(x)
        assert [tuple(f.shape) for f in (f4, f8, f16, f32)] == [(2, 8, 16, 16), (2, 16, 8, 8), (2, 16, 4, 4),
                                                                (2, 32, 2, 2)]
        assert torch.equal(encoder(x), encoder.head(f4, f8, f16, f32))
        head = {id(p) for m in encoder.head_modules() for p in m.parameters()}
        trunk = {id(p) for m in (encoder.stem, encoder.stages) for p in m.parameters()}
        assert not head & trunk and head | trunk == {id(p) for p in encoder.parameters()}


@torch.no_grad()
def test_high_res_features_reach_single_mask_pixels():
    """A change of the early features at one pixel changes the low-res logits at that pixel only."""
    torch.manual_seed(0)
    model = build_sam(CNN_SMALL)
    emb = model.image_encoder(model.preprocess(torch.rand(1, 3, 64, 64) * 255))
    sparse, dense = model.prompt_encoder(points=(torch.tensor([[[20.0, 30.0]]]), torch.tensor([[1]])), boxes=None,
                                         masks=None)
    pe = model.prompt_encoder.get_dense_pe()
    base, _ = model.mask_decoder(emb, pe, sparse, dense, multimask_output=True)
    high_res = unpack_high_res(emb[:, 32:]).clone()  # 1 x 4 x 4 x 2 x 2 x 2 x 2 x 4 channels
    full = torch.zeros(1, 4, 16, 16)  # the 1/4-resolution features as an image
    full[0, :, 7, 9] = 5.0
    changed = emb.clone()
    changed[:, 32:] += pack_high_res(full)
    moved, _ = model.mask_decoder(changed, pe, sparse, dense, multimask_output=True)
    diff = (moved - base).abs().amax(dim=(0, 1))  # 16 x 16
    assert diff[7, 9] > 0
    diff[7, 9] = 0
    assert float(diff.max()) == 0.0
    assert high_res.shape == (1, 4, 4, 2, 2, 2, 2, 4)


def test_predictor_runs_a_cnn_model_and_caches_its_embedding():
    torch.manual_seed(0)
    model = build_sam(CNN_SMALL)
    predictor = SamPredictor(model)
    image = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)  # long side = image_size
    predictor.set_image(image)
    masks, scores, low_res = predictor.predict(np.array([[10, 20]]), np.array([1]))
    assert masks.shape == (3, 48, 64) and scores.shape == (3,) and low_res.shape == (3, 16, 16)
    box_masks, _, _ = predictor.predict(box=np.array([5, 5, 30, 30]), multimask_output=False)
    assert box_masks.shape == (1, 48, 64)
    # the model's own end-to-end forward gives the same masks and scores
    (out,) = model([{"image": torch.from_numpy(image).permute(2, 0, 1).float(), "original_size": (48, 64),
                     "point_coords": torch.tensor([[[10.0, 20.0]]]), "point_labels": torch.tensor([[1]])}],
                   multimask_output=True)
    np.testing.assert_array_equal(out["masks"][0].numpy(), masks)
    np.testing.assert_allclose(out["iou_predictions"][0].numpy(), scores, atol=1e-5)


def test_cnn_config_round_trips_and_rejects_bad_settings():
    assert SamConfig.from_dict(CNN_SMALL.to_dict()) == CNN_SMALL
    with pytest.raises(ValueError, match="patch_size must be 16"):
        SamConfig(encoder_type="cnn", patch_size=8)
    with pytest.raises(ValueError, match="high_res_features needs"):
        SamConfig(high_res_features=True)
    with pytest.raises(ValueError, match="encoder_type"):
        SamConfig(encoder_type="resnet")


def test_dense_prompt_maps_draw_clicks_and_box_on_the_grid():
    config = CNN_SMALL.replace(dense_prompts=True)  # 64 px input, 4 x 4 grid of 16 px cells
    encoder = build_sam(config).prompt_encoder
    points = (torch.tensor([[[7.5, 7.5], [40.0, 56.0]]]), torch.tensor([[1, 0]]))  # (x, y): cells (0, 0) / (3, 2)
    box = torch.tensor([[16.0, 8.0, 48.0, 40.0]])  # x 16-48: cells 1-2 whole; y 8-40: half of 0, 1, half of 2
    maps = encoder.dense_prompt_maps(points, box, 1)[0]  # 3 x 4 x 4
    assert float(maps[0, 0, 0]) == 1.0  # pixel (7, 7) + 0.5 is the centre of cell (0, 0)
    assert float(maps[0, 0, 1]) == pytest.approx(np.exp(-0.5), abs=1e-6)  # one cell away: one std
    assert int(maps[0].argmax()) == 0 and int(maps[1].argmax()) == 3 * 4 + 2
    expected = torch.zeros(4, 4)
    expected[0, 1:3], expected[1, 1:3], expected[2, 1:3] = 0.5, 1.0, 0.5
    torch.testing.assert_close(maps[2], expected)
    # the maps reach the dense embedding; without points or a box it stays the shared "no mask" one
    sparse, dense = encoder(points=points, boxes=box, masks=None)
    _, plain = encoder(points=None, boxes=None, masks=None, embeddings=None)
    assert dense.shape == (1, 32, 4, 4) and not torch.equal(dense, plain.expand_as(dense))
    assert "dense_prompt_embed.weight" not in build_sam(CNN_SMALL).prompt_encoder.state_dict()


@pytest.mark.parametrize("name,size", [("cnn_256.json", 256), ("cnn_512.json", 512)])
def test_recipe_configs_build_and_keep_the_embedding_grid(name: str, size: int) -> None:
    """The configurations in recipes/bsds_cnn (passed to train/evaluate with --model) are valid
    SamConfigs whose model gives a 1/16 embedding grid (plus the packed 1/4 high-res features)."""
    import json
    from pathlib import Path

    from samwidgets import Sam

    path = Path(__file__).resolve().parents[1] / "recipes" / "bsds_cnn" / name
    config = SamConfig.from_dict(json.loads(path.read_text()))
    assert config.image_size == size and config.encoder_type == "cnn"
    with torch.device("meta"):
        model = Sam(config)
        embedding = model.image_encoder(torch.empty(1, 3, size, size))
    grid = size // 16
    assert tuple(embedding.shape) == (1, 3 * config.prompt_embed_dim, grid, grid)  # C + C/8 * 16 channels
    assert sum(p.numel() for p in model.parameters()) < 12_000_000  # fp16 file within the 25 MB budget


def test_the_cnn_models_extensions_are_subclasses_that_sam_picks_and_the_switch_keeps():
    """Click maps and early features live in their own modules, subclassing the plain parts, and the fast switch
    brings the subclasses back, not the plain parts."""
    from small_configs import SMALL

    from samwidgets.modeling.click_maps import ClickMapPromptEncoder
    from samwidgets.modeling.fast import FastMaskDecoder, enable_fast_paths
    from samwidgets.modeling.high_res_decoder import HighResMaskDecoder
    from samwidgets.modeling.mask_decoder import MaskDecoder
    from samwidgets.modeling.prompt_encoder import PromptEncoder

    config = CNN_SMALL.replace(dense_prompts=True)
    model = build_sam(config)
    assert type(model.prompt_encoder) is ClickMapPromptEncoder and type(model.mask_decoder) is HighResMaskDecoder
    enable_fast_paths(model)
    assert isinstance(model.mask_decoder, FastMaskDecoder) and isinstance(model.mask_decoder, HighResMaskDecoder)
    enable_fast_paths(model, False)
    assert type(model.mask_decoder) is HighResMaskDecoder
    plain = build_sam(SMALL)
    assert type(plain.prompt_encoder) is PromptEncoder and type(plain.mask_decoder) is MaskDecoder
