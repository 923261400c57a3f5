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
from ..modeling.image_encoder_cnn import high_res_image, split_image_embedding
from .affinity import segment_affinity_loss
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
                  loss_at_low_res: bool = False, bf16: bool = False, affinity_weight: float = 0.0) -> StepResult:
    """Run one step on ``batch`` and return its loss and per-round statistics.

    The first prompt is a box with probability ``box_prob`` (drawn from
    ``generator``), else one point. When the image encoder does not require
    gradients its features are computed without a graph. loss_at_low_res: see
    :func:`interactive_loss`. bf16: run the model under bfloat16 autocast (the
    loss, the optimiser and the weights stay float32), a speed-up on GPUs and
    on CPUs with AVX-512 BF16 or AMX, a slow-down elsewhere.

    affinity_weight > 0 adds :func:`~samwidgets.training.affinity.segment_affinity_loss`
    on the image embedding (and the high-resolution features, if the model
    has them) of the images that carry annotator labels (``batch.labels``),
    so the encoder learns from every annotated pixel, not only from the
    masks of a few prompts. The interactive loop's gradients and this
    loss's meet on the encoder output, which is back-propagated once.
    """
    device = next(model.parameters()).device
    images, targets = batch.images.to(device), batch.targets.to(device)
    first = "box" if float(torch.rand((), generator=generator, device=generator.device)) < box_prob else "point"
    features = encoded = None
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    train_encoder = any(p.requires_grad for p in model.image_encoder.parameters())
    if not train_encoder:
        with torch.no_grad(), autocast:
            features = model.image_encoder(model.preprocess(images))  # Bi x C x h x w
    optimizer.zero_grad(set_to_none=True)
    use_affinity = affinity_weight > 0 and train_encoder and batch.labels is not None
    if use_affinity:  # encode here, so that both losses send their gradients to one leaf
        with autocast:
            encoded = model.image_encoder(model.preprocess(images))  # Bi x C' x h x w, with a graph
        features = encoded.detach().requires_grad_()
    # backward=True: gradients round by round, so memory does not grow with rounds x masks
    with autocast:
        loss, stats = interactive_loss(model, images, targets, batch.image_index.to(device), generator,
                                       first_prompt=first, num_rounds=num_rounds, features=features, backward=True,
                                       loss_at_low_res=loss_at_low_res)
    if use_affinity:
        # use_affinity: both were set above, and the batch has labels
        assert features is not None and encoded is not None and batch.labels is not None
        aux = affinity_weight * encoder_affinity_loss(model, features, batch.labels.to(device), generator)
        aux.backward()  # adds to features.grad, next to the interactive loop's gradients
        encoded.backward(features.grad)
        loss = loss + aux.detach()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return StepResult(loss=float(loss), first_prompt=first, rounds=stats)


def encoder_affinity_loss(model: Sam, features: torch.Tensor, labels: torch.Tensor,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """:func:`segment_affinity_loss` on the image embedding (1/16) and, if the model has them, the
    high-resolution features (1/4), summed. features: Bi x C' x h x w encoder outputs; labels:
    Bi x A x S x S annotator labels (0: padding, -1: no such annotator)."""
    embedding, packed = split_image_embedding(features, model.config)
    total = torch.zeros((), device=features.device)
    maps = [embedding] + ([high_res_image(packed)] if packed is not None else [])
    for fmap in maps:  # Bi x D x h' x w'
        stride = labels.shape[-1] // fmap.shape[-1]
        cells = labels[..., stride // 2 :: stride, stride // 2 :: stride].long()  # Bi x A x h' x w': cell centres
        valid = cells[:, 0] > 0  # Bi x h' x w': inside the photo (images without labels have none)
        if valid.any():
            total = total + segment_affinity_loss(fmap, cells, valid, generator=generator)
    return total
