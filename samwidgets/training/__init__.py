"""Training SAM the paper's way: prompt simulation, the training loop, checkpoints."""

from .simulation import (
    NUM_ROUNDS,
    mask_boxes,
    noisy_boxes,
    rounds_without_new_point,
    sample_error_points,
    sample_uniform_points,
)

__all__ = ["NUM_ROUNDS", "mask_boxes", "noisy_boxes", "rounds_without_new_point", "sample_error_points",
           "sample_uniform_points"]
