"""What SAM's and SAM 2's image predictors share: the model switched to the fast paths (or back), the embedding
cache, and the record of the last ``set_image`` (encoded or served from the cache, and how long it took).

Each predictor keeps its own reference API (:class:`samwidgets.SamPredictor`,
:class:`samwidgets.sam2.SAM2ImagePredictor`); this base holds only what is the same in both.
"""

from __future__ import annotations

import os
from typing import Generic, TypeVar

from torch import nn

from ..modeling.fast import enable_fast_paths, fast_paths_enabled
from .cache import EmbeddingCache, predictor_cache

ModelT = TypeVar("ModelT", bound=nn.Module)


class CachingPredictor(Generic[ModelT]):
    """A predictor's model (switched in place to the fast paths with ``fast=True``, to the plain code with False)
    and its embedding cache (``cache`` itself when given, else a new one: see
    :func:`samwidgets.inference.cache.predictor_cache`)."""

    def __init__(self, model: ModelT, *, fast: bool, cache: EmbeddingCache | None, cache_size: int,
                 disk_cache: bool | str | os.PathLike) -> None:
        self.model: ModelT = enable_fast_paths(model, fast)  # in place: it switches the classes of its modules
        self.cache = predictor_cache(cache, cache_size, disk_cache)
        #: seconds the last set_image spent in the image encoder (0.0 when cached)
        self.last_encode_seconds = 0.0
        #: whether the last set_image was served from the cache
        self.last_set_image_cached = False

    @property
    def fast(self) -> bool:
        """Whether the model runs the fast paths (``fast`` in the constructor; shared by predictors of one model)."""
        return fast_paths_enabled(self.model)
