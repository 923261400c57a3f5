"""The learning-rate schedule of SAM's training (paper, appendix A): linear warm-up, then decay.

Used by ``samwidgets train`` and by the data engine's retraining after each stage. A run whose
length is not known in advance (a campaign continued across sessions) uses
:func:`constant_factor` instead, and anneals through the moving average of its weights
(:mod:`samwidgets.training.ema`): a cosine would decay before the compute is spent.
"""

from __future__ import annotations

import math


def lr_factor(step: int, warmup: int, total: int, final_fraction: float = 0.1) -> float:
    """Linear warm-up to 1, then cosine decay to final_fraction at the last step."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress))


def constant_factor(step: int, warmup: int) -> float:
    """Linear warm-up to 1, then 1 for as long as the run goes on."""
    return (step + 1) / warmup if step < warmup else 1.0


def schedule_factor(kind: str, step: int, warmup: int, total: int) -> float:
    """The factor of the base learning rate at ``step`` for a schedule ``kind``: "cosine" or "constant"."""
    if kind == "cosine":
        return lr_factor(step, warmup, total)
    if kind == "constant":
        return constant_factor(step, warmup)
    raise ValueError(f"unknown schedule {kind!r}: choose 'cosine' or 'constant'")
