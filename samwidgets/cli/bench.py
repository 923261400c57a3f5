"""Benchmark: ``samwidgets bench [--configs vit_b vit_l vit_h] [--out FILE]``.

``--precision`` adds the bf16 fast mode against the exact path (speed and
mask IoU, :mod:`samwidgets.bench.precision`); ``--compile`` adds the
torch.compile fast mode there too. ``--compare-reference`` instead measures samwidgets against the reference
``segment-anything`` (which must be importable; see
:mod:`samwidgets.bench.reference`) with the same random vit_b weights.

Prints (and optionally writes) a markdown table per configuration:
parameters, encoder GFLOPs, encoder seconds per image, peak memory of one
encode, median single-point predict latency over many calls on a cached
embedding (including upsampling to a 1024 x 768 image), and the cost of
set_image on an image seen before. Random weights (seeded) are enough for
timing; no checkpoint is needed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from ..bench.reference import SAM2_BENCH_CONFIGS
from ..bench.speed import (
    IMAGE_HW,
    bench_config,
    generation_table,
    machine_description,
    markdown_table,
    matmul_peak_gflops,
)
from ..bench.train_step import StepShape
from ..errors import UserInputError
from ..modeling import CONFIGS
from .checks import at_least, bsds_folder, threads_flag
from .model_flags import config_file

#: The switches that add a measurement to the table, and what each measures.
MEASUREMENTS = {
    "--generation": "also time automatic mask generation with the bundled model (512x512, 32x32 grid)",
    "--plain": "also measure each config with the plain modeling code (SamPredictor(fast=False)): what the fast "
               "paths of samwidgets/modeling/fast.py gain",
    "--compare-reference": "compare each of --configs with the package that defines it (segment-anything for "
                           "vit_b/l/h, mobile_sam for vit_t, sam2 for sam2.1_hiera_t/s/b+/l and sam2_hiera_*; must "
                           "be importable, installs nothing): the same random weights, side by side, with ratios "
                           "and output differences",
    "--precision": "also compare the bf16 fast mode with the exact fp32 path for each config: encoder seconds and "
                   "mask IoU on fixed held-out scenes and points (samwidgets.bench.precision)",
    "--compile": "with --precision (implied): also compare the torch.compile fast mode, SamPredictor(compile=True), "
                 "with the exact path; its first, compiling encode is not timed",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="samwidgets bench", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=["vit_b"],
                        help=f"configurations to measure (known: {', '.join(CONFIGS)}; or a SamConfig JSON file such "
                             f"as recipes/bsds_cnn/cnn_512.json; default: vit_b)")
    parser.add_argument("--encoder-runs", type=int, default=2, help="timed encodes per config (median reported)")
    parser.add_argument("--predict-calls", type=int, default=50, help="timed single-point predict calls")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: physical cores)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this markdown file")
    for flag, text in MEASUREMENTS.items():
        parser.add_argument(flag, action="store_true", help=text)
    parser.add_argument("--generation-runs", type=int, default=1,
                        help="with --compare-reference: timed automatic generations per side (median reported; "
                             "0 skips the generation)")
    train = parser.add_argument_group("a training step instead (--train-step)")
    train.add_argument("--train-step", action="store_true",
                       help="time a step of `samwidgets train` in parts (data, encoder forward, rounds, encoder "
                            "backward, optimizer), count its FLOPs and compare them with the matrix peaks "
                            "(samwidgets.bench.train_step); several --shapes side by side in one run")
    train.add_argument("--shapes", nargs="+", default=["8x4x4"], metavar="IxMxR[bf16]",
                       help="step shapes: images x masks per image x rounds, e.g. 8x4x4 (the photo recipe's "
                            "phase 1) or 8x4x4bf16 for bf16 autocast (default: 8x4x4)")
    train.add_argument("--bsds", type=Path, default=None, metavar="ROOT",
                       help="with --train-step: the recipe's data (75%% BSDS500 train photos); default: "
                            "procedural scenes only")
    train.add_argument("--steps", type=int, default=6, help="with --train-step: timed steps per shape")
    args = parser.parse_args(argv)
    for name in args.configs:
        if args.compare_reference and name in SAM2_BENCH_CONFIGS:
            continue  # SAM 2's configurations: compared with the sam2 package only
        if name.endswith(".json"):
            if not Path(name).is_file():
                raise UserInputError(f"--configs {name}: no such config file; pass a SamConfig .json file or a "
                                 f"configuration name ({', '.join(CONFIGS)})")
            config_file(name, "--configs")  # a UserInputError when it is no SamConfig
        elif name not in CONFIGS:
            raise UserInputError(f"--configs {name}: unknown configuration; known: {', '.join(CONFIGS)}, "
                                 "or a SamConfig .json file")
    for flag in ("encoder_runs", "predict_calls", "steps"):
        at_least(getattr(args, flag), 1, "--" + flag.replace("_", "-"))
    at_least(args.generation_runs, 0, "--generation-runs")
    threads_flag(args.threads)
    if args.train_step:
        return bench_train_step(args)
    if args.compare_reference:
        from ..bench.reference import Settings, main_compare

        settings = Settings(image_hw=IMAGE_HW, encoder_runs=args.encoder_runs,
                            predict_calls=args.predict_calls, generation_runs=args.generation_runs,
                            threads=torch.get_num_threads())
        return main_compare(settings, args.out, machine_description(), tuple(args.configs))

    rows = []
    for name in args.configs:
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        rows.append(bench_config(name, args.encoder_runs, args.predict_calls))
        if args.plain:
            print(f"measuring {name} with the plain modeling code ...", file=sys.stderr, flush=True)
            rows.append(bench_config(name, args.encoder_runs, args.predict_calls, fast=False))
    peak = {name: matmul_peak_gflops(dtype) for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    table = markdown_table(rows, peak["fp32"])
    report = (f"Machine: {machine_description()}; matrix peak (square matmuls, up to 2048) "
              f"fp32 {peak['fp32']:,.0f} GFLOP/s, bf16 {peak['bf16']:,.0f} GFLOP/s\n\n"
              f"Image {IMAGE_HW[1]}x{IMAGE_HW[0]}, random weights (seed 0), "
              f"{args.encoder_runs} timed encodes, {args.predict_calls} single-point predicts.\n\n{table}\n")
    if args.generation:
        print("measuring automatic mask generation ...", file=sys.stderr, flush=True)
        report += f"\nAutomatic mask generation (SamAutomaticMaskGenerator, no crops):\n\n{generation_table()}\n"
    if args.precision or args.compile:
        from ..bench.precision import precision_table

        modes = ("bf16", "fp32 + torch.compile") if args.compile else ("bf16",)
        print(f"measuring the fast modes ({', '.join(modes)}) against fp32 ...", file=sys.stderr, flush=True)
        report += ("\nFast modes (bf16: SamPredictor(precision=\"bf16\"); fp32 + torch.compile: "
                   "SamPredictor(compile=True), its first, compiling encode not timed) against the exact fp32 path, "
                   f"3 held-out scenes x 9 points x 3 masks:\n\n{precision_table(args.configs, modes=modes)}\n")
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
    return 0


def parse_shape(text: str) -> StepShape:
    """"8x4x4" -> StepShape(8, 4, 4); "8x4x4bf16" -> the same under bf16 autocast."""
    bf16 = text.endswith("bf16")
    parts = text[: -len("bf16")] if bf16 else text
    try:
        images, masks, rounds = (int(v) for v in parts.split("x"))
    except ValueError:
        raise UserInputError(f"--shapes {text}: a step shape is IMAGESxMASKSxROUNDS such as 8x4x4 (or 8x4x4bf16)"
                             ) from None
    if min(images, masks, rounds) < 1:
        raise UserInputError(f"--shapes {text}: every number of a step shape must be at least 1")
    return StepShape(images, masks, rounds, bf16)


def bench_train_step(args: argparse.Namespace) -> int:
    from ..bench.train_step import count_step_flops, make_source, time_steps, train_step_table
    from ..hub.checkpoints import config_by_name_or_file

    shapes = [parse_shape(s) for s in args.shapes]
    if args.bsds is not None:
        bsds_folder(args.bsds, "train")  # the recipe's photos: BSDS500 train
    peaks = {name: matmul_peak_gflops(dtype) for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    report = [f"Machine: {machine_description()}; matrix peak fp32 {peaks['fp32']:,.0f} GFLOP/s, "
              f"bf16 {peaks['bf16']:,.0f} GFLOP/s"]
    for name in args.configs:
        config = config_by_name_or_file(name)
        source = make_source(config, args.bsds)
        print(f"timing training steps of {name} ...", file=sys.stderr, flush=True)
        timings = time_steps(config, shapes, source, steps=args.steps)
        for timing in timings:
            timing.flops = count_step_flops(config, timing.shape, source)
        data = "75% BSDS500 train photos, 25% procedural scenes" if args.bsds else "procedural scenes"
        report.append(f"\n{name}: {config.image_size} px, {data}; median of {args.steps} steps per shape, "
                      f"shapes interleaved step by step; loss at low res, fp32 unless marked\n\n"
                      f"{train_step_table(timings, peaks)}")
    text = "\n".join(report) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0
