"""Zero-shot edges on BSDS500 with the paper's protocol: ``samwidgets evaluate-edges``.

SAM's edges from a 16 x 16 point grid and the Sobel baseline on the photos of one BSDS500
split, scored with ODS / OIS / AP / R50 against every annotator's boundaries
(:func:`samwidgets.tasks.edges.evaluate_edges_bsds`). Writes ``edges_bsds500_<split>.json``
(:func:`samwidgets.tasks.edges.edges_bsds_record`: the metrics, the match counts that recompute
them, per-photo counts at every 4th threshold, wall times) and ``.md`` (the table,
with the paper's Table 3 beside it) to ``--out``, and prints the table. Each photo's counts are
kept in ``--out/edges_bsds500_<split>_photos/`` as it is scored, so an interrupted run, started
again with the same command, continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ..io.atomic import atomic_write_bytes
from ..tasks.edges import edges_bsds_markdown, edges_bsds_record, evaluate_edges_bsds
from .checks import at_least, bsds_folder
from .model_flags import add_bsds_flags, add_model_flags, check_model_flags, model_description, sam_from_flags


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="samwidgets evaluate-edges", description=(__doc__ or "").split("\n\n")[0])
    add_model_flags(p)
    add_bsds_flags(p, split="val")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="quick runs: the first N photos")
    p.add_argument("--points-per-side", type=int, default=16, help="the point grid (default 16, as the paper)")
    p.add_argument("--out", type=Path, default=Path("edges_results"), help="where the .json and .md go")
    args = p.parse_args(argv)

    bsds_folder(args.bsds, args.split)  # before loading a model
    check_model_flags(args)
    at_least(args.limit, 1, "--limit")
    at_least(args.points_per_side, 1, "--points-per-side")
    model = sam_from_flags(args)
    model_name = model_description(args)
    torch.manual_seed(0)
    work_dir = args.out / f"edges_bsds500_{args.split}_photos"  # per-photo counts: a re-run resumes
    result = evaluate_edges_bsds(model, args.bsds, split=args.split, limit=args.limit,
                                 points_per_side=args.points_per_side, progress=True, work_dir=work_dir)
    if result["reused_photos"]:
        print(f"{result['reused_photos']} photos reused from {work_dir} (an earlier run, same model and settings)")
    record = {"model": model_name, **edges_bsds_record(result)}
    table = edges_bsds_markdown(record, model_name)
    stem = args.out / f"edges_bsds500_{args.split}"
    atomic_write_bytes(stem.with_suffix(".json"), json.dumps(record, separators=(",", ":")).encode())
    atomic_write_bytes(stem.with_suffix(".md"), (table + "\n").encode())
    print(table)
    print(f"\nwrote {stem}.json and {stem}.md")
    return 0
