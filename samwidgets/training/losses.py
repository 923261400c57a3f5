"""Training losses of Segment Anything (SAM paper, appendix A, "Losses").

What the paper prescribes and how it maps onto this module:

* Masks are supervised with a linear combination of focal loss and dice loss
  in a 20:1 ratio (focal : dice)  -> :func:`sigmoid_focal_loss`,
  :func:`dice_loss`, :class:`SamLossWeights`.
* The IoU prediction head is trained with the mean-squared error between its
  prediction and the IoU of the predicted mask with the ground truth, added to
  the mask loss with weight 1.0  -> :func:`mask_iou`, :func:`sam_loss`.
* With an ambiguous (single) prompt the decoder returns 3 masks and only the
  one with the lowest loss is back-propagated; with several prompts the single
  extra ("4th", index 0 in the decoder) output is used  -> :func:`sam_loss`
  (argmin over outputs) and :func:`select_outputs` (which outputs a sample uses,
  also for batches that mix both kinds of samples).

All per-mask functions reduce over the last two dimensions (H x W) only, so
they work for masks of any leading batch shape ``... x H x W``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "SamLossOutput",
    "SamLossWeights",
    "SelectedOutputs",
    "dice_loss",
    "mask_iou",
    "sam_loss",
    "select_outputs",
    "sigmoid_focal_loss",
]


def _binarize(mask: Tensor) -> Tensor:
    """Bool masks pass through; other dtypes are binarised with ``> 0.5``
    (so 0/1 float or integer targets work as expected)."""
    return mask if mask.dtype == torch.bool else mask > 0.5


def sigmoid_focal_loss(logits: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """Sigmoid focal loss (Lin et al., 2017), averaged over the H x W pixels of each mask.

    Per pixel, with ``p = sigmoid(x)`` and target ``t``::

        p_t     = p * t + (1 - p) * (1 - t)
        alpha_t = alpha * t + (1 - alpha) * (1 - t)
        loss    = alpha_t * (1 - p_t) ** gamma * CE(x, t)

    The ``(1 - p_t) ** gamma`` factor down-weights pixels that are already
    classified well, so the many easy background pixels do not dominate the
    loss; ``alpha_t`` balances positives and negatives. ``alpha < 0`` disables
    the ``alpha_t`` weighting (factor 1 for every pixel).

    Numerically stable: the cross-entropy part comes from
    ``F.binary_cross_entropy_with_logits`` (log-sum-exp form), so logits of
    +-100 give finite, correct values instead of ``log(0)``.

    Args:
        logits: ``... x H x W`` mask logits (any float dtype).
        targets: ``... x H x W`` ground truth, bool or float in [0, 1].
        alpha: weight of the positive class in (0, 1); negative to disable.
        gamma: focusing exponent (0 gives plain binary cross-entropy).

    Returns:
        ``logits.shape[:-2]``: the loss of each mask (mean over its pixels).
    """
    targets = targets.to(logits.dtype)  # ... x H x W
    p = torch.sigmoid(logits)  # ... x H x W
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")  # ... x H x W
    p_t = p * targets + (1 - p) * (1 - targets)  # ... x H x W
    # Clamp so that gamma < 1 keeps finite gradients where p_t saturates to exactly 1.
    modulating = (1 - p_t).clamp(min=torch.finfo(p_t.dtype).tiny) ** gamma  # ... x H x W
    loss = ce * modulating  # ... x H x W
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)  # ... x H x W
        loss = alpha_t * loss
    return loss.mean(dim=(-2, -1))  # ...


def dice_loss(logits: Tensor, targets: Tensor, eps: float = 1.0) -> Tensor:
    """Soft dice loss of each mask: ``1 - (2 * sum(p*t) + eps) / (sum(p) + sum(t) + eps)``.

    ``p = sigmoid(logits)`` are soft predictions, so the loss is differentiable;
    the sums run over the H x W pixels of each mask. Dice measures region
    overlap and is insensitive to the foreground/background imbalance, which
    complements the per-pixel focal loss.

    Smoothing: ``eps`` is added to numerator and denominator (the usual "+1"
    smoothing of DETR / SAM-style training code). It keeps the loss defined
    when prediction and target are both empty (loss -> 0 instead of 0/0) and
    softens the gradient for tiny masks. ``eps = 0`` gives the unsmoothed dice,
    which is NaN for two empty masks.

    Args:
        logits: ``... x H x W`` mask logits.
        targets: ``... x H x W`` ground truth, bool or float in [0, 1].
        eps: additive smoothing constant (>= 0).

    Returns:
        ``logits.shape[:-2]``: the loss of each mask, in [0, 1].
    """
    targets = targets.to(logits.dtype)  # ... x H x W
    p = torch.sigmoid(logits)  # ... x H x W
    numerator = 2 * (p * targets).sum(dim=(-2, -1)) + eps  # ...
    denominator = p.sum(dim=(-2, -1)) + targets.sum(dim=(-2, -1)) + eps  # ...
    return 1 - numerator / denominator  # ...


def mask_iou(pred_masks: Tensor, targets: Tensor) -> Tensor:
    """Intersection over union of binary masks, per mask.

    Args:
        pred_masks: ``... x H x W`` bool (e.g. ``logits > 0``); other dtypes are
            binarised with ``> 0.5``.
        targets: ``... x H x W`` bool, broadcastable against ``pred_masks``
            (e.g. ``B x 1 x H x W`` against ``B x M x H x W``).

    Returns:
        ``... `` float32 IoU of each mask. Two empty masks (empty union) agree
        perfectly, so their IoU is 1.0 rather than 0/0.
    """
    pred = _binarize(pred_masks)  # ... x H x W
    tgt = _binarize(targets)  # ... x H x W
    inter = (pred & tgt).sum(dim=(-2, -1)).float()  # ...
    union = (pred | tgt).sum(dim=(-2, -1)).float()  # ...
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))  # ...


@dataclass
class SamLossWeights:
    """Weights of the SAM loss terms: focal : dice = 20 : 1 for the mask, IoU MSE 1.0."""

    focal: float = 20.0
    dice: float = 1.0
    iou: float = 1.0


@dataclass
class SamLossOutput:
    """Result of :func:`sam_loss`.

    Attributes:
        total: scalar to back-propagate, ``mask + weights.iou * iou``.
        mask: scalar, batch mean of the selected mask's ``focal*wf + dice*wd``.
        focal: scalar, batch mean of the selected mask's (unweighted) focal loss.
        dice: scalar, batch mean of the selected mask's (unweighted) dice loss.
        iou: scalar, (unweighted) IoU-prediction MSE.
        best_index: ``B`` long, index of the output selected for each sample.
        true_iou: ``B x M`` detached IoU of each predicted mask (``logits > 0``)
            with the target; entries of invalid (padding) slots are computed on
            the padding and carry no meaning.
    """

    total: Tensor
    mask: Tensor
    focal: Tensor
    dice: Tensor
    iou: Tensor
    best_index: Tensor
    true_iou: Tensor


def sam_loss(
    mask_logits: Tensor,
    iou_pred: Tensor,
    targets: Tensor,
    multimask: bool | Tensor,
    weights: SamLossWeights | None = None,
    *,
    valid: Tensor | None = None,
    iou_on_all_outputs: bool = True,
) -> SamLossOutput:
    """SAM training loss for one round of prompts (paper, appendix A).

    1. Per output mask: ``mask_loss = weights.focal * focal + weights.dice * dice``
       (20:1 by default).
    2. Per sample, the output with the lowest mask loss (argmin over the valid
       outputs, on detached values) is selected; only its mask loss enters the
       total, so the other outputs' logits get no gradient from the mask loss.
       With ``M == 1`` the single output is selected trivially.
    3. IoU head: MSE between ``iou_pred`` and the true IoU of each predicted
       mask, ``mask_iou(mask_logits > 0, targets)``. The true IoU is a detached
       target (thresholding is not differentiable anyway), so this term sends
       gradient only to ``iou_pred``. Choice: by default (``iou_on_all_outputs=True``)
       *every* valid output's IoU prediction is supervised, as in the reference
       training code: the IoU head is used to rank all three masks at inference,
       so it must score the losing masks too. ``iou_on_all_outputs=False``
       restricts the MSE to the selected mask of each sample.

    ``total = mean_b(selected mask loss) + weights.iou * iou_mse`` where
    ``iou_mse`` is the mean over all supervised (sample, output) entries.

    Args:
        mask_logits: ``B x M x H x W`` logits, M = 3 ambiguity outputs or 1
            (or the padded output of :func:`select_outputs`).
        iou_pred: ``B x M`` predicted IoUs.
        targets: ``B x H x W`` ground truth (bool, or float in [0, 1]; the IoU
            target binarises it with ``> 0.5``). Must have the logits' H x W.
        multimask: True when the outputs are ambiguity outputs to choose from;
            False when only output 0 is meant (a single-output sample). A ``B``
            bool tensor sets this per sample: a False sample uses slot 0 only
            (slot 0 must then hold its single mask, as :func:`select_outputs`
            arranges).
        weights: loss weights, default :class:`SamLossWeights` (20, 1, 1).
        valid: optional ``B x M`` bool; False slots (padding) never win the
            argmin and are excluded from the IoU MSE. Combined (AND) with
            ``multimask``. Every sample needs at least one valid slot.
        iou_on_all_outputs: see step 3.

    Raises:
        ValueError: on inconsistent shapes, e.g. targets at a different
            resolution than the logits (resize explicitly; nothing is
            resized here), or a sample without any valid output.
    """
    weights = SamLossWeights() if weights is None else weights
    if mask_logits.dim() != 4:
        raise ValueError(f"mask_logits must be B x M x H x W, got shape {tuple(mask_logits.shape)}")
    B, M, H, W = mask_logits.shape
    if iou_pred.shape != (B, M):
        raise ValueError(f"iou_pred must be B x M = {(B, M)}, got {tuple(iou_pred.shape)}")
    if targets.dim() != 3 or targets.shape[0] != B:
        raise ValueError(f"targets must be B x H x W with B = {B}, got {tuple(targets.shape)}")
    if tuple(targets.shape[-2:]) != (H, W):
        raise ValueError(
            f"targets are {tuple(targets.shape[-2:])} but mask logits are {(H, W)}: resize one of them first "
            "(e.g. upsample the low-res logits with Sam.postprocess_masks / F.interpolate, or downsample the "
            "targets); sam_loss does not resize silently."
        )

    # Which slots may be selected / supervised: B x M
    keep = torch.ones(B, M, dtype=torch.bool, device=mask_logits.device)
    if valid is not None:
        if valid.shape != (B, M):
            raise ValueError(f"valid must be B x M = {(B, M)}, got {tuple(valid.shape)}")
        keep = keep & valid.to(device=keep.device, dtype=torch.bool)
    multi = torch.as_tensor(multimask, dtype=torch.bool, device=keep.device)
    if multi.dim() > 1 or (multi.dim() == 1 and multi.shape[0] != B):
        raise ValueError(f"multimask must be a bool or a tensor of shape ({B},), got {tuple(multi.shape)}")
    single_only = torch.zeros(M, dtype=torch.bool, device=keep.device)
    single_only[0] = True  # M
    keep = keep & (multi.reshape(-1, 1) | single_only)  # B x M
    if not bool(keep.any(dim=1).all()):
        raise ValueError("every sample needs at least one valid output (check valid / multimask)")

    tgt = targets.unsqueeze(1)  # B x 1 x H x W (broadcasts over M)
    focal = sigmoid_focal_loss(mask_logits, tgt.expand_as(mask_logits))  # B x M
    dice = dice_loss(mask_logits, tgt.expand_as(mask_logits))  # B x M
    per_mask = weights.focal * focal + weights.dice * dice  # B x M

    # Pick the lowest-loss valid output; selection itself is not differentiated.
    ranking = per_mask.detach().masked_fill(~keep, float("inf"))  # B x M
    best = ranking.argmin(dim=1)  # B
    rows = torch.arange(B, device=best.device)  # B
    mask_loss = per_mask[rows, best].mean()
    focal_sel = focal[rows, best].mean()
    dice_sel = dice[rows, best].mean()

    with torch.no_grad():
        true_iou = mask_iou(mask_logits > 0, tgt).to(iou_pred.dtype)  # B x M
    sq_err = (iou_pred - true_iou) ** 2  # B x M
    if iou_on_all_outputs:
        iou_loss = sq_err[keep].mean()
    else:
        iou_loss = sq_err[rows, best].mean()

    total = mask_loss + weights.iou * iou_loss
    return SamLossOutput(total=total, mask=mask_loss, focal=focal_sel, dice=dice_sel, iou=iou_loss,
                         best_index=best, true_iou=true_iou)


class SelectedOutputs(NamedTuple):
    """Outputs a batch is trained on (see :func:`select_outputs`)."""

    mask_logits: Tensor  # B x M' x H x W
    iou_pred: Tensor  # B x M'
    valid: Tensor  # B x M' bool


def select_outputs(
    mask_logits: Tensor,
    iou_pred: Tensor,
    multimask: bool | Tensor | None = None,
    *,
    num_prompts: Tensor | None = None,
) -> SelectedOutputs:
    """Choose, per sample, which decoder outputs are trained (paper, appendix A).

    The decoder predicts all ``K + 1`` masks (``B x 4 x H x W`` and ``B x 4``
    for SAM): index 0 is the single-mask output meant for several prompts,
    indices ``1..K`` are the ambiguity outputs meant for one prompt.

    * ``multimask=True`` / ``False`` (whole batch): returns outputs ``1..K``
      (``B x K``) or output 0 (``B x 1``), like the decoder's
      ``multimask_output`` switch, with an all-True ``valid``.
    * A ``B`` bool tensor ``multimask`` (or ``num_prompts``, an integer ``B``
      tensor of prompts per sample; a box counts as one prompt, so
      ``multimask = num_prompts == 1``) handles a mixed batch: the result is
      padded to ``B x K x H x W`` / ``B x K``. A multimask sample gets outputs
      ``1..K`` (all valid); a single-output sample gets output 0 in slot 0 and
      zeros in slots ``1..K-1`` with ``valid`` False there. Pass ``valid`` on to
      :func:`sam_loss` so the padding is never selected or supervised.

    Args:
        mask_logits: ``B x (K+1) x H x W`` all decoder outputs.
        iou_pred: ``B x (K+1)`` all IoU predictions.
        multimask: bool, or ``B`` bool tensor. Give exactly one of
            ``multimask`` and ``num_prompts``.
        num_prompts: ``B`` integer tensor of prompts per sample.

    Returns:
        :class:`SelectedOutputs` ``(mask_logits, iou_pred, valid)``.
    """
    if (multimask is None) == (num_prompts is None):
        raise ValueError("give exactly one of multimask and num_prompts")
    if mask_logits.dim() != 4 or mask_logits.shape[1] < 2:
        raise ValueError(f"mask_logits must be B x (K+1) x H x W with K >= 1, got {tuple(mask_logits.shape)}")
    B, K1 = mask_logits.shape[:2]
    if iou_pred.shape != (B, K1):
        raise ValueError(f"iou_pred must be {(B, K1)}, got {tuple(iou_pred.shape)}")
    K = K1 - 1
    device = mask_logits.device

    if isinstance(multimask, bool):
        sl = slice(1, None) if multimask else slice(0, 1)
        logits, iou = mask_logits[:, sl], iou_pred[:, sl]  # B x M' x H x W, B x M'
        return SelectedOutputs(logits, iou, torch.ones(iou.shape, dtype=torch.bool, device=device))

    if num_prompts is not None:
        if num_prompts.shape != (B,):
            raise ValueError(f"num_prompts must have shape ({B},), got {tuple(num_prompts.shape)}")
        if bool((num_prompts < 1).any()):
            raise ValueError("every sample needs at least one prompt")
        multi = num_prompts.to(device) == 1  # B
    else:
        multi = torch.as_tensor(multimask, device=device)
        if multi.dtype != torch.bool or multi.shape != (B,):
            raise ValueError(f"multimask must be a bool or a bool tensor of shape ({B},)")

    m4 = multi.view(B, 1, 1, 1)  # B x 1 x 1 x 1
    single_logits = F.pad(mask_logits[:, :1], (0, 0, 0, 0, 0, K - 1))  # B x K x H x W: output 0, then zeros
    single_iou = F.pad(iou_pred[:, :1], (0, K - 1))  # B x K
    logits = torch.where(m4, mask_logits[:, 1:], single_logits)  # B x K x H x W
    iou = torch.where(multi.view(B, 1), iou_pred[:, 1:], single_iou)  # B x K
    slot0 = torch.zeros(K, dtype=torch.bool, device=device)
    slot0[0] = True  # K
    valid = multi.view(B, 1) | slot0  # B x K
    return SelectedOutputs(logits, iou, valid)
