"""Random weights that any machine and any torch version make bit for bit the same, from key names and shapes.

Parity tests at the real model sizes cannot commit the weights (MobileSAM's are 40 MB). Instead the
recording script (run with the reference package, ``tests/record/``) and the test both make the weights
with :func:`random_state_dict` from the official key list and shapes: a counter-based generator
(splitmix64 over the key name's CRC-32 and the element index) in exact integer arithmetic, so the
numbers do not depend on torch's random generator, the CPU or the library versions.

The scales keep activations of order one through a deep random network, so the outputs carry signal
(logits of both signs): weights uniform with standard deviation 1/sqrt(fan-in), norms' scales near 1,
small biases, positive BatchNorm variances; the last layer of the decoder's hypernetwork MLPs four times
larger, so that mask logits span several units.

SAM 2's test picture (:func:`test_image`) is made here too, from the same kind of numbers, so that the
recording script (run with the reference packages only) and the tests draw the same picture.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping

import numpy as np
import torch

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def uniform(seed: int, n: int) -> np.ndarray:
    """n numbers in [-1, 1) from splitmix64 over (seed, index): float64, the same on every machine."""
    with np.errstate(over="ignore"):
        z = np.arange(n, dtype=np.uint64) * _GOLDEN + np.uint64(seed) * np.uint64(0xD1B54A32D192ED03) + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**52) - 1.0


def random_tensor(key: str, shape: Iterable[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The tensor ``key`` of ``shape`` (see the module docstring for the scale of each kind of entry)."""
    shape = tuple(int(s) for s in shape)
    if key.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.long)
    n = int(np.prod(shape)) if shape else 1
    u = uniform(zlib.crc32(key.encode()), n).reshape(shape)  # in [-1, 1)
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "running_var":
        x = 1.0 + 0.5 * np.abs(u)
    elif leaf == "running_mean":
        x = 0.1 * u
    elif len(shape) == 1 and leaf == "weight":  # a norm's scale
        x = 1.0 + 0.2 * u
    elif leaf == "bias":
        x = 0.1 * u
    elif len(shape) >= 2 and leaf == "weight":  # linear and convolution weights: std 1 / sqrt(fan-in)
        fan_in = int(np.prod(shape[1:]))
        x = u * np.sqrt(3.0 / fan_in)
    else:  # embeddings, position tables, attention biases: std about 0.6
        x = u
    if "output_hypernetworks_mlps" in key and ".layers.2." in key:
        x = 4.0 * x  # SAM's mask logits are linear in these: x4 makes them span several units, not one
    return torch.from_numpy(np.ascontiguousarray(x)).to(dtype)


def random_state_dict(shapes: Mapping[str, Iterable[int]]) -> dict[str, torch.Tensor]:
    """A state dict with a :func:`random_tensor` for every key of ``shapes`` (key -> shape)."""
    return {key: random_tensor(key, shape) for key, shape in shapes.items()}


def read_shapes(path) -> dict[str, tuple[int, ...]]:
    """Key -> shape from a listing with one ``key<TAB>(d0, d1, ...)`` per line (``()`` for a scalar)."""
    shapes = {}
    for line in open(path).read().splitlines():
        if line.strip():
            key, shape = line.split("\t")
            shapes[key] = tuple(int(s) for s in shape.strip().strip("()").split(",") if s.strip())
    return shapes


def write_shapes(path, state_dict: Mapping[str, torch.Tensor]) -> None:
    """The listing :func:`read_shapes` reads, of ``state_dict``'s keys in order."""
    with open(path, "w") as f:
        for key, value in state_dict.items():
            f.write(f"{key}\t{tuple(value.shape)}\n")


# ---- SAM 2's fixtures (tests/record/record_sam2_parity.py, tests/test_sam2_parity.py) were recorded with this
# variant: seeds by the key's index in sorted order, values rounded to float16 precision.
def portable_uniform(seed: int, n: int) -> np.ndarray:
    """n numbers in [-1, 1) from a counter-based integer hash of (seed, index), in exact uint64 arithmetic:
    the same on every machine and with every numpy / torch version (no random generator involved)."""
    with np.errstate(over="ignore"):
        z = np.arange(1, n + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z = z + np.uint64(seed) * np.uint64(0xD6E8FEB86659FD93)
        z = (z ^ (z >> np.uint64(32))) * np.uint64(0xD6E8FEB86659FD93)
        z = (z ^ (z >> np.uint64(32))) * np.uint64(0xD6E8FEB86659FD93)
        z = z ^ (z >> np.uint64(32))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**52) - 1.0


def test_image(h: int, w: int, seed: int) -> np.ndarray:
    """SAM 2's test picture, H x W x 3 uint8: a smooth picture with a few regions (a red disc, a green rectangle)
    and a little texture (:func:`portable_uniform`); the recording scripts and the tests make the same one."""
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.zeros((h, w, 3))
    img[..., 0] = 60 + 150 * (((x - 0.35) ** 2 + (y - 0.4) ** 2) < 0.06)
    img[..., 1] = 40 + 170 * ((x > 0.55) & (y > 0.2) & (y < 0.7))
    img[..., 2] = 110 + 70 * np.sin(9 * x + 4 * y)
    img += 12 * portable_uniform(seed, h * w * 3).reshape(h, w, 3)
    return np.clip(img, 0, 255).astype(np.uint8)


test_image.__test__ = False  # a helper, not a test (pytest would collect it where a test module imports it)


EMBEDDING_TABLES = ("iou_token", "mask_tokens", "obj_score_token", "point_embeddings", "not_a_point_embed",
                    "no_mask_embed")


def portable_random_weights(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """A float32 state dict for ``shapes`` (key -> shape); key number i in sorted order uses seed i + 1.

    Scales keep a deep random network's activations of order one, so outputs carry signal: linear and
    convolution weights std 1/sqrt(fan-in), norms' scales 1 +- 0.2, biases +- 0.1, embedding tables and
    other parameters (position tables, no_mem_embed) std 1; the hypernetworks' last layer x4 so that
    mask logits span several units. Every value is rounded to float16 precision (exact in float16 and
    float32), so a state dict of them can be stored in half the bytes.
    """
    weights = {}
    for index, key in enumerate(sorted(shapes)):
        shape = tuple(int(s) for s in shapes[key])
        n = int(np.prod(shape)) if shape else 1
        u = portable_uniform(index + 1, n).reshape(shape)
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "bias":
            x = 0.1 * u
        elif leaf == "weight" and len(shape) == 1:  # LayerNorm / LayerNorm2d scales
            x = 1.0 + 0.2 * u
        elif leaf == "weight" and len(shape) >= 2 and not any(t in key for t in EMBEDDING_TABLES):
            x = u * np.sqrt(3.0 / int(np.prod(shape[1:])))
        else:
            x = u * np.sqrt(3.0)
        if "output_hypernetworks_mlps" in key and ".layers.2." in key:
            x = 4.0 * x
        weights[key] = torch.from_numpy(x.astype(np.float16).astype(np.float32))
    return weights
