"""The command lines: one entry point with subcommands, ``samwidgets <command> [options]``
(also ``python -m samwidgets <command>``).

Each command is a module of this package with a ``main(argv) -> int``; the table below names
them. A command module only parses options and calls the library (training, evaluation,
inference, ...): nothing imports a command module back. Commands that load a model share the
flags of :mod:`.model_flags`.

Errors: a user's mistake (an unknown name, a missing file or folder, a file of the wrong kind, a number out
of range) is a :class:`~samwidgets.errors.UserInputError`, raised by the command's checks
(:mod:`.checks`) or by the library; :func:`main` prints it as one line, ``samwidgets <command>: error:
<what is wrong and the fix>``, and exits with status 2, as argparse does for a malformed command line.
Any other exception is a bug and keeps its traceback; ``--debug`` (anywhere on the command line) shows the
traceback of a user's mistake too.
"""

from __future__ import annotations

import importlib
import sys

from ..errors import UserInputError

#: command -> (module in samwidgets.cli, one line for the list of commands)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("train", "train or fine-tune SAM with the paper's recipe (procedural scenes, COCO, BSDS500)"),
    "evaluate": ("evaluate", "the single-point protocol on held-out scenes, or on BSDS500 photos (--bsds)"),
    "generate": ("generate", "segment everything in many images, one SA-1B JSON per image"),
    "embed": ("embed", "compute image embeddings ahead of time into a predictor's disk cache"),
    "bench": ("bench", "speed and memory of the encoder, predict and generation; --compare-reference"),
    "export-onnx": ("export_onnx", "the prompt encoder and mask decoder as ONNX, with the reference's inputs"),
    "data-engine": ("data_engine", "the data engine's three stages with retraining, in miniature"),
    "train-clip": ("train_clip", "train the tiny CLIP-like pair used for text prompts"),
    "train-text": ("train_text", "teach a SAM model text prompts without text (paper, appendix D.5)"),
    "evaluate-text": ("evaluate_text", "text prompts on held-out scenes"),
    "evaluate-edges": ("evaluate_edges", "zero-shot edges on BSDS500 (ODS/OIS/AP/R50), with the paper's table"),
    "calibrate-generator": ("calibrate_generator", "the automatic mask generator's thresholds for a model, "
                                                   "from photos with human segments"),
}

#: the flag, accepted anywhere on the command line, that shows a user's mistake with its traceback
DEBUG_FLAG = "--debug"


def usage() -> str:
    """The list of commands, as ``samwidgets --help`` prints it."""
    width = max(map(len, COMMANDS))
    lines = ["usage: samwidgets <command> [options]   (or: python -m samwidgets <command> [options])", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "samwidgets <command> --help shows a command's options; --debug (anywhere) shows the traceback "
                  "of an error that is otherwise one line."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the command ``argv[0]`` with the rest of ``argv``; its exit status.

    A user's mistake (:class:`UserInputError`, which every command raises for one) is printed as one line,
    ``samwidgets <command>: error: <message>``, and gives status 2; with ``--debug`` it is raised with its
    traceback instead. Any other exception (a bug) propagates unchanged, as do argparse's own exits.
    """
    argv, debug = take_debug_flag(list(sys.argv[1:] if argv is None else argv))
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"samwidgets: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"{__name__}.{COMMANDS[name][0]}")
    try:
        return int(module.main(rest) or 0)
    except UserInputError as e:
        if debug:
            raise
        from .checks import error_line

        print(error_line(name, str(e)), file=sys.stderr)
        return 2


def take_debug_flag(argv: list[str]) -> tuple[list[str], bool]:
    """``argv`` without ``--debug`` (before a ``--`` that ends the options), and whether it was there."""
    end = argv.index("--") if "--" in argv else len(argv)
    kept = [arg for arg in argv[:end] if arg != DEBUG_FLAG] + argv[end:]
    return kept, len(kept) != len(argv)
