"""TinyClip: a CLIP-like pair small enough to train on a laptop CPU.

Two encoders map into one E-dimensional space, trained contrastively (as
CLIP, Radford et al. 2021) so that a crop of an object and a phrase about it
land close together:

- the *crop encoder*, a small convolutional network on 64 x 64 crops;
- the *word encoder*, a bag of words: the mean of learned word vectors, then
  an MLP. The phrases of procedural scenes are short lists of facts
  ("striped red circle wheel") whose order carries nothing, so a bag of words
  loses nothing here and keeps the model tiny.

The vocabulary is closed (the words of the scenes) and saved with the
weights; an unknown word is an error that lists the known ones.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..modeling.common import LayerNorm2d
from .phrases import split_words


@dataclass(frozen=True)
class TinyClipConfig:
    embed_dim: int = 128
    crop_size: int = 64
    stem_stride: int = 4  # the first stage cuts stem_stride-pixel patches (64 -> 16), the later ones stride 2
    widths: tuple[int, ...] = (64, 128, 192)  # channels per stage: 16 -> 8 -> 4 pixels
    depths: tuple[int, ...] = (1, 2, 2)  # convolutions per stage
    word_dim: int = 128
    hidden_dim: int = 256


class CropEncoder(nn.Module):
    """3 x s x s crops (pixels normalised) -> E: a patchifying stem, stride-2 conv stages, an MLP on the last map."""

    def __init__(self, cfg: TinyClipConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for k, (c, depth) in enumerate(zip(cfg.widths, cfg.depths)):
            first = (nn.Conv2d(c_in, c, cfg.stem_stride, stride=cfg.stem_stride) if k == 0
                     else nn.Conv2d(c_in, c, 3, stride=2, padding=1))
            layers += [first, LayerNorm2d(c), nn.GELU()]
            for _ in range(depth - 1):
                layers += [nn.Conv2d(c, c, 3, padding=1), nn.GELU()]
            c_in = c
        self.stages = nn.Sequential(*layers)
        side = cfg.crop_size // cfg.stem_stride // 2 ** (len(cfg.widths) - 1)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c_in * side * side, cfg.hidden_dim), nn.GELU(),
                                  nn.Linear(cfg.hidden_dim, cfg.embed_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(x))  # B x E


class WordEncoder(nn.Module):
    """Token ids B x T (0 = padding) -> E: mean of word vectors, then an MLP."""

    def __init__(self, vocab_size: int, cfg: TinyClipConfig) -> None:
        super().__init__()
        self.words = nn.Embedding(vocab_size, cfg.word_dim, padding_idx=0)
        self.mlp = nn.Sequential(nn.Linear(cfg.word_dim, cfg.hidden_dim), nn.GELU(),
                                 nn.Linear(cfg.hidden_dim, cfg.embed_dim))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        present = (ids > 0).float()[..., None]  # B x T x 1
        mean = (self.words(ids) * present).sum(1) / present.sum(1).clamp(min=1)  # B x D
        return self.mlp(mean)  # B x E


class TinyClip(nn.Module):
    """The pair, with its vocabulary and learned temperature. Implements :class:`~samwidgets.text.ClipLike`."""

    def __init__(self, vocabulary: Sequence[str], config: TinyClipConfig | None = None) -> None:
        super().__init__()
        self.config = config or TinyClipConfig()
        self.vocabulary = ["<pad>"] + sorted(set(vocabulary) - {"<pad>"})
        self._ids = {w: i for i, w in enumerate(self.vocabulary)}
        self.crop_encoder = CropEncoder(self.config)
        self.word_encoder = WordEncoder(len(self.vocabulary), self.config)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # CLIP's initial temperature

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    @property
    def device(self) -> torch.device:
        return self.logit_scale.device

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """N texts -> N x T word ids (0-padded). Raises on unknown words and on texts with no word."""
        if isinstance(texts, str):
            texts = [texts]
        rows = []
        for text in texts:
            words = split_words(text)
            unknown = [w for w in words if w not in self._ids]
            if unknown:
                raise ValueError(
                    f"TinyClip does not know {unknown} (in {text!r}); it knows the {len(self.vocabulary) - 1} "
                    f"words of the procedural scenes: {', '.join(self.vocabulary[1:])}"
                )
            if not words:
                raise ValueError(f"{text!r} has no words; try e.g. 'red wheel'")
            rows.append([self._ids[w] for w in words])
        ids = torch.zeros((len(rows), max(map(len, rows))), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
        return ids.to(self.device)

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """N texts -> N x E unit vectors."""
        return F.normalize(self.word_encoder(self.tokenize(texts)), dim=-1)

    def encode_crops(self, crops: torch.Tensor) -> torch.Tensor:
        """N x 3 x H x W crops (float 0..255; resized to crop_size if needed) -> N x E unit vectors."""
        if crops.ndim != 4 or crops.shape[1] != 3:
            raise ValueError(f"crops must be N x 3 x H x W, got {tuple(crops.shape)}")
        s = self.config.crop_size
        x = crops.to(self.device, torch.float)
        if x.shape[-2:] != (s, s):
            x = F.interpolate(x, (s, s), mode="bilinear", align_corners=False, antialias=True)
        x = (x / 255.0 - 0.5) / 0.25  # N x 3 x s x s
        return F.normalize(self.crop_encoder(x), dim=-1)

    # -- files ----------------------------------------------------------------
    def save(self, path: str | os.PathLike, **extra) -> None:
        """Write config, vocabulary and weights (fp16, to stay small) atomically."""
        from ..io.atomic import atomic_torch_save

        state = {k: v.half() if v.is_floating_point() else v for k, v in self.state_dict().items()}
        atomic_torch_save({"format": "samwidgets.TinyClip/1", "config": asdict(self.config),
                           "vocabulary": self.vocabulary[1:], "state_dict": state, **extra}, Path(path))

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> TinyClip:
        obj = torch.load(Path(path), map_location="cpu", weights_only=True)
        if not isinstance(obj, dict) or obj.get("format") != "samwidgets.TinyClip/1":
            raise ValueError(f"{path} is not a TinyClip file (saved by TinyClip.save)")
        cfg = obj["config"]
        config = TinyClipConfig(**{**cfg, "widths": tuple(cfg["widths"]), "depths": tuple(cfg["depths"])})
        model = cls(obj["vocabulary"], config)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in obj["state_dict"].items()})
        return model.eval().to(device)
