"""The 11-round interactive training loss runs, back-propagates, and feeds masks back.

The model and the batch are on ``test_device`` (tests/on_device.py); the prompts' random numbers come from a CPU
generator, as in training, and are moved to the model's device."""

from __future__ import annotations

import pytest
import torch
from on_device import tolerance
from small_configs import SMALL

from samwidgets import build_sam
from samwidgets.training.interactive import interactive_loss


def _batch(device: torch.device):
    images = torch.zeros(2, 3, 64, 64)
    images[0, :, 10:40, 10:50] = 200.0
    images[1, 0, 20:60, 5:30] = 255.0
    targets = torch.zeros(3, 64, 64, dtype=torch.bool)
    targets[0, 10:40, 10:50] = True
    targets[1, 20:30, 20:30] = True
    targets[2, 20:60, 5:30] = True
    return images.to(device), targets.to(device), torch.tensor([0, 0, 1], device=device)


@pytest.mark.parametrize("first_prompt", ["point", "box"])
def test_loss_is_finite_and_reaches_every_part(first_prompt, test_device):
    torch.manual_seed(0)
    model = build_sam(SMALL).train().to(test_device)
    images, targets, index = _batch(test_device)
    loss, stats = interactive_loss(model, images, targets, index, torch.Generator().manual_seed(0),
                                   first_prompt=first_prompt)
    assert torch.isfinite(loss) and len(stats) == 11
    loss.backward()
    for part in (model.image_encoder, model.prompt_encoder.pe_layer, model.mask_decoder.iou_prediction_head):
        grads = [p.grad for p in part.parameters() if p.requires_grad]
        assert all(g is not None for g in grads)
    assert model.image_encoder.patch_embed.proj.weight.grad.abs().sum() > 0
    # mask prompts were used after round 0: the mask-downscaling convs got gradient
    assert model.prompt_encoder.mask_downscaling[0].weight.grad.abs().sum() > 0


def test_frozen_encoder_features_are_used(test_device):
    torch.manual_seed(0)
    model = build_sam(SMALL).train().to(test_device)
    images, targets, index = _batch(test_device)
    with torch.no_grad():
        features = model.image_encoder(model.preprocess(images))
    loss, _ = interactive_loss(model, images, targets, index, torch.Generator().manual_seed(0), features=features,
                               num_rounds=3)
    loss.backward()
    assert model.image_encoder.patch_embed.proj.weight.grad is None


def test_a_few_steps_reduce_the_loss(test_device):
    torch.manual_seed(0)
    model = build_sam(SMALL).train().to(test_device)
    images, targets, index = _batch(test_device)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for step in range(25):
        loss, _ = interactive_loss(model, images, targets, index, torch.Generator().manual_seed(step), num_rounds=3)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5


def test_rejects_targets_of_the_wrong_size():
    model = build_sam(SMALL)
    with pytest.raises(ValueError, match="targets must be"):
        interactive_loss(model, torch.zeros(1, 3, 64, 64), torch.zeros(1, 32, 32, dtype=torch.bool),
                         torch.tensor([0]))


def test_tied_init_makes_query_and_key_projections_equal():
    from samwidgets.training.decoder_init import tie_decoder_query_key

    model = build_sam(SMALL)
    assert tie_decoder_query_key(model) == 7  # 2 blocks x 3 attentions + the final one
    attn = model.mask_decoder.transformer.final_attn_token_to_image
    torch.testing.assert_close(attn.k_proj.weight, attn.q_proj.weight)


@pytest.mark.parametrize("first_prompt", ["point", "box"])
def test_round_by_round_backward_gives_the_same_gradients(first_prompt, test_device):
    """backward=True (one round's graph at a time) must match one backward over the summed loss."""
    grads = []
    losses = []
    for backward in (False, True):
        torch.manual_seed(0)
        model = build_sam(SMALL).train().to(test_device)
        images, targets, index = _batch(test_device)
        loss, _ = interactive_loss(model, images, targets, index, torch.Generator().manual_seed(3),
                                   first_prompt=first_prompt, num_rounds=4, backward=backward)
        if not backward:
            loss.backward()
        else:
            assert not loss.requires_grad
        losses.append(loss.item())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert losses[0] == pytest.approx(losses[1], **tolerance(test_device, rel=1e-6))
    assert grads[0].keys() == grads[1].keys()
    assert any(n.startswith("image_encoder.") for n in grads[1])
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], **tolerance(test_device, rtol=1e-4, atol=1e-7),
                                   msg=name)
