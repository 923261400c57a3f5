"""Speed and memory of the predictor: one row per configuration (``samwidgets bench``).

Random weights (seeded) are enough for timing; no checkpoint is needed.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..hub.build import build_sam
from ..inference.predictor import SamPredictor
from ..modeling import SamConfig, encoder_flops
from .memory import reset_peak_rss, rss_mib

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

    def gflops_per_s(self) -> float:
        """The encoder's rate: its counted FLOPs over its median time."""
        return self.encoder_gflops / self.encode_s

    def cells(self, peak_gflops: float | None = None) -> list[str]:
        peak = "n/a" if self.encode_peak_mib is None else (
            f"{self.encode_peak_mib:,.0f}" if self.encode_peak_mib >= 1 else "<1")
        return [
            self.config,
            f"{self.params_m:.1f}",
            f"{self.encoder_gflops:,.0f}",
            f"{self.encode_s:.2f}",
            f"{self.gflops_per_s():,.0f}" + (f" ({self.gflops_per_s() / peak_gflops:.0%})" if peak_gflops else ""),
            peak,
            f"{self.predict_ms:.1f}",
            f"{self.predict_p90_ms:.1f}",
            f"{self.cache_hit_ms:.2f}",
            f"{100 * self.cache_hit_ms / 1000 / self.encode_s:.3f}%",
        ]


HEADER = [
    "config", "params (M)", "encoder GFLOPs", "encoder s/image", "encoder GFLOP/s (of fp32 peak)",
    "encode peak RSS (MiB)",
    "predict median (ms)", "predict p90 (ms)", "set_image cache hit (ms)", "hit / encode",
]


def bench_config(name: str, encoder_runs: int = 2, predict_calls: int = 50, seed: int = 0,
                 fast: bool = True) -> BenchRow:
    """Measure one configuration: an official or registered name, or a SamConfig JSON file (``*.json``).

    ``fast=False`` measures the plain modeling code (``SamPredictor(..., fast=False)``), to show what
    the fast paths of :mod:`samwidgets.modeling.fast` gain; the row is then labelled "(plain)".
    """
    torch.manual_seed(seed)
    model = build_sam(SamConfig.from_dict(json.loads(Path(name).read_text())) if name.endswith(".json") else name)
    config = model.config
    params = sum(p.numel() for p in model.parameters()) / 1e6
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, size=(*IMAGE_HW, 3), dtype=np.uint8) for _ in range(encoder_runs + 1)]
    predictor = SamPredictor(model, cache_size=encoder_runs + 2, fast=fast)

    predictor.set_image(images[0])  # warm-up: first calls allocate and pick kernels
    encode_times, peak = [], None
    for image in images[1:]:
        rss_before = rss_mib("VmRSS")
        can_reset = reset_peak_rss()
        predictor.set_image(image)
        encode_times.append(predictor.last_encode_seconds)
        if can_reset and rss_before is not None:
            hwm = rss_mib("VmHWM")
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
        config=name if fast else f"{name} (plain)",
        params_m=params,
        encoder_gflops=encoder_flops(config, project_padding=not fast) / 1e9,  # the work of the path measured
        encode_s=statistics.median(encode_times),
        encode_peak_mib=peak,
        predict_ms=1000 * statistics.median(predict_times),
        predict_p90_ms=1000 * predict_times[int(0.9 * (len(predict_times) - 1))],
        cache_hit_ms=1000 * statistics.median(hit_times),
    )


def markdown_table(rows: list[BenchRow], peak_gflops: float | None = None) -> str:
    """The rows as a markdown table; with ``peak_gflops`` the encoder's rate is also given as a share of it."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row.cells(peak_gflops)) + " |" for row in rows]
    return "\n".join(lines)


def matmul_peak_gflops(dtype: torch.dtype = torch.float32, size: int = 2048, repeats: int = 8,
                       budget_s: float = 5.0) -> float:
    """The machine's matrix throughput in GFLOP/s: square ``size`` matmuls in ``dtype`` on the current threads.

    The ceiling the encoder's rate is compared with: its work is mostly such matmuls (about 75% of
    its FLOPs are linear layers), the rest attention and convolutions. The best of three timings.

    A dtype the CPU has no instructions for (bf16 on an AVX2-only CPU: about 1 GFLOP/s, 100x below
    fp32) would make 2048 x 2048 products take minutes, so a 256 x 256 product measures the rate
    first and ``size`` is halved until the whole measurement fits in about ``budget_s`` seconds.
    """
    probe_a, probe_b = torch.randn(256, 256).to(dtype), torch.randn(256, 256).to(dtype)
    probe_a @ probe_b  # warm-up
    start = time.perf_counter()
    probe_a @ probe_b
    rate = 2 * 256**3 / max(time.perf_counter() - start, 1e-9)  # FLOP/s, rough
    while size > 256 and (3 * repeats + 2) * 2 * size**3 / rate > budget_s:
        size //= 2
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    for _ in range(2):
        a @ b  # warm-up: kernels picked, memory touched
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = min(best, (time.perf_counter() - start) / repeats)
    return 2 * size**3 / best / 1e9


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
    from ..data import SceneGenerator
    from ..data.seeds import HELD_OUT_SEED_START
    from ..hub.default_model import BUNDLED_MODEL_NAME, load_default
    from ..inference.automatic_mask_generator import BUNDLED_MODEL_THRESHOLDS, benchmark_generation

    model = load_default()
    image = SceneGenerator(image_size=size)(HELD_OUT_SEED_START)
    lines = ["| model | image | grid | thresholds | seconds | masks | encoder s |", "|---|---|---|---|---|---|---|"]
    for label, kwargs in [("reference defaults", {}), ("bundled-model thresholds", dict(BUNDLED_MODEL_THRESHOLDS))]:
        r = benchmark_generation(model, image.image, points_per_side=points_per_side, **kwargs)
        lines.append(f"| {BUNDLED_MODEL_NAME} | {size}x{size} scene | {points_per_side}x{points_per_side} | {label} | "
                     f"{r['seconds']:.2f} | {r['masks']} | {r['encoder_seconds']:.2f} |")
    return "\n".join(lines)
