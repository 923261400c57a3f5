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

from ..bench.speed import (
    IMAGE_HW,
    bench_config,
    generation_table,
    machine_description,
    markdown_table,
    matmul_peak_gflops,
)
from ..modeling import CONFIGS
from ..runtime.threads import configure_threads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="samwidgets bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=["vit_b"],
                        help=f"configurations to measure (known: {', '.join(CONFIGS)}; or a SamConfig JSON file such "
                             f"as recipes/bsds_cnn/cnn_512.json; default: vit_b)")
    parser.add_argument("--encoder-runs", type=int, default=2, help="timed encodes per config (median reported)")
    parser.add_argument("--predict-calls", type=int, default=50, help="timed single-point predict calls")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: physical cores)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this markdown file")
    parser.add_argument("--generation", action="store_true",
                        help="also time automatic mask generation with the bundled model (512x512, 32x32 grid)")
    parser.add_argument("--plain", action="store_true",
                        help="also measure each config with the plain modeling code (SamPredictor(fast=False)): "
                             "what the fast paths of samwidgets/modeling/fast.py gain")
    parser.add_argument("--compare-reference", action="store_true",
                        help="compare with the reference segment-anything (must be importable; installs nothing): "
                             "same random vit_b weights, side by side, with ratios and output differences")
    parser.add_argument("--precision", action="store_true",
                        help="also compare the bf16 fast mode with the exact fp32 path for each config: encoder "
                             "seconds and mask IoU on fixed held-out scenes and points (samwidgets.bench.precision)")
    parser.add_argument("--compile", action="store_true",
                        help="with --precision (implied): also compare the torch.compile fast mode, "
                             "SamPredictor(compile=True), with the exact path; its first, compiling encode is "
                             "not timed")
    parser.add_argument("--generation-runs", type=int, default=1,
                        help="with --compare-reference: timed automatic generations per side (median reported)")
    args = parser.parse_args(argv)
    for name in args.configs:
        if name.endswith(".json"):
            if not Path(name).is_file():
                parser.error(f"no config file {name!r}")
        elif name not in CONFIGS:
            parser.error(f"unknown config {name!r}; known: {', '.join(CONFIGS)}, or a SamConfig .json file")
    configure_threads(args.threads)
    if args.compare_reference:
        from ..bench.reference import Settings, main_compare

        settings = Settings(image_hw=IMAGE_HW, encoder_runs=args.encoder_runs,
                            predict_calls=args.predict_calls, generation_runs=args.generation_runs,
                            threads=torch.get_num_threads())
        return main_compare(settings, args.out, machine_description())

    rows = []
    for name in args.configs:
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        rows.append(bench_config(name, args.encoder_runs, args.predict_calls))
        if args.plain:
            print(f"measuring {name} with the plain modeling code ...", file=sys.stderr, flush=True)
            rows.append(bench_config(name, args.encoder_runs, args.predict_calls, fast=False))
    peak = {name: matmul_peak_gflops(dtype) for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    table = markdown_table(rows, peak["fp32"])
    report = (f"Machine: {machine_description()}; matrix peak (2048 x 2048 matmul) fp32 {peak['fp32']:,.0f} GFLOP/s, "
              f"bf16 {peak['bf16']:,.0f} GFLOP/s\n\nImage {IMAGE_HW[1]}x{IMAGE_HW[0]}, random weights (seed 0), "
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
