"""Text prompts, the paper's way, in miniature (SAM appendix D.5).

SAM is trained with the CLIP *image* embedding of each mask's crop as an
extra prompt token, and at inference is given the CLIP *text* embedding of a
phrase instead. No pretrained CLIP can be downloaded here, so samwidgets
ships the whole path at small scale:

- :class:`TinyClip`, a crop encoder and a word encoder trained contrastively
  on procedural scenes (``python -m samwidgets train-clip``), bundled
  as ``weights/tiny_clip.pt``;
- a small ViT SAM (``default_tiny``, the first bundled model) fine-tuned with
  TinyClip's crop embeddings as prompts (``python -m samwidgets train-text``),
  bundled whole as ``weights/default_tiny_text.pt`` (the same recipe on today's
  bundled ``default_cnn`` measured weaker: ``weights/TEXT_MODEL_CARD.md``);
- adapters that let a real CLIP take TinyClip's place
  (:mod:`samwidgets.text.adapters`).

    >>> from samwidgets.inference.predictor import SamPredictor
    >>> from samwidgets.text import load_default_text_model, load_tiny_clip
    >>> predictor = SamPredictor(load_default_text_model(), text_encoder=load_tiny_clip())
    >>> predictor.set_image(image)                                   # doctest: +SKIP
    >>> masks, scores, _ = predictor.predict(text="red striped wheel")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..hub.build import build_sam
from ..inference.text_encoder import ClipLike, check_clip_like
from ..modeling import Sam, SamConfig
from ..runtime.devices import resolve_device
from .tiny_clip import TinyClip, TinyClipConfig

__all__ = ["ClipLike", "TinyClip", "TinyClipConfig", "check_clip_like", "load_tiny_clip",
           "load_default_text_model", "TINY_CLIP_WEIGHTS", "TEXT_MODEL_WEIGHTS"]

_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
TINY_CLIP_WEIGHTS = _WEIGHTS / "tiny_clip.pt"
TEXT_MODEL_WEIGHTS = _WEIGHTS / "default_tiny_text.pt"
_FORMAT_DELTA = "samwidgets.text_model_delta/1"


def load_tiny_clip(path: str | os.PathLike | None = None, device: str | torch.device | None = None) -> TinyClip:
    """The bundled TinyClip (or one from ``path``), in eval mode."""
    path = Path(path) if path is not None else TINY_CLIP_WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(f"no TinyClip at {path}; train one with `python -m samwidgets train-clip --out {path}`")
    return TinyClip.load(path, resolve_device(device))


def save_text_model(model: Sam, path: str | os.PathLike, *, delta: bool = False, **extra) -> None:
    """Save a text-prompt SAM: config + state dict, or with ``delta`` only the tensors that differ from
    the bundled model it was fine-tuned from (the text projection, the prompt encoder and decoder,
    and any encoder layers it tuned), so the bundled file need not repeat the frozen encoder. The config is
    always saved whole, so a model trained at another image size than the bundled model's (a CNN encoder's
    weights fit any size) loads back at its own size."""
    from ..io.atomic import atomic_torch_save

    state = model.state_dict()
    if delta:
        from ..hub.default_model import load_default

        base = load_default("cpu").state_dict()
        state = {k: v for k, v in state.items()
                 if k not in base or base[k].shape != v.shape or not torch.equal(base[k], v.detach().cpu())}
    atomic_torch_save({"format": _FORMAT_DELTA if delta else "samwidgets.text_model/1",
                       "config": model.config.to_dict(), "state_dict": state, **extra}, Path(path))


def load_default_text_model(path: str | os.PathLike | None = None,
                            device: str | torch.device | None = None) -> Sam:
    """The bundled text-prompt SAM (``default_tiny`` + a text projection), or one saved by ``save_text_model``
    (a delta file is applied to the bundled model's tensors, the model it was fine-tuned from)."""
    path = Path(path) if path is not None else TEXT_MODEL_WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(
            f"no text-prompt model at {path}; train one with `python -m samwidgets train-text --out {path}`")
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, dict) or "config" not in obj or "state_dict" not in obj:
        raise ValueError(f"{path} is not a text-prompt SAM file (saved by samwidgets.text.save_text_model)")
    config = SamConfig.from_dict(obj["config"])
    state = dict(obj["state_dict"])
    if obj.get("format") == _FORMAT_DELTA:
        from ..hub.default_model import load_default

        state = {**load_default("cpu").state_dict(), **state}  # the delta over the bundled model's tensors
    return build_sam(config, state, model_type="text-prompt SAM").to(resolve_device(device))
