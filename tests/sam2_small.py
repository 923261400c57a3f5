"""The small SAM 2 model of ``tests/data/sam2_parity_small.pt``, loaded and built the one way the SAM 2 tests share.

The file (recorded by tests/record/record_sam2_parity.py with the reference sam2 package) holds the reference's
arguments: ``base_config`` (sam2.1_hiera_t), the Hydra ``overrides`` that shrink it, the whole ``state_dict``
(video keys included) and the reference's outputs. tests/conftest.py serves it as the ``small`` fixture.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from samwidgets.sam2 import SAM2Base, VideoWeightsIgnoredWarning, build_sam2

SMALL_FILE = Path(__file__).parent / "data" / "sam2_parity_small.pt"


def load_small() -> dict:
    """The recorded file's dictionary (base_config, overrides, state_dict, the reference's outputs)."""
    return torch.load(SMALL_FILE, weights_only=False)


def float_state_dict(small: dict) -> dict[str, torch.Tensor]:
    """A new float32 copy of the small model's state dict (video keys included)."""
    return {k: v.float() for k, v in small["state_dict"].items()}


def build_small(small: dict, checkpoint=None, extra_overrides: Sequence[str] = (),
                apply_postprocessing: bool = True) -> SAM2Base:
    """samwidgets' build_sam2 with the reference's arguments, on the CPU: the base config, its Hydra overrides
    then ``extra_overrides``, and ``checkpoint`` (by default ``{"model": float_state_dict(small)}``).

    The VideoWeightsIgnoredWarning of the file's video keys is silenced (tests/test_sam2_build.py and
    tests/test_sam2_parity.py check it).
    """
    if checkpoint is None:
        checkpoint = {"model": float_state_dict(small)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VideoWeightsIgnoredWarning)
        return build_sam2(small["base_config"], checkpoint, device="cpu",
                          hydra_overrides_extra=[*small["overrides"], *extra_overrides],
                          apply_postprocessing=apply_postprocessing)
