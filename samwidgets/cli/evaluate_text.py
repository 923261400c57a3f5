"""Evaluate text prompts on held-out scenes: ``samwidgets evaluate-text``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..data.seeds import TEXT_EVAL_SEED_START
from ..hub.build import at_image_size
from ..hub.checkpoints import load_model
from ..runtime.threads import configure_threads
from ..text import load_default_text_model, load_tiny_clip
from ..text.evaluate import evaluate_text_prompts, markdown
from ..text.scene_bank import build_bank
from .model_flags import add_model_flags


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="samwidgets evaluate-text", description=__doc__.split("\n\n")[0])
    add_model_flags(p, model_help=argparse.SUPPRESS, weights_help="a text SAM file (samwidgets train-text; "
                    "default: the bundled one)", device=False)
    p.add_argument("--clip", default=None, help="a TinyClip file (default: the bundled one)")
    p.add_argument("--scenes", type=int, default=100, help="held-out scenes")
    p.add_argument("--min-area", type=int, default=None,
                   help="ask only for masks of this many pixels or more (default: as in training, the paper's rule)")
    p.add_argument("--out", default=None, help="write the result as JSON here (and .md beside it)")
    p.add_argument("--base-model", default=None, metavar="NAME|PATH",
                   help="the model the text SAM was fine-tuned from, scored with points and boxes on the same "
                        "masks (as --model; default: the bundled model)")
    p.add_argument("--base-weights", default=None, metavar="PATH", help="its weights (as --weights)")
    args = p.parse_args(argv)
    if args.model is not None:
        p.error("--model: a text SAM file says its own configuration; give it with --weights")
    configure_threads(args.threads)
    model = load_default_text_model(args.weights)
    clip = load_tiny_clip(args.clip)
    # the scenes at the text model's own input size (it may have been trained at another than the bundled model's)
    bank = build_bank(range(TEXT_EVAL_SEED_START, TEXT_EVAL_SEED_START + args.scenes),
                      image_size=model.image_encoder.img_size, processes=2)
    base = load_model(args.base_model, args.base_weights, device=model.device)
    if base.config.encoder_type == "cnn":
        base = at_image_size(base, model.image_encoder.img_size)  # the base as it was fine-tuned
    result = evaluate_text_prompts(model, clip, bank, base_model=base, min_area=args.min_area)
    text = markdown(result)
    print(text)
    if args.out:
        out = Path(args.out)
        out.write_text(json.dumps(result, indent=2))
        out.with_suffix(".md").write_text(text + "\n")
    return 0
