"""Exercises of ``09_sam_family.ipynb``: FLOPs by hand, the object-score gate, a box as SAM 2 sees it.

The notebook's models have random weights (offline, no official weights), so these exercises practise the
mechanics that hold whatever the weights: the computation of a ViT block, the decoder's object score and its
gate, and how SAM 2's image predictor turns a box into two labelled corner points in its stretched frame.
Each checker measures the student's answer on the models themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ...hub.build import sam_model_registry
from ...modeling.common import MLP
from ...sam2.model import NO_OBJECT_SCORE, SAM2Base
from . import not_answered, passed, require

__all__ = ["OBJECTS_WANTED", "check_box_as_corners", "check_mlp_gflops", "check_object_score_shift",
           "measured_mlp_gflops"]

#: Exercise 2: how many of the ten prompts should keep their mask.
OBJECTS_WANTED = 3


# ----------------------------------------------------------------------------------------------
# Exercise 1: FLOPs by hand
# ----------------------------------------------------------------------------------------------


def measured_mlp_gflops() -> tuple[float, float]:
    """GFLOP of the MLPs of SAM vit_b's image encoder, and of the whole encoder, for one 1024 x 1024 image.

    Counted by ``FlopCounterMode`` on the ``meta`` device (shapes only, nothing computed), per module.
    """
    with torch.device("meta"):
        encoder = sam_model_registry["vit_b"]().image_encoder
        pixels = torch.empty(1, 3, 1024, 1024)
    with FlopCounterMode(display=False) as counter:
        encoder(pixels)
    per_module = counter.get_flop_counts()  # module name -> {operator: FLOPs}
    mlp = sum(sum(ops.values()) for name, ops in per_module.items() if name.endswith(".mlp"))
    return mlp / 1e9, counter.get_total_flops() / 1e9


def check_mlp_gflops(answer: float | None) -> bool:
    """Check the GFLOP that the MLPs of SAM vit_b's image encoder take for one 1024 x 1024 image, by hand.

    The goal: within 1% of what ``FlopCounterMode`` counts. Why: a Linear layer from d_in to d_out features
    applied to N tokens costs 2 x N x d_in x d_out FLOPs (a multiply and an add per weight and token); with the
    token count and the widths of the encoder one can say, before running anything, where the computation goes.
    """
    if answer is None:
        return not_answered("the GFLOP of the 12 MLPs of SAM vit_b's encoder for one 1024 px image, computed by "
                            "hand from the shapes")
    require(isinstance(answer, (int, float)) and not isinstance(answer, bool) and answer > 0,
            f"your answer {answer!r} is not a positive number of GFLOP", "give a float, in GFLOP (1e9 FLOPs)")
    mlp, total = measured_mlp_gflops()
    ratio = float(answer) / mlp
    if abs(ratio - 1) > 0.01:
        if abs(ratio - 0.5) < 0.01:
            hint = "a multiply-add counts as two FLOPs"
        elif abs(ratio * 12 - 1) < 0.02 or abs(ratio * 24 - 1) < 0.02:
            hint = "every one of the encoder's 12 blocks has an MLP"
        elif ratio < 1:
            hint = ("count the tokens (a 1024 px image in 16 px patches) and both Linear layers of an MLP, "
                    "768 -> 3072 and 3072 -> 768")
        else:
            hint = "the MLP has two Linear layers, each applied once per token; nothing else in it costs FLOPs here"
        require(False, f"your {float(answer):.1f} GFLOP is {ratio:.2f} times what the MLPs cost", hint)
    return passed(f"the MLPs take {mlp:.1f} GFLOP, {mlp / total:.0%} of the encoder's {total:.0f}: about half of a "
                  "ViT's computation is its MLPs; most of the rest is the attention's projections and, in the "
                  "four global blocks, the 4096 x 4096 attention matrices.")


# ----------------------------------------------------------------------------------------------
# Exercise 2: how many prompts see an object?
# ----------------------------------------------------------------------------------------------


def object_score_bias(model: SAM2Base) -> torch.Tensor:
    """The bias of the object-score head's last layer (a tensor of one value): adding to it shifts every score."""
    head = model.sam_mask_decoder.pred_obj_score_head
    last = head.layers[-1] if isinstance(head, MLP) else head  # an MLP head's last layer, or the one Linear
    assert isinstance(last, nn.Linear), "the object-score head ends in a Linear layer"
    return last.bias


@torch.no_grad()
def decode_with_shift(model: SAM2Base, embedding: torch.Tensor, finer: Sequence[torch.Tensor],
                      points: dict[str, torch.Tensor], shift: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The ten prompts decoded with ``shift`` added to the object-score bias (undone afterwards).

    Returns the low-res masks (B x 3 x 256 x 256) and the object scores (B), on the CPU.
    """
    n = points["point_coords"].shape[0]
    bias = object_score_bias(model)
    bias += shift
    try:
        out = model.forward_sam_heads(embedding.expand(n, -1, -1, -1), points, multimask_output=True,
                                      high_res_features=[f.expand(n, -1, -1, -1) for f in finer])
    finally:
        bias -= shift
    return out[0].cpu(), out[-1][:, 0].cpu()


def check_object_score_shift(answer: float | None, model: SAM2Base, embedding: torch.Tensor,
                             finer: Sequence[torch.Tensor], points: dict[str, torch.Tensor]) -> bool:
    """Check a shift of the object-score bias after which exactly 3 of the ten prompts keep their masks.

    The checker adds ``answer`` to the bias of the object-score head, decodes the ten prompts with
    ``forward_sam_heads`` and counts the prompts whose object score is positive; their masks must be real, the
    others all -1024. The model is left as it was. Why: the object score is one linear output; its bias moves
    every prompt's score alike, so it sets how sure the model must be before it answers with a mask at all.
    """
    if answer is None:
        return not_answered(f"a shift of the object-score head's bias after which exactly {OBJECTS_WANTED} of the "
                            "ten prompts see an object")
    require(isinstance(answer, (int, float)) and not isinstance(answer, bool) and np.isfinite(answer),
            f"your answer {answer!r} is not a number", "give the shift as a float (it is added to the bias)")
    masks, scores = decode_with_shift(model, embedding, finer, points, float(answer))
    present = scores > 0  # B
    count = int(present.sum())
    require(count == OBJECTS_WANTED,
            f"with the bias shifted by {float(answer):+.4f}, {count} of the {len(scores)} prompts have a positive "
            f"object score",
            "the shift adds the same amount to every prompt's score: decode once with no shift, sort the ten "
            f"scores, and choose a shift that lifts exactly {OBJECTS_WANTED} of them above zero"
            + (" (fewer: shift down)" if count > OBJECTS_WANTED else " (more: shift up)"))
    gated = bool((masks[~present] == NO_OBJECT_SCORE).all()) and bool((masks[present] != NO_OBJECT_SCORE).all())
    require(gated, "the masks do not follow the object scores", "decode with forward_sam_heads, which applies the gate")
    return passed(f"with the bias shifted by {float(answer):+.4f}, {OBJECTS_WANTED} prompts keep their masks and the "
                  f"other {len(scores) - OBJECTS_WANTED} are all {NO_OBJECT_SCORE:.0f}: no mask. A trained SAM 2 "
                  "learns this score so that it is negative where the prompted object is absent.")


# ----------------------------------------------------------------------------------------------
# Exercise 3: a box as SAM 2 sees it
# ----------------------------------------------------------------------------------------------


@torch.no_grad()
def sparse_tokens(model: SAM2Base, coords: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The prompt encoder's sparse tokens for points (1 x N x 2 in the input frame, labels 1 x N): 1 x T x C."""
    tokens, _ = model.sam_prompt_encoder(points=(coords, labels), boxes=None, masks=None)
    return tokens.cpu()


def check_box_as_corners(answer: tuple[Any, Any] | None, predictor: Any, box: Sequence[float]) -> bool:
    """Check the two labelled points that SAM 2's image predictor makes of ``box`` (XYXY, photo pixels).

    The answer is (coords, labels): two points in the model's square input frame (1024 x 1024 for the official
    configurations) and their labels. The
    checker encodes them with the prompt encoder and compares the tokens with those of the predictor's own
    path for ``box``. Why: SAM 2 stretches the photo to a square (no letterbox), so x and y scale by different
    factors, and it sends a box as two points labelled 2 (top-left) and 3 (bottom-right).
    """
    if answer is None:
        return not_answered("the box as SAM 2 sends it: (coords, labels), two points in the model's square input "
                            "frame and their labels")
    require(isinstance(answer, (tuple, list)) and len(answer) == 2,
            "your answer is not a pair (coords, labels)", "e.g. answer = (np.array([[x0, y0], [x1, y1]]), "
            "np.array([a, b]))")
    coords = torch.as_tensor(np.asarray(answer[0], dtype=np.float32)).reshape(1, -1, 2)  # 1 x N x 2
    labels = torch.as_tensor(np.asarray(answer[1])).to(torch.int).reshape(1, -1)  # 1 x N
    require(coords.shape[1] == 2 and labels.shape[1] == 2,
            f"your answer has {coords.shape[1]} points and {labels.shape[1]} labels", "a box is two corner points")
    model = predictor.model
    h, w = predictor._orig_hw[-1]
    size = predictor._transforms.resolution  # the model's square input: 1024 for the official models
    box_t = torch.as_tensor(np.asarray(box, dtype=np.float32))
    corners = predictor._transforms.transform_boxes(box_t, normalize=True, orig_hw=(h, w)).cpu()  # 1 x 2 x 2
    expected = sparse_tokens(model, corners.to(predictor.device), torch.tensor([[2, 3]], device=predictor.device))
    yours = sparse_tokens(model, coords.to(predictor.device), labels.to(predictor.device))
    if yours.shape == expected.shape and torch.allclose(yours, expected, atol=1e-4):
        landed = [[round(v, 1) for v in corner] for corner in corners[0].tolist()]
        return passed(f"the box {list(box)} of the {w} x {h} photo is the points {landed} of the {size} x {size} "
                      "input, labelled 2 and 3: "
                      f"x scaled by {size} / width, y by {size} / height, no padding.")
    as_photo = box_t.reshape(1, 2, 2)
    letterbox = as_photo * size / max(h, w)
    if not torch.equal(labels, torch.tensor([[2, 3]], dtype=torch.int)):
        hint = "the labels of box corners are neither clicks (1) nor background (0): 2 marks top-left, 3 bottom-right"
    elif torch.allclose(coords, as_photo, atol=0.5):
        hint = f"the prompt encoder works in the {size} x {size} input frame, not in the photo's pixels"
    elif torch.allclose(coords, letterbox, atol=0.5):
        hint = "that is SAM's letterbox (one scale for both axes); SAM 2 stretches the photo to a square"
    elif torch.allclose(coords.flip(1), corners, atol=0.5):
        hint = "the top-left corner comes first"
    else:
        hint = f"scale x by {size} / the photo's width and y by {size} / its height"
    require(False, f"your points {coords[0].tolist()} with labels {labels[0].tolist()} do not give the prompt "
            "tokens of the box", hint)
    return False  # not reached: require raised
