"""The learning-rate schedule of SAM's training (paper, appendix A): linear warm-up, then decay.

Used by ``samwidgets train`` and by the data engine's retraining after each stage.
"""

from __future__ import annotations

import math


def lr_factor(step: int, warmup: int, total: int, final_fraction: float = 0.1) -> float:
    """Linear warm-up to 1, then cosine decay to final_fraction at the last step."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress))
