"""Photos for the notebooks: the reference notebooks' photos when online, offline stand-ins otherwise, yours.

- :func:`reference_photo` ("truck", "groceries", "dog"): the photos of the official SAM notebooks,
  downloaded once from the segment-anything repository, with the prompts those notebooks use. Offline (or
  when the download fails its checks) it returns a photo that ships with scikit-image or matplotlib
  instead, with prompts chosen for that photo, and says so in ``source``.
- :func:`unseen_photos`: photos that ship with the installed libraries and were in none of the bundled
  model's training images: not BSDS500 (its training photos), and not the photos and textures its
  procedural scenes use as fills (``samwidgets.data.fills``: astronaut, chelsea, coffee, rocket; brick,
  grass, gravel).
- :func:`load_photo`: your own photo, from a path or an http(s) URL.

A downloaded photo is trusted only once it decodes completely as an image of a sensible size; one that does
not is deleted, and the next call downloads it again.
"""

from __future__ import annotations

import hashlib
import os
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..inference.images import as_rgb_uint8
from ..io.download import DownloadError, download
from ..io.paths import default_cache_dir

__all__ = ["DemoPhoto", "PhotoError", "load_photo", "reference_photo", "unseen_photos"]

Box = tuple[int, int, int, int]

#: Where the official notebooks' photos live (facebookresearch/segment-anything, notebooks/images/).
REFERENCE_URL = "https://raw.githubusercontent.com/facebookresearch/segment-anything/main/notebooks/images/"

#: The smallest and largest side a photo may have (a download that decodes to less is not the photo).
MIN_SIDE, MAX_SIDE = 32, 20_000


class PhotoError(ValueError):
    """A photo could not be read: the message names the file or URL and what to do."""


@dataclass(frozen=True)
class DemoPhoto:
    """A photo with the prompts a notebook uses on it.

    image: H x W x 3 uint8 RGB. point: (x, y) of one foreground click. box: [x0, y0, x1, y1] of one object.
    boxes: several objects' boxes, for batched prompts. source: where the pixels came from, in words.
    """

    name: str
    image: np.ndarray = field(repr=False)
    source: str
    point: tuple[int, int] | None = None
    box: Box | None = None
    boxes: tuple[Box, ...] = ()

    @property
    def downloaded(self) -> bool:
        """True when these are the reference notebook's own pixels, False for the offline stand-in."""
        return self.source.startswith("downloaded")


# ---------------------------------------------------------------------------------------------- offline photos


def _grace_hopper() -> np.ndarray:
    import matplotlib.cbook

    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    with Image.open(path) as image:
        return as_rgb_uint8(image)


def _motorcycle() -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(skimage.data.stereo_motorcycle()[0])


def _immunohistochemistry() -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(skimage.data.immunohistochemistry())


_OFFLINE = {
    "grace_hopper": ("matplotlib's sample grace_hopper.jpg", _grace_hopper),
    "motorcycle": ("scikit-image's stereo_motorcycle (left view)", _motorcycle),
    "immunohistochemistry": ("scikit-image's immunohistochemistry", _immunohistochemistry),
}


def unseen_photos() -> dict[str, np.ndarray]:
    """Photos that ship offline and were never in the bundled model's training: name -> H x W x 3 uint8."""
    return {name: load() for name, (_, load) in _OFFLINE.items()}


# ---------------------------------------------------------------------------------------------- reference photos

#: The official notebooks' prompts (predictor_example.ipynb; automatic_mask_generator_example.ipynb uses
#: dog.jpg without prompts), and for each photo an offline stand-in with prompts of the same kind.
_REFERENCE = {
    "truck": dict(point=(500, 375), box=(425, 600, 700, 875),
                  boxes=((75, 275, 1725, 850), (425, 600, 700, 875), (1375, 550, 1650, 800), (1240, 675, 1400, 750))),
    "groceries": dict(point=None, box=(450, 170, 520, 350),
                      boxes=((450, 170, 520, 350), (350, 190, 450, 350), (500, 170, 580, 350), (580, 170, 640, 350))),
    "dog": dict(point=None, box=None, boxes=()),
}
_STAND_IN = {
    "truck": ("motorcycle", dict(point=(470, 195), box=(100, 215, 265, 410),
                                 boxes=((95, 80, 690, 440), (100, 215, 265, 410), (520, 230, 690, 440)))),
    "groceries": ("grace_hopper", dict(point=None, box=(165, 110, 370, 330),
                                       boxes=((165, 110, 370, 330), (150, 30, 390, 140), (315, 495, 410, 525)))),
    "dog": ("grace_hopper", dict(point=None, box=None, boxes=())),
}


def reference_photo(name: str, *, offline: bool = False, cache_dir: str | os.PathLike | None = None) -> DemoPhoto:
    """One of the official notebooks' photos ("truck", "groceries", "dog") with their prompts.

    Downloaded once into ``<cache_dir>/photos/``. With ``offline=True``, or when the download fails (no
    internet) or does not decode as an image, an offline stand-in with its own prompts is returned and
    ``source`` says so; the notebook runs either way.
    """
    if name not in _REFERENCE:
        raise ValueError(f"unknown reference photo {name!r}: choose one of {', '.join(map(repr, _REFERENCE))}")
    reason = "offline=True"
    if not offline:
        try:
            image = _fetch(REFERENCE_URL + f"{name}.jpg", cache_dir, retries=0)
            return DemoPhoto(name, image, f"downloaded: the reference notebooks' {name}.jpg", **_REFERENCE[name])
        except (PhotoError, DownloadError, OSError) as e:
            reason = f"the download failed: {_cause(e)}"
    stand_in, prompts = _STAND_IN[name]
    description, load = _OFFLINE[stand_in]
    return DemoPhoto(stand_in, load(), f"offline stand-in for {name}.jpg: {description} ({reason})", **prompts)


# ---------------------------------------------------------------------------------------------- your photo


def load_photo(path_or_url: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None) -> np.ndarray:
    """Your photo as H x W x 3 uint8 RGB: a file path, or an http(s) URL (downloaded once, then cached)."""
    text = os.fspath(path_or_url)
    if urllib.parse.urlparse(text).scheme in ("http", "https"):
        return _fetch(text, cache_dir)
    path = Path(text).expanduser()
    if not path.is_file():
        raise PhotoError(f"no photo at {path}: give the path of an image file (JPEG, PNG, ...) or an http(s) URL")
    return _decode(path, what=str(path))


def _cause(error: BaseException) -> str:
    """The innermost cause of a failed download, in a few words ("gaierror: Name or service not known")."""
    while error.__cause__ is not None:
        error = error.__cause__
    reason = getattr(error, "reason", None)  # urllib's URLError wraps the socket error
    if isinstance(reason, BaseException):
        error = reason
    text = getattr(error, "strerror", None) or str(error)
    return f"{type(error).__name__}: {text}"[:120]


def _fetch(url: str, cache_dir: str | os.PathLike | None, retries: int = 1) -> np.ndarray:
    """The photo at ``url``, from the cache if it decodes, else downloaded; a file that does not decode is deleted."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    name = Path(urllib.parse.urlparse(url).path).name or "photo"
    dest = root / "photos" / f"{hashlib.sha256(url.encode()).hexdigest()[:12]}-{name}"
    for attempt in range(2):
        download(url, dest, retries=retries, timeout=15.0, progress=False)
        try:
            return _decode(dest, what=url)
        except PhotoError:
            dest.unlink(missing_ok=True)  # never trust it again; one fresh download, then give up
            if attempt == 1:
                raise
    raise AssertionError("unreachable")


def _decode(path: Path, what: str) -> np.ndarray:
    """Every pixel of the image at ``path`` as RGB uint8, or PhotoError naming ``what`` and the problem."""
    try:
        with Image.open(path) as img:
            img.load()  # decodes every byte: a file cut short fails here, not later
            image = as_rgb_uint8(img)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise PhotoError(f"{what} is not a readable image ({type(e).__name__}: {e}); "
                         "give a JPEG or PNG file, or check the URL in a browser") from e
    h, w = image.shape[:2]
    if min(h, w) < MIN_SIDE or max(h, w) > MAX_SIDE:
        raise PhotoError(f"{what} is {w} x {h} px; photos between {MIN_SIDE} and {MAX_SIDE} px a side are accepted")
    return image
