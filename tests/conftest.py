"""Shared fixtures: the reference-parity data and a tiny model built from it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hypothesis import settings

from samwidgets import SamConfig, SamPredictor, build_sam

# Property tests draw the same examples on every run (CI fails for a reason, not by luck of the draw);
# HYPOTHESIS_PROFILE=explore draws new ones, to look for failures on purpose.
settings.register_profile("derandomized", derandomize=True, deadline=None)
settings.register_profile("explore", derandomize=False, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "derandomized"))

DATA = Path(__file__).parent / "data"
PARITY_FILE = DATA / "sam_parity_tiny.pt"


@pytest.fixture(scope="session")
def parity() -> dict:
    """Outputs of the reference segment-anything 1.0 predictor for a small random model."""
    return torch.load(PARITY_FILE, weights_only=False)


@pytest.fixture(scope="session")
def tiny_config(parity) -> SamConfig:
    return SamConfig.from_reference_config(parity["config"])


@pytest.fixture()
def tiny_sam(parity, tiny_config):
    return build_sam(tiny_config, parity["state_dict"])


@pytest.fixture()
def tiny_predictor(tiny_sam, parity) -> SamPredictor:
    predictor = SamPredictor(tiny_sam)
    predictor.set_image(parity["image"].numpy())
    return predictor
