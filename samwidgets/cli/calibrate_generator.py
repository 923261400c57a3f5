"""Choose the automatic mask generator's thresholds for a model: ``samwidgets calibrate-generator``.

    samwidgets calibrate-generator --bsds BSDS500/data --split train --photos 30 --out runs/amg

runs the generator unfiltered on the first N photos of a BSDS500 split (train: never the split you
evaluate on), matches its masks to every annotator's segments, and picks the predicted-IoU and
stability thresholds with the best F1 at IoU 0.5 (:mod:`samwidgets.evaluation.generator_thresholds`).
Writes ``generator_thresholds.json`` (the choice and every pair's counts) and ``.md`` to --out. The
bundled model's ``BUNDLED_MODEL_THRESHOLDS`` come from this command (weights/generator_thresholds.json).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tqdm import tqdm

from ..io.atomic import atomic_write_bytes
from .checks import at_least, bsds_folder
from .generate import REFERENCE_THRESHOLDS
from .model_flags import add_bsds_flags, add_model_flags, check_model_flags, model_description, sam_from_flags


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="samwidgets calibrate-generator", description=(__doc__ or "").split("\n\n")[0])
    add_model_flags(p)
    add_bsds_flags(p, split="train", what="calibrate on the photos of a split of ")
    p.add_argument("--photos", type=int, default=30, help="the first N photos of the split (default: 30)")
    p.add_argument("--points-per-side", type=int, default=32, help="the generator's grid (default: 32, as SAM's)")
    p.add_argument("--out", type=Path, required=True, help="folder for generator_thresholds.json and .md")
    args = p.parse_args(argv)
    bsds_folder(args.bsds, args.split)
    check_model_flags(args)  # before a model is loaded: --weights a file, a --model .json a SamConfig, ...
    at_least(args.photos, 1, "--photos")
    at_least(args.points_per_side, 1, "--points-per-side")

    from ..data.bsds import BsdsDataset
    from ..evaluation.generator_thresholds import calibrate_thresholds, photo_candidates, threshold_table
    from ..inference.automatic_mask_generator import SamAutomaticMaskGenerator

    model = sam_from_flags(args)
    generator = SamAutomaticMaskGenerator(model, points_per_side=args.points_per_side, pred_iou_thresh=0.0,
                                          stability_score_thresh=0.0)
    data = BsdsDataset(args.bsds, args.split)
    start = time.perf_counter()
    photos = [photo_candidates(generator, data[i]) for i in tqdm(range(min(args.photos, len(data))),
                                                                   desc="calibrating", dynamic_ncols=True)]
    choice = calibrate_thresholds(photos)
    table = threshold_table(photos, choice, REFERENCE_THRESHOLDS)
    command = " ".join(["samwidgets calibrate-generator", *(argv if argv is not None else sys.argv[1:])])
    record = {"command": command, "model": model_description(args), "split": args.split,
              "points_per_side": args.points_per_side, "seconds": round(time.perf_counter() - start, 1),
              **choice.as_dict()}
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out / "generator_thresholds.json", json.dumps(record, indent=1).encode())
    summary = (f"{choice.photos} BSDS500 {args.split} photos, {choice.segments} human segments; "
               f"{args.points_per_side} x {args.points_per_side} grid; model: {model_description(args)}\n\n{table}\n")
    atomic_write_bytes(args.out / "generator_thresholds.md", summary.encode())
    print(summary)
    print(f"chosen: pred_iou_thresh={choice.pred_iou_thresh:g}, stability_score_thresh="
          f"{choice.stability_score_thresh:g}; written to {args.out}", file=sys.stderr)
    return 0
