"""The notebooks' ``MODEL`` setting: "auto", "default_cnn" (the bundled model), an official name, or a path.

``MODEL = "auto"`` picks the best model this machine can get, and says which and why:

* the official SAM ``vit_b`` when a GPU is present, MobileSAM (``mobile_sam``, 41 MB, seconds per image on
  a CPU) otherwise, when its file is in the cache already or its server answers within a few seconds;
* the bundled model otherwise: offline, with ``SAMWIDGETS_OFFLINE=1`` (no connection is tried), or when the
  download fails.

``$SAMWIDGETS_MODEL`` overrides the cell's ``MODEL`` in every notebook at once (a teacher sets it once): any
registered name, "auto" or a checkpoint path.

The bundled model has one name everywhere, ``BUNDLED_MODEL_NAME`` ("default_cnn"): here, in the commands'
``--model`` and in ``from_pretrained``. ``MODEL = "default"``, its name here before, still loads it, with a
FutureWarning: "default" is vit_h in ``sam_model_registry``, as in the reference.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch

from ..hub.checkpoints import DownloadError, checkpoint_path, from_pretrained
from ..hub.default_model import load_default
from ..hub.registry import BUNDLED_MODEL_NAME, get_checkpoint_spec
from ..io.network import can_reach
from ..modeling import CONFIGS, Sam
from ..runtime.devices import resolve_device
from ..sam2 import SAM2Base

__all__ = ["MODEL_ENV", "MODEL_NAMES", "ModelChoice", "choose_model", "describe_model", "is_bundled", "load_model",
           "model_name"]

#: What the setup cell's ``MODEL`` may be: "auto", the bundled model (offline), an official SAM checkpoint or
#: MobileSAM's (online); a checkpoint path works too.
MODEL_NAMES = ("auto", BUNDLED_MODEL_NAME, "vit_b", "vit_l", "vit_h", "mobile_sam")

#: The bundled model's name here before it had one name everywhere: still loads it, with a FutureWarning.
OLD_BUNDLED_NAME = "default"

#: The environment variable that overrides ``MODEL`` in every notebook.
MODEL_ENV = "SAMWIDGETS_MODEL"

#: Seconds "auto" waits for the download server before it settles for the bundled model.
AUTO_CONNECT_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class ModelChoice:
    """What ``load_model`` loads (a name or a path) and why, in words."""

    name: str
    reason: str
    auto: bool = False  # chosen by "auto": a failed download falls back to the bundled model


def choose_model(name: str = "auto", device: str | torch.device | None = None,
                 timeout: float = AUTO_CONNECT_TIMEOUT_S) -> ModelChoice:
    """What ``MODEL = name`` means on this machine: ``$SAMWIDGETS_MODEL`` first, then "auto" resolved.

    "auto" wants ``vit_b`` on a GPU and ``mobile_sam`` on a CPU; it takes it when the file is in the cache
    or the server answers within ``timeout`` seconds, else the bundled model. Nothing is downloaded here.
    """
    override = os.environ.get(MODEL_ENV, "").strip()
    reason = f"MODEL = {name!r}"
    if override:
        name, reason = override, f"${MODEL_ENV} = {override!r} overrides MODEL = {name!r}"
    if name != "auto":
        return ModelChoice(name, reason)
    on_gpu = resolve_device(device).type == "cuda"
    wanted, machine = ("vit_b", "a GPU is present") if on_gpu else ("mobile_sam", "no GPU")
    if checkpoint_path(wanted).is_file():
        return ModelChoice(wanted, f"auto: {machine}, and {wanted}'s file is in the cache", auto=True)
    reachable, why_not = can_reach(get_checkpoint_spec(wanted).url, timeout)
    if not reachable:
        return ModelChoice(BUNDLED_MODEL_NAME, f"auto: {machine}, but {wanted} cannot be downloaded ({why_not}): the "
                                      "bundled model, which needs no download", auto=True)
    size = get_checkpoint_spec(wanted).size
    megabytes = "size unknown" if size is None else f"{size / 1e6:.0f} MB"
    return ModelChoice(wanted, f"auto: {machine}, and the network answers: {wanted} "
                               f"({megabytes}, downloaded once)", auto=True)


def load_model(name: str = BUNDLED_MODEL_NAME, device: str | torch.device | None = None) -> Sam | SAM2Base:
    """The model a notebook runs on, in eval mode.

    "default_cnn" is the small model bundled with samwidgets: no download, runs on a laptop CPU ("default",
    its earlier name here, still works, with a FutureWarning). "vit_b", "vit_l" and "vit_h" are the official
    SAM checkpoints (375 MB, 1.2 GB, 2.6 GB), and "mobile_sam" (also "vit_t") MobileSAM's (41 MB, seconds
    per image on a CPU), downloaded once into the
    cache directory and checked against their sha256. A path to a checkpoint file of one of these models
    works too. A SAM 2 name ("sam2.1_hiera_tiny", ...) gives a SAM 2 model, for ``SAM2ImagePredictor``
    (09_sam_family.ipynb; the other notebooks run SAM's predictor). "auto" and ``$SAMWIDGETS_MODEL``: see
    :func:`choose_model`; the choice and its reason are printed.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"MODEL must be one of {', '.join(map(repr, MODEL_NAMES))} or a checkpoint path, "
                         f"got {name!r}")
    choice = choose_model(name, device)
    if choice.name == OLD_BUNDLED_NAME:
        warnings.warn(f'MODEL = "{OLD_BUNDLED_NAME}" is now MODEL = "{BUNDLED_MODEL_NAME}", the bundled model\'s '
                      f'name everywhere ("{OLD_BUNDLED_NAME}" is vit_h in sam_model_registry, as in the reference)',
                      FutureWarning, stacklevel=2)
        choice = ModelChoice(BUNDLED_MODEL_NAME, choice.reason, choice.auto)
    if choice.auto or choice.name != name:
        print(f"model: {choice.name} ({choice.reason})")
    if choice.name == BUNDLED_MODEL_NAME:
        return load_default(device=device)
    try:
        return from_pretrained(choice.name, device=device).eval()
    except (DownloadError, OSError) as error:
        if not choice.auto:
            raise
        warnings.warn(f"MODEL = 'auto': {choice.name} could not be loaded ({error}); using the bundled model",
                      stacklevel=2)
        return load_default(device=device)


def is_bundled(sam: Sam) -> bool:
    """True for the small model bundled with samwidgets (by its configuration), False for SAM's own models."""
    return sam.config == CONFIGS[BUNDLED_MODEL_NAME]


def model_name(sam: Sam | SAM2Base) -> str:
    """A short name for a figure's title: "the bundled model", "SAM vit_b" (told by its configuration),
    "MobileSAM", "SAM 2"; whatever name or path ``MODEL`` gave."""
    if isinstance(sam, SAM2Base):
        return "SAM 2"
    if is_bundled(sam):
        return "the bundled model"
    official = [name for name in ("vit_b", "vit_l", "vit_h") if sam.config == CONFIGS[name]]
    if official:
        return f"SAM {official[0]}"
    return "MobileSAM" if sam.config.encoder_type == "tiny_vit" else "a SAM model"


def describe_model(sam: Sam | SAM2Base) -> str:
    """One line: which model this is, its input size and its parameter count."""
    params = sum(p.numel() for p in sam.parameters()) / 1e6
    if isinstance(sam, SAM2Base):
        c2 = sam.config
        return (f"SAM 2: {c2.image_size} px input, Hiera encoder (width {c2.embed_dim}, stages "
                f"{'-'.join(map(str, c2.stages))}), {params:.1f} M parameters in the image path")
    c = sam.config
    if is_bundled(sam):
        name = f"the bundled model ({BUNDLED_MODEL_NAME})"
    elif c.encoder_type == "tiny_vit":
        name = "MobileSAM"
    else:
        name = "an official SAM model"
    if c.encoder_type == "cnn":
        encoder = (f"CNN encoder (widths {'-'.join(map(str, c.cnn_widths))}, {c.cnn_attention_depth} attention "
                   f"blocks at 1/32), a {c.embedding_size} x {c.embedding_size} x {c.prompt_embed_dim} embedding"
                   + (" + 1/4-resolution features" if c.high_res_features else ""))
    elif c.encoder_type == "tiny_vit":
        encoder = (f"TinyViT encoder (widths {'-'.join(map(str, c.tiny_vit_widths))}, "
                   f"{sum(c.tiny_vit_depths)} blocks)")
    else:
        encoder = f"ViT encoder of width {c.encoder_embed_dim} and depth {c.encoder_depth}"
    return f"{name}: {c.image_size} px input, {encoder}, {params:.1f} M parameters"
