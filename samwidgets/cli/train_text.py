"""Teach a SAM model text prompts without text: ``samwidgets train-text``."""

from __future__ import annotations

import argparse
import json
import time

from ..data.seeds import TEXT_SAM_SEED_START, train_seed_offset
from ..hub.checkpoints import model_from_flags
from ..modeling.fast import enable_fast_paths
from ..runtime.devices import resolve_device
from ..runtime.threads import configure_threads
from ..text import save_text_model
from ..text.scene_bank import build_bank
from ..text.tiny_clip import TinyClip
from ..text.train_sam import train_text_sam
from .checks import at_least, existing_file, reading
from .model_flags import add_model_flags, check_model_flags, model_at_image_size, sam_only

CLIP_FIX = "pass a file written by `samwidgets train-clip --out FILE`"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="samwidgets train-text", description=(__doc__ or "").split("\n\n")[0])
    which = p.add_mutually_exclusive_group(required=True)  # the CLIP-like model whose crop embeddings SAM learns
    which.add_argument("--clip", help="a TinyClip file (python -m samwidgets train-clip)")
    which.add_argument("--hf-clip", metavar="NAME",
                       help="a Hugging Face CLIP, hub name or local folder (e.g. openai/clip-vit-base-patch32; "
                            "needs transformers, and network the first time)")
    which.add_argument("--open-clip", metavar="NAME",
                       help="an open_clip model name (e.g. ViT-B-32; needs open_clip_torch, which brings torchvision)")
    p.add_argument("--open-clip-pretrained", default="openai", metavar="TAG",
                   help="open_clip pretrained tag or checkpoint path, with --open-clip (default: openai)")
    p.add_argument("--out", required=True, help="output .pt (config + state dict)")
    p.add_argument("--scenes", type=int, default=1500)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--text-masks", type=int, default=32, help="text-prompted masks per step")
    p.add_argument("--point-masks", type=int, default=4, help="point/box-prompted masks per step (0: none)")
    p.add_argument("--lr", type=float, default=1e-3, help="prompt encoder and mask decoder")
    p.add_argument("--projection-lr", type=float, default=3e-3, help="the new text projection")
    p.add_argument("--min-area", type=int, default=None,
                   help="text prompts only for masks of this many pixels or more (default: the paper's 100^2 at "
                        "1024 px, scaled)")
    p.add_argument("--text-masks-per-image", type=int, default=4,
                   help="text masks of a step in groups of this many from one image (default 4; 1: any masks)")
    p.add_argument("--tune-blocks", type=int, default=2,
                   help="also train the image encoder's last N blocks and its neck (default 2; 0: encoder frozen); "
                        "for a CNN encoder any N >= 1 trains its head (attention blocks, pyramid, neck, high-res "
                        "path) on its frozen trunk")
    p.add_argument("--encoder-lr", type=float, default=None, help="those encoder layers (default: --lr)")
    p.add_argument("--image-size", type=int, default=None,
                   help="train at this input size, the scenes drawn at it (default: the base model's own size; "
                        "another size needs a CNN base, whose weights fit any size)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--processes", type=int, default=2)
    add_model_flags(p, model_help="the SAM model to teach text prompts (a name or a config .json with --weights; "
                                  "default: the bundled default_cnn); --device holds SAM and the CLIP")
    p.add_argument("--delta", action="store_true",
                   help="save only what differs from the bundled model (prompt encoder, decoder), as the bundled file")
    args = p.parse_args(argv)
    check_model_flags(args)  # before anything loads: --weights a file, a --model .json a SamConfig, ...
    for flag in ("scenes", "steps", "text_masks", "text_masks_per_image", "processes"):
        at_least(getattr(args, flag), 1, "--" + flag.replace("_", "-"))
    for flag in ("point_masks", "tune_blocks", "min_area"):
        at_least(getattr(args, flag), 0, "--" + flag.replace("_", "-"))
    device = resolve_device(args.device)
    if args.hf_clip:
        from ..text.adapters import load_hf_clip

        with reading("--hf-clip", args.hf_clip, "a Hugging Face CLIP", "pass a hub name such as "
                     "openai/clip-vit-base-patch32 or a local folder (the first download needs network)"):
            clip = load_hf_clip(args.hf_clip, device=device)
    elif args.open_clip:
        from ..text.adapters import load_open_clip

        with reading("--open-clip", args.open_clip, f"an open_clip model with --open-clip-pretrained "
                     f"{args.open_clip_pretrained}", "pass a name of open_clip.list_pretrained() such as ViT-B-32"):
            clip = load_open_clip(args.open_clip, args.open_clip_pretrained, device=device)
    else:
        with reading("--clip", existing_file(args.clip, "--clip", CLIP_FIX), "a TinyClip file", CLIP_FIX):
            clip = TinyClip.load(args.clip, device)
    configure_threads(args.threads)
    # the fast paths: the same function and gradients, faster
    base = enable_fast_paths(sam_only(model_from_flags(args.model, args.weights, device)))
    base = model_at_image_size(base, args.image_size)  # the saved config records the size
    t0 = time.perf_counter()
    # other seeds than TinyClip's training scenes, so neither model has seen the other's crops
    start = TEXT_SAM_SEED_START + train_seed_offset(args.seed)
    bank = build_bank(range(start, start + args.scenes),
                      image_size=base.image_encoder.img_size, processes=args.processes)
    print(f"{len(bank)} masks on {args.scenes} scenes ({time.perf_counter() - t0:.0f} s)")
    model = train_text_sam(base, clip, bank, steps=args.steps, text_masks=args.text_masks,
                           point_masks=args.point_masks, lr=args.lr, projection_lr=args.projection_lr,
                           min_area=args.min_area, seed=args.seed, tune_blocks=args.tune_blocks,
                           encoder_lr=args.encoder_lr, text_masks_per_image=args.text_masks_per_image)
    save_text_model(model, args.out, delta=args.delta, training=vars(args), seconds=round(time.perf_counter() - t0, 1))
    print(json.dumps({"seconds": round(time.perf_counter() - t0, 1), "out": args.out}))
    return 0
