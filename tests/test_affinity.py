"""The encoder's dense affinity loss (training/affinity.py) and its place in a training step."""

from __future__ import annotations

import torch
from small_configs import CNN_SMALL

from samwidgets import build_sam
from samwidgets.training.affinity import pairwise_affinity_targets, segment_affinity_loss
from samwidgets.training.datasets import MaskBatch
from samwidgets.training.loop import make_optimizer, training_step


def test_targets_are_the_fraction_of_annotators_who_agree():
    # 3 pixels, 2 annotators: the first groups pixels 0 and 1, the second keeps all apart
    labels = torch.tensor([[[1, 1, 2], [1, 2, 3]]])  # 1 x A x N
    target = pairwise_affinity_targets(labels)[0]
    expected = torch.tensor([[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]])
    torch.testing.assert_close(target, expected)
    # an absent annotator (-1) does not count
    absent = torch.tensor([[[1, 1, 2], [-1, -1, -1]]])
    torch.testing.assert_close(pairwise_affinity_targets(absent)[0], torch.tensor(
        [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))


def test_loss_is_low_for_features_that_follow_the_segments():
    labels = torch.zeros(1, 1, 8, 8, dtype=torch.long)
    labels[..., :4] = 1
    labels[..., 4:] = 2
    valid = torch.ones(1, 8, 8, dtype=torch.bool)
    follow = torch.zeros(1, 2, 8, 8)
    follow[:, 0, :, :4] = 1.0  # segment 1 points one way, segment 2 the other
    follow[:, 1, :, 4:] = 1.0
    g = torch.Generator().manual_seed(0)
    good = segment_affinity_loss(follow, labels, valid, num_pixels=32, generator=g)
    ignore = segment_affinity_loss(torch.ones(1, 2, 8, 8), labels, valid, num_pixels=32, generator=g)
    assert good < ignore
    # padding never enters: features there can be anything
    valid[..., 6:] = False
    noisy = follow.clone()
    noisy[..., 6:] = torch.randn(1, 2, 8, 2)
    torch.testing.assert_close(segment_affinity_loss(noisy, labels, valid, num_pixels=48,
                                                     generator=torch.Generator().manual_seed(1)),
                               segment_affinity_loss(follow, labels, valid, num_pixels=48,
                                                     generator=torch.Generator().manual_seed(1)))


def test_training_step_with_affinity_updates_the_encoder():
    torch.manual_seed(0)
    model = build_sam(CNN_SMALL).train()
    images = torch.rand(2, 3, 64, 64) * 255
    targets = torch.zeros(4, 64, 64, dtype=torch.bool)
    targets[:2, 8:40, 8:40] = True
    targets[2:, 30:60, 20:50] = True
    labels = torch.ones(2, 2, 64, 64, dtype=torch.int16)
    labels[:, 0, 8:40, 8:40] = 2
    labels[1, 1] = -1  # the second image has one annotator
    batch = MaskBatch(images, targets, torch.tensor([0, 0, 1, 1]), labels)
    optimizer, params = make_optimizer(model, 1e-3)
    g = torch.Generator().manual_seed(0)
    before = model.image_encoder.stem[0].weight.detach().clone()
    plain = training_step(model, batch, optimizer, params, g, num_rounds=2)
    with_affinity = training_step(model, batch, optimizer, params, g, num_rounds=2, affinity_weight=1.0)
    assert with_affinity.loss > 0 and plain.loss > 0
    assert not torch.equal(before, model.image_encoder.stem[0].weight)
