"""What the folder commands share (``samwidgets generate``, ``samwidgets embed``): the images
of the command line, a run's summary, and its report (per rank under torchrun)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserInputError
from ..runtime import distributed
from .checks import threads_flag

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})


@dataclass
class RunSummary:
    """What a run did: JSON files written, images skipped because done, and failures (path, reason)."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    #: outputs found broken (unreadable, not the format, a failed checksum) and made again; also in ``written``
    redone: list[Path] = field(default_factory=list)


def collect_images(inputs: list[Path]) -> list[Path]:
    """Files as given, directories expanded to their image files (sorted); order kept, duplicates dropped.

    A path that does not exist is kept, so that it is reported as a failure.
    """
    out: list[Path] = []
    for path in inputs:
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            out.append(path)
    unique: dict[Path, Path] = {}
    for path in out:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def clashing_stems(images: list[Path]) -> list[list[Path]]:
    """Groups of images that would write the same <stem>.json."""
    by_stem: dict[str, list[Path]] = {}
    for path in images:
        by_stem.setdefault(path.stem, []).append(path)
    return [group for group in by_stem.values() if len(group) > 1]


def images_to_process(args: argparse.Namespace) -> list[Path]:
    """Apply --threads and list the images of the command line; a UserInputError if there are none.

    Shared by the batch commands (generate, embed). A path that does not exist is a mistake when it cannot
    be an image (no image suffix: a folder mistyped); a missing image file is one of the run's failures,
    reported at the end as an unreadable one is.
    """
    threads_flag(args.threads)
    kinds = ", ".join(sorted(IMAGE_SUFFIXES))
    for path in args.images:
        if not path.exists() and path.suffix.lower() not in IMAGE_SUFFIXES:
            raise UserInputError(f"{path}: no such file or folder; IMAGES are image files ({kinds}) or folders "
                                 "holding them")
    images = collect_images(args.images)
    if not images:
        raise UserInputError(f"no images found in {', '.join(map(str, args.images))}; IMAGES are image files "
                             f"({kinds}) or folders holding them")
    return images


def report(summary: RunSummary, out: Path, dist: distributed.DistInfo,
           already: str = "JSON already there") -> int:
    """Print what this process did (and, on rank 0 under torchrun, the totals of all ranks); the exit code.

    Every rank must call it: the totals are a collective. ``already`` says why images were skipped.
    """
    counts = [len(summary.written), len(summary.skipped), len(summary.failed), len(summary.redone)]
    line = ("{} written, {} skipped (" + already + "), {} failed, {} redone (broken outputs made again); "
            "output in " + str(out))
    print(dist.prefix() + line.format(*counts), flush=True)
    totals = distributed.sum_over_ranks(counts)  # every rank takes part; waits for the slowest
    if dist.is_distributed and dist.is_main:
        print(f"[all {dist.world_size} ranks] " + line.format(*totals), flush=True)
    if summary.failed:
        print(f"{dist.prefix()}failed images:", file=sys.stderr)
        for path, reason in summary.failed:
            print(f"  {path}: {reason}", file=sys.stderr)
        return 1
    return 0
