"""Evaluate text prompts on held-out scenes: ``samwidgets evaluate-text``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..data.seeds import TEXT_EVAL_SEED_START
from ..errors import UserInputError
from ..hub.build import at_image_size
from ..hub.checkpoints import model_from_flags
from ..runtime.threads import configure_threads
from ..text import load_default_text_model, load_tiny_clip
from ..text.evaluate import evaluate_text_prompts, markdown
from ..text.scene_bank import build_bank
from .checks import at_least, existing_file, reading
from .model_flags import add_model_flags, check_model_flags, sam_only

TEXT_MODEL_FIX = "pass a file written by `samwidgets train-text --out FILE`, or leave --weights out for the bundled one"
CLIP_FIX = "pass a file written by `samwidgets train-clip --out FILE`, or leave --clip out for the bundled one"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="samwidgets evaluate-text", description=(__doc__ or "").split("\n\n")[0])
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
        raise UserInputError(f"--model {args.model}: a text SAM file says its own configuration; give the file "
                             "with --weights (and the model it was fine-tuned from with --base-model)")
    # before anything loads: the files are there, a --base-model .json is a SamConfig, --threads at least 1
    if args.weights is not None:
        existing_file(args.weights, "--weights", TEXT_MODEL_FIX)
    if args.clip is not None:
        existing_file(args.clip, "--clip", CLIP_FIX)
    check_model_flags(argparse.Namespace(model=args.base_model, weights=args.base_weights, threads=args.threads),
                      model_flag="--base-model", weights_flag="--base-weights")
    at_least(args.scenes, 1, "--scenes")
    at_least(args.min_area, 0, "--min-area")
    configure_threads(args.threads)
    with reading("--weights", args.weights, "a text-prompt SAM file", TEXT_MODEL_FIX):
        model = load_default_text_model(args.weights)
    with reading("--clip", args.clip, "a TinyClip file", CLIP_FIX):
        clip = load_tiny_clip(args.clip)
    # before the scenes are drawn
    base = sam_only(model_from_flags(args.base_model, args.base_weights, device=model.device), "--base-model")
    if base.config.encoder_type == "cnn":
        base = at_image_size(base, model.image_encoder.img_size)  # the base as it was fine-tuned
    # the scenes at the text model's own input size (it may have been trained at another than the bundled model's)
    bank = build_bank(range(TEXT_EVAL_SEED_START, TEXT_EVAL_SEED_START + args.scenes),
                      image_size=model.image_encoder.img_size, processes=2)
    result = evaluate_text_prompts(model, clip, bank, base_model=base, min_area=args.min_area)
    text = markdown(result)
    print(text)
    if args.out:
        out = Path(args.out)
        out.write_text(json.dumps(result, indent=2))
        out.with_suffix(".md").write_text(text + "\n")
    return 0
