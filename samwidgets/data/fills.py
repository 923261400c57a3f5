"""Fills for procedural scenes: flat colour, gradients, stripes, value noise, checkers, photo patches.

A :class:`Fill` is a function of *image* coordinates: rendering it on any window of the image gives
the same pixels there, so entities that share a fill (two eyes) show one continuous pattern.

Determinism: every number comes from a ``np.random.Generator`` and then only from ``+ - * /``,
``floor`` and comparisons (IEEE-exact on every machine); no ``sin``/``cos``/``exp`` is applied to an
array. Directions are drawn as rational points of the unit circle, ((1 - t^2), 2t) / (1 + t^2).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "FILL_KINDS",
    "PALETTE",
    "PALETTE_NAMES",
    "PHOTO_SOURCES",
    "TEXTURE_SOURCES",
    "Fill",
    "colour_name",
    "random_fill",
    "unit_vector",
]

FILL_KINDS = ("flat", "gradient", "striped", "noise", "checked", "photo")

# Named colours: the name of the base colour is the "colour" attribute of a fill.
PALETTE_NAMES = (
    "red", "orange", "yellow", "green", "cyan", "blue",
    "purple", "pink", "brown", "white", "grey", "black",
)
PALETTE = np.array(
    [
        (205, 35, 35),    # red
        (245, 135, 20),   # orange
        (240, 220, 45),   # yellow
        (45, 165, 55),    # green
        (35, 190, 200),   # cyan
        (40, 75, 205),    # blue
        (125, 50, 175),   # purple
        (245, 140, 190),  # pink
        (125, 75, 30),    # brown
        (240, 240, 240),  # white
        (130, 130, 130),  # grey
        (25, 25, 25),     # black
    ],
    dtype=np.int32,
)

PHOTO_SOURCES = ("astronaut", "chelsea", "coffee", "rocket")   # RGB photos
TEXTURE_SOURCES = ("brick", "grass", "gravel")                 # grey textures (tinted when used)

_SOURCE_CACHE: dict[str, tuple[np.ndarray | None, np.ndarray, float]] = {}


def _source(name: str) -> tuple[np.ndarray | None, np.ndarray, float]:
    """(rgb uint8 H x W x 3 or None, grey uint8 H x W, exact mean of grey), loaded once per process."""
    hit = _SOURCE_CACHE.get(name)
    if hit is None:
        import skimage.data  # lazy: only scenes that use a photo pay for the import

        img = np.ascontiguousarray(getattr(skimage.data, name)())
        if img.ndim == 2:
            rgb, grey = None, img.astype(np.uint8)
        else:
            rgb = np.ascontiguousarray(img[..., :3]).astype(np.uint8)
            # integer luma: exact on every machine
            grey = ((rgb[..., 0].astype(np.int32) * 77 + rgb[..., 1].astype(np.int32) * 150
                     + rgb[..., 2].astype(np.int32) * 29) >> 8).astype(np.uint8)
        mean = int(grey.sum(dtype=np.int64)) / grey.size
        hit = (rgb, grey, mean)
        _SOURCE_CACHE[name] = hit
    return hit


def unit_vector(rng: np.random.Generator) -> tuple[float, float]:
    """A random direction (c, s) with c^2 + s^2 = 1, from exact rational arithmetic."""
    t = rng.uniform(-1.0, 1.0)
    c, s = (1.0 - t * t) / (1.0 + t * t), 2.0 * t / (1.0 + t * t)
    if rng.random() < 0.5:
        c, s = -c, -s
    return c, s


def colour_name(rgb) -> str:
    """Name of the palette colour nearest to ``rgb``."""
    d = ((PALETTE - np.asarray(rgb, dtype=np.int64)[None, :]) ** 2).sum(1)
    return PALETTE_NAMES[int(np.argmin(d))]


def _shade(base: np.ndarray, amount: float) -> tuple[np.ndarray, np.ndarray]:
    """Two colours around ``base``, ``amount`` lighter and darker (shifted to stay in range)."""
    lo = base.astype(np.float32) - amount
    hi = base.astype(np.float32) + amount
    under = max(0.0, -float(lo.min()))
    over = max(0.0, float(hi.max()) - 255.0)
    shift = under - over
    return np.clip(lo + shift, 0, 255), np.clip(hi + shift, 0, 255)


class Fill:
    """A pattern defined on image coordinates. ``render(y0, y1, x0, x1)`` -> (h, w, 3) uint8."""

    def __init__(self, kind: str, base, colour: str | None, **params):
        self.kind = kind
        self.base = np.asarray(base, dtype=np.int32)
        self.colour = colour
        self.params = params

    def attributes(self) -> dict:
        out = {"colour": self.colour, "pattern": self.kind}
        if self.kind == "photo":
            out["source"] = self.params["source"]
        return out

    def centre_on(self, y0: int, y1: int, x0: int, x1: int, mask=None) -> None:
        """Tinted photo: make the tint colour the mean over this region (not the whole photo's)."""
        if self.kind != "photo" or self.params["tint"] is None:
            return
        p = self.params
        _, grey, _ = _source(p["source"])
        H, W = grey.shape
        sy = _reflect(((np.arange(y0, y1, dtype=np.float32) + p["oy"]) * p["inv"]).astype(np.int64), H)
        sx = _reflect(((np.arange(x0, x1, dtype=np.float32) + p["ox"]) * p["inv"]).astype(np.int64), W)
        g = grey[sy[:, None], sx[None, :]]
        if mask is not None:
            g = g[mask]
        if g.size:
            p["centre"] = int(g.sum(dtype=np.int64)) / g.size

    def render(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        h, w = y1 - y0, x1 - x0
        p = self.params
        k = self.kind
        if k == "flat":
            return np.broadcast_to(self.base.astype(np.uint8), (h, w, 3))
        ys = np.arange(y0, y1, dtype=np.float32)[:, None]
        xs = np.arange(x0, x1, dtype=np.float32)[None, :]
        if k == "gradient":
            t = (xs - p["ox"]) * p["dx"] + (ys - p["oy"]) * p["dy"]
            t = np.clip(t * (1.0 / p["length"]) + 0.5, 0.0, 1.0)
            c0, c1 = p["c0"], p["c1"]
            out = c0 + t[..., None] * (c1 - c0)
        elif k == "striped":
            t = (xs * p["dx"] + ys * p["dy"]) * (1.0 / p["period"]) + p["phase"]
            on = (t - np.floor(t)) < p["duty"]
            return np.where(on[..., None], p["c0"], p["c1"]).astype(np.uint8)
        elif k == "checked":
            a = np.floor((xs * p["dx"] + ys * p["dy"]) * (1.0 / p["cell"]) + p["phase"])
            b = np.floor((ys * p["dx"] - xs * p["dy"]) * (1.0 / p["cell"]) + p["phase"])
            on = (a + b).astype(np.int64) & 1
            return np.where(on[..., None].astype(bool), p["c0"], p["c1"]).astype(np.uint8)
        elif k == "noise":
            n = np.zeros((h, w), np.float32)
            for grid, spacing, weight in p["octaves"]:
                n += weight * _bilinear(grid, (ys[:, 0] + p["off"]) * (1.0 / spacing),
                                        (xs[0] + p["off"]) * (1.0 / spacing))
            c0, c1 = p["c0"], p["c1"]
            out = c0 + n[..., None] * (c1 - c0)
        elif k == "photo":
            rgb, grey, gmean = _source(p["source"])
            H, W = grey.shape
            sy = _reflect(((ys[:, 0] + p["oy"]) * p["inv"]).astype(np.int64), H)
            sx = _reflect(((xs[0] + p["ox"]) * p["inv"]).astype(np.int64), W)
            if p["tint"] is None:
                assert rgb is not None, "untinted photo fills use the RGB photos (random_fill)"
                return rgb[sy[:, None], sx[None, :]]
            g = grey[sy[:, None], sx[None, :]].astype(np.float32)
            out = p["tint"] + (p["gain"] * (g - p.get("centre", gmean)))[..., None]
        else:  # pragma: no cover
            raise ValueError(k)
        return np.clip(out, 0.0, 255.0).astype(np.uint8)


def _reflect(i: np.ndarray, n: int) -> np.ndarray:
    m = i % (2 * n)
    return np.where(m < n, m, 2 * n - 1 - m)


def _bilinear(grid: np.ndarray, fy: np.ndarray, fx: np.ndarray) -> np.ndarray:
    """Smooth (smoothstep-weighted) bilinear interpolation of ``grid`` at rows fy x columns fx."""
    iy = np.floor(fy)
    ix = np.floor(fx)
    ty = fy - iy
    tx = fx - ix
    ty = (ty * ty * (3.0 - 2.0 * ty))[:, None]
    tx = (tx * tx * (3.0 - 2.0 * tx))[None, :]
    iy = iy.astype(np.int64)
    ix = ix.astype(np.int64)
    r0 = grid[iy]
    r1 = grid[iy + 1]
    top = r0[:, ix] + tx * (r0[:, ix + 1] - r0[:, ix])
    bot = r1[:, ix] + tx * (r1[:, ix + 1] - r1[:, ix])
    return top + ty * (bot - top)


def random_fill(
    rng: np.random.Generator,
    kind: str,
    image_size: int,
    base=None,
    colour: str | None = None,
    photo_source: str | None = None,
    natural_photo: bool = False,
) -> Fill:
    """A random fill of ``kind`` around the colour ``base`` (an int RGB triple, named ``colour``).

    ``kind == "photo"``: a crop of ``photo_source`` at a random offset and scale; with
    ``natural_photo`` the photo keeps its own colours (``colour`` is then decided by the caller from
    the rendered mean), otherwise its luminance is tinted around ``base``.
    """
    base = np.asarray(base, dtype=np.int32)
    basef = base.astype(np.float32)
    if kind == "flat":
        return Fill("flat", base, colour)
    if kind == "gradient":
        dx, dy = unit_vector(rng)
        c0, c1 = _shade(base, float(rng.uniform(30, 60)))
        return Fill("gradient", base, colour, dx=dx, dy=dy, c0=c0, c1=c1,
                    ox=float(rng.uniform(0, image_size)), oy=float(rng.uniform(0, image_size)),
                    length=float(rng.uniform(0.3, 1.0) * image_size))
    if kind == "striped":
        dx, dy = unit_vector(rng)
        c0, c1 = _shade(base, float(rng.uniform(35, 55)))
        return Fill("striped", base, colour, dx=dx, dy=dy, period=float(rng.uniform(4.0, 16.0)),
                    phase=float(rng.random()), duty=float(rng.uniform(0.35, 0.65)),
                    c0=c0.astype(np.uint8), c1=c1.astype(np.uint8))
    if kind == "checked":
        if rng.random() < 0.5:
            dx, dy = 1.0, 0.0
        else:
            dx, dy = unit_vector(rng)
        c0, c1 = _shade(base, float(rng.uniform(30, 50)))
        return Fill("checked", base, colour, dx=dx, dy=dy, cell=float(rng.uniform(3.0, 12.0)),
                    phase=float(rng.random()), c0=c0.astype(np.uint8), c1=c1.astype(np.uint8))
    if kind == "noise":
        spacing = float(rng.uniform(6.0, 28.0))
        octaves = []
        for s, wgt in ((spacing, 0.67), (spacing * 0.5, 0.33)):
            n = int(image_size / s) + 4
            octaves.append((rng.random((n, n), dtype=np.float32), s, wgt))
        c0, c1 = _shade(base, float(rng.uniform(40, 70)))
        return Fill("noise", base, colour, octaves=octaves, off=float(rng.uniform(0.0, spacing)), c0=c0, c1=c1)
    if kind == "photo":
        source = photo_source
        if source is None:
            raise ValueError("a photo fill needs photo_source, the name of an image of skimage.data")
        inv = float(rng.uniform(0.6, 1.6))        # source pixels per image pixel
        H, W = _source(source)[1].shape
        # image pixel x maps to source column (x + ox) * inv: keep the crop inside the source when
        # it fits (beyond it the source is mirrored)
        ox = float(rng.uniform(0.0, max(W / inv - image_size, 1.0)))
        oy = float(rng.uniform(0.0, max(H / inv - image_size, 1.0)))
        is_texture = source in TEXTURE_SOURCES
        if natural_photo and not is_texture:
            tint, gain = None, 1.0
        else:
            tint, gain = basef, float(rng.uniform(0.5, 0.9))
        return Fill("photo", base, colour, source=source, inv=inv, ox=ox, oy=oy, tint=tint, gain=gain)
    raise ValueError(f"unknown fill kind {kind!r}")
