"""What SAM's text prompt needs from a CLIP-like model, and nothing more.

SAM learns text prompts without text (paper, appendix D.5): during training
the prompt is the CLIP *image* embedding of the mask's crop; at inference the
CLIP *text* embedding takes its place, which works because CLIP puts an image
and its caption close together. Any model with the two methods below can play
CLIP's part: the tiny pair this project trains
(:class:`samwidgets.text.TinyClip`) or a real CLIP through the adapters in
:mod:`samwidgets.text.adapters`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class ClipLike(Protocol):
    """A joint image/text embedding model (CLIP, or this project's tiny pair)."""

    @property
    def embed_dim(self) -> int:
        """Width E of the shared embedding space (an attribute or a property)."""
        ...

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """N texts -> N x E embeddings (any scale: SAM normalises them)."""
        ...

    def encode_crops(self, crops: torch.Tensor) -> torch.Tensor:
        """N x 3 x H x W RGB crops, float 0..255 (any square size) -> N x E embeddings."""
        ...


def check_clip_like(model: object, sam_text_dim: int | None = None) -> None:
    """Raise a clear error if ``model`` cannot serve SAM's embedding prompt of width ``sam_text_dim``."""
    if not isinstance(model, ClipLike):
        raise TypeError(
            f"{type(model).__name__} is not CLIP-like: it needs embed_dim, encode_text(texts) and "
            "encode_crops(crops); wrap a real CLIP with samwidgets.text.adapters (HFClipAdapter, OpenClipAdapter)"
        )
    if sam_text_dim is not None and int(model.embed_dim) != int(sam_text_dim):
        raise ValueError(
            f"the text encoder gives {model.embed_dim}-d embeddings but the SAM model's text projection takes "
            f"{sam_text_dim}-d ones: the SAM model must be trained with this encoder's crop embeddings "
            "(python -m samwidgets train-text)"
        )
