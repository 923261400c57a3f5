"""The moving average of the weights (samwidgets.training.ema), against the formula by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from samwidgets.training.ema import EmaWeights


def test_ema_follows_the_formula_with_its_warm_up():
    model = nn.BatchNorm1d(2)  # a float weight, float running stats and an integer counter
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema = EmaWeights(model, decay=0.99)
    expected = 1.0
    for t, value in enumerate([3.0, 5.0, -1.0]):
        with torch.no_grad():
            model.weight.fill_(value)
        model.num_batches_tracked.fill_(t + 10)
        d = min(0.99, (1 + t) / (10 + t))  # 0.1, 2/11, 3/12
        expected = d * expected + (1 - d) * value
        ema.update(model)
        torch.testing.assert_close(ema.state["weight"], torch.full((2,), expected))
        assert int(ema.state["num_batches_tracked"]) == t + 10  # integers are copied, not averaged
    assert ema.updates == 3
    restored = EmaWeights.from_state_dict(model, ema.state_dict())
    assert restored.updates == 3 and torch.equal(restored.state["weight"], ema.state["weight"])
    assert restored.state["weight"] is not ema.state["weight"]


def test_ema_rejects_a_bad_decay_and_a_foreign_state():
    with pytest.raises(ValueError, match="decay"):
        EmaWeights(nn.Linear(2, 2), decay=1.0)
    state = EmaWeights(nn.Linear(2, 2), 0.9).state_dict()
    with pytest.raises(ValueError, match="do not fit"):
        EmaWeights.from_state_dict(nn.Linear(2, 2, bias=False), state)
