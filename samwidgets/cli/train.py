"""Train or fine-tune SAM with the paper's recipe: ``python -m samwidgets train``.

Examples::

    # the bundled default model: a small config on procedural scenes, on a CPU
    python -m samwidgets train --model default_tiny --steps 3000 --out runs/tiny

    # fine-tune official vit_b weights on your own COCO data, decoder only
    python -m samwidgets train --model vit_b --weights sam_vit_b_01ec64.pth \\
        --coco-images my/images --coco-annotations my/instances.json \\
        --freeze-image-encoder --steps 2000 --out runs/my_vit_b

Every step: encode the images, simulate 11 rounds of prompts per mask
(samwidgets.training.interactive), focal + dice (20:1) on the best of the 3
ambiguity masks, IoU-head MSE; AdamW with linear warm-up and cosine decay.
Writes ``log.csv`` (one row per step, with the time it ended), ``checkpoint.pt`` every
``--save-every`` steps (atomically: model, optimiser, scheduler, RNG, step, moving average)
for ``--resume``, and at the end ``weights.pt`` (a plain state dict) and
``config.json``. On ``--resume`` the log is cut back to the checkpoint's step, so a step
logged after the last checkpoint and then run again appears once.

A run that goes on across sessions (``recipes/bsds_cnn/campaign.md``): ``--schedule constant``
(warm-up, then no decay), ``--ema 0.999`` (``weights_ema.pt``, the moving average of the weights,
written with every checkpoint), and ``--resume`` in each later session.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..data.seeds import train_seed_offset
from ..errors import UserInputError
from ..hub.build import build_sam
from ..hub.checkpoints import config_by_name_or_file
from ..io.atomic import atomic_torch_save, atomic_write_bytes
from ..modeling import CONFIGS, Sam
from ..modeling.fast import enable_fast_paths
from ..runtime.devices import resolve_device
from ..runtime.threads import configure_threads
from ..training.datasets import BatchSource, CocoSource, MixedSource, ProceduralSource, step_batches
from ..training.decoder_init import tie_decoder_query_key
from ..training.ema import EmaWeights
from ..training.loop import freeze_image_encoder, make_optimizer, train_only, training_step
from ..training.schedule import schedule_factor
from .checks import at_least, bsds_folder, existing_file, existing_folder, in_range, reading
from .model_flags import CONFIG_FIX, add_model_flags, check_model_flags

LOG_FIELDS = ["step", "lr", "loss", "first_prompt", "focal", "dice", "iou_mse", "iou_round0", "oracle_round0",
              "iou_last",
              "seconds", "utc"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="samwidgets train", description=(__doc__ or "").split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_flags(p, model_default="default_tiny",
                    model_help=f"the configuration to train: {', '.join(CONFIGS)}, or a SamConfig .json file "
                               "(default: default_tiny)",
                    weights_help="start from these weights (e.g. an official checkpoint); default: a random "
                                 "initialisation")
    p.add_argument("--init-decoder", type=Path, default=None,
                   help="start the prompt encoder and mask decoder from this model's weights (same widths), the "
                        "image encoder from scratch: skips the plateau of empty masks a random decoder starts with")
    p.add_argument("--coco-images", type=Path, default=None, help="folder of images (COCO data)")
    p.add_argument("--coco-annotations", type=Path, default=None, help="COCO instances JSON (RLE or polygons)")
    p.add_argument("--bsds", type=Path, default=None,
                   help="BSDS500 folder (images/, groundTruth/): train on its train split, mixed with "
                        "procedural scenes")
    p.add_argument("--bsds-fraction", type=float, default=0.75,
                   help="with --bsds, the share of images that are photos (the rest procedural scenes)")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--images-per-step", type=int, default=4)
    p.add_argument("--masks-per-image", type=int, default=4)
    p.add_argument("--rounds", type=int, default=11, help="interactive rounds per mask (paper: 11)")
    p.add_argument("--box-prob", type=float, default=0.5, help="probability that a step starts from boxes")
    p.add_argument("--lr", type=float, default=8e-4)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--schedule", choices=("cosine", "constant"), default="cosine",
                   help="after the warm-up: cosine decay to 10%% at --steps (default), or constant, for a run "
                        "continued across sessions that anneals through --ema instead")
    p.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                   help="keep a moving average of the weights with this decay (e.g. 0.999) and write it as "
                        "weights_ema.pt with every checkpoint; 0: off")
    p.add_argument("--workers", type=int, default=0,
                   help="processes that prepare the next batches while the model trains (a DataLoader); 0: "
                        "on the main process. Worth it with spare cores (a GPU machine), not on 2 cores")
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--loss-at-low-res", action="store_true",
                   help="the loss on the low-res logits against cell-averaged targets (16x cheaper per pixel)")
    p.add_argument("--bf16", action="store_true",
                   help="bfloat16 autocast (GPUs; CPUs with AVX-512 BF16 or AMX; slower elsewhere)")
    p.add_argument("--freeze-image-encoder", action="store_true", help="train prompt encoder + decoder only")
    p.add_argument("--train-only", nargs="+", default=None, metavar="PREFIX",
                   help="train only the parameters whose names start with these prefixes, e.g. "
                        "mask_decoder.iou_prediction_head (the IoU head on its own: the masks do not change)")
    p.add_argument("--no-tied-init", action="store_true",
                   help="from scratch, do not start decoder attention with k_proj = q_proj (training/decoder_init.py)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="run directory")
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="stop after the step that passes this many seconds of training (a checkpoint and the "
                        "weights are written as at --steps): for a machine lent for a fixed time")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    """Raise UserInputError for a mistake in the options before anything is built, written or read."""
    if not args.model.endswith(".json") and args.model not in CONFIGS:
        raise UserInputError(f"--model {args.model}: not a configuration this command trains; {CONFIG_FIX}")
    check_model_flags(args)  # --weights a file, a --model .json a SamConfig, --device, --threads
    if args.init_decoder is not None:
        existing_file(args.init_decoder, "--init-decoder", "pass a checkpoint whose prompt encoder and mask "
                      "decoder have this configuration's widths (e.g. another run's weights.pt)")
    if bool(args.coco_images) != bool(args.coco_annotations):
        raise UserInputError("COCO data needs both --coco-images and --coco-annotations")
    if args.coco_images:
        existing_folder(args.coco_images, "--coco-images", "pass the folder of the COCO file's images")
        existing_file(args.coco_annotations, "--coco-annotations", "pass a COCO instances JSON file")
    if args.bsds is not None and not args.coco_images:
        bsds_folder(args.bsds, "train")
        in_range(args.bsds_fraction, 0.0, 1.0, "--bsds-fraction")
    for flag in ("steps", "images_per_step", "masks_per_image", "rounds", "save_every"):
        at_least(getattr(args, flag), 1, "--" + flag.replace("_", "-"))
    at_least(args.workers, 0, "--workers")
    in_range(args.ema, 0.0, 1.0, "--ema", high_open=True)
    if args.resume and not (args.out / "checkpoint.pt").is_file():
        raise UserInputError(f"--resume: no checkpoint at {args.out / 'checkpoint.pt'}; pass the --out of the run "
                             "to continue, or start without --resume")


def make_model(args: argparse.Namespace) -> Sam:
    """The model to train: the --model configuration, from --weights or a fresh initialisation."""
    try:
        config = config_by_name_or_file(args.model)
    except (OSError, ValueError) as e:
        raise UserInputError(f"--model: {e}") from e
    torch.manual_seed(args.seed)
    model_type = None if args.model.endswith(".json") else args.model
    model = build_sam(config, args.weights, model_type=model_type).train()
    if args.init_decoder is not None:
        load_prompt_and_decoder(model, args.init_decoder)
    elif args.weights is None and not args.no_tied_init:
        tie_decoder_query_key(model)
    return model


def load_prompt_and_decoder(model: Sam, path: Path) -> None:
    """Copy the prompt encoder and mask decoder of the state dict at ``path`` into ``model`` (strictly)."""
    from ..hub.build import load_state_dict_file

    state = load_state_dict_file(path)
    for name in ("prompt_encoder", "mask_decoder"):
        part = {k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + ".")}
        try:
            getattr(model, name).load_state_dict(part, strict=True)
        except RuntimeError as e:
            raise UserInputError(f"--init-decoder {path}: its {name} does not fit this configuration "
                             f"(prompt_embed_dim, decoder_num_heads, decoder_mlp_dim, ... must match): {e}") from e


def make_source(args: argparse.Namespace, image_size: int) -> BatchSource:
    """The batches of the run: COCO data, or procedural scenes mixed with BSDS500 photos (checked by check_args)."""
    if args.coco_images or args.coco_annotations:
        with reading("--coco-annotations", args.coco_annotations, "a COCO instances JSON",
                     "pass the instances file (RLE or polygons) of the images in --coco-images"):
            return CocoSource(args.coco_images, args.coco_annotations, image_size, seed=args.seed)
    procedural = ProceduralSource(image_size, seed_offset=train_seed_offset(args.seed))
    if args.bsds is None:
        return procedural
    from ..training.photos import BsdsSource

    photos = BsdsSource(args.bsds, image_size, split="train", seed=args.seed)
    return MixedSource([photos, procedural], [args.bsds_fraction, 1.0 - args.bsds_fraction], seed=args.seed)


def train(args: argparse.Namespace) -> Path:
    """Run training as configured; returns the path of the final weights."""
    check_args(args)
    device = resolve_device(args.device)
    configure_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    # the fast paths compute the same function and gradients (tests/test_fast_paths.py), faster
    model = enable_fast_paths(make_model(args).to(device))
    if args.freeze_image_encoder:
        freeze_image_encoder(model)
    if args.train_only:
        try:
            train_only(model, args.train_only)
        except ValueError as e:
            raise UserInputError(f"--train-only: {e}") from e
    optimizer, params = make_optimizer(model, args.lr, args.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: schedule_factor(args.schedule, s, args.warmup, args.steps))
    # the prompts' random numbers are drawn where the model trains (no copy per round to a GPU)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    ema = EmaWeights(model, args.ema) if args.ema else None
    start = 0
    ckpt_path = args.out / "checkpoint.pt"
    if args.resume:
        state = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        try:
            generator.set_state(state["generator"])
        except (RuntimeError, TypeError, ValueError):  # a checkpoint of a run on another kind of device
            generator.manual_seed(args.seed * 1_000_003 + state["step"])
            print(f"--resume: the checkpoint's random state is from another kind of device than {device}; "
                  "the prompts are drawn from a new seed from here on", file=sys.stderr)
        start = state["step"]
        if ema is not None and state.get("ema") is not None:
            ema = EmaWeights.from_state_dict(model, state["ema"])
    source = make_source(args, model.config.image_size)
    log_path = args.out / "log.csv"
    if args.resume and log_path.exists():
        truncate_log(log_path, start)
    else:
        with log_path.open("w", newline="") as f:
            csv.writer(f).writerow(LOG_FIELDS)
    (args.out / "config.json").write_text(json.dumps(model.config.to_dict(), indent=2))
    (args.out / "args.json").write_text(json.dumps({k: str(v) for k, v in vars(args).items()}, indent=2))

    bar = tqdm(range(start, args.steps), initial=start, total=args.steps, disable=args.no_progress,
               desc="train", dynamic_ncols=True)
    batches = step_batches(source, start, args.steps, args.images_per_step, args.masks_per_image,
                           workers=args.workers, pin_memory=args.workers > 0 and device.type == "cuda")
    t0 = started = time.perf_counter()
    for step, batch in zip(bar, batches):
        result = training_step(model, batch, optimizer, params, generator, box_prob=args.box_prob,
                               num_rounds=args.rounds, grad_clip=args.grad_clip, scheduler=scheduler,
                               loss_at_low_res=args.loss_at_low_res, bf16=args.bf16)
        if ema is not None:
            ema.update(model)
        stats, loss = result.rounds, result.loss
        seconds = time.perf_counter() - t0  # the step, and the wait for its batch
        t0 = time.perf_counter()
        row = [step + 1, f"{scheduler.get_last_lr()[0]:.3g}", f"{loss:.5f}", result.first_prompt,
               f"{np.mean([s.focal for s in stats]):.5f}", f"{np.mean([s.dice for s in stats]):.5f}",
               f"{np.mean([s.iou_mse for s in stats]):.5f}", f"{stats[0].mask_iou:.4f}", f"{stats[0].oracle_iou:.4f}",
               f"{stats[-1].mask_iou:.4f}", f"{seconds:.2f}",
               datetime.now(timezone.utc).isoformat(timespec="seconds")]
        with log_path.open("a", newline="") as f:
            csv.writer(f).writerow(row)
        bar.set_postfix(loss=f"{loss:.3f}", iou0=f"{stats[0].mask_iou:.2f}", iou=f"{stats[-1].mask_iou:.2f}")
        out_of_time = args.time_limit is not None and time.perf_counter() - started > args.time_limit
        if (step + 1) % args.save_every == 0 or step + 1 == args.steps or out_of_time:
            atomic_torch_save({
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "generator": generator.get_state(), "step": step + 1,
                "config": model.config.to_dict(), "python_random": random.getstate(),
                "ema": None if ema is None else ema.state_dict(),
            }, ckpt_path)
            if ema is not None:
                atomic_torch_save(ema.state, args.out / "weights_ema.pt")
        if out_of_time:
            print(f"--time-limit {args.time_limit:g} s reached after step {step + 1}", file=sys.stderr)
            break
    weights = atomic_torch_save(model.state_dict(), args.out / "weights.pt")
    return weights


def truncate_log(path: Path, last_step: int) -> None:
    """Keep the rows of ``log.csv`` up to ``last_step`` (the checkpoint's), in today's columns, atomically.

    Steps logged after the last checkpoint are run again on ``--resume``; without this they would
    appear twice. A log written before a column was added gets that column empty.
    """
    with path.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("step", "").isdigit() and int(r["step"]) <= last_step]
    text = io.StringIO()
    writer = csv.DictWriter(text, LOG_FIELDS, restval="", extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, text.getvalue().encode())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    path = train(args)
    print(f"weights written to {path}", file=sys.stderr)
    return 0
