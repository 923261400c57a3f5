"""Words for the objects of procedural scenes, and the phrases made of them.

Every mask of a :class:`samwidgets.data.Scene` has four facts: its pattern
("striped"), colour ("red"), shape ("circle") and name ("wheel"). A phrase is
any subset of them in that order, e.g. "striped red circle wheel", "red wheel"
or just "wheel"; for whole objects the shape word is the object's own name,
so it is said once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

#: Fill kinds of the scene generator as people say them.
PATTERN_WORDS = {"flat": "plain", "gradient": "gradient", "striped": "striped", "noise": "noisy",
                 "checked": "checked", "photo": "photo"}
#: The four facts of a mask, in the order a phrase says them.
FACETS = ("pattern", "colour", "shape", "name")


def mask_words(scene, index: int) -> tuple[str, str, str, str]:
    """(pattern, colour, shape, name) of mask ``index``; shape is "" when it equals the name."""
    a = scene.attributes[index]
    name = scene.names[index]
    shape = a["shape"] if a["shape"] != name else ""
    pattern: str = a["pattern"]
    return PATTERN_WORDS.get(pattern, pattern), a["colour"], shape, name


def phrase(words: Sequence[str], keep: Sequence[bool] = (True, True, True, True)) -> str:
    """The words kept, in facet order, e.g. phrase(("striped", "red", "", "wheel")) == "striped red wheel"."""
    return " ".join(w for w, k in zip(words, keep) if k and w)


def split_words(text: str) -> list[str]:
    """Lower-case words of a text (letters only): "Red, striped WHEEL" -> ["red", "striped", "wheel"]."""
    return re.findall(r"[a-z]+", text.lower())


def sample_keep(rng: np.random.Generator, words: Sequence[str], p_attribute: float = 0.5,
                p_name: float = 0.8) -> tuple[bool, bool, bool, bool]:
    """Which facets a training caption says: each attribute with p_attribute, the name with p_name, never none."""
    while True:
        keep = tuple(bool(rng.random() < (p_name if f == "name" else p_attribute)) and bool(w)
                     for f, w in zip(FACETS, words))
        if any(keep):
            return keep  # type: ignore[return-value]


@lru_cache(maxsize=1)
def scene_vocabulary(samples_per_kind: int = 100) -> tuple[str, ...]:
    """Every word a procedural scene can say: colours, patterns, and the part and shape names of every
    object template (found by running each template on many seeds, as the scene generator does)."""
    from ..data.fills import PALETTE_NAMES
    from ..data.shapes import TEMPLATES

    words = set(PALETTE_NAMES) | set(PATTERN_WORDS.values())
    for template in TEMPLATES.values():
        for seed in range(samples_per_kind):
            entities, _ = template(np.random.default_rng(seed))
            for e in entities:
                words.update(split_words(e.name))
                words.update(split_words(e.word))
    return tuple(sorted(words))
