"""Image-embedding cache: an LRU in memory, optionally backed by files on disk.

An embedding is keyed by a hash of the image's RGB bytes and shape plus the
model's identity (config + a fingerprint of every weight), so the same photo
seen by the same weights is encoded once, and a fine-tuned model never reuses
the embeddings of its former self. Disk entries are written atomically
(temporary file + ``os.replace``) and carry a checksum, so a crash never
leaves a half file that is later trusted; a corrupt file is discarded with a
warning and the embedding recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from weakref import WeakKeyDictionary

import numpy as np
import torch
from torch import nn

from ..io.atomic import atomic_torch_save
from ..io.paths import default_cache_dir

DISK_FORMAT_VERSION = 1


@dataclass
class CachedEmbedding:
    """What set_image computes for one image: the embedding and the two sizes needed to map prompts/masks."""

    features: torch.Tensor  # 1 x C x h x w
    input_size: tuple[int, int]  # image size after resizing the longest side
    original_size: tuple[int, int]  # image size as given


def image_digest(image: np.ndarray) -> str:
    """Hash of an image's shape, dtype and bytes (blake2b, 128 bits)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{image.shape}|{image.dtype}".encode())
    h.update(np.ascontiguousarray(image).data.cast("B"))
    return h.hexdigest()


def _tensor_bytes(t: torch.Tensor) -> memoryview:
    t = t.detach().to("cpu").contiguous()
    return t.reshape(-1).view(torch.uint8).numpy().data.cast("B") if t.numel() else memoryview(b"")


def _weights_version(model: nn.Module) -> tuple:
    """Cheap signature that changes whenever a weight is replaced or modified in place."""
    return tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in (*model.parameters(), *model.buffers()))


_FINGERPRINTS: WeakKeyDictionary[nn.Module, tuple[tuple, str]] = WeakKeyDictionary()
_FINGERPRINTS_LOCK = threading.Lock()


def model_fingerprint(model: nn.Module) -> str:
    """Identity of a model: its config and a hash of all its weights and buffers.

    The full hash is computed once and reused while no tensor of the model
    changes (tracked through PyTorch's in-place version counters), so an
    optimiser step or ``load_state_dict`` gives a new fingerprint.
    """
    with _FINGERPRINTS_LOCK:
        return _fingerprint(model)


def _fingerprint(model: nn.Module) -> str:
    version = _weights_version(model)
    memo = _FINGERPRINTS.get(model)
    if memo is not None and memo[0] == version:
        return memo[1]
    h = hashlib.blake2b(digest_size=16)
    config = getattr(model, "config", None)
    h.update(json.dumps(config.to_dict() if config is not None else type(model).__name__, sort_keys=True).encode())
    for name, t in (*model.named_parameters(), *model.named_buffers()):
        h.update(f"{name}|{tuple(t.shape)}|{t.dtype}".encode())
        h.update(_tensor_bytes(t))
    digest = h.hexdigest()
    _FINGERPRINTS[model] = (version, digest)
    return digest


class EmbeddingCache:
    """LRU cache of :class:`CachedEmbedding` by key, in memory and optionally on disk.

    max_items bounds the memory cache (a vit_b embedding is 4 MiB). disk_dir,
    when given, keeps every entry as one file ``<disk_dir>/<key>.pt``.
    """

    def __init__(self, max_items: int = 16, disk_dir: str | os.PathLike | None = None) -> None:
        if max_items < 0:
            raise ValueError("max_items must be >= 0")
        self.max_items = max_items
        self.disk_dir = Path(disk_dir) if disk_dir is not None else None
        self._memory: OrderedDict[str, CachedEmbedding] = OrderedDict()
        # a predictor may fill the cache from a background thread (the widget's prefetch)
        self._lock = threading.RLock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._memory)

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._memory or (self.disk_dir is not None and self._path(key).is_file())

    def clear(self) -> None:
        """Empty the memory cache (files on disk stay)."""
        with self._lock:
            self._memory.clear()

    def get(self, key: str, device: torch.device | str | None = None) -> CachedEmbedding | None:
        """The entry for key, from memory or else from disk (then kept in memory), or None."""
        with self._lock:
            return self._get(key, device)

    def _get(self, key: str, device: torch.device | str | None) -> CachedEmbedding | None:
        entry = self._memory.get(key)
        if entry is not None:
            self._memory.move_to_end(key)
        elif self.disk_dir is not None:
            entry = self._read(key)
            if entry is not None:
                if device is not None:
                    entry.features = entry.features.to(device)
                self._remember(key, entry)
        if entry is None:
            self.misses += 1
        else:
            self.hits += 1
        return entry

    def put(self, key: str, entry: CachedEmbedding) -> None:
        """Store entry in memory and, if a disk dir is set, atomically on disk."""
        with self._lock:
            self._remember(key, entry)
            if self.disk_dir is not None:
                self._write(key, entry)

    def _remember(self, key: str, entry: CachedEmbedding) -> None:
        if self.max_items == 0:
            return
        self._memory[key] = entry
        self._memory.move_to_end(key)
        while len(self._memory) > self.max_items:
            self._memory.popitem(last=False)

    # -- disk -----------------------------------------------------------------
    def _path(self, key: str) -> Path:
        assert self.disk_dir is not None
        return self.disk_dir / f"{key}.pt"

    def _write(self, key: str, entry: CachedEmbedding) -> None:
        path = self._path(key)
        features = entry.features.detach().to("cpu").contiguous()
        record = {
            "format": DISK_FORMAT_VERSION,
            "key": key,
            "features": features,
            "input_size": list(entry.input_size),
            "original_size": list(entry.original_size),
            "checksum": hashlib.blake2b(_tensor_bytes(features), digest_size=16).hexdigest(),
        }
        atomic_torch_save(record, path)

    def _read(self, key: str) -> CachedEmbedding | None:
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            record = torch.load(path, map_location="cpu", weights_only=True)
            features = record["features"]
            ok = (
                record.get("format") == DISK_FORMAT_VERSION
                and record.get("key") == key
                and isinstance(features, torch.Tensor)
                and hashlib.blake2b(_tensor_bytes(features), digest_size=16).hexdigest() == record.get("checksum")
            )
            if not ok:
                raise ValueError("checksum or header mismatch")
            return CachedEmbedding(features, tuple(record["input_size"]), tuple(record["original_size"]))
        except Exception as e:  # truncated zip, bad pickle, wrong fields: all mean "do not trust"
            warnings.warn(
                f"discarding corrupt embedding cache file {path} ({type(e).__name__}: {e}); it will be recomputed",
                RuntimeWarning,
                stacklevel=3,
            )
            path.unlink(missing_ok=True)
            return None


def predictor_cache(cache: EmbeddingCache | None, cache_size: int,
                    disk_cache: bool | str | os.PathLike) -> EmbeddingCache:
    """The embedding cache of a predictor (SAM's and SAM 2's take the same three arguments): ``cache`` itself when
    given (a cache shared between predictors), else a new one of ``cache_size`` entries in memory, kept on disk too
    in the user cache directory (``disk_cache=True``), in the directory ``disk_cache`` names, or not (False)."""
    if cache is not None:
        return cache
    disk_dir: Path | None = None
    if disk_cache is True:
        disk_dir = default_cache_dir() / "embeddings"
    elif disk_cache not in (False, None):
        disk_dir = Path(disk_cache)
    return EmbeddingCache(max_items=cache_size, disk_dir=disk_dir)
