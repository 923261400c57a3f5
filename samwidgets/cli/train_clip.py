"""Train the tiny CLIP-like pair: ``samwidgets train-clip``."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..data.seeds import TEXT_EVAL_SEED_START, train_seed_offset
from ..text.scene_bank import build_bank
from ..text.train_clip import retrieval_accuracy, train_tiny_clip
from .checks import at_least


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="samwidgets train-clip", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--out", required=True, help="output .pt file (an eval .json is written beside it)")
    p.add_argument("--scenes", type=int, default=2000, help="training scenes drawn once (default 2000)")
    p.add_argument("--eval-scenes", type=int, default=200, help="held-out scenes for retrieval accuracy")
    p.add_argument("--steps", type=int, default=1000, help="as the bundled weights/tiny_clip.pt")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--processes", type=int, default=2, help="processes that draw the scenes")
    args = p.parse_args(argv)
    for flag in ("scenes", "eval_scenes", "steps", "batch_size", "processes"):
        at_least(getattr(args, flag), 1, "--" + flag.replace("_", "-"))
    t0 = time.perf_counter()
    start = train_seed_offset(args.seed)
    bank = build_bank(range(start, start + args.scenes), processes=args.processes)
    held_out = build_bank(range(TEXT_EVAL_SEED_START, TEXT_EVAL_SEED_START + args.eval_scenes),
                          processes=args.processes)
    print(f"{len(bank)} training masks on {args.scenes} scenes, {len(held_out)} held-out masks "
          f"({time.perf_counter() - t0:.0f} s)")
    clip = train_tiny_clip(bank, steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    result = {"train_seconds": round(time.perf_counter() - t0, 1), "steps": args.steps,
              "batch_size": args.batch_size, "training_scenes": args.scenes,
              "outside_zeroed": retrieval_accuracy(clip, held_out, mask_out=1.0),
              "with_context": retrieval_accuracy(clip, held_out, mask_out=0.0)}
    out = Path(args.out)
    clip.save(out, training=vars(args))
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0
