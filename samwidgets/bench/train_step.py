"""Where a training step goes: ``samwidgets bench --train-step``.

A step of ``samwidgets train`` (:func:`samwidgets.training.loop.training_step`) is timed in five
parts, by hooks on the real step rather than by a copy of it:

- **data**: making the batch (photo augmentation, procedural scenes) on the main process;
- **encoder forward**: the image encoder on the step's images;
- **rounds**: the prompt encoder and mask decoder for every mask and round, forward and backward,
  with the simulated clicks and the loss;
- **encoder backward**: from the gradient on the image embedding back to the first layer;
- **optimizer**: gradient clipping and the AdamW update.

Its FLOPs are counted once per shape by ``torch.utils.flop_counter`` (matrix products,
convolutions and attention, forward and backward) and compared with the machine's measured fp32
and bf16 matrix peaks. Several step shapes are measured side by side in one run: step k of every
shape runs before step k + 1 of any, each shape on its own copy of the same initial model, so
a slow minute of the machine falls on all of them alike.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..hub.build import build_sam
from ..modeling import Sam, SamConfig
from ..modeling.fast import enable_fast_paths
from ..training.datasets import BatchSource, MixedSource, ProceduralSource
from ..training.loop import make_optimizer, training_step

PARTS = ("data", "encoder forward", "rounds", "encoder backward", "optimizer")


@dataclass(frozen=True)
class StepShape:
    """What one training step does: images encoded, masks per image, interactive rounds, precision."""

    images: int
    masks: int
    rounds: int
    bf16: bool = False

    @property
    def label(self) -> str:
        return f"{self.images} x {self.masks} x {self.rounds}" + (" bf16" if self.bf16 else "")


@dataclass
class StepTiming:
    """Seconds of each part (:data:`PARTS`) for every timed step, and the FLOPs of one step."""

    shape: StepShape
    seconds: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PARTS})
    flops: int = 0

    def median(self, part: str) -> float:
        return statistics.median(self.seconds[part])

    def step_seconds(self) -> float:
        """The median of the whole step (the parts added up per step, then the median)."""
        totals = [sum(parts) for parts in zip(*(self.seconds[p] for p in PARTS))]
        return statistics.median(totals)


class _PartClock:
    """Hooks on a model and its optimiser that time the encoder's forward and backward and the update."""

    def __init__(self, model: Sam, optimizer: torch.optim.Optimizer) -> None:
        self.marks: dict[str, float] = {}
        encoder = model.image_encoder
        first = next(encoder.parameters())  # the first layer's weight: its gradient is the encoder's last
        encoder.register_forward_pre_hook(lambda *_: self._mark("forward start"))
        encoder.register_forward_hook(self._after_forward)
        first.register_post_accumulate_grad_hook(lambda _: self._mark("backward end"))
        optimizer.register_step_post_hook(lambda *_: self._mark("optimizer end"))

    def _mark(self, name: str) -> None:
        self.marks[name] = time.perf_counter()

    def _after_forward(self, module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        self._mark("forward end")
        if output.requires_grad:
            output.register_hook(lambda grad: self._mark("backward start"))

    def parts(self, step_start: float) -> dict[str, float]:
        m = self.marks
        forward = m["forward end"] - m["forward start"]
        backward = m["backward end"] - m["backward start"]
        optimizer = m["optimizer end"] - m["backward end"]
        rounds = m["optimizer end"] - step_start - forward - backward - optimizer
        return {"encoder forward": forward, "rounds": rounds, "encoder backward": backward, "optimizer": optimizer}


def make_source(config: SamConfig, bsds: Path | None, seed: int = 0) -> BatchSource:
    """The recipe's data: 75% BSDS500 train photos and 25% procedural scenes, or only scenes without BSDS."""
    procedural = ProceduralSource(config.image_size, seed_offset=seed)
    if bsds is None:
        return procedural
    from ..training.photos import BsdsSource

    return MixedSource([BsdsSource(bsds, config.image_size, split="train", seed=seed), procedural], [0.75, 0.25],
                       seed=seed)


def count_step_flops(config: SamConfig, shape: StepShape, source: BatchSource) -> int:
    """FLOPs of one step of ``shape`` (forward and backward of every matrix product and convolution)."""
    torch.manual_seed(0)
    model = enable_fast_paths(build_sam(config).train())
    optimizer, params = make_optimizer(model, 1e-4)
    batch = source.batch(0, shape.images, shape.masks)
    counter = FlopCounterMode(display=False)
    with counter:
        training_step(model, batch, optimizer, params, torch.Generator().manual_seed(0), num_rounds=shape.rounds,
                      loss_at_low_res=True, bf16=shape.bf16)
    return counter.get_total_flops()


def time_steps(config: SamConfig, shapes: list[StepShape], source: BatchSource, steps: int = 6,
               warmup: int = 1) -> list[StepTiming]:
    """Time ``steps`` training steps of every shape, interleaved (see the module docstring)."""
    runs = []
    for shape in shapes:
        torch.manual_seed(0)
        model = enable_fast_paths(build_sam(config).train())
        optimizer, params = make_optimizer(model, 1e-4)
        runs.append((shape, model, optimizer, params, _PartClock(model, optimizer), StepTiming(shape)))
    for step in range(warmup + steps):
        for shape, model, optimizer, params, clock, timing in runs:
            start = time.perf_counter()
            batch = source.batch(step, shape.images, shape.masks)
            data_end = time.perf_counter()
            generator = torch.Generator().manual_seed(step)
            training_step(model, batch, optimizer, params, generator, num_rounds=shape.rounds, grad_clip=1.0,
                          loss_at_low_res=True, bf16=shape.bf16)
            if step >= warmup:
                timing.seconds["data"].append(data_end - start)
                for part, seconds in clock.parts(data_end).items():
                    timing.seconds[part].append(seconds)
    return [timing for *_, timing in runs]


def train_step_table(timings: list[StepTiming], peaks: dict[str, float]) -> str:
    """A markdown table: seconds per part, steps per second against the first row, FLOPs and peak shares."""
    header = ["step (images x masks x rounds)", *[f"{p} s" for p in PARTS], "step s", "steps/s", "vs first row",
              "GFLOP/step", "GFLOP/s", "of fp32 peak", "of bf16 peak"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    base = timings[0].step_seconds()
    for t in timings:
        step = t.step_seconds()
        rate = t.flops / step / 1e9
        lines.append("| " + " | ".join([
            t.shape.label, *[f"{t.median(p):.3f}" for p in PARTS], f"{step:.3f}", f"{1 / step:.2f}",
            f"{base / step:.2f}x", f"{t.flops / 1e9:.1f}", f"{rate:.0f}",
            f"{rate / peaks['fp32']:.0%}", f"{rate / peaks['bf16']:.0%}",
        ]) + " |")
    return "\n".join(lines)
