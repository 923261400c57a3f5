"""The model flags every command shares: ``--model NAME|PATH``, ``--weights PATH``, ``--device``,
``--threads``, with one meaning everywhere (see :func:`samwidgets.hub.checkpoints.load_model`)."""

from __future__ import annotations

import argparse

from ..hub.registry import BUNDLED_MODEL_NAME, known_names
from ..modeling import CONFIGS

DEVICE_HELP = "auto (cuda if available, else cpu), cuda, cuda:N, mps or cpu"
THREADS_HELP = "torch CPU threads (default: physical cores)"


def add_model_flags(parser: argparse.ArgumentParser, *, model_help: str | None = None,
                    weights_help: str | None = None, model_default: str | None = None,
                    device: bool = True, threads: bool = True) -> argparse._ArgumentGroup:
    """Add the shared model flags to ``parser`` (as one group); a command passes its own help where its
    meaning is narrower (``train``: the weights to start from)."""
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model", default=model_default, metavar="NAME|PATH",
        help=model_help or (f"a model name ({known_names()}; official ones are downloaded unless --weights is "
                            f"given), or a configuration ({', '.join(CONFIGS)} or a SamConfig .json) for "
                            f"--weights; default: the bundled {BUNDLED_MODEL_NAME}"))
    group.add_argument(
        "--weights", default=None, metavar="PATH",
        help=weights_help or "a checkpoint file; its configuration is told from its shapes unless --model is given")
    if device:
        group.add_argument("--device", default="auto", help=DEVICE_HELP)
    if threads:
        group.add_argument("--threads", type=int, default=None, help=THREADS_HELP)
    return group


def model_description(args: argparse.Namespace) -> str:
    """How the flags' model is named in reports: 'the bundled default_cnn', a name, or weights (config)."""
    if args.weights is None:
        return f"the bundled {BUNDLED_MODEL_NAME}" if args.model in (None, BUNDLED_MODEL_NAME) else args.model
    return f"{args.weights}" + (f" (config {args.model})" if args.model else "")
