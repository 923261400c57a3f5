"""File hashes: the sha256 that checkpoints and the bundled weights are checked against."""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path


def file_sha256(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """The sha256 (hex) of a file, read in chunks (a 2.5 GB checkpoint never sits in memory whole)."""
    hasher = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            hasher.update(chunk)
    return hasher.hexdigest()


@functools.lru_cache(maxsize=8)
def _cached_sha256(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(path)


def file_sha256_cached(path: str | os.PathLike) -> str:
    """:func:`file_sha256`, computed once per process for a file as it is (path, size, modification time)."""
    stat = Path(path).stat()
    return _cached_sha256(str(path), stat.st_size, stat.st_mtime_ns)
