"""Interactive prompt simulation (SAM paper, appendix A), vectorised over a batch.

Each ground-truth mask gets 11 rounds of prompts: the first is a point
sampled uniformly from the mask or a box with noise (std 10% of the side,
at most 20 px); each later round adds a point sampled uniformly from the
error region of the previous prediction (a false negative gives a positive
point, a false positive a negative one), and the previous round's
unthresholded low-res logits of the most confident mask are fed back as
the mask prompt. Two of the rounds add no new point (one at a random place
among the 8 sampled rounds, one at the end), so the model learns to refine
from its own mask alone.

All functions take a ``torch.Generator`` so a run is reproducible; all
coordinates are (x, y) pixel indices in the frame of the masks given.
"""

from __future__ import annotations

import torch

from ..modeling.prompt_encoder import LABEL_NEGATIVE, LABEL_PADDING, LABEL_POSITIVE

NUM_ROUNDS = 11  # 1 initial prompt + 8 sampled points + 2 rounds with no new point


def random_on(device: torch.device, draw, *shape: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``draw(shape)`` (``torch.rand``, ``torch.randn``) from ``generator``, as a tensor on ``device``.

    The numbers come from the generator's own device (a CPU generator draws on the CPU, a CUDA one
    on its GPU) and are then moved, so a run is reproducible with either, whatever device the model
    trains on. Without a generator they are drawn on ``device`` from torch's default one.
    """
    source = generator.device if generator is not None else device
    return draw(shape, generator=generator, device=source).to(device)


def sample_uniform_points(region: torch.Tensor, generator: torch.Generator | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """One point drawn uniformly from each mask of a batch.

    region: B x H x W bool. Returns coords B x 2 (x, y) float and found B
    bool (False where the region is empty; the coordinate is then 0, 0).
    Uniform because every pixel of the region is equally likely to hold the
    largest of independent uniform draws.
    """
    b, h, w = region.shape
    scores = random_on(region.device, torch.rand, b, h * w, generator=generator)
    scores = scores.masked_fill(~region.reshape(b, -1), -1.0)  # B x HW
    best = scores.argmax(dim=1)  # B
    found = region.reshape(b, -1).any(dim=1)
    coords = torch.stack([best % w, best // w], dim=1).to(torch.float)  # B x 2 (x, y)
    return coords * found[:, None], found


def mask_boxes(masks: torch.Tensor) -> torch.Tensor:
    """Tight XYXY boxes of B x H x W masks (x1, y1 exclusive pixel edges); empty masks give zeros."""
    b, h, w = masks.shape
    rows = masks.any(dim=2)  # B x H
    cols = masks.any(dim=1)  # B x W
    ar_h = torch.arange(h, device=masks.device)
    ar_w = torch.arange(w, device=masks.device)
    y0 = torch.where(rows, ar_h, h).min(dim=1).values
    y1 = torch.where(rows, ar_h, -1).max(dim=1).values + 1
    x0 = torch.where(cols, ar_w, w).min(dim=1).values
    x1 = torch.where(cols, ar_w, -1).max(dim=1).values + 1
    boxes = torch.stack([x0, y0, x1, y1], dim=1).to(torch.float)  # B x 4
    return boxes * masks.reshape(b, -1).any(dim=1, keepdim=True)


def noisy_boxes(masks: torch.Tensor, generator: torch.Generator | None = None, noise_frac: float = 0.1,
                max_noise_px: float = 20.0) -> torch.Tensor:
    """Ground-truth boxes with Gaussian noise on each coordinate.

    The standard deviation is noise_frac of the box side (x for x0/x1, y for
    y0/y1), capped at max_noise_px; the result is clipped to the image and
    kept non-degenerate (x0 < x1, y0 < y1). masks: B x H x W -> B x 4.
    """
    b, h, w = masks.shape
    boxes = mask_boxes(masks)  # B x 4
    sides = torch.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], dim=1)  # B x 2 (w, h)
    std = (noise_frac * sides).clamp(max=max_noise_px).repeat(1, 2)  # B x 4 as (w, h, w, h)
    noise = random_on(masks.device, torch.randn, b, 4, generator=generator) * std
    noisy = boxes + noise
    limits = torch.tensor([w, h, w, h], dtype=noisy.dtype, device=noisy.device)
    noisy = torch.minimum(noisy.clamp(min=0.0), limits)
    x0 = torch.minimum(noisy[:, 0], noisy[:, 2] - 1).clamp(min=0.0)
    y0 = torch.minimum(noisy[:, 1], noisy[:, 3] - 1).clamp(min=0.0)
    x1 = torch.maximum(noisy[:, 2], x0 + 1)
    y1 = torch.maximum(noisy[:, 3], y0 + 1)
    return torch.stack([x0, y0, x1, y1], dim=1)


def sample_error_points(pred: torch.Tensor, target: torch.Tensor, generator: torch.Generator | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """A point drawn uniformly from the error region of each prediction, with its label.

    pred, target: B x H x W bool. A point in a false-negative pixel (missed
    object) is positive (1); in a false-positive pixel negative (0). Where
    the prediction is perfect, the label is -1 (padding: no new point).
    Returns coords B x 2 (x, y) and labels B (int64).
    """
    false_neg = target & ~pred
    false_pos = pred & ~target
    coords, found = sample_uniform_points(false_neg | false_pos, generator)  # B x 2, B
    b, h, w = pred.shape
    xi, yi = coords[:, 0].long(), coords[:, 1].long()
    in_fn = false_neg[torch.arange(b, device=pred.device), yi, xi]
    labels = torch.where(in_fn, LABEL_POSITIVE, LABEL_NEGATIVE)
    labels = torch.where(found, labels, LABEL_PADDING)
    return coords, labels.to(torch.int64)


def rounds_without_new_point(generator: torch.Generator | None = None, num_rounds: int = NUM_ROUNDS) -> set[int]:
    """Which rounds add no point: one at random among the sampled rounds, and the last.

    Rounds are numbered 0..num_rounds-1; round 0 is the initial prompt.
    """
    if num_rounds < 3:  # too short a loop to spare a round: every round after the first adds a point
        return set()
    middle = int(torch.randint(1, num_rounds - 1, (1,), generator=generator,
                               device=generator.device if generator is not None else None))
    return {middle, num_rounds - 1}


def most_confident(iou_pred: torch.Tensor) -> torch.Tensor:
    """Index of the mask with the highest predicted IoU per sample: B x M -> B."""
    return iou_pred.argmax(dim=1)
