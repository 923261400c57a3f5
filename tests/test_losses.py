"""SAM training losses, checked against values worked out by hand on 2 x 2 masks."""

from __future__ import annotations

import math

import pytest
import torch

from samwidgets.training.losses import (
    SamLossWeights,
    dice_loss,
    mask_iou,
    sam_loss,
    select_outputs,
    sigmoid_focal_loss,
)

LN2, LN3, LN4 = math.log(2), math.log(3), math.log(4)

# Shared 2 x 2 target: ones everywhere but the top-right pixel.
T = torch.tensor([[1.0, 0.0], [1.0, 1.0]])

# "L": logits whose sigmoids are simple fractions.
#   sigmoid(0) = 1/2, sigmoid(ln 3) = 3/4, sigmoid(-ln 3) = 1/4
L = torch.tensor([[0.0, LN3], [-LN3, LN3]])

# Focal loss of L against T (alpha = 0.25, gamma = 2), pixel by pixel:
#   (0,0) x=0,     t=1: p_t=1/2, CE=ln2,        (1-p_t)^2=1/4,  alpha_t=1/4 -> ln2/16
#   (0,1) x=ln3,   t=0: p=3/4, p_t=1/4, CE=-ln(1/4)=ln4, (1-p_t)^2=9/16, alpha_t=3/4 -> 27 ln4/64
#   (1,0) x=-ln3,  t=1: p_t=1/4, CE=ln4,        (1-p_t)^2=9/16, alpha_t=1/4 -> 9 ln4/64
#   (1,1) x=ln3,   t=1: p_t=3/4, CE=-ln(3/4)=ln(4/3), (1-p_t)^2=1/16, alpha_t=1/4 -> ln(4/3)/64
FOCAL_L = (LN2 / 16 + 27 * LN4 / 64 + 9 * LN4 / 64 + math.log(4 / 3) / 64) / 4
# Dice of L against T, eps = 1:
#   sum(p*t) = 1/2 + 1/4 + 3/4 = 3/2; sum(p) = 1/2 + 3/4 + 1/4 + 3/4 = 9/4; sum(t) = 3
#   1 - (2 * 3/2 + 1) / (9/4 + 3 + 1) = 1 - 4 / 6.25 = 0.36
DICE_L = 0.36
MASK_L = 20 * FOCAL_L + DICE_L  # about 4.498

# "Z": all-zero logits, p = 1/2 everywhere.
#   focal: t=1 pixels (3 of them): 1/4 * 1/4 * ln2; t=0 pixel: 3/4 * 1/4 * ln2
#          mean = (3/16 + 3/16) ln2 / 4 = 3 ln2 / 32
#   dice:  sum(p*t) = 3/2, sum(p) = 2, sum(t) = 3 -> 1 - (3 + 1)/(2 + 3 + 1) = 1/3
Z = torch.zeros(2, 2)
MASK_Z = 20 * 3 * LN2 / 32 + 1 / 3  # about 1.633

# "X": confidently wrong logits (loss far above L and Z).
X = torch.tensor([[-5.0, 5.0], [-5.0, -5.0]])

# True IoUs against T (foreground of T = {(0,0), (1,0), (1,1)}):
#   L > 0 -> {(0,1), (1,1)}: inter 1, union 4 -> 1/4
#   Z > 0 -> {}:             inter 0, union 3 -> 0
#   X > 0 -> {(0,1)}:        inter 0, union 4 -> 0


# ---------------------------------------------------------------- focal loss


def test_focal_by_hand():
    # Logits [[0, ln3], [-ln3, 2]] against targets [[1, 0], [1, 1]]; the first
    # three pixels are as in FOCAL_L, the last one:
    #   x=2, t=1: CE = ln(1 + e^-2), 1 - p = 1/(1 + e^2) -> (1-p_t)^2 = 1/(1+e^2)^2, alpha_t = 1/4
    logits = torch.tensor([[[[0.0, LN3], [-LN3, 2.0]]]])  # 1 x 1 x 2 x 2
    last = 0.25 * math.log(1 + math.exp(-2)) / (1 + math.exp(2)) ** 2
    expected = (LN2 / 16 + 27 * LN4 / 64 + 9 * LN4 / 64 + last) / 4
    out = sigmoid_focal_loss(logits, T[None, None])
    assert out.shape == (1, 1)
    assert out.item() == pytest.approx(expected, rel=1e-6)
    assert sigmoid_focal_loss(L, T).item() == pytest.approx(FOCAL_L, rel=1e-6)


def test_focal_without_alpha():
    # alpha < 0: drop the alpha_t factors of FOCAL_L:
    #   ln2/4 + 9 ln4/16 + 9 ln4/16 + ln(4/3)/16, mean over 4 pixels
    expected = (LN2 / 4 + 9 * LN4 / 16 + 9 * LN4 / 16 + math.log(4 / 3) / 16) / 4
    assert sigmoid_focal_loss(L, T, alpha=-1).item() == pytest.approx(expected, rel=1e-6)


def test_focal_gamma_zero_no_alpha_is_bce():
    # gamma = 0, no alpha: plain mean CE = (ln2 + ln4 + ln4 + ln(4/3)) / 4
    expected = (LN2 + LN4 + LN4 + math.log(4 / 3)) / 4
    assert sigmoid_focal_loss(L, T, alpha=-1, gamma=0).item() == pytest.approx(expected, rel=1e-6)


def test_focal_stable_at_extreme_logits():
    # x=+100, t=1: CE = ln(1+e^-100) ~ 4e-44, (1-p_t)^2 ~ 0       -> 0
    # x=-100, t=1: CE = 100, p_t ~ 0, (1-p_t)^2 = 1, alpha_t = 1/4 -> 25
    # x=+100, t=0: CE = 100, (1-p_t)^2 = 1, alpha_t = 3/4          -> 75
    # x=-100, t=0: -> 0;  mean = (0 + 25 + 75 + 0) / 4 = 25
    logits = torch.tensor([[100.0, -100.0], [100.0, -100.0]], requires_grad=True)
    targets = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    out = sigmoid_focal_loss(logits, targets)
    assert torch.isfinite(out) and out.item() == pytest.approx(25.0, rel=1e-6)
    out.backward()
    assert torch.isfinite(logits.grad).all()
    # Without alpha: (0 + 100 + 100 + 0) / 4 = 50
    assert sigmoid_focal_loss(logits.detach(), targets, alpha=-1).item() == pytest.approx(50.0, rel=1e-6)
    assert torch.isfinite(dice_loss(logits.detach(), targets))
    # gamma < 1 differentiates (1 - p_t)^gamma at a saturated pixel: still finite
    logits.grad = None
    sigmoid_focal_loss(logits, targets, gamma=0.5).backward()
    assert torch.isfinite(logits.grad).all()


def test_focal_any_batch_shape_and_bool_targets():
    logits = L.expand(2, 3, 5, 2, 2)  # 2 x 3 x 5 x H x W
    out = sigmoid_focal_loss(logits, T.bool().expand(2, 3, 5, 2, 2))
    assert out.shape == (2, 3, 5)
    torch.testing.assert_close(out, torch.full((2, 3, 5), FOCAL_L))


# ---------------------------------------------------------------- dice loss


def test_dice_by_hand_with_and_without_smoothing():
    assert dice_loss(L[None], T[None]).item() == pytest.approx(DICE_L, rel=1e-6)
    # eps = 0: 1 - 3 / (9/4 + 3) = 1 - 3/5.25 = 3/7
    assert dice_loss(L, T, eps=0.0).item() == pytest.approx(3 / 7, rel=1e-6)
    # eps = 2: 1 - (3 + 2) / (5.25 + 2) = 1 - 5/7.25 = 9/29
    assert dice_loss(L, T, eps=2.0).item() == pytest.approx(9 / 29, rel=1e-6)
    assert dice_loss(Z, T).item() == pytest.approx(1 / 3, rel=1e-6)


def test_dice_empty_masks_smoothing():
    # Target empty, p ~ 0: (0 + 1) / (~0 + 0 + 1) -> loss ~ 0 thanks to eps ...
    logits = torch.full((2, 2), -100.0)
    empty = torch.zeros(2, 2)
    assert dice_loss(logits, empty).item() == pytest.approx(0.0, abs=1e-6)
    # ... while eps = 0 would give 1 - 0 / ~1e-43 = 1 (and 0/0 = NaN once p underflows to 0).
    # Target empty, p = 1/2 everywhere: 1 - 1 / (2 + 0 + 1) = 2/3
    assert dice_loss(Z, empty).item() == pytest.approx(2 / 3, rel=1e-6)


# ---------------------------------------------------------------- mask IoU


def test_mask_iou_by_hand():
    pred = torch.tensor([[True, True], [False, False]])
    tgt = torch.tensor([[True, False], [True, False]])
    empty = torch.zeros(2, 2, dtype=torch.bool)
    # inter {(0,0)} = 1, union {(0,0), (0,1), (1,0)} = 3 -> 1/3
    assert mask_iou(pred, tgt).item() == pytest.approx(1 / 3)
    assert mask_iou(empty, empty).item() == 1.0  # empty union -> 1
    assert mask_iou(empty, tgt).item() == 0.0  # 0 / 2
    assert mask_iou(pred, pred).item() == 1.0
    batch = mask_iou(torch.stack([pred, empty, empty]), torch.stack([tgt, empty, tgt]))
    assert batch.shape == (3,) and batch.dtype == torch.float32
    torch.testing.assert_close(batch, torch.tensor([1 / 3, 1.0, 0.0]))
    # float 0/1 masks are binarised
    assert mask_iou(pred.float(), tgt.float()).item() == pytest.approx(1 / 3)


# ---------------------------------------------------------------- sam_loss


def test_sam_loss_single_output_20_to_1():
    logits = L[None, None].clone().requires_grad_(True)  # 1 x 1 x 2 x 2
    iou_pred = torch.tensor([[0.75]], requires_grad=True)  # true IoU of L is 1/4
    out = sam_loss(logits, iou_pred, T[None], multimask=False)
    assert out.focal.item() == pytest.approx(FOCAL_L, rel=1e-6)
    assert out.dice.item() == pytest.approx(DICE_L, rel=1e-6)
    assert out.mask.item() == pytest.approx(20 * FOCAL_L + 1 * DICE_L, rel=1e-6)
    assert out.iou.item() == pytest.approx(0.25, rel=1e-6)  # (0.75 - 0.25)^2
    assert out.total.item() == pytest.approx(MASK_L + 0.25, rel=1e-6)
    assert out.total.dim() == 0
    assert out.best_index.tolist() == [0]
    torch.testing.assert_close(out.true_iou, torch.tensor([[0.25]]))
    # multimask=True with M == 1 selects the only output too; bool targets give the same
    same = sam_loss(logits, iou_pred, T[None].bool(), multimask=True)
    assert same.total.item() == pytest.approx(out.total.item(), rel=1e-6)


def test_sam_loss_custom_weights():
    logits, iou_pred = L[None, None], torch.tensor([[0.75]])
    out = sam_loss(logits, iou_pred, T[None], False, SamLossWeights(focal=0.0, dice=1.0, iou=0.0))
    assert out.total.item() == pytest.approx(DICE_L, rel=1e-6)
    out = sam_loss(logits, iou_pred, T[None], False, SamLossWeights(focal=1.0, dice=0.0, iou=2.0))
    assert out.total.item() == pytest.approx(FOCAL_L + 2 * 0.25, rel=1e-6)
    assert SamLossWeights() == SamLossWeights(focal=20.0, dice=1.0, iou=1.0)


def test_sam_loss_argmin_gradient_only_to_selected_mask():
    # Sample 0 outputs [X, Z, L]: losses [large, 1.633, 4.498] -> best 1 (Z)
    # Sample 1 outputs [L, X, Z]:                               -> best 2 (Z)
    logits = torch.stack([torch.stack([X, Z, L]), torch.stack([L, X, Z])]).requires_grad_(True)
    iou_pred = torch.zeros(2, 3, requires_grad=True)
    out = sam_loss(logits, iou_pred, torch.stack([T, T]), multimask=True)
    assert out.best_index.tolist() == [1, 2]
    assert out.mask.item() == pytest.approx(MASK_Z, rel=1e-6)
    assert out.focal.item() == pytest.approx(3 * LN2 / 32, rel=1e-6)
    assert out.dice.item() == pytest.approx(1 / 3, rel=1e-6)
    out.total.backward()
    g = logits.grad
    assert g[0, 1].abs().sum() > 0 and g[1, 2].abs().sum() > 0
    assert torch.count_nonzero(g[0, 0]) == 0 and torch.count_nonzero(g[0, 2]) == 0
    assert torch.count_nonzero(g[1, 0]) == 0 and torch.count_nonzero(g[1, 1]) == 0
    # IoU MSE over all 6 outputs; true IoUs by hand: X -> 0, Z -> 0, L -> 1/4
    torch.testing.assert_close(out.true_iou, torch.tensor([[0.0, 0.0, 0.25], [0.25, 0.0, 0.0]]))
    # (2 * 0.25^2) / 6 = 1/48
    assert out.iou.item() == pytest.approx(1 / 48, rel=1e-6)
    # d/dp mean((p - y)^2) = 2 (p - y) / 6 -> -0.25/3 where y = 1/4, else 0
    torch.testing.assert_close(iou_pred.grad, torch.tensor([[0.0, 0.0, -0.25 / 3], [-0.25 / 3, 0.0, 0.0]]))


def test_sam_loss_iou_only_on_selected():
    logits = torch.stack([torch.stack([X, Z, L])])  # 1 x 3 x 2 x 2, best = 1 (Z, true IoU 0)
    iou_pred = torch.tensor([[0.5, 0.5, 0.5]], requires_grad=True)
    out = sam_loss(logits, iou_pred, T[None], True, iou_on_all_outputs=False)
    assert out.iou.item() == pytest.approx(0.25)  # (0.5 - 0)^2 for the selected output only
    out.iou.backward()
    torch.testing.assert_close(iou_pred.grad, torch.tensor([[0.0, 1.0, 0.0]]))  # 2 * 0.5
    out_all = sam_loss(logits, iou_pred, T[None], True)
    # (0.5^2 + 0.5^2 + 0.25^2) / 3 = 0.5625 / 3
    assert out_all.iou.item() == pytest.approx(0.5625 / 3, rel=1e-6)


def test_sam_loss_iou_targets_are_detached():
    logits = L[None, None].clone().requires_grad_(True)
    iou_pred = torch.tensor([[0.75]], requires_grad=True)
    out = sam_loss(logits, iou_pred, T[None], False)
    assert not out.true_iou.requires_grad
    out.iou.backward()
    assert logits.grad is None  # no path from the IoU term to the mask logits
    assert iou_pred.grad.item() == pytest.approx(1.0)  # 2 * (0.75 - 0.25)


def test_select_outputs_mixed_batch():
    # Slot m of sample b is filled with 10*b + m + 1 so we can see where it went.
    vals = torch.tensor([[1.0, 2.0, 3.0, 4.0], [11.0, 12.0, 13.0, 14.0]])  # B x 4
    logits = vals[:, :, None, None].expand(2, 4, 2, 2).clone()  # B x 4 x 2 x 2
    sel = select_outputs(logits, vals, torch.tensor([True, False]))
    assert sel.mask_logits.shape == (2, 3, 2, 2)
    torch.testing.assert_close(sel.iou_pred, torch.tensor([[2.0, 3.0, 4.0], [11.0, 0.0, 0.0]]))
    torch.testing.assert_close(sel.mask_logits[:, :, 0, 0], torch.tensor([[2.0, 3.0, 4.0], [11.0, 0.0, 0.0]]))
    assert sel.valid.tolist() == [[True, True, True], [True, False, False]]
    by_count = select_outputs(logits, vals, num_prompts=torch.tensor([1, 3]))
    for a, b in zip(sel, by_count):
        torch.testing.assert_close(a, b)
    # Whole-batch flags mirror the decoder's multimask_output switch
    multi = select_outputs(logits, vals, True)
    torch.testing.assert_close(multi.iou_pred, vals[:, 1:])
    single = select_outputs(logits, vals, False)
    assert single.mask_logits.shape == (2, 1, 2, 2) and single.valid.all()
    torch.testing.assert_close(single.iou_pred, vals[:, :1])
    with pytest.raises(ValueError):
        select_outputs(logits, vals)


def test_sam_loss_padded_batch_with_valid():
    # Decoder outputs (slot 0 = single-prompt output, 1..3 = ambiguity outputs):
    #   sample 0, one prompt:      [-, X, Z, L] -> trained on [X, Z, L], best Z (1.633)
    #   sample 1, several prompts: [L, -, -, -] -> trained on [L, pad, pad]
    # Padding is zeros = Z, whose loss 1.633 beats L's 4.498: without `valid`
    # the padding would win the argmin for sample 1.
    full = torch.stack([torch.stack([L, X, Z, L]), torch.stack([L, X, X, X])]).requires_grad_(True)
    iou_full = torch.tensor([[9.0, 0.0, 0.5, 0.25], [0.75, 9.0, 9.0, 9.0]], requires_grad=True)
    sel = select_outputs(full, iou_full, num_prompts=torch.tensor([1, 2]))
    # Padded IoU predictions of sample 1 are 0 and would enter the MSE otherwise.
    targets = torch.stack([T, T])
    out = sam_loss(sel.mask_logits, sel.iou_pred, targets, multimask=True, valid=sel.valid)
    assert out.best_index.tolist() == [1, 0]
    # mask = (MASK_Z + MASK_L) / 2
    assert out.mask.item() == pytest.approx((MASK_Z + MASK_L) / 2, rel=1e-6)
    # IoU errors on the 4 valid entries: sample 0 [0-0, 0.5-0, 0.25-0.25], sample 1 [0.75-0.25]
    #   (0 + 0.25 + 0 + 0.25) / 4 = 0.125
    assert out.iou.item() == pytest.approx(0.125, rel=1e-6)
    assert out.total.item() == pytest.approx((MASK_Z + MASK_L) / 2 + 0.125, rel=1e-6)
    out.total.backward()
    # Mask gradient reaches only Z of sample 0 (decoder slot 2) and L of sample 1 (slot 0)
    nz = [[bool(full.grad[b, m].abs().sum() > 0) for m in range(4)] for b in range(2)]
    assert nz == [[False, False, True, False], [True, False, False, False]]
    # IoU gradient 2 (p - y) / 4 on the valid entries only; slot 0 of sample 0 is unused
    torch.testing.assert_close(iou_full.grad, torch.tensor([[0.0, 0.0, 0.25, 0.0], [0.25, 0.0, 0.0, 0.0]]))
    # Without valid, the padding (zeros) wins for sample 1
    unmasked = sam_loss(sel.mask_logits, sel.iou_pred, targets, multimask=True)
    assert unmasked.best_index.tolist() == [1, 1]
    # A per-sample multimask tensor does the same as valid here
    by_flag = sam_loss(sel.mask_logits, sel.iou_pred, targets, multimask=torch.tensor([True, False]))
    assert by_flag.best_index.tolist() == [1, 0]
    assert by_flag.total.item() == pytest.approx(out.total.item(), rel=1e-6)
    # iou_on_all_outputs=False: selected entries only: (0.5^2 + 0.5^2) / 2 = 0.25
    sel_only = sam_loss(sel.mask_logits, sel.iou_pred, targets, True, valid=sel.valid, iou_on_all_outputs=False)
    assert sel_only.iou.item() == pytest.approx(0.25, rel=1e-6)


def test_sam_loss_rejects_size_mismatch_and_bad_inputs():
    logits = torch.zeros(2, 3, 4, 4)
    iou_pred = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="resize"):
        sam_loss(logits, iou_pred, torch.zeros(2, 8, 8), True)
    with pytest.raises(ValueError):
        sam_loss(logits, torch.zeros(2, 1), torch.zeros(2, 4, 4), True)
    with pytest.raises(ValueError):
        sam_loss(logits, iou_pred, torch.zeros(3, 4, 4), True)
    with pytest.raises(ValueError, match="valid"):
        sam_loss(logits, iou_pred, torch.zeros(2, 4, 4), True, valid=torch.tensor([[True] * 3, [False] * 3]))


# -- edges found by mutation testing (.ci/mutation) -------------------------------------------------

def test_mask_iou_of_one_stray_pixel_against_an_empty_target_is_zero():
    pred = torch.zeros(2, 3, 3, dtype=torch.bool)
    pred[0, 1, 1] = True  # one pixel where the target has none: union 1, intersection 0
    pred[1, 1, 1] = True  # the same pixel as the target's: union 1, intersection 1
    target = torch.zeros(2, 3, 3, dtype=torch.bool)
    target[1, 1, 1] = True
    assert mask_iou(pred, target).tolist() == [0.0, 1.0]
    half = torch.full((1, 2, 2), 0.5)  # soft targets are binarised with > 0.5: 0.5 is background
    assert mask_iou(torch.ones(1, 2, 2, dtype=torch.bool), half).tolist() == [0.0]


def test_focal_with_alpha_zero_weights_only_the_negatives():
    logits = torch.tensor([[[0.0, 0.0]]])  # p = 1/2 on both pixels
    targets = torch.tensor([[[1.0, 0.0]]])  # one positive, one negative
    # alpha_t = 0 on the positive, 1 on the negative; (1 - p_t)^2 = 1/4; CE = ln 2: mean (0 + ln2 / 4) / 2
    loss = sigmoid_focal_loss(logits, targets, alpha=0.0, gamma=2.0)
    assert loss.item() == pytest.approx(LN2 / 8)


def test_select_outputs_names_each_wrong_argument():
    logits, iou = torch.zeros(2, 4, 3, 3), torch.zeros(2, 4)
    with pytest.raises(ValueError, match="give exactly one of multimask and num_prompts"):
        select_outputs(logits, iou)
    with pytest.raises(ValueError, match="give exactly one of multimask and num_prompts"):
        select_outputs(logits, iou, True, num_prompts=torch.ones(2))
    with pytest.raises(ValueError, match=r"mask_logits must be B x \(K\+1\) x H x W with K >= 1, got \(2, 1, 3, 3\)"):
        select_outputs(torch.zeros(2, 1, 3, 3), torch.zeros(2, 1), True)
    with pytest.raises(ValueError, match=r"mask_logits must be B x \(K\+1\) x H x W with K >= 1, got \(2, 4, 3\)"):
        select_outputs(torch.zeros(2, 4, 3), iou, True)
    two = select_outputs(torch.zeros(2, 2, 3, 3), torch.zeros(2, 2), True)  # K = 1 is enough
    assert two.mask_logits.shape == (2, 1, 3, 3)
    with pytest.raises(ValueError, match=r"iou_pred must be \(2, 4\), got \(2, 3\)"):
        select_outputs(logits, torch.zeros(2, 3), True)
    with pytest.raises(ValueError, match=r"num_prompts must have shape \(2,\), got \(3,\)"):
        select_outputs(logits, iou, num_prompts=torch.ones(3))
    with pytest.raises(ValueError, match="every sample needs at least one prompt"):
        select_outputs(logits, iou, num_prompts=torch.tensor([1, 0]))
    with pytest.raises(ValueError, match=r"multimask must be a bool or a bool tensor of shape \(2,\)"):
        select_outputs(logits, iou, torch.tensor([True, False, True]))
    with pytest.raises(ValueError, match=r"multimask must be a bool or a bool tensor of shape \(2,\)"):
        select_outputs(logits, iou, torch.tensor([1, 0]))  # integers are not a mask
    chosen = select_outputs(logits, iou, True)
    assert chosen.mask_logits.shape == (2, 3, 3, 3) and chosen.valid.dtype == torch.bool and chosen.valid.all()
    single = select_outputs(logits, iou, False)
    assert single.mask_logits.shape == (2, 1, 3, 3) and single.valid.dtype == torch.bool


def test_sam_loss_names_a_wrong_multimask_and_takes_any_valid_dtype():
    logits, iou, targets = torch.zeros(2, 4, 4, 4), torch.zeros(2, 4), torch.zeros(2, 4, 4)
    for bad in (torch.tensor([[True, False]]), torch.tensor([True, False, True])):
        with pytest.raises(ValueError, match=r"multimask must be a bool or a tensor of shape \(2,\)"):
            sam_loss(logits, iou, targets, bad)
    as_bool = sam_loss(logits, iou, targets, True, valid=torch.tensor([[True] * 4, [True, False, False, False]]))
    as_int = sam_loss(logits, iou, targets, True, valid=torch.tensor([[1] * 4, [1, 0, 0, 0]]))  # 0/1 read as a mask
    assert torch.equal(as_bool.total, as_int.total)


def test_the_iou_target_is_the_iou_of_the_mask_at_logit_zero():
    target = torch.zeros(1, 4, 4, dtype=torch.bool)
    target[0, 1:3, 1:3] = True
    logits = torch.where(target, 0.5, -5.0)[:, None]  # 1 x 1 x H x W: just above zero where the target is
    out = sam_loss(logits, torch.ones(1, 1), target, False)
    assert out.iou.item() == 0.0  # the thresholded mask is the target: IoU 1, predicted 1
    out = sam_loss(logits, torch.zeros(1, 1), target, False)
    assert out.iou.item() == 1.0
