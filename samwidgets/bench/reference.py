"""Side-by-side benchmark against the reference packages: ``segment-anything`` 1.0 and MobileSAM's.

``python -m samwidgets bench --compare-reference [--configs vit_b vit_t]`` runs this. Each
configuration is compared with the package that defines it (:data:`REFERENCE_PACKAGES`:
``segment_anything`` for SAM's ViTs, ``mobile_sam`` for ``vit_t``). It installs nothing: the
reference packages (and the torchvision / timm they need) must already be importable, for example
in a separate virtual environment::

    python -m venv /tmp/refenv
    /tmp/refenv/bin/pip install torch==2.14.1 torchvision==0.29.1
    /tmp/refenv/bin/pip install segment-anything mobilesam-mirror timm
    /tmp/refenv/bin/pip install -e .            # samwidgets itself
    /tmp/refenv/bin/python -m samwidgets bench --compare-reference --configs vit_b vit_t

Both implementations get the SAME random weights (built once by
samwidgets from a fixed seed, saved to a temporary file and loaded strictly by
each side), the same image, the same point prompt, the same torch and the same
number of threads. Each implementation is measured in its own subprocess so
that its peak memory is not mixed up with the other model's, and so that one
side's allocator state cannot help or hurt the other. The subprocesses also
save their outputs (image embedding, logits) so that the parent can report
how far apart the two are.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import torch

#: The two implementations, in table order.
SIDES = ("reference", "samwidgets")

#: SAM 2's configurations by a short name for --configs (the reference's config files).
SAM2_BENCH_CONFIGS: dict[str, str] = {
    f"{version}_hiera_{size}": f"configs/{version}/{version}_hiera_{size}.yaml"
    for version in ("sam2.1", "sam2") for size in ("t", "s", "b+", "l")
}

#: The package whose own code defines each configuration (its module name and its pip name).
REFERENCE_PACKAGES: dict[str, tuple[str, str]] = {
    "vit_b": ("segment_anything", "segment-anything"),
    "vit_l": ("segment_anything", "segment-anything"),
    "vit_h": ("segment_anything", "segment-anything"),
    "vit_t": ("mobile_sam", "mobilesam-mirror timm"),
    **{name: ("sam2", "sam2 hydra-core iopath  # SAM2_BUILD_CUDA=0 on a CPU machine") for name in SAM2_BENCH_CONFIGS},
}

SETUP_HINT = (
    "The reference package `{module}` (for {config}) is not importable in this Python ({python}).\n"
    "--compare-reference installs nothing; run it from an environment that has both packages, e.g.:\n"
    "    python -m venv /tmp/refenv\n"
    "    /tmp/refenv/bin/pip install torch==2.14.1 torchvision==0.29.1   # the reference needs torchvision\n"
    "    /tmp/refenv/bin/pip install {pip_name}\n"
    "    /tmp/refenv/bin/pip install -e /path/to/samwidgets\n"
    "    /tmp/refenv/bin/python -m samwidgets bench --compare-reference --configs {config}"
)


@dataclass
class Settings:
    """What is measured, identical for both sides."""

    config: str = "vit_b"
    seed: int = 0
    image_hw: tuple[int, int] = (768, 1024)  # H x W, a 1024 x 768 landscape image
    encoder_runs: int = 2  # timed set_image calls (after one untimed warm-up)
    predict_calls: int = 30  # timed single-point predicts (after 3 untimed)
    generation_runs: int = 1  # timed automatic generations (encoder included); 0 skips them
    points_per_side: int = 32
    points_per_batch: int = 64
    threads: int = field(default_factory=torch.get_num_threads)


@dataclass
class SideResult:
    """Measurements of one implementation (times in seconds unless named otherwise)."""

    encode_s: float  # median set_image wall time (resize + normalise + image encoder)
    encode_peak_mib: float | None  # max over encodes (the first included) of RSS high-water mark - RSS before
    predict_ms: float  # median single-point predict, multimask, masks upsampled to the image
    generation_s: float | None  # median automatic generation of one image, image encoder included (None: not run)
    generation_masks: int | None  # masks returned by the last generation (None: not run)
    threads: int
    torch_version: str
    encode_bf16_s: float | None = None  # median set_image of the labelled bf16 mode (samwidgets only)


#: The model class of a side (samwidgets' Sam or SAM2Base, or the reference package's own).
ModelT = TypeVar("ModelT", bound=torch.nn.Module)


@dataclass
class Side(Generic[ModelT]):
    """One implementation, as the measurement needs it.

    Both packages have the same API, so the factories are the packages'
    ``SamPredictor(model)`` and ``SamAutomaticMaskGenerator(model, **kwargs)``.
    """

    name: str
    model: ModelT
    make_predictor: Callable[[ModelT], Any]
    make_generator: Callable[..., Any]
    make_bf16_predictor: Callable[[ModelT], Any] | None = None  # a bf16 mode, where the side has one


def reference_module(config: str) -> str:
    """The module name of the package that defines ``config``; ValueError for a configuration no package has."""
    if config not in REFERENCE_PACKAGES:
        raise ValueError(f"no reference package defines {config!r}: --compare-reference knows "
                         f"{', '.join(REFERENCE_PACKAGES)}")
    return REFERENCE_PACKAGES[config][0]


def reference_available(config: str = "vit_b") -> bool:
    """Whether the package that defines ``config`` can be imported here (checked without importing it)."""
    try:
        return importlib.util.find_spec(reference_module(config)) is not None
    except (ImportError, ValueError):
        return False


# -- inputs shared by both sides ----------------------------------------------------------------
def compare_image(image_hw: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A deterministic H x W x 3 uint8 scene (a procedural scene cropped from a square one).

    Flat and patterned fills only: photo fills would need scikit-image, which
    the base install (and so the reference environment) does not have.
    """
    from ..data import SceneGenerator

    h, w = image_hw
    scenes = SceneGenerator(image_size=max(h, w), max_objects=6, photo_fill_prob=0.0, background_photo_prob=0.0)
    rgb = scenes(seed).image  # S x S x 3 uint8
    return np.ascontiguousarray(rgb[:h, :w])  # H x W x 3


def compare_point(image_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The single foreground point used for predict (the same as ``samwidgets.bench.speed``): 1 x 2 (x, y), 1."""
    h, w = image_hw
    return np.array([[w * 0.45, h * 0.55]]), np.array([1])


def random_state_dict(config: str, seed: int) -> dict[str, torch.Tensor]:
    """The weights of a randomly initialised samwidgets model (official key names)."""
    torch.manual_seed(seed)
    if config in SAM2_BENCH_CONFIGS:
        from ..sam2 import build_sam2

        return build_sam2(SAM2_BENCH_CONFIGS[config], device="cpu").state_dict()
    from ..hub.build import build_sam

    return build_sam(config).state_dict()


# -- the two sides ------------------------------------------------------------------------------
def samwidgets_side(config: str, state_dict: dict[str, torch.Tensor]) -> Side:
    """samwidgets with the given weights; its embedding cache is off so that every encode is real."""
    if config in SAM2_BENCH_CONFIGS:
        from ..sam2 import SAM2AutomaticMaskGenerator, SAM2ImagePredictor, build_sam2

        model = build_sam2(SAM2_BENCH_CONFIGS[config], {"model": state_dict}, device="cpu")
        return Side("samwidgets", model, lambda m: SAM2ImagePredictor(m, cache_size=0), SAM2AutomaticMaskGenerator)
    from ..hub.build import build_sam
    from ..inference.automatic_mask_generator import SamAutomaticMaskGenerator
    from ..inference.predictor import SamPredictor

    model = build_sam(config, state_dict).eval()
    return Side("samwidgets", model, lambda m: SamPredictor(m, cache_size=0), SamAutomaticMaskGenerator,
                lambda m: SamPredictor(m, cache_size=0, precision="bf16"))


def reference_side(config: str, state_dict: dict[str, torch.Tensor]) -> Side:
    """The reference package of ``config`` with the given weights (the key names are identical).

    Loaded strictly, except that MobileSAM's model also has TinyViT's ImageNet classifier, which
    samwidgets drops: those keys keep the package's own initialisation (SAM never runs them).
    ``eval()`` comes after loading: MobileSAM's attention caches its bias table when switched to eval.
    """
    if config in SAM2_BENCH_CONFIGS:
        return _reference_sam2_side(config, state_dict)
    package = importlib.import_module(reference_module(config))
    model = package.sam_model_registry[config](checkpoint=None)
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    classifier = [k for k in missing if k.startswith(("image_encoder.head.", "image_encoder.norm_head."))]
    if unexpected or len(classifier) != len(missing):
        raise RuntimeError(f"the weights do not fit the reference's {config}: missing {missing[:3]}, "
                           f"unexpected {unexpected[:3]}")
    return Side("reference", model.eval(), package.SamPredictor, package.SamAutomaticMaskGenerator)


def _reference_sam2_side(config: str, state_dict: dict[str, torch.Tensor]) -> Side:
    """The sam2 package's model with the given image-path weights; its video modules keep their own random
    initialisation (an image never runs them)."""
    # the reference sam2 package, installed only where the comparison runs: not in the environment pyright checks
    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
    from sam2.build_sam import build_sam2  # pyright: ignore[reportMissingImports]
    from sam2.sam2_image_predictor import SAM2ImagePredictor  # pyright: ignore[reportMissingImports]

    model = build_sam2(SAM2_BENCH_CONFIGS[config], ckpt_path=None, device="cpu")
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    if unexpected or any(k.startswith(("image_encoder.", "sam_prompt_encoder.", "sam_mask_decoder.")) for k in missing):
        raise RuntimeError(f"the weights do not fit the reference's {config}: missing {missing[:3]}, "
                           f"unexpected {unexpected[:3]}")
    return Side("reference", model.eval(), SAM2ImagePredictor, SAM2AutomaticMaskGenerator)


SIDE_BUILDERS: dict[str, Callable[[str, dict[str, torch.Tensor]], Side]] = {
    "reference": reference_side,
    "samwidgets": samwidgets_side,
}


# -- measuring one side -------------------------------------------------------------------------
def measure_side(side: Side, settings: Settings) -> tuple[SideResult, dict[str, torch.Tensor]]:
    """Time one implementation and return its outputs for the comparison.

    Everything runs under ``torch.no_grad`` (both packages also use it
    internally; ``inference_mode`` is not used because samwidgets reads
    tensor version counters, which inference tensors lack). Returns the
    measurements and {"embedding": 1 x C x h x w, "low_res": 3 x S x S,
    "mask_logits": 3 x H x W, "iou": 3}.
    """
    from .memory import reset_peak_rss, rss_mib

    torch.set_num_threads(settings.threads)
    image = compare_image(settings.image_hw, settings.seed)  # H x W x 3 uint8
    point, label = compare_point(settings.image_hw)
    predictor = side.make_predictor(side.model)
    with torch.no_grad():
        # The first encode is untimed (it allocates and picks kernels) but counts for the peak: in this
        # fresh process nothing is kept yet by the allocator, so its high-water mark is the encode's real
        # need; later encodes partly reuse memory that is already in the RSS before them.
        encode_times: list[float] = []
        peak: float | None = None
        for run in range(settings.encoder_runs + 1):
            rss_before = rss_mib("VmRSS")
            can_reset = reset_peak_rss()
            start = time.perf_counter()
            predictor.set_image(image)
            if run > 0:
                encode_times.append(time.perf_counter() - start)
            if can_reset and rss_before is not None:
                peak = max(peak or 0.0, (rss_mib("VmHWM") or 0.0) - rss_before)

        embedding = predictor.get_image_embedding().float().cpu().clone()  # 1 x C x h x w
        mask_logits, iou, low_res = predictor.predict(point, label, multimask_output=True, return_logits=True)
        for _ in range(3):
            predictor.predict(point, label, multimask_output=True)
        predict_times = []
        for _ in range(settings.predict_calls):
            start = time.perf_counter()
            predictor.predict(point, label, multimask_output=True)
            predict_times.append(time.perf_counter() - start)

        del predictor
        bf16_times: list[float] = []
        if side.make_bf16_predictor is not None:
            bf16 = side.make_bf16_predictor(side.model)
            for run in range(settings.encoder_runs + 1):  # the first untimed, as above
                start = time.perf_counter()
                bf16.set_image(image)
                if run > 0:
                    bf16_times.append(time.perf_counter() - start)
            del bf16
        generation_times, masks = [], None
        for _ in range(settings.generation_runs):
            generator = side.make_generator(side.model, points_per_side=settings.points_per_side,
                                            points_per_batch=settings.points_per_batch)  # fresh: no cached embedding
            start = time.perf_counter()
            masks = len(generator.generate(image))
            generation_times.append(time.perf_counter() - start)
            del generator

    result = SideResult(
        encode_s=statistics.median(encode_times),
        encode_peak_mib=peak,
        predict_ms=1000 * statistics.median(predict_times),
        generation_s=statistics.median(generation_times) if generation_times else None,
        generation_masks=masks,
        threads=torch.get_num_threads(),
        torch_version=torch.__version__,
        encode_bf16_s=statistics.median(bf16_times) if bf16_times else None,
    )
    outputs = {
        "embedding": embedding,
        "low_res": torch.as_tensor(low_res),  # 3 x S x S
        "mask_logits": torch.as_tensor(mask_logits),  # 3 x H x W
        "iou": torch.as_tensor(iou),  # 3
    }
    return result, outputs


def run_side_subprocess(name: str, settings: Settings, weights: Path, workdir: Path
                        ) -> tuple[SideResult, dict[str, torch.Tensor]]:
    """Measure one side in a fresh Python (same interpreter) so that its memory and allocator are its own."""
    result_file, outputs_file = workdir / f"{name}.json", workdir / f"{name}.pt"
    cmd = [sys.executable, "-m", "samwidgets.bench.reference", "--side", name, "--weights", str(weights),
           "--settings", json.dumps(asdict(settings)), "--result", str(result_file), "--outputs", str(outputs_file)]
    subprocess.run(cmd, check=True)
    result = SideResult(**json.loads(result_file.read_text()))
    return result, torch.load(outputs_file, weights_only=True)


# -- the table ----------------------------------------------------------------------------------
def ratio(reference: float | None, ours: float | None) -> str:
    """reference / samwidgets as text ("2.50x": samwidgets takes 2.5 times less), "n/a" when unknown."""
    if reference is None or ours is None or ours <= 0:
        return "n/a"
    return f"{reference / ours:.2f}x"


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute elementwise difference of two tensors of the same shape."""
    if a.shape != b.shape:
        raise ValueError(f"outputs differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    return (a.double() - b.double()).abs().max().item()


def _fmt(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def comparison_table(ref: SideResult, ours: SideResult, settings: Settings) -> str:
    """Markdown table: rows = measures, columns = reference, samwidgets, ratio reference/samwidgets."""
    g = f"{settings.points_per_side}x{settings.points_per_side}"
    rows = [
        (f"encoder s/image (set_image, median of {settings.encoder_runs})", ref.encode_s, ours.encode_s, 2),
        ("encode peak RSS above RSS before (MiB, first encode included)", ref.encode_peak_mib, ours.encode_peak_mib, 0),
        (f"single-point predict ms (median of {settings.predict_calls}, multimask)", ref.predict_ms,
         ours.predict_ms, 1),
    ]
    if settings.generation_runs:
        rows.append((f"automatic generation s/image ({g} grid, encoder included)", ref.generation_s,
                     ours.generation_s, 2))
    lines = ["| measure | reference | samwidgets | reference / samwidgets |", "|---|---|---|---|"]
    if ours.encode_bf16_s is not None:  # the labelled bf16 mode against the reference's fp32 encoder
        rows.insert(1, ("encoder s/image, samwidgets bf16 mode (SamPredictor(precision=\"bf16\"))", ref.encode_s,
                        ours.encode_bf16_s, 2))
    for label, r, o, digits in rows:
        lines.append(f"| {label} | {_fmt(r, digits)} | {_fmt(o, digits)} | {ratio(r, o)} |")
    if settings.generation_runs:
        lines.append(f"| masks from automatic generation | {ref.generation_masks} | {ours.generation_masks} | - |")
    return "\n".join(lines)


def difference_lines(ref_out: dict[str, torch.Tensor], our_out: dict[str, torch.Tensor]) -> str:
    """One line per output: the max abs difference between the two implementations."""
    names = {"embedding": "image embedding", "low_res": "low-res logits", "mask_logits": "mask logits at image size",
             "iou": "IoU predictions"}
    return "\n".join(f"- max |reference - samwidgets|, {label} ({'x'.join(map(str, ref_out[k].shape))}): "
                     f"{max_abs_diff(ref_out[k], our_out[k]):.3g}" for k, label in names.items())


def report(ref: SideResult, ours: SideResult, ref_out: dict[str, torch.Tensor], our_out: dict[str, torch.Tensor],
           settings: Settings, machine: str) -> str:
    """The whole markdown report: setting line, table, differences."""
    h, w = settings.image_hw
    return (
        f"Machine: {machine}\n\n"
        f"Reference {reference_module(settings.config) if settings.config in REFERENCE_PACKAGES else 'package'} "
        f"vs samwidgets: random {settings.config} weights (seed {settings.seed}, the same "
        f"tensors in both), {w}x{h} image, torch {ours.torch_version} with {ours.threads} threads for both, "
        f"each side in its own subprocess, torch.no_grad. Ratio > 1: samwidgets is faster / smaller.\n\n"
        f"{comparison_table(ref, ours, settings)}\n\n"
        f"{difference_lines(ref_out, our_out)}\n"
    )


def compare(settings: Settings, machine: str,
            run_side: Callable[[str, Settings, Path, Path], tuple[SideResult, dict[str, torch.Tensor]]] | None = None,
            ) -> str:
    """Measure both sides and return the report; ``run_side`` defaults to a subprocess per side."""
    run_side = run_side or run_side_subprocess
    with tempfile.TemporaryDirectory(prefix="samwidgets-refcompare-") as tmp:
        workdir = Path(tmp)
        weights = workdir / "weights.pt"
        torch.save(random_state_dict(settings.config, settings.seed), weights)
        results = {}
        for name in SIDES:
            print(f"measuring {name} ...", file=sys.stderr, flush=True)
            results[name] = run_side(name, settings, weights, workdir)
    (ref, ref_out), (ours, our_out) = results["reference"], results["samwidgets"]
    return report(ref, ours, ref_out, our_out, settings, machine)


def main_compare(settings: Settings, out: Path | None, machine: str, configs: tuple[str, ...] = ("vit_b",)) -> int:
    """The ``--compare-reference`` command, one section per configuration.

    2 (and how to fix it) when a configuration has no reference package or its package is not importable.
    """
    for config in configs:
        if config not in REFERENCE_PACKAGES:
            print(f"--compare-reference: no reference package defines {config!r}; known: "
                  f"{', '.join(REFERENCE_PACKAGES)}", file=sys.stderr)
            return 2
        if not reference_available(config):
            module, pip_name = REFERENCE_PACKAGES[config]
            print(SETUP_HINT.format(python=sys.executable, module=module, pip_name=pip_name, config=config),
                  file=sys.stderr)
            return 2
    sections = [compare(replace(settings, config=config), machine) for config in configs]
    text = "\n".join(sections)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    return 0


def _side_main(argv: list[str] | None = None) -> int:
    """Subprocess entry point: measure one side and write its result (JSON) and outputs (.pt)."""
    parser = argparse.ArgumentParser(description="internal: one side of --compare-reference")
    parser.add_argument("--side", choices=SIDES, required=True)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--settings", required=True, help="Settings as JSON")
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--outputs", type=Path, required=True)
    args = parser.parse_args(argv)
    raw = json.loads(args.settings)
    settings = Settings(**{**raw, "image_hw": tuple(raw["image_hw"])})
    state_dict = torch.load(args.weights, map_location="cpu", weights_only=True)
    side = SIDE_BUILDERS[args.side](settings.config, state_dict)
    del state_dict
    result, outputs = measure_side(side, settings)
    args.result.write_text(json.dumps(asdict(result)))
    torch.save(outputs, args.outputs)
    return 0


if __name__ == "__main__":
    raise SystemExit(_side_main())
