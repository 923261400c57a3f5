"""The model flags every command shares: ``--model NAME|PATH``, ``--weights PATH``, ``--device``,
``--threads``, with one meaning everywhere (see :func:`samwidgets.hub.checkpoints.model_from_flags`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import UserInputError
from ..hub.checkpoints import model_from_flags
from ..hub.registry import BUNDLED_MODEL_NAME, get_checkpoint_spec, known_names, registered_checkpoints
from ..modeling import CONFIGS, Sam, SamConfig
from ..runtime.devices import resolve_device
from ..runtime.threads import configure_threads
from ..sam2 import SAM2Base
from .checks import at_least, device_flag, existing_file

DEVICE_HELP = "auto (cuda if available, else cpu), cuda, cuda:N, mps or cpu"
THREADS_HELP = "torch CPU threads (default: physical cores)"
#: the suffixes that make a ``--model`` value a checkpoint file rather than a name
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
WEIGHTS_FIX = "pass the path of a checkpoint file (a .pt or .pth state dict)"
CONFIG_FIX = f"pass a configuration name ({', '.join(CONFIGS)}) or a SamConfig .json file"


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


def config_file(path: str | os.PathLike, flag: str = "--model") -> SamConfig:
    """The SamConfig in the ``.json`` file a flag names; a UserInputError when it is missing or no SamConfig."""
    from ..hub.checkpoints import config_by_name_or_file

    path = existing_file(path, flag, CONFIG_FIX)
    try:
        return config_by_name_or_file(str(path))
    except (ValueError, TypeError, AttributeError) as e:  # not JSON, unknown fields, values a config refuses
        raise UserInputError(f"{flag} {path}: not a SamConfig .json file ({type(e).__name__}: {e}); "
                             "write one with json.dump(config.to_dict(), f)") from e


def check_model_flags(args: argparse.Namespace, *, model_flag: str = "--model", weights_flag: str = "--weights",
                      weights_fix: str = WEIGHTS_FIX, sam2: bool = False) -> None:
    """Check the shared model flags before a model is loaded (loading one can take long); a UserInputError.

    ``--weights`` must be a file, a ``--model`` ``.json`` a SamConfig, a ``--model`` checkpoint path (``.pt``,
    ``.pth``, ...) a file, ``--device`` a device of this machine and ``--threads`` at least 1; a SAM 2 name
    only with ``sam2`` (export-onnx). Unknown names and files that are no checkpoint are the loader's to find
    (:class:`~samwidgets.hub.registry.CheckpointError`).
    """
    model, weights = getattr(args, "model", None), getattr(args, "weights", None)
    if weights is not None:
        existing_file(weights, weights_flag, weights_fix)
    if model is not None and model.endswith(".json"):
        config_file(model, model_flag)
    elif (model is not None and weights is None and model not in registered_checkpoints()
          and Path(model).suffix in CHECKPOINT_SUFFIXES):
        existing_file(model, model_flag, f"{WEIGHTS_FIX}, or a model name ({known_names()})")
    if not sam2:
        refuse_sam2_name(model, weights, model_flag)
    if getattr(args, "device", None) is not None:
        device_flag(args.device)
    at_least(getattr(args, "threads", None), 1, "--threads")


def model_at_image_size(model: Sam, image_size: int | None, flag: str = "--image-size") -> Sam:
    """``model`` rebuilt for ``--image-size`` px inputs (itself when None); a UserInputError for a size its
    encoder cannot take (a ViT's, or one a CNN refuses)."""
    from ..hub.build import at_image_size

    if image_size is None:
        return model
    try:
        return at_image_size(model, image_size)
    except ValueError as e:  # at_image_size and the config it makes refuse the size, nothing else
        raise UserInputError(f"{flag} {image_size}: {e}") from e


def refuse_sam2_name(model: str | None, weights: str | os.PathLike | None, flag: str = "--model") -> None:
    """A UserInputError for the name of a SAM 2 checkpoint, found before it is downloaded: every command but
    export-onnx runs SAM (1) models only."""
    if model is not None and weights is None and model in registered_checkpoints() \
            and get_checkpoint_spec(model).family == "sam2":
        raise UserInputError(f"{flag} {model}: a SAM 2 model, which this command does not run (export-onnx does); "
                             f"pass a SAM model ({known_names()})")


def sam_only(model: Sam | SAM2Base, flag: str = "--model") -> Sam:
    """``model`` (what :func:`~samwidgets.hub.checkpoints.model_from_flags` gave) as a SAM model; a SAM 2 model, which
    only a SAM 2 name gives (refused before by :func:`refuse_sam2_name`), is a UserInputError."""
    if not isinstance(model, Sam):
        raise UserInputError(f"{flag}: a SAM 2 model, which this command does not run (export-onnx does); "
                             f"pass a SAM model ({known_names()})")
    return model


def sam_from_flags(args: argparse.Namespace) -> Sam:
    """What a command that runs SAM does once its flags are checked: apply ``--threads``, then load the model of
    ``--model`` / ``--weights`` on ``--device`` (a SAM 2 model is refused with the fix, :func:`sam_only`)."""
    configure_threads(args.threads)
    return sam_only(model_from_flags(args.model, args.weights, resolve_device(args.device)))


def add_bsds_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *, split: str,
                   required: bool = True, what: str = "") -> None:
    """``--bsds ROOT`` (the BSDS500 folder) and ``--split`` (default ``split``), as the commands that read
    BSDS500 name them; ``what`` says what the command does with the photos."""
    parser.add_argument("--bsds", type=Path, required=required, default=None, metavar="ROOT",
                        help=f"{what}the BSDS500 folder holding images/<split> and groundTruth/<split> "
                             "(BSDS500/data)")
    parser.add_argument("--split", default=split, help=f"the BSDS500 split (default: {split})")
