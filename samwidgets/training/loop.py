"""One optimisation step of the paper's recipe, shared by ``python -m samwidgets train`` and the data engine.

A step encodes the images (or reuses frozen-encoder features), simulates the
interactive rounds for every mask (:func:`interactive_loss`, which
back-propagates round by round), clips the gradient norm and steps the
optimiser and the learning-rate schedule.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..modeling import Sam
from .datasets import MaskBatch
from .interactive import RoundStats, interactive_loss
from .simulation import NUM_ROUNDS


@dataclass
class StepResult:
    loss: float
    first_prompt: str  # "point" or "box"
    rounds: list[RoundStats]


def make_optimizer(model: Sam, lr: float, weight_decay: float = 0.1
                   ) -> tuple[torch.optim.Optimizer, list[torch.nn.Parameter]]:
    """AdamW over the parameters that require gradients (a frozen encoder is left out)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay), params


def train_only(model: Sam, prefixes: list[str]) -> list[str]:
    """Freeze every parameter whose name starts with none of ``prefixes``; returns the names left trainable.

    E.g. ``["mask_decoder.iou_prediction_head"]`` trains the IoU head on its own: the masks stay exactly
    as they were, and only the predicted IoU (which ranks the three outputs of a click) learns. A frozen
    image encoder is also switched to eval mode (its batch-norm statistics stay as trained) and run
    without a graph by :func:`training_step`.
    """
    names = [name for name, _ in model.named_parameters()]
    unknown = [p for p in prefixes if not any(n.startswith(p) for n in names)]
    if unknown:
        raise ValueError(f"no parameter of this model starts with {unknown}; names start with e.g. "
                         f"{sorted({n.split('.')[0] + '.' + n.split('.')[1] for n in names})[:8]}")
    trainable = []
    for name, param in model.named_parameters():
        param.requires_grad_(any(name.startswith(p) for p in prefixes))
        if param.requires_grad:
            trainable.append(name)
    if not any(p.requires_grad for p in model.image_encoder.parameters()):
        model.image_encoder.eval()
    return trainable


def freeze_image_encoder(model: Sam) -> None:
    """Train the prompt encoder and mask decoder only (the paper's fine-tuning recipe for small data)."""
    model.image_encoder.requires_grad_(False)
    model.image_encoder.eval()


def training_step(model: Sam, batch: MaskBatch, optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter],
                  generator: torch.Generator, *, box_prob: float = 0.5, num_rounds: int = NUM_ROUNDS,
                  grad_clip: float | None = 1.0, scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                  loss_at_low_res: bool = False, bf16: bool = False) -> StepResult:
    """Run one step on ``batch`` and return its loss and per-round statistics.

    The first prompt is a box with probability ``box_prob`` (drawn from
    ``generator``), else one point. When the image encoder does not require
    gradients its features are computed without a graph. loss_at_low_res: see
    :func:`interactive_loss`. bf16: run the model under bfloat16 autocast (the
    loss, the optimiser and the weights stay float32), a speed-up on GPUs and
    on CPUs with AVX-512 BF16 or AMX, a slow-down elsewhere.
    """
    device = next(model.parameters()).device
    images, targets = batch.images.to(device), batch.targets.to(device)
    first = "box" if float(torch.rand((), generator=generator, device=generator.device)) < box_prob else "point"
    features = None
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    train_encoder = any(p.requires_grad for p in model.image_encoder.parameters())
    if not train_encoder:
        with torch.no_grad(), autocast:
            features = model.image_encoder(model.preprocess(images))  # Bi x C x h x w
    optimizer.zero_grad(set_to_none=True)
    # backward=True: gradients round by round, so memory does not grow with rounds x masks
    with autocast:
        loss, stats = interactive_loss(model, images, targets, batch.image_index.to(device), generator,
                                       first_prompt=first, num_rounds=num_rounds, features=features, backward=True,
                                       loss_at_low_res=loss_at_low_res)
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return StepResult(loss=float(loss), first_prompt=first, rounds=stats)
