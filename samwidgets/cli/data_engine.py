"""``python -m samwidgets data-engine --out runs/engine``: the three stages with retraining, and the table.

    python -m samwidgets data-engine --out runs/engine                 # about 25 min on 2 CPU cores
    python -m samwidgets data-engine --out runs/quick --images 2 2 4 --steps 2 --eval-scenes 3

Starts from the bundled default model (or --weights of the same configuration). Writes to OUT:
``report.md`` and ``report.json`` (the table), ``model_stage<k>.pt`` (weights after each
retraining) and ``stage<k>_<name>/`` (each stage's images as PNG and masks as SA-1B JSON).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..data_engine.annotator import AnnotatorConfig
from ..data_engine.engine import EngineConfig, report_markdown, run_engine
from ..hub.default_model import BUNDLED_MODEL_NAME
from .checks import at_least
from .model_flags import add_model_flags, check_model_flags, model_at_image_size, sam_from_flags


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults, person = EngineConfig(), AnnotatorConfig()
    p = argparse.ArgumentParser(prog="samwidgets data-engine", description=(__doc__ or "").split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--out", type=Path, required=True, help="output folder")
    add_model_flags(p, weights_help=f"start from these weights (with --model, a configuration; default: the bundled "
                                    f"{BUNDLED_MODEL_NAME})")
    p.add_argument("--images", type=int, nargs=3, default=list(defaults.images_per_stage),
                   metavar=("STAGE1", "STAGE2", "STAGE3"), help="new images per stage")
    p.add_argument("--steps", type=int, default=defaults.steps_per_stage, help="retraining steps after each stage")
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--rounds", type=int, default=defaults.rounds, help="interactive rounds per mask in retraining")
    p.add_argument("--eval-scenes", type=int, default=defaults.eval_scenes, help="held-out scenes for the mIoU")
    p.add_argument("--budget", type=int, default=person.budget_per_image, help="annotator time per image, in clicks")
    p.add_argument("--image-size", type=int, default=None,
                   help="run the model at this input size (CNN models only; default: its own size)")
    p.add_argument("--seed", type=int, default=defaults.seed)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_model_flags(args)  # before a model is loaded: --weights a file, a --model .json a SamConfig, ...
    for count in args.images:
        at_least(count, 0, "--images")
    at_least(args.steps, 0, "--steps")
    for flag in ("rounds", "eval_scenes", "budget"):
        at_least(getattr(args, flag), 1, "--" + flag.replace("_", "-"))
    model = sam_from_flags(args)
    model = model_at_image_size(model, args.image_size)
    config = EngineConfig(images_per_stage=tuple(args.images), steps_per_stage=args.steps, lr=args.lr,
                          rounds=args.rounds,
                          eval_scenes=args.eval_scenes, annotator=AnnotatorConfig(budget_per_image=args.budget),
                          seed=args.seed)
    rows = run_engine(model, config, out_dir=args.out, progress=True)
    print(report_markdown(rows))
    print(f"written to {args.out}", file=sys.stderr)
    return 0
