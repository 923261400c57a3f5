"""A dense auxiliary loss for the image encoder: pixels people put in one segment should look alike.

SAM's loss reaches the image encoder only through the masks of a few prompts
per image, so a randomly initialised encoder learns slowly what a segment is:
for hundreds of steps the decoder answers with a disc around the click,
whatever the photo shows. Human segmentations say much more per image: every
pair of pixels is either in one segment or not, for each annotator. This
loss asks the encoder's features to say the same.

For N pixels sampled in each image, the target affinity of a pair (i, j) is
the fraction of annotators who put i and j in the same segment (annotators
disagree on granularity, so it is soft: 0.6 means 3 of 5 people grouped
them). The predicted affinity is ``sigmoid(scale * cos(f_i, f_j))`` of the
features at those pixels; the loss is the binary cross-entropy between the two.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .simulation import random_on

__all__ = ["pairwise_affinity_targets", "segment_affinity_loss"]


def pairwise_affinity_targets(labels: torch.Tensor) -> torch.Tensor:
    """Fraction of annotators who give two pixels the same label.

    labels: B x A x N integer labels of N pixels by A annotators; a label < 0
    means "this annotator is absent" (images with fewer annotators are padded
    so). Returns B x N x N in [0, 1].
    """
    present = (labels >= 0).to(torch.float32)  # B x A x N
    same = (labels[..., :, None] == labels[..., None, :]).to(torch.float32)  # B x A x N x N
    same = same * present[..., :, None] * present[..., None, :]
    count = (present[..., :, None] * present[..., None, :]).sum(dim=1).clamp(min=1.0)  # B x N x N
    return same.sum(dim=1) / count


def segment_affinity_loss(features: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor, num_pixels: int = 256,
                          scale: float = 5.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """The affinity loss of one feature map (see the module docstring).

    features: B x D x h x w; labels: B x A x h x w annotator labels at the
    same resolution (< 0: annotator absent); valid: B x h x w bool, the
    pixels of the photo (not its zero padding). ``num_pixels`` are drawn
    uniformly among the valid pixels of each image. Returns a scalar.
    """
    b, d, h, w = features.shape
    scores = random_on(features.device, torch.rand, b, h * w, generator=generator)
    scores = scores.masked_fill(~valid.reshape(b, -1), -1.0)
    index = scores.topk(min(num_pixels, h * w), dim=1).indices  # B x N: uniform among valid pixels (if enough)
    picked = torch.gather(features.reshape(b, d, -1), 2, index[:, None, :].expand(-1, d, -1))  # B x D x N
    picked = F.normalize(picked.float(), dim=1)
    cosine = picked.transpose(1, 2) @ picked  # B x N x N
    a = labels.shape[1]
    picked_labels = torch.gather(labels.reshape(b, a, -1), 2, index[:, None, :].expand(-1, a, -1))  # B x A x N
    target = pairwise_affinity_targets(picked_labels)  # B x N x N
    ok = torch.gather(valid.reshape(b, -1), 1, index)  # B x N (False only where an image has too few pixels)
    weight = (ok[:, :, None] & ok[:, None, :]).to(torch.float32)
    loss = F.binary_cross_entropy_with_logits(scale * cosine, target, weight=weight, reduction="sum")
    return loss / weight.sum().clamp(min=1.0)
