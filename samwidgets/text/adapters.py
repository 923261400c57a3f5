"""Real CLIPs in TinyClip's place: adapters to the :class:`~samwidgets.text.ClipLike` protocol.

SAM learns its text prompt from the CLIP *image* embedding of each mask's
crop and is given the CLIP *text* embedding at inference (paper, appendix
D.5), so a CLIP here must serve both sides: ``encode_crops`` for training
(``python -m samwidgets train-text``) and ``encode_text`` for
``SamPredictor.predict(text=...)``. Two families are wrapped:

- :class:`HFClipAdapter`: a Hugging Face ``transformers.CLIPModel`` (or any
  model with ``get_text_features`` / ``get_image_features``) and its
  tokenizer; :func:`load_hf_clip` loads one by name or path.
- :class:`OpenClipAdapter`: an ``open_clip`` model (``encode_text`` /
  ``encode_image``) and its tokenizer; :func:`load_open_clip` loads one.

Neither library is a dependency of samwidgets: both are imported only by the
loaders, and the adapters themselves touch nothing but the wrapped objects.
Pretrained weights need network access (or a local copy) the first time.

An adapter gives E-dimensional unit vectors, E being the CLIP's own width
(512 for ViT-B/32). The bundled text-prompt SAM was trained for TinyClip's
128-d space: a real CLIP needs a SAM text projection trained on *its* crop
embeddings (see ``samwidgets/text/REAL_CLIP.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..runtime.devices import resolve_device

__all__ = ["HFClipAdapter", "OpenClipAdapter", "load_hf_clip", "load_open_clip",
           "OPENAI_CLIP_MEAN", "OPENAI_CLIP_STD"]

#: per-channel RGB mean and std of OpenAI CLIP's preprocessing, on 0..1 pixels
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


# -- shared pieces ----------------------------------------------------------------------------------

def _as_list(texts: Sequence[str] | str) -> list[str]:
    """A list of non-empty strings (a lone string is one text), so that tokenizers see a batch."""
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts:
        raise ValueError("encode_text needs at least one text")
    for t in texts:
        if not isinstance(t, str):
            raise TypeError(f"texts must be strings, got {type(t).__name__}")
    return texts


def _side_pair(size: Any) -> tuple[int, int]:
    """(height, width) from an image size given as an int or a 1/2-sequence (configs say either)."""
    if isinstance(size, (tuple, list)):
        return (int(size[0]), int(size[-1]))
    return (int(size), int(size))


def _first_float_param(module: nn.Module) -> torch.Tensor | None:
    """The first floating-point parameter of ``module``: where inputs must go, and in what dtype."""
    for p in module.parameters():
        if p.is_floating_point():
            return p
    return None


def _clip_pixels(crops: torch.Tensor, size: tuple[int, int], mean: torch.Tensor, std: torch.Tensor,
                 device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """N x 3 x H x W float 0..255 crops -> N x 3 x h x w CLIP input (resized, normalised), ``dtype``.

    As CLIP's own preprocessing: bicubic resize (antialiased) of the shorter
    side to the model's size, a centre crop (a no-op for the square crops SAM
    trains with), pixels to 0..1, then per-channel mean/std. Resizing is done
    in float32 and clamped to 0..255, as CLIP's uint8 images would be.
    """
    if not isinstance(crops, torch.Tensor) or crops.ndim != 4 or crops.shape[1] != 3:
        shape = tuple(crops.shape) if isinstance(crops, torch.Tensor) else type(crops).__name__
        raise ValueError(f"crops must be an N x 3 x H x W tensor, got {shape}")
    h, w = size
    x = crops.to(device=device, dtype=torch.float32)  # N x 3 x H x W
    in_h, in_w = x.shape[-2:]
    if (in_h, in_w) != (h, w):
        scale = max(h / in_h, w / in_w)  # the shorter side meets the target, the other overhangs
        rh, rw = max(h, round(in_h * scale)), max(w, round(in_w * scale))
        x = F.interpolate(x, (rh, rw), mode="bicubic", align_corners=False, antialias=True)  # N x 3 x rh x rw
        top, left = (rh - h) // 2, (rw - w) // 2
        x = x[..., top : top + h, left : left + w].clamp(0.0, 255.0)  # N x 3 x h x w
    x = (x / 255.0 - mean.to(device)[:, None, None]) / std.to(device)[:, None, None]  # N x 3 x h x w
    return x.to(dtype)


def _features(out: Any, embeds_name: str) -> torch.Tensor:
    """The N x E projected features from what ``get_text_features`` / ``get_image_features`` returned.

    transformers 4.x returns the projected features as a tensor. transformers
    5.x (checked against 5.24 ``modeling_clip.py``) returns a
    ``BaseModelOutputWithPooling`` whose ``pooler_output`` has been replaced
    by the projected features (``text_outputs.pooler_output =
    self.text_projection(pooled_output)``), or that output's ``to_tuple()``
    ((last_hidden_state, pooler_output, ...)) when ``return_dict`` is off in
    the config. Outputs of the ``*WithProjection`` models name them
    ``text_embeds`` / ``image_embeds``, which are taken first when present.
    """
    if isinstance(out, torch.Tensor):
        return out  # N x E
    embeds = getattr(out, embeds_name, None)
    if isinstance(embeds, torch.Tensor):
        return embeds  # N x E
    pooled = getattr(out, "pooler_output", None)
    if isinstance(pooled, torch.Tensor):
        return pooled  # N x E
    if isinstance(out, tuple) and len(out) >= 2 and isinstance(out[1], torch.Tensor):
        return out[1]  # N x E (ModelOutput.to_tuple(): last_hidden_state, pooler_output, ...)
    raise TypeError(f"cannot find the projected features in a {type(out).__name__} "
                    f"(expected a tensor, .{embeds_name} or .pooler_output)")


# -- Hugging Face transformers ----------------------------------------------------------------------

class HFClipAdapter:
    """A Hugging Face CLIP as a :class:`~samwidgets.text.ClipLike`.

    model: a ``transformers.CLIPModel`` or anything with
        ``get_text_features(input_ids=..., attention_mask=...)``,
        ``get_image_features(pixel_values=...)`` and a ``config`` with
        ``projection_dim`` and ``vision_config.image_size``;
    tokenizer: callable as HF tokenizers are,
        ``tokenizer(texts, padding=True, truncation=True, return_tensors="pt")``
        giving ``input_ids`` (and ``attention_mask``);
    device: where to run (the model is moved there); default: where it is;
    mean, std: the image normalisation (0..1 pixels), OpenAI CLIP's by default,
        which the ``openai/clip-*`` checkpoints use.

    Both encoders return float32 unit vectors, N x E with E =
    ``config.projection_dim``, on the model's device, computed without grad.
    """

    def __init__(self, model: nn.Module, tokenizer: Callable[..., Any], *,
                 device: str | torch.device | None = None,
                 mean: Sequence[float] = OPENAI_CLIP_MEAN, std: Sequence[float] = OPENAI_CLIP_STD) -> None:
        if not (hasattr(model, "get_text_features") and hasattr(model, "get_image_features")):
            raise TypeError(f"{type(model).__name__} has no get_text_features / get_image_features: "
                            "pass a transformers.CLIPModel (or a model with both)")
        if device is not None:
            model = model.to(device)
        # Any: the methods and config of a transformers model, which nn.Module does not declare (checked above)
        self.model: Any = model.eval()
        self.tokenizer = tokenizer
        config = self.model.config
        #: width E of the joint embedding space (``config.projection_dim``)
        self.embed_dim = int(config.projection_dim)
        self._size = _side_pair(config.vision_config.image_size)
        #: side of the square crops the vision tower takes (``vision_config.image_size``)
        self.crop_size = self._size[0]
        self.mean = torch.tensor(mean, dtype=torch.float32)  # 3
        self.std = torch.tensor(std, dtype=torch.float32)  # 3

    @property
    def device(self) -> torch.device:
        p = _first_float_param(self.model)
        return p.device if p is not None else torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        p = _first_float_param(self.model)
        return p.dtype if p is not None else torch.float32

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """N texts -> N x E unit vectors (padded as a batch; CLIP pools at each text's end token)."""
        batch = self.tokenizer(_as_list(texts), padding=True, truncation=True, return_tensors="pt")
        device = self.device
        kwargs = {"input_ids": batch["input_ids"].to(device)}  # N x T
        mask = batch.get("attention_mask") if hasattr(batch, "get") else None
        if mask is not None:
            kwargs["attention_mask"] = mask.to(device)  # N x T, 0 on padding
        emb = _features(self.model.get_text_features(**kwargs), "text_embeds")  # N x E
        return F.normalize(emb.float(), dim=-1)

    @torch.no_grad()
    def encode_crops(self, crops: torch.Tensor) -> torch.Tensor:
        """N x 3 x H x W RGB crops, float 0..255 (any size) -> N x E unit vectors."""
        pixels = _clip_pixels(crops, self._size, self.mean, self.std, self.device, self.dtype)  # N x 3 x s x s
        emb = _features(self.model.get_image_features(pixel_values=pixels), "image_embeds")  # N x E
        return F.normalize(emb.float(), dim=-1)

    def __repr__(self) -> str:
        name = getattr(self.model.config, "_name_or_path", "") or type(self.model).__name__
        return f"HFClipAdapter({name!r}, embed_dim={self.embed_dim}, crop_size={self.crop_size})"


def load_hf_clip(name_or_path: str = "openai/clip-vit-base-patch32",
                 device: str | torch.device | None = None) -> HFClipAdapter:
    """A pretrained Hugging Face CLIP (hub name or local folder) and its tokenizer, as an adapter.

    Needs ``pip install transformers``. The weights come from the Hugging Face
    hub the first time (network access), or from a local folder saved with
    ``save_pretrained``. ``device`` defaults to CUDA when available.
    """
    try:
        from transformers import AutoTokenizer, CLIPModel
    except ImportError as e:
        raise ImportError("load_hf_clip needs Hugging Face transformers: pip install transformers") from e
    device = resolve_device(device)
    try:
        model = CLIPModel.from_pretrained(name_or_path)
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    except OSError as e:
        raise OSError(
            f"could not load the CLIP {name_or_path!r}: pretrained weights need network access to the Hugging "
            "Face hub the first time (they are cached afterwards), or a local folder with the model and its "
            f"tokenizer (CLIPModel.save_pretrained / tokenizer.save_pretrained). Cause: {e}"
        ) from e
    return HFClipAdapter(model, tokenizer, device=device)


# -- open_clip --------------------------------------------------------------------------------------

class OpenClipAdapter:
    """An ``open_clip`` model as a :class:`~samwidgets.text.ClipLike`.

    model: anything with ``encode_text(token_ids)`` and ``encode_image(pixels)``
        returning N x E (an ``open_clip`` CLIP, CustomTextCLIP, CoCa...);
    tokenizer: ``open_clip.get_tokenizer(name)``, i.e. texts -> N x T token ids
        (open_clip pads to a fixed context length itself);
    mean, std: image normalisation on 0..1 pixels (the model's
        ``visual.preprocess_cfg`` in open_clip; OpenAI CLIP's by default);
    crop_size: the square input side of the vision tower (224 for ViT-B-32);
    embed_dim: E; found from ``model.visual.output_dim`` or one text when not given;
    device: where to run (the model is moved there); default: where it is.

    Both encoders return float32 unit vectors N x E, computed without grad.
    """

    def __init__(self, model: nn.Module, tokenizer: Callable[[list[str]], torch.Tensor], *,
                 mean: Sequence[float] = OPENAI_CLIP_MEAN, std: Sequence[float] = OPENAI_CLIP_STD,
                 crop_size: int = 224, embed_dim: int | None = None,
                 device: str | torch.device | None = None) -> None:
        if not (hasattr(model, "encode_text") and hasattr(model, "encode_image")):
            raise TypeError(f"{type(model).__name__} has no encode_text / encode_image: pass an open_clip model")
        if device is not None:
            model = model.to(device)
        # Any: the methods of an open_clip model, which nn.Module does not declare (checked above)
        self.model: Any = model.eval()
        self.tokenizer = tokenizer
        #: side of the square crops the vision tower takes
        self.crop_size = int(crop_size)
        self.mean = torch.tensor(mean, dtype=torch.float32)  # 3
        self.std = torch.tensor(std, dtype=torch.float32)  # 3
        if embed_dim is None:
            embed_dim = getattr(getattr(model, "visual", None), "output_dim", None)
        if embed_dim is None:  # ask the model: one short text
            embed_dim = self.encode_text(["a photo"]).shape[-1]
        #: width E of the joint embedding space
        self.embed_dim = int(embed_dim)

    def _tower_param(self) -> torch.Tensor | None:
        """The first float parameter of the vision tower (open_clip's ``visual``), else of the model."""
        p = _first_float_param(getattr(self.model, "visual", self.model))
        return p if p is not None else _first_float_param(self.model)

    @property
    def device(self) -> torch.device:
        p = self._tower_param()
        return p.device if p is not None else torch.device("cpu")

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """N texts -> N x E unit vectors."""
        ids = self.tokenizer(_as_list(texts))  # N x T
        ids = torch.as_tensor(ids).to(self.device)
        return F.normalize(self.model.encode_text(ids).float(), dim=-1)  # N x E

    @torch.no_grad()
    def encode_crops(self, crops: torch.Tensor) -> torch.Tensor:
        """N x 3 x H x W RGB crops, float 0..255 (any size) -> N x E unit vectors."""
        p = self._tower_param()
        dtype = p.dtype if p is not None else torch.float32  # e.g. fp16 towers of precision="fp16"
        pixels = _clip_pixels(crops, (self.crop_size, self.crop_size), self.mean, self.std, self.device,
                              dtype)  # N x 3 x s x s
        return F.normalize(self.model.encode_image(pixels).float(), dim=-1)  # N x E

    def __repr__(self) -> str:
        return f"OpenClipAdapter({type(self.model).__name__}, embed_dim={self.embed_dim}, crop_size={self.crop_size})"


def load_open_clip(model_name: str = "ViT-B-32", pretrained: str = "openai",
                   device: str | torch.device | None = None) -> OpenClipAdapter:
    """A pretrained ``open_clip`` model and its tokenizer, as an adapter.

    Needs ``pip install open_clip_torch``, which also installs torchvision
    (samwidgets itself does not depend on it). Weights are downloaded the first
    time (network access) or read from ``pretrained`` when it is a local file.
    The normalisation and input size are the model's own
    (``model.visual.preprocess_cfg``, set by ``create_model_and_transforms``).
    """
    try:
        # an optional dependency, absent from the environment pyright checks
        import open_clip  # pyright: ignore[reportMissingImports]
    except ImportError as e:
        raise ImportError("load_open_clip needs open_clip: pip install open_clip_torch "
                          "(it also installs torchvision, which samwidgets does not need otherwise)") from e
    device = resolve_device(device)
    try:
        model, _, _ = open_clip.create_model_and_transforms(model_name, pretrained=pretrained, device=device)
    except (OSError, RuntimeError) as e:
        raise RuntimeError(
            f"could not load open_clip {model_name!r} / {pretrained!r}: pretrained weights need network access "
            f"the first time (then they are cached), or a local checkpoint path as pretrained. Cause: {e}"
        ) from e
    tokenizer = open_clip.get_tokenizer(model_name)
    visual = getattr(model, "visual", model)
    cfg = dict(getattr(visual, "preprocess_cfg", None) or {})
    mean = cfg.get("mean", getattr(visual, "image_mean", None)) or OPENAI_CLIP_MEAN
    std = cfg.get("std", getattr(visual, "image_std", None)) or OPENAI_CLIP_STD
    size = cfg.get("size", getattr(visual, "image_size", None)) or 224
    return OpenClipAdapter(model, tokenizer, mean=tuple(mean), std=tuple(std), crop_size=_side_pair(size)[0],
                           device=device)
