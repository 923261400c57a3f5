"""Segment everything in many images, one SA-1B JSON per image: ``python -m samwidgets generate``.

    python -m samwidgets generate photos/ extra.jpg --out masks/
    python -m samwidgets generate photos/ --out masks/ --model vit_b --weights sam_vit_b_01ec64.pth

IMAGES are files or directories (every image file directly inside, sorted by
name). For each image ``<stem>.json`` is written to --out in the SA-1B format
(:mod:`samwidgets.io.sa1b`). An image whose JSON already exists is skipped, so a
run that was interrupted picks up where it stopped; files are written
atomically, so a half-written JSON never exists. An image that cannot be read
or segmented is reported and the run goes on; the exit code is then 1 and
the failures are listed at the end.

Under ``torchrun`` (``python -m torch.distributed.run --nproc_per_node=N -m
samwidgets generate ...``) each process takes its own share of the images
(:mod:`samwidgets.runtime.distributed`), runs on its own GPU when there are GPUs,
and prints its own summary; rank 0 also prints the totals.

The model is the bundled default (``samwidgets.load_default()``) unless
--model (a configuration / checkpoint name) or --weights (a checkpoint file)
says otherwise.
"""

from __future__ import annotations

import argparse
import re
import sys
import zlib
from pathlib import Path

from tqdm import tqdm

from ..hub.checkpoints import model_from_flags
from ..hub.registry import BUNDLED_MODEL_NAME
from ..inference.automatic_mask_generator import BUNDLED_MODEL_THRESHOLDS, SamAutomaticMaskGenerator
from ..inference.images import as_rgb_uint8
from ..io.sa1b import read_sa1b, write_sa1b
from ..runtime import distributed
from .checks import at_least, error_line
from .folders import RunSummary, clashing_stems, images_to_process, report
from .model_flags import add_model_flags, model_description, refuse_sam2_name, sam_only

#: Generator options exposed on the command line, with their defaults (those of the reference).
#: A default of None is resolved per model by :func:`thresholds_for`.
GENERATOR_OPTIONS: dict[str, tuple[type, object, str]] = {
    "points_per_side": (int, 32, "grid points per image side (points_per_side**2 prompts)"),
    "points_per_batch": (int, 64, "prompts run together"),
    "pred_iou_thresh": (float, None, "keep masks with predicted IoU above this; default 0.88, "
                                     f"{BUNDLED_MODEL_THRESHOLDS['pred_iou_thresh']} with the bundled model"),
    "stability_score_thresh": (float, None, "keep masks with stability score at least this; default 0.95, "
                                            f"{BUNDLED_MODEL_THRESHOLDS['stability_score_thresh']:g} with the "
                                            "bundled model"),
    "stability_score_offset": (float, 1.0, "logit offset of the stability score"),
    "box_nms_thresh": (float, 0.7, "box IoU for removing duplicates within a crop"),
    "crop_n_layers": (int, 0, "extra layers of crops (layer i: 2**i x 2**i crops)"),
    "crop_nms_thresh": (float, 0.7, "box IoU for removing duplicates between crops"),
    "crop_overlap_ratio": (float, 512 / 1500, "overlap of neighbouring crops, fraction of the short side"),
    "crop_n_points_downscale_factor": (int, 1, "points per side shrink by this factor per crop layer"),
    "min_mask_region_area": (int, 0, "fill holes and drop islands smaller than this (pixels)"),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="samwidgets generate", description=(__doc__ or "").split("\n\n")[0],
                                epilog=(__doc__ or "").partition("\n\n")[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", type=Path, help="image files and/or directories of images")
    p.add_argument("--out", type=Path, required=True, help="directory for the <stem>.json files")
    for name, (kind, default, help_text) in GENERATOR_OPTIONS.items():
        shown = "" if default is None else f" ({default:g})"
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=default, help=help_text + shown)
    add_model_flags(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


#: The reference's thresholds (chosen for ViT-H).
REFERENCE_THRESHOLDS = {"pred_iou_thresh": 0.88, "stability_score_thresh": 0.95}


def thresholds_for(bundled_model: bool, pred_iou_thresh: float | None,
                   stability_score_thresh: float | None) -> dict[str, float]:
    """The filtering thresholds to use: those given, else the defaults that suit the model."""
    defaults = BUNDLED_MODEL_THRESHOLDS if bundled_model else REFERENCE_THRESHOLDS
    return {
        "pred_iou_thresh": defaults["pred_iou_thresh"] if pred_iou_thresh is None else pred_iou_thresh,
        "stability_score_thresh": (defaults["stability_score_thresh"] if stability_score_thresh is None
                                   else stability_score_thresh),
    }


def image_id_for(path: Path) -> int:
    """The SA-1B image id: the number ending the file stem ("sa_123.jpg" -> 123), else a stable
    32-bit checksum of the stem, so that resumed and repeated runs give the same id."""
    match = re.search(r"(\d+)$", path.stem)
    if match and len(match.group(1)) <= 18:
        return int(match.group(1))
    return zlib.crc32(path.stem.encode("utf-8")) & 0x7FFFFFFF


def generate_all(generator: SamAutomaticMaskGenerator, images: list[Path], out_dir: Path,
                 progress: bool = True) -> RunSummary:
    """Write ``out_dir/<stem>.json`` for every image that has no good one yet; never stops on a bad image.

    An existing JSON is trusted only if it reads as an SA-1B file (:func:`read_sa1b`); a broken one (cut
    short, not JSON, not the format) is made again and counted in ``summary.redone``.
    """
    summary = RunSummary()
    bar = tqdm(images, desc="images", unit="img", disable=not progress)
    for path in bar:
        target = out_dir / f"{path.stem}.json"
        broken = output_problem(target)
        if target.exists() and broken is None:
            summary.skipped.append(path)
            continue
        if broken is not None:
            tqdm.write(f"{target} is broken ({broken}): generating it again", file=sys.stderr)
        try:
            rgb = as_rgb_uint8(path)  # H x W x 3; ValueError naming the file when it is no image
            records = generator.generate(rgb)
            write_sa1b(target, records, image_id=image_id_for(path), file_name=path.name,
                       width=rgb.shape[1], height=rgb.shape[0])
        except Exception as e:  # one bad image must not cost the others
            reason = f"{type(e).__name__}: {e}"
            summary.failed.append((path, reason))
            tqdm.write(f"failed: {path}: {reason}", file=sys.stderr)
            continue
        summary.written.append(target)
        if broken is not None:
            summary.redone.append(target)
        bar.set_postfix(masks=len(records))
    return summary


def output_problem(target: Path) -> str | None:
    """What is wrong with an existing output JSON (None when it is a readable SA-1B file, or absent)."""
    if not target.exists():
        return None
    try:
        read_sa1b(target)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        return str(e).splitlines()[0]
    return None


def make_generator(args: argparse.Namespace, local_rank: int = 0) -> SamAutomaticMaskGenerator:
    """The model and generator the command-line options ask for (masks as COCO RLE); prints what it uses.

    local_rank picks the GPU under torchrun (cuda:LOCAL_RANK).
    """
    device = str(distributed.choose_device(args.device, local_rank))
    refuse_sam2_name(args.model, args.weights)  # before a download
    model = sam_only(model_from_flags(args.model, args.weights, device))
    options = {name: getattr(args, name) for name in GENERATOR_OPTIONS}
    bundled = args.weights is None and args.model in (None, BUNDLED_MODEL_NAME)
    options.update(thresholds_for(bundled, args.pred_iou_thresh, args.stability_score_thresh))
    print(f"model: {model_description(args)} on {device}; "
          f"pred_iou_thresh {options['pred_iou_thresh']:g}, stability_score_thresh "
          f"{options['stability_score_thresh']:g}")
    return SamAutomaticMaskGenerator(model, output_mode="coco_rle", **options)


#: the generator options' smallest values (SamAutomaticMaskGenerator refuses less, or makes no masks)
OPTION_MINIMUMS = {"points_per_side": 1, "points_per_batch": 1, "crop_n_layers": 0,
                   "crop_n_points_downscale_factor": 1, "min_mask_region_area": 0}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for name, minimum in OPTION_MINIMUMS.items():
        at_least(getattr(args, name), minimum, "--" + name.replace("_", "-"))
    images = images_to_process(args)
    clashes = clashing_stems(images)
    if clashes:
        listed = "; ".join(", ".join(map(str, group)) for group in clashes)
        print(error_line("generate", f"these images would write the same JSON file (same name without "
                         f"extension): {listed}. Rename one of each group, or run them with different --out "
                         "directories."), file=sys.stderr)
        return 2
    with distributed.distributed_session() as dist:  # a process group only under torchrun
        if dist.is_distributed:
            images = distributed.shard(images, dist.rank, dist.world_size)
        if all((args.out / f"{path.stem}.json").exists() and output_problem(args.out / f"{path.stem}.json") is None
               for path in images):
            summary = RunSummary(skipped=list(images))  # nothing to do: no model to load
        else:
            try:
                generator = make_generator(args, dist.local_rank)
            except (OSError, ValueError) as e:  # a missing or unfit checkpoint, an unknown name, a bad option
                print(dist.prefix() + error_line("generate", f"could not load the model: {e}"), file=sys.stderr)
                return 2
            args.out.mkdir(parents=True, exist_ok=True)
            summary = generate_all(generator, images, args.out, progress=not args.no_progress and dist.is_main)
        return report(summary, args.out, dist)
