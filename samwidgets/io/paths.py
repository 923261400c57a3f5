"""Where samwidgets keeps downloaded checkpoints and cached embeddings."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

#: Environment variable that overrides the cache directory.
CACHE_ENV = "SAMWIDGETS_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$SAMWIDGETS_CACHE_DIR`` if set, else the platform's user cache dir for samwidgets."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("samwidgets"))
