"""An exponential moving average of a model's weights, for evaluation during and after a long run.

A run with a constant learning rate (a campaign that goes on across sessions, with no known end)
never anneals, so its raw weights keep the noise of the last steps. Their moving average does
the annealing instead: ``ema = decay * ema + (1 - decay) * weights`` after every step, an average
over about ``1 / (1 - decay)`` steps (1,000 for 0.999). Early in a run the decay is lowered to
``(1 + t) / (10 + t)`` so that the average is not dominated by its random start.

Buffers are averaged too when they are floating point (BatchNorm's running statistics, which
belong with the averaged weights); integer buffers (BatchNorm's step counter) are copied.
"""

from __future__ import annotations

import torch
from torch import nn


class EmaWeights:
    """The moving average of ``model.state_dict()``; :meth:`update` after each optimiser step."""

    def __init__(self, model: nn.Module, decay: float, updates: int = 0) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the EMA decay must be in (0, 1), e.g. 0.999; got {decay}")
        self.decay = decay
        self.updates = updates
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def current_decay(self) -> float:
        """The decay of the next update: ``decay``, lowered while few updates have been averaged."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = self.current_decay()
        for k, v in model.state_dict().items():
            average = self.state[k]
            if average.is_floating_point():
                average.mul_(d).add_(v.detach(), alpha=1.0 - d)
            else:
                average.copy_(v)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "weights": self.state}

    @classmethod
    def from_state_dict(cls, model: nn.Module, state: dict) -> EmaWeights:
        ema = cls(model, state["decay"], state["updates"])
        missing = set(ema.state) ^ set(state["weights"])
        if missing:
            raise ValueError(f"the checkpoint's EMA weights do not fit this model: {sorted(missing)[:5]}")
        ema.state = {k: v.clone() for k, v in state["weights"].items()}
        return ema
