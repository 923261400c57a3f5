"""SAM 2's fast image encoder (samwidgets.sam2.fast_encoder) against the plain one: the same trunk outputs and
gradients, on grids whose windows need padding and whose pooled stages have an odd number of rows; the neck's
features and position encodings; the cached position embedding following the weights; and the predictor's switch.

The comparisons run on ``test_device`` (tests/on_device.py): weights and inputs drawn on the CPU, then moved."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from on_device import tolerance

from samwidgets.modeling import fast
from samwidgets.modeling.fast import enable_fast_paths, fast_paths, fast_paths_enabled
from samwidgets.sam2 import SAM2ImagePredictor, build_sam2, fast_encoder, hiera, neck
from samwidgets.sam2.fast_encoder import FastFpnNeck, FastHiera, FastMultiScaleBlock

ATOL = 1e-5


def random_trunk(seed: int = 0) -> hiera.Hiera:
    """Hiera-T's trunk (sam2.1_hiera_t's sizes) with random weights, position tables included."""
    torch.manual_seed(seed)
    trunk = hiera.Hiera(embed_dim=96, num_heads=1, stages=(1, 2, 7, 2), global_att_blocks=(5, 7, 9),
                        window_pos_embed_bkg_spatial_size=(7, 7), window_spec=(8, 4, 14, 7))
    with torch.no_grad():
        for p in trunk.parameters():
            p.normal_(0.0, 0.05 if p.dim() > 1 else 0.2)
    return trunk.eval()


def test_the_fast_block_is_registered_with_the_kit_switch():
    for plain_cls, fast_cls in ((hiera.MultiScaleBlock, FastMultiScaleBlock), (hiera.Hiera, FastHiera),
                                (neck.FpnNeck, FastFpnNeck)):
        assert fast.FAST_CLASSES[plain_cls] is fast_cls and fast.PLAIN_CLASSES[fast_cls] is plain_cls
    trunk = random_trunk()
    enable_fast_paths(trunk)
    assert all(type(b) is FastMultiScaleBlock for b in trunk.blocks)
    enable_fast_paths(trunk, False)
    assert all(type(b) is hiera.MultiScaleBlock for b in trunk.blocks)


# 352 px: stage grids 88, 44, 22, 11: stage 3's 14-token windows are padded (22 -> 28), the stage-4 pooled block
# pools a padded grid, and stage 4 has an odd number of rows. 256 px: every window whole.
@pytest.mark.parametrize("size", [352, 256])
@pytest.mark.parametrize("slab_floats", [fast_encoder.SLAB_FLOATS, 1])  # the default, and one row of windows a slab
def test_fast_trunk_equals_plain(size, slab_floats, monkeypatch, test_device):
    monkeypatch.setattr(fast_encoder, "SLAB_FLOATS", slab_floats)
    trunk = random_trunk().to(test_device)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1)).to(test_device)
    with torch.inference_mode():
        plain = trunk(x)
        with fast_paths(trunk):
            quick = trunk(x)
    assert [tuple(p.shape) for p in plain] == [tuple(q.shape) for q in quick]
    for p, q in zip(plain, quick):
        torch.testing.assert_close(q, p, **tolerance(test_device, atol=ATOL, rtol=0))


def test_cached_position_embedding_follows_the_weights(test_device):
    """The fast trunk keeps the position embedding of a grid size; a change of the tables must reach the output."""
    trunk = random_trunk().to(test_device)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(5)).to(test_device)
    with torch.no_grad(), fast_paths(trunk):
        before = trunk(x)[0]
        trunk.pos_embed.add_(0.5)  # in place, as load_state_dict or an optimizer step would
        after = trunk(x)[0]
        trunk.load_state_dict({**trunk.state_dict(), "pos_embed_window": torch.ones_like(trunk.pos_embed_window)})
        reloaded = trunk(x)[0]
    with torch.no_grad():
        expected = trunk(x)[0]  # the plain trunk, with the final tables
    assert (after - before).abs().max() > 1e-2 and (reloaded - after).abs().max() > 1e-2
    torch.testing.assert_close(reloaded, expected, **tolerance(test_device, atol=ATOL, rtol=0))
    assert "_pos_embed_cache" not in trunk.state_dict()


def test_fast_neck_equals_plain(test_device):
    model = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", device=test_device)
    gen = torch.Generator().manual_seed(6)
    # the trunk's outputs as it makes them: channels-last tokens seen as B x C x h x w (moved before the permute,
    # so the layout is the trunk's on every device)
    xs = [torch.randn(2, s, s, c, generator=gen).to(test_device).permute(0, 3, 1, 2)
          for s, c in ((64, 96), (32, 192), (16, 384), (8, 768))]
    with torch.no_grad():
        plain = model.image_encoder.neck(xs)
        with fast_paths(model):
            quick = model.image_encoder.neck(xs)
    for plain_maps, quick_maps in zip(plain, quick):  # features, then position encodings
        for p, q in zip(plain_maps, quick_maps):
            assert p.shape == q.shape
            torch.testing.assert_close(q, p, **tolerance(test_device, atol=ATOL, rtol=0))


def test_fast_trunk_gradients_equal_plain(test_device):
    trunk = random_trunk().to(test_device)
    # a batch of two, padded windows
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2)).to(test_device)

    def grads(enabled: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        trunk.zero_grad()
        image = x.clone().requires_grad_(True)
        with fast_paths(trunk, enabled):
            outputs = trunk(image)
        sum(o.square().mean() for o in outputs).backward()
        return image.grad, [p.grad.clone() for p in trunk.parameters()]

    image_plain, params_plain = grads(False)
    image_fast, params_fast = grads(True)
    tol = tolerance(test_device, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(image_fast, image_plain, **tol)
    for a, b in zip(params_fast, params_plain):
        torch.testing.assert_close(a, b, **tol)


def test_predictor_switch_and_both_paths_agree(test_device):
    model = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", device="cpu")
    torch.manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02 if p.dim() > 1 else 0.1)
    model.to(test_device)
    image = np.random.default_rng(4).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    results = {}
    for enabled in (False, True):
        predictor = SAM2ImagePredictor(model, fast=enabled, cache_size=0)
        assert predictor.fast is enabled and fast_paths_enabled(model) is enabled
        predictor.set_image(image)
        results[enabled] = (predictor.get_image_embedding().cpu(),
                            *predictor.predict(point_coords=[[40, 30]], point_labels=[1], return_logits=True))
    for plain, quick in zip(results[False], results[True]):
        np.testing.assert_allclose(np.asarray(quick), np.asarray(plain), **tolerance(test_device, atol=1e-4, rtol=0))


def test_a_position_embedding_cached_under_inference_mode_serves_any_mode(test_device):
    trunk = random_trunk().to(test_device)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(7)).to(test_device)
    with fast_paths(trunk):
        with torch.inference_mode():
            first = trunk(x)[0]
        for p in trunk.parameters():
            p.requires_grad_(False)  # a frozen model: the cache serves a recorded graph too
        image = x.clone().requires_grad_(True)
        again = trunk(image)[0]
        again.sum().backward()
    assert image.grad is not None
    torch.testing.assert_close(again.detach(), first.clone(), **tolerance(test_device, atol=ATOL, rtol=0))
