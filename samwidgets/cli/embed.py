"""Compute the image embeddings of many images ahead of time: ``python -m samwidgets embed``.

    python -m samwidgets embed photos/ --out embeddings/
    python -m samwidgets embed photos/ --out embeddings/ --model vit_b --weights sam_vit_b_01ec64.pth

The image encoder is the slow part of SAM; this runs it once per image and
stores the result where a predictor finds it, so that later prompting (the
canvas, ``SamPredictor.set_image``) starts at once:

    predictor = SamPredictor(sam, disk_cache="embeddings/")   # same model and weights
    predictor.set_image(image)                               # read from embeddings/, no encoder run

IMAGES are files or directories (every image file directly inside). The
files are exactly the predictor's disk cache entries (:mod:`samwidgets.inference.cache`:
one ``<model fingerprint>-<image digest>.pt`` each, written atomically), made
by a predictor itself, so they are keyed by the image's pixels and the
model's weights: another model never picks up these embeddings. An image
whose embedding is already there is skipped, so an interrupted run resumes.
An image that cannot be read is reported and the run goes on; the exit code
is then 1 and the failures are listed at the end.

Under ``torchrun`` each process embeds its own share of the images
(:mod:`samwidgets.runtime.distributed`) on its own GPU when there are GPUs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from ..hub.checkpoints import model_from_flags
from ..inference.images import as_rgb_uint8
from ..inference.predictor import SamPredictor
from ..runtime import distributed
from .checks import error_line
from .folders import RunSummary, images_to_process, report
from .model_flags import add_model_flags, model_description, refuse_sam2_name, sam_only


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="samwidgets embed", description=(__doc__ or "").split("\n\n")[0],
                                epilog=(__doc__ or "").partition("\n\n")[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", type=Path, help="image files and/or directories of images")
    p.add_argument("--out", type=Path, required=True,
                   help="directory for the embeddings: give it to SamPredictor(sam, disk_cache=DIR)")
    add_model_flags(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def embed_all(predictor: SamPredictor, images: list[Path], progress: bool = True) -> RunSummary:
    """Put the embedding of every image into the predictor's disk cache unless it is there already.

    ``written`` lists the cache files made, ``skipped`` the images whose
    file existed and passed its checksum, ``redone`` the files that failed it and
    were made again; a bad image is recorded in ``failed`` and the others go on.
    """
    if predictor.cache.disk_dir is None:
        raise ValueError("the predictor has no disk cache: make it with SamPredictor(sam, disk_cache=DIR)")
    summary = RunSummary()
    for path in tqdm(images, desc="embeddings", unit="img", disable=not progress):
        try:
            rgb = as_rgb_uint8(path)  # H x W x 3; ValueError naming the file when it is no image
            key = predictor.cache_key(rgb)
            existed = key in predictor.cache
            if existed and predictor.cache.get(key) is not None:  # read and checksummed, not just present
                summary.skipped.append(path)
                continue
            predictor.precompute(rgb)  # encodes and writes <disk_dir>/<key>.pt atomically
        except Exception as e:  # one bad image must not cost the others
            reason = f"{type(e).__name__}: {e}"
            summary.failed.append((path, reason))
            tqdm.write(f"failed: {path}: {reason}", file=sys.stderr)
            continue
        summary.written.append(predictor.cache.disk_dir / f"{key}.pt")
        if existed:  # the file was there but failed its checksum (the cache warned and deleted it)
            summary.redone.append(summary.written[-1])
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    images = images_to_process(args)
    # Files are named by image content, not by name, so images with the same stem do not clash
    # (folders.clashing_stems is not needed); identical images share one file.
    with distributed.distributed_session() as dist:  # a process group only under torchrun
        if dist.is_distributed:
            images = distributed.shard(images, dist.rank, dist.world_size)
        try:
            device = distributed.choose_device(args.device, dist.local_rank)
            refuse_sam2_name(args.model, args.weights)  # before a download
            model = sam_only(model_from_flags(args.model, args.weights, str(device)))
        except (OSError, ValueError) as e:  # a missing or unfit checkpoint, an unknown name, no GPU
            print(dist.prefix() + error_line("embed", f"could not load the model: {e}"), file=sys.stderr)
            return 2
        if dist.is_main:
            print(f"model: {model_description(args)} on {device}", flush=True)
        # no memory cache: every embedding goes straight to disk and is not kept
        predictor = SamPredictor(model, cache_size=0, disk_cache=args.out)
        args.out.mkdir(parents=True, exist_ok=True)
        summary = embed_all(predictor, images, progress=not args.no_progress and dist.is_main)
        return report(summary, args.out, dist, already="embedding already there")
