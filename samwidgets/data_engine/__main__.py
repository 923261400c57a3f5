"""``python -m samwidgets.data_engine --out runs/engine``: the three stages with retraining, and the table.

    python -m samwidgets.data_engine --out runs/engine                 # about 25 min on 2 CPU cores
    python -m samwidgets.data_engine --out runs/quick --images 2 2 4 --steps 2 --eval-scenes 3

Starts from the bundled default model (or --weights of the same configuration). Writes to OUT:
``report.md`` and ``report.json`` (the table), ``model_stage<k>.pt`` (weights after each
retraining) and ``stage<k>_<name>/`` (each stage's images as PNG and masks as SA-1B JSON).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..build import at_image_size, build_sam
from ..default_model import DEFAULT_MODEL_NAME, load_default
from ..modeling import CONFIGS
from .annotator import AnnotatorConfig
from .engine import EngineConfig, report_markdown, run_engine


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults, person = EngineConfig(), AnnotatorConfig()
    p = argparse.ArgumentParser(prog="python -m samwidgets.data_engine", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--weights", type=Path, default=None, help=f"start from these {DEFAULT_MODEL_NAME} weights")
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
    if args.weights is not None:
        model = build_sam(CONFIGS[DEFAULT_MODEL_NAME], args.weights, model_type=DEFAULT_MODEL_NAME)
    else:
        model = load_default("cpu")
    if args.image_size is not None:
        model = at_image_size(model, args.image_size)
    config = EngineConfig(images_per_stage=tuple(args.images), steps_per_stage=args.steps, lr=args.lr, rounds=args.rounds,
                          eval_scenes=args.eval_scenes, annotator=AnnotatorConfig(budget_per_image=args.budget),
                          seed=args.seed)
    rows = run_engine(model, config, out_dir=args.out, progress=True)
    print(report_markdown(rows))
    print(f"written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
