"""Benchmark: ``python -m samwidgets.bench [--configs vit_b vit_l vit_h] [--out FILE]``.

``--precision`` adds the bf16 fast mode against the exact path (speed and
mask IoU, :mod:`samwidgets.precision_check`); ``--compile`` adds the
torch.compile fast mode there too. ``--compare-reference`` instead measures samwidgets against the reference
``segment-anything`` (which must be importable; see
:mod:`samwidgets.reference_compare`) with the same random vit_b weights.

Prints (and optionally writes) a markdown table per configuration:
parameters, encoder GFLOPs, encoder seconds per image, peak memory of one
encode, median single-point predict latency over many calls on a cached
embedding (including upsampling to a 1024 x 768 image), and the cost of
set_image on an image seen before. Random weights (seeded) are enough for
timing; no checkpoint is needed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .build import build_sam
from .modeling import CONFIGS, SamConfig, encoder_flops
from .predictor import SamPredictor
from .threads import configure_threads

IMAGE_HW = (768, 1024)  # a 1024 x 768 landscape photo


@dataclass
class BenchRow:
    config: str
    params_m: float
    encoder_gflops: float
    encode_s: float
    encode_peak_mib: float | None
    predict_ms: float
    predict_p90_ms: float
    cache_hit_ms: float

    def cells(self) -> list[str]:
        peak = "n/a" if self.encode_peak_mib is None else (
            f"{self.encode_peak_mib:,.0f}" if self.encode_peak_mib >= 1 else "<1")
        return [
            self.config,
            f"{self.params_m:.1f}",
            f"{self.encoder_gflops:,.0f}",
            f"{self.encode_s:.2f}",
            peak,
            f"{self.predict_ms:.1f}",
            f"{self.predict_p90_ms:.1f}",
            f"{self.cache_hit_ms:.2f}",
            f"{100 * self.cache_hit_ms / 1000 / self.encode_s:.3f}%",
        ]


HEADER = [
    "config", "params (M)", "encoder GFLOPs", "encoder s/image", "encode peak RSS (MiB)",
    "predict median (ms)", "predict p90 (ms)", "set_image cache hit (ms)", "hit / encode",
]


def _rss_mib(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter of this process (Linux); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def bench_config(name: str, encoder_runs: int = 2, predict_calls: int = 50, seed: int = 0) -> BenchRow:
    """Measure one configuration: an official or registered name, or a SamConfig JSON file (``*.json``)."""
    torch.manual_seed(seed)
    model = build_sam(SamConfig.from_dict(json.loads(Path(name).read_text())) if name.endswith(".json") else name)
    config = model.config
    params = sum(p.numel() for p in model.parameters()) / 1e6
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, size=(*IMAGE_HW, 3), dtype=np.uint8) for _ in range(encoder_runs + 1)]
    predictor = SamPredictor(model, cache_size=encoder_runs + 2)

    predictor.set_image(images[0])  # warm-up: first calls allocate and pick kernels
    encode_times, peak = [], None
    for image in images[1:]:
        rss_before = _rss_mib("VmRSS")
        can_reset = _reset_peak_rss()
        predictor.set_image(image)
        encode_times.append(predictor.last_encode_seconds)
        if can_reset and rss_before is not None:
            hwm = _rss_mib("VmHWM")
            peak = max(peak or 0.0, (hwm or 0.0) - rss_before)

    hit_times = []
    for _ in range(20):
        start = time.perf_counter()
        predictor.set_image(images[1])
        hit_times.append(time.perf_counter() - start)
        assert predictor.last_set_image_cached

    point, label = np.array([[IMAGE_HW[1] * 0.45, IMAGE_HW[0] * 0.55]]), np.array([1])
    for _ in range(5):
        predictor.predict(point, label)
    predict_times = []
    for _ in range(predict_calls):
        start = time.perf_counter()
        predictor.predict(point, label)
        predict_times.append(time.perf_counter() - start)
    predict_times.sort()
    return BenchRow(
        config=name,
        params_m=params,
        encoder_gflops=encoder_flops(config) / 1e9,
        encode_s=statistics.median(encode_times),
        encode_peak_mib=peak,
        predict_ms=1000 * statistics.median(predict_times),
        predict_p90_ms=1000 * predict_times[int(0.9 * (len(predict_times) - 1))],
        cache_hit_ms=1000 * statistics.median(hit_times),
    )


def markdown_table(rows: list[BenchRow]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}; {os.cpu_count()} logical CPUs; torch {torch.__version__} with "
            f"{torch.get_num_threads()} threads; Python {platform.python_version()}")


def generation_table(points_per_side: int = 32, size: int = 512) -> str:
    """Automatic mask generation with the bundled model on a held-out scene (no crops), as a markdown table.

    Two rows: the reference's default thresholds, and the thresholds the
    bundled model needs (its IoU head never predicts above about 0.36).
    """
    from .automatic_mask_generator import BUNDLED_MODEL_THRESHOLDS, benchmark_generation
    from .data import SceneGenerator
    from .default_model import load_default
    from .data.seeds import HELD_OUT_SEED_START

    model = load_default()
    image = SceneGenerator(image_size=size)(HELD_OUT_SEED_START)
    lines = ["| model | image | grid | thresholds | seconds | masks | encoder s |", "|---|---|---|---|---|---|---|"]
    for label, kwargs in [("reference defaults", {}), ("bundled-model thresholds", dict(BUNDLED_MODEL_THRESHOLDS))]:
        r = benchmark_generation(model, image.image, points_per_side=points_per_side, **kwargs)
        lines.append(f"| default_tiny | {size}x{size} scene | {points_per_side}x{points_per_side} | {label} | "
                     f"{r['seconds']:.2f} | {r['masks']} | {r['encoder_seconds']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samwidgets.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=["vit_b"],
                        help=f"configurations to measure (known: {', '.join(CONFIGS)}; or a SamConfig JSON file such "
                             f"as recipes/bsds_cnn/cnn_512.json; default: vit_b)")
    parser.add_argument("--encoder-runs", type=int, default=2, help="timed encodes per config (median reported)")
    parser.add_argument("--predict-calls", type=int, default=50, help="timed single-point predict calls")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: physical cores)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this markdown file")
    parser.add_argument("--generation", action="store_true",
                        help="also time automatic mask generation with the bundled model (512x512, 32x32 grid)")
    parser.add_argument("--compare-reference", action="store_true",
                        help="compare with the reference segment-anything (must be importable; installs nothing): "
                             "same random vit_b weights, side by side, with ratios and output differences")
    parser.add_argument("--precision", action="store_true",
                        help="also compare the bf16 fast mode with the exact fp32 path for each config: encoder "
                             "seconds and mask IoU on fixed held-out scenes and points (samwidgets.precision_check)")
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
        from .reference_compare import Settings, main_compare

        settings = Settings(image_hw=IMAGE_HW, encoder_runs=args.encoder_runs,
                            predict_calls=args.predict_calls, generation_runs=args.generation_runs,
                            threads=torch.get_num_threads())
        return main_compare(settings, args.out, machine_description())

    rows = []
    for name in args.configs:
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        rows.append(bench_config(name, args.encoder_runs, args.predict_calls))
    table = markdown_table(rows)
    report = (f"Machine: {machine_description()}\n\nImage {IMAGE_HW[1]}x{IMAGE_HW[0]}, random weights (seed 0), "
              f"{args.encoder_runs} timed encodes, {args.predict_calls} single-point predicts.\n\n{table}\n")
    if args.generation:
        print("measuring automatic mask generation ...", file=sys.stderr, flush=True)
        report += f"\nAutomatic mask generation (SamAutomaticMaskGenerator, no crops):\n\n{generation_table()}\n"
    if args.precision or args.compile:
        from .precision_check import precision_table

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


if __name__ == "__main__":
    raise SystemExit(main())
