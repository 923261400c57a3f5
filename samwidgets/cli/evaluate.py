"""Evaluate a model on held-out procedural scenes: ``samwidgets evaluate``.

The paper's single-point valid-mask protocol (:mod:`samwidgets.evaluation.clicks`): mIoU after
1, 2, 3, 5 and 9 clicks for the most confident and the best output, mIoU from the box, and the
ambiguity score (:mod:`samwidgets.evaluation.procedural`). Prints a markdown table and writes
``eval.json`` and ``eval.png`` to ``--out``.

With ``--bsds ROOT`` it evaluates on real photos instead (BSDS500's human segments, baselines,
NoC@85/90 on the GrabCut masks, the IoU head's calibration): see
:mod:`samwidgets.evaluation.photos`.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import torch

from ..evaluation.procedural import evaluate, plot
from ..io.atomic import atomic_write_bytes
from .checks import at_least, bsds_folder, existing_folder
from .model_flags import add_bsds_flags, add_model_flags, check_model_flags, model_description, sam_from_flags


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="samwidgets evaluate", description=(__doc__ or "").split("\n\n")[0])
    add_model_flags(p, weights_help="a checkpoint or state dict (e.g. runs/x/weights.pt); with --model NAME or "
                                    "a config .json when it is not an official configuration")
    p.add_argument("--scenes", type=int, default=50)
    p.add_argument("--masks-per-scene", type=int, default=8)
    p.add_argument("--out", type=Path, default=Path("eval_results"))
    photos = p.add_argument_group("real photos (BSDS500) instead of procedural scenes")
    add_bsds_flags(photos, split="val", required=False,
                   what="evaluate on BSDS500 photos (writes bsds_<split>.json/.md/_clicks.png/_calibration.png): ")
    photos.add_argument("--grabcut", type=Path, default=None, metavar="DIR",
                        help="GrabCut ground-truth PNGs for NoC@85/90 (default: ROOT/../grabcut/ground-truth "
                             "when it exists, else NoC is skipped)")
    photos.add_argument("--max-photos", type=int, default=None, metavar="N",
                        help="quick runs: the first N photos of the split (and at most N GrabCut photos)")
    photos.add_argument("--no-grabcut-baseline", action="store_true",
                        help="skip the slow OpenCV grabCut baseline")
    args = p.parse_args(argv)
    check_model_flags(args)  # before a model is loaded: --weights a file, a --model .json a SamConfig, ...
    if args.bsds is not None:
        bsds_folder(args.bsds, args.split)
        if args.grabcut is not None:
            existing_folder(args.grabcut, "--grabcut", "pass the folder of GrabCut ground-truth PNGs (<id>.png), "
                            "or leave --grabcut out to skip NoC")
        at_least(args.max_photos, 1, "--max-photos")
    else:
        at_least(args.scenes, 1, "--scenes")
        at_least(args.masks_per_scene, 1, "--masks-per-scene")

    model = sam_from_flags(args)
    model_name = model_description(args)
    torch.manual_seed(0)
    if args.bsds is not None:
        from ..evaluation.photos import run_bsds

        return run_bsds(model, args.bsds, args.out, split=args.split, grabcut_dir=args.grabcut,
                        max_photos=args.max_photos, grabcut_baseline=not args.no_grabcut_baseline,
                        model_name=model_name)
    result = evaluate(model, args.scenes, max_masks_per_scene=args.masks_per_scene, progress=True)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out / "eval.json", json.dumps(asdict(result), indent=2).encode())
    plot(result, args.out / "eval.png")
    print(result.markdown())
    return 0
