"""One training step of SAM's interactive loop: encode the images once, then
run the prompt encoder and mask decoder for 11 rounds of simulated prompts
per ground-truth mask, summing the paper's loss over the rounds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F

from ..modeling import Sam
from ..modeling.prompt_encoder import LABEL_POSITIVE
from .losses import SamLossWeights, sam_loss
from .simulation import (
    NUM_ROUNDS,
    most_confident,
    noisy_boxes,
    rounds_without_new_point,
    sample_error_points,
    sample_uniform_points,
)


@dataclass
class RoundStats:
    """Means over the batch for one round."""

    loss: float
    focal: float
    dice: float
    iou_mse: float
    mask_iou: float  # IoU of the most confident mask with the ground truth
    oracle_iou: float  # IoU of the best mask (of the 3 ambiguity outputs in round 0)


def interactive_loss(
    model: Sam,
    images: torch.Tensor | None,
    targets: torch.Tensor,
    image_index: torch.Tensor,
    generator: torch.Generator | None = None,
    first_prompt: str = "point",
    num_rounds: int = NUM_ROUNDS,
    weights: SamLossWeights | None = None,
    features: torch.Tensor | None = None,
    backward: bool = False,
    loss_at_low_res: bool = False,
) -> tuple[torch.Tensor, list[RoundStats]]:
    """The mean loss over ``num_rounds`` rounds of simulated interaction, and per-round statistics.

    images: Bi x 3 x S x S pixels (0..255) at the model's input size;
    targets: B x S x S bool ground-truth masks; image_index: B, which image
    each mask belongs to. first_prompt: "point" (3 ambiguity outputs in round
    0) or "box" (the single output). features: precomputed image embeddings
    (Bi x C x h x w) when the image encoder is frozen; images may then be None.

    backward=True back-propagates the loss here, one round at a time, and
    returns it detached. The gradients are the same as ``loss.backward()``
    on the returned loss with backward=False (rounds share only the image
    embedding: the mask prompt is detached, as in the paper), but only one
    round's decoder activations are alive at a time, so peak memory no longer
    grows with the number of rounds and masks. The encoder's backward runs
    once, from the gradient accumulated on the embedding.

    loss_at_low_res=True computes the loss on the decoder's low-res logits
    (S/4 x S/4 for the official and bundled models) against the targets
    averaged over each low-res cell (soft targets; the IoU target
    thresholds them at 0.5), instead of on logits upsampled to S x S: 16
    times fewer pixels, the cheaper choice when the per-pixel loss dominates
    a step (as it does on a CPU). The simulated clicks still come from the
    full-size prediction.
    """
    weights = weights or SamLossWeights()
    size = model.image_encoder.img_size
    if targets.shape[-2:] != (size, size):
        raise ValueError(f"targets must be B x {size} x {size}, got {tuple(targets.shape)}")
    if features is None:
        if images is None:
            raise ValueError("interactive_loss needs the images, or their precomputed features")
        # Bi x C x h x w (the cast: calling a module is untyped in torch)
        features = cast(torch.Tensor, model.image_encoder(model.preprocess(images)))
    encoder_features = features
    if backward and features.requires_grad:
        features = features.detach().requires_grad_()  # a leaf that collects every round's gradient
    embeddings = None
    b = targets.shape[0]
    device = targets.device
    loss_targets = targets
    if loss_at_low_res:
        factor = size // model.config.low_res_mask_size
        loss_targets = F.avg_pool2d(targets[:, None].float(), factor)[:, 0]  # B x S/f x S/f, soft

    coords = torch.zeros((b, 0, 2), device=device)
    labels = torch.zeros((b, 0), dtype=torch.int64, device=device)
    boxes = None
    if first_prompt == "box":
        boxes = noisy_boxes(targets, generator)  # B x 4
    elif first_prompt == "point":
        point, _ = sample_uniform_points(targets, generator)  # B x 2
        coords = point[:, None, :]
        labels = torch.full((b, 1), LABEL_POSITIVE, dtype=torch.int64, device=device)
    else:
        raise ValueError(f"first_prompt must be 'point' or 'box', got {first_prompt!r}")
    silent_rounds = rounds_without_new_point(generator, num_rounds)

    mask_prompt = None
    prev_pred: torch.Tensor | None = None  # the last round's chosen mask, B x S x S
    total = torch.zeros((), device=device)
    stats: list[RoundStats] = []
    for r in range(num_rounds):
        if r > 0 and r not in silent_rounds:
            assert prev_pred is not None, "every round sets it"
            new_coords, new_labels = sample_error_points(prev_pred, targets, generator)
            coords = torch.cat([coords, new_coords[:, None, :]], dim=1)
            labels = torch.cat([labels, new_labels[:, None]], dim=1)
        multimask = r == 0 and first_prompt == "point"
        if embeddings is None or backward:  # with backward=True each round builds its own graph
            embeddings = features[image_index]  # B x C x h x w (one per mask)
            image_pe = model.prompt_encoder.get_dense_pe()  # 1 x C x h x w
        points = (coords, labels) if coords.shape[1] else None
        sparse, dense = model.prompt_encoder(points=points, boxes=boxes, masks=mask_prompt)
        low_res, iou_pred = model.mask_decoder(embeddings, image_pe, sparse, dense, multimask_output=multimask)
        low_res, iou_pred = low_res.float(), iou_pred.float()  # the loss in float32 (a no-op without autocast)
        if loss_at_low_res:
            out = sam_loss(low_res, iou_pred, loss_targets, multimask=multimask, weights=weights)
        else:
            logits = F.interpolate(low_res, (size, size), mode="bilinear", align_corners=False)  # B x M x S x S
            out = sam_loss(logits, iou_pred, targets, multimask=multimask, weights=weights)
        if backward:
            if out.total.requires_grad:
                (out.total / num_rounds).backward()
            total = total + out.total.detach()
        else:
            total = total + out.total

        with torch.no_grad():
            chosen = most_confident(iou_pred)  # B
            rows = torch.arange(b, device=device)
            chosen_logits = F.interpolate(low_res[rows, chosen][:, None], (size, size), mode="bilinear",
                                          align_corners=False)[:, 0]  # B x S x S
            prev_pred = chosen_logits > model.mask_threshold  # B x S x S
            mask_prompt = low_res[rows, chosen][:, None].detach()  # B x 1 x s x s, unthresholded
            stats.append(RoundStats(
                loss=float(out.total), focal=float(out.focal), dice=float(out.dice), iou_mse=float(out.iou),
                mask_iou=float(out.true_iou[rows, chosen].mean()),
                oracle_iou=float(out.true_iou.max(dim=1).values.mean()),
            ))
    if backward and features is not encoder_features and features.grad is not None:
        encoder_features.backward(features.grad)
    return total / num_rounds, stats
