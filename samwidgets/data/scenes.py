"""Procedural scenes with real part hierarchies, for training and evaluating a small SAM.

Every object is made of parts made of subparts (face > eye > pupil, wheel > rim > hub,
house > window > pane, box > label > symbol, ...), so a point on a subpart honestly has three valid
nested masks. Objects occlude one another; parts and objects are painted with fills (flat,
gradient, stripes, value noise, checkers, photo and texture crops) chosen to contrast with what
surrounds them, on a background that is itself one of those fills.

    >>> gen = SceneGenerator(image_size=256)
    >>> scene = gen(0)
    >>> scene.image.shape, scene.masks.shape[1:]
    ((256, 256, 3), (256, 256))

``gen(seed)`` is a pure function of the seed and the generator's settings: the same seed gives a
bitwise identical scene on every machine (only ``np.random.default_rng(seed)`` and IEEE-exact
arithmetic are used).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from .fills import FILL_KINDS, PALETTE, PALETTE_NAMES, PHOTO_SOURCES, TEXTURE_SOURCES, colour_name, random_fill
from .shapes import OBJECT_KINDS, TEMPLATES, rotation

__all__ = ["Scene", "SceneGenerator", "LEVEL_NAMES", "sample_point_on"]

LEVEL_NAMES = ("whole", "part", "subpart")
_PATTERN_KINDS = tuple(k for k in FILL_KINDS if k != "photo")
_SOURCES = PHOTO_SOURCES + TEXTURE_SOURCES


@dataclass
class Scene:
    """One generated scene. All per-mask arrays are indexed alike (M masks)."""

    image: np.ndarray          # H x W x 3 uint8
    masks: np.ndarray          # M x H x W bool: visible region of every entity at every level
    levels: np.ndarray         # M int8: 0 whole object, 1 part, 2 subpart
    parents: np.ndarray        # M int32: index of the parent mask, -1 for whole objects
    object_ids: np.ndarray     # M int32: which object (0..) each mask belongs to, in paint order
    names: list               # M str: "face", "eye", "pupil", ...
    attributes: list          # M dict: {"colour", "pattern", "shape"} (+ "source" for photos, "outline")
    full_areas: np.ndarray | None = field(default=None)  # M int64: pixels of the drawn shape before any occlusion
    background: dict = field(default_factory=dict)  # attributes of the background fill
    seed: int | None = None

    def __len__(self) -> int:
        return int(self.masks.shape[0])

    @property
    def areas(self) -> np.ndarray:
        """M int64: visible pixels of every mask."""
        return self.masks.reshape(len(self), -1).sum(1)

    def boxes(self) -> np.ndarray:
        """M x 4 float32 XYXY box of every visible mask, in pixel edges (x2 = last column + 1)."""
        m = self.masks
        out = np.zeros((m.shape[0], 4), np.float32)
        if m.shape[0] == 0:
            return out
        # M x H and M x W (numpy's stubs cannot tell these reductions of a 3-d array from a scalar)
        rows, cols = cast(np.ndarray, m.any(2)), cast(np.ndarray, m.any(1))
        h, w = m.shape[1:]
        out[:, 0] = cols.argmax(1)
        out[:, 1] = rows.argmax(1)
        out[:, 2] = w - cols[:, ::-1].argmax(1)
        out[:, 3] = h - rows[:, ::-1].argmax(1)
        out[~rows.any(1)] = 0
        return out

    def chain(self, index: int) -> list:
        """[index, parent, grandparent...]: the masks going up the hierarchy from ``index``."""
        out = [int(index)]
        while self.parents[out[-1]] >= 0:
            out.append(int(self.parents[out[-1]]))
        return out

    def masks_at(self, x: int, y: int) -> list:
        """Indices of the masks that contain pixel (x, y), deepest first (a chain, or empty)."""
        idx = np.flatnonzero(self.masks[:, int(y), int(x)])
        if idx.size == 0:
            return []
        return self.chain(int(idx[np.argmax(self.levels[idx])]))

    def describe(self, index: int) -> str:
        """A short phrase, e.g. 'striped red circle eye'."""
        a = self.attributes[index]
        return f"{a['pattern']} {a['colour']} {a['shape']} {self.names[index]}"


def sample_point_on(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random pixel of ``mask`` as float (x, y) = (column, row), SAM's point convention.

    Integer coordinates address pixel centres (SAM's prompt encoder adds 0.5 itself).
    """
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        raise ValueError("cannot sample a point on an empty mask")
    k = int(rng.integers(ys.size))
    return np.array([xs[k], ys[k]], dtype=np.float32)


# ------------------------------------------------------------------------------------------------
# binary morphology with numpy shifts (square structuring element)
# ------------------------------------------------------------------------------------------------

def _dilate(m: np.ndarray, r: int) -> np.ndarray:
    out = m.copy()
    for k in range(1, r + 1):
        out[k:] |= m[:-k]
        out[:-k] |= m[k:]
    rows = out.copy()
    for k in range(1, r + 1):
        out[:, k:] |= rows[:, :-k]
        out[:, :-k] |= rows[:, k:]
    return out


def _far_enough(dx: float, dy: float, d: float) -> bool:
    return dx * dx + dy * dy >= d * d


def _luma(rgb) -> int:
    r, g, b = (int(v) for v in rgb)
    return (77 * r + 150 * g + 29 * b) >> 8


@dataclass
class SceneGenerator:
    """Deterministic procedural scene generator: ``SceneGenerator(...)(seed) -> Scene``.

    Args:
        image_size: side of the square image.
        min_objects, max_objects: number of objects drawn (fewer may survive occlusion).
        min_visible_pixels: a mask with fewer visible pixels is dropped, with its children.
        photo_fill_prob: probability that an entity of at least 250 pixels is filled with a
            photo / texture crop (smaller ones never are).
        min_object_size, max_object_size: object size as a fraction of the image side.
        max_child_fraction: a child mask must cover at most this fraction of its parent's
            visible area, else it is dropped (the levels must differ for the ambiguity to be real).
        background_photo_prob: probability that the background is a photo / texture crop.
        outline_prob: probability of a dark / bright outline on an entity (always added when no
            colour contrasts enough with the surroundings).
        contrast: RGB distance under which a surrounding pixel counts as "like" a fill colour.
        natural_photo_prob: probability that a photo crop on a whole object or the background
            keeps its own colours (else, and always on parts, it is tinted around a palette colour;
            grey textures are always tinted). Natural-colour objects always get an outline.
        kinds: object kinds to draw (default: all of ``OBJECT_KINDS``).
    """

    image_size: int = 256
    min_objects: int = 1
    max_objects: int = 4
    min_visible_pixels: int = 30
    photo_fill_prob: float = 0.25
    min_object_size: float = 0.15
    max_object_size: float = 0.6
    max_child_fraction: float = 0.8
    background_photo_prob: float = 0.35
    outline_prob: float = 0.15
    contrast: float = 80.0
    natural_photo_prob: float = 0.5
    kinds: tuple[str, ...] = OBJECT_KINDS

    def __post_init__(self) -> None:
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError("need 1 <= min_objects <= max_objects")
        self.kinds = tuple(self.kinds)  # a list works too
        unknown = set(self.kinds) - set(TEMPLATES)
        if unknown:
            raise ValueError(f"unknown object kinds {sorted(unknown)}; known: {OBJECT_KINDS}")

    # --------------------------------------------------------------------------------------------
    def __call__(self, seed: int) -> Scene:
        rng = np.random.default_rng(seed)
        S = self.image_size

        # background
        bg_fill, _ = self._pick_fill(rng, np.zeros((0, 3), np.int32), None, background=True)
        canvas = np.array(bg_fill.render(0, S, 0, S), dtype=np.uint8)
        background = bg_fill.attributes()

        # object sizes and positions (later objects are drawn on top)
        n = int(rng.integers(self.min_objects, self.max_objects + 1))
        sizes = S * rng.uniform(self.min_object_size, self.max_object_size, n)
        if rng.random() < 0.5:
            sizes = np.sort(sizes)[::-1]          # big things at the back, small in front
        placed: list[tuple[float, float, float]] = []
        objects = []
        for size in sizes:
            size = float(size)
            r = size / 2
            for _ in range(12):
                cx = float(rng.uniform(0.08 * S, 0.92 * S))
                cy = float(rng.uniform(0.08 * S, 0.92 * S))
                # the new object, on top, must leave a good share of every earlier one visible
                # (squared distances, no pow/hypot: exact arithmetic, the same on every machine)
                if all(_far_enough(cx - px, cy - py, max(r - 0.35 * pr, 0.0)) for px, py, pr in placed):
                    break
            else:
                continue
            placed.append((cx, cy, r))
            obj = self._draw_object(rng, canvas, cx, cy, size)
            if obj is not None:
                objects.append(obj)

        return self._assemble(seed, canvas, objects, background)

    # --------------------------------------------------------------------------------------------
    def _pick_fill(self, rng, ring_px, region, background=False, level=0):
        """Choose a fill contrasting with the surrounding pixels ``ring_px`` (K x 3 int32).

        ``region``: (y0, y1, x0, x1, mask) of the entity, for photos that keep their colours (their
        colour is measured). Returns (fill, needs_outline).
        """
        S = self.image_size
        t2 = self.contrast * self.contrast
        if ring_px.shape[0]:
            d = ring_px[:, None, :] - PALETTE[None, :, :]
            frac = ((d * d).sum(2) < t2).mean(0)
        else:
            frac = np.zeros(len(PALETTE))
        ok = np.flatnonzero(frac < 0.1)
        forced = ok.size == 0
        idx = int(np.argmin(frac)) if forced else int(ok[rng.integers(ok.size)])
        base = np.clip(PALETTE[idx] + rng.integers(-15, 16, 3), 0, 255).astype(np.int32)
        name = PALETTE_NAMES[idx]
        photo_prob = self.background_photo_prob if background else self.photo_fill_prob
        if background:
            region = (0, S, 0, S, None)
        elif region[4].sum() < 250:      # a photo crop on a few dozen pixels is just noise
            photo_prob = 0.0
        if rng.random() < photo_prob:
            source = _SOURCES[int(rng.integers(len(_SOURCES)))]
            # a photo's own colours only on whole objects and the background: inside an object its
            # clutter (sky, cables, whiskers) would blend a part into its parent
            natural = (source in PHOTO_SOURCES and (background or level == 0)
                       and rng.random() < self.natural_photo_prob)
            fill = random_fill(rng, "photo", S, base, name, source, natural)
            y0, y1, x0, x1, m = region
            fill.centre_on(y0, y1, x0, x1, m)
            if natural:
                patch = fill.render(y0, y1, x0, x1)
                px = patch.reshape(-1, 3) if m is None else patch[m]
                mean = px.astype(np.int64).sum(0) // max(px.shape[0], 1)
                fill.colour = colour_name(mean)
                fill.base = mean.astype(np.int32)
                if ring_px.shape[0]:
                    d = ring_px - mean[None, :]
                    if ((d * d).sum(1) < t2).mean() >= 0.1:
                        fill = random_fill(rng, "photo", S, base, name, source, False)
                        fill.centre_on(y0, y1, x0, x1, m)
        else:
            kind = _PATTERN_KINDS[int(rng.integers(len(_PATTERN_KINDS)))]
            fill = random_fill(rng, kind, S, base, name)
        return fill, forced

    # --------------------------------------------------------------------------------------------
    def _draw_object(self, rng, canvas, cx, cy, size):
        S = self.image_size
        kind = self.kinds[int(rng.integers(len(self.kinds)))]
        ents, max_deg = TEMPLATES[kind](rng)
        c, s = rotation(rng, max_deg)
        ax = float(rng.uniform(0.85, 1.15))
        ay = float(rng.uniform(0.85, 1.15))
        mx = -ax if rng.random() < 0.5 else ax       # mirror
        amax = max(ax, ay)

        R = 0.5 * math.sqrt(2.0) * size * amax + 3
        y0, y1 = max(int(math.floor(cy - R)), 0), min(int(math.ceil(cy + R)) + 1, S)
        x0, x1 = max(int(math.floor(cx - R)), 0), min(int(math.ceil(cx + R)) + 1, S)
        if y1 <= y0 or x1 <= x0:
            return None
        h, w = y1 - y0, x1 - x0
        dy = (np.arange(y0, y1, dtype=np.float32) - np.float32(cy))[:, None]
        dx = (np.arange(x0, x1, dtype=np.float32) - np.float32(cx))[None, :]
        u = (c * dx + s * dy) * (1.0 / (size * mx))
        v = (c * dy - s * dx) * (1.0 / (size * ay))

        full = []
        for e in ents:
            m = np.zeros((h, w), bool)
            for op, prim in e.shape:
                lcx, lcy, lr = prim.extent
                gx = cx + size * (c * mx * lcx - s * ay * lcy)
                gy = cy + size * (s * mx * lcx + c * ay * lcy)
                rr = lr * size * amax + 1.5
                wy0 = min(max(int(math.floor(gy - rr)) - y0, 0), h)
                wy1 = min(max(int(math.ceil(gy + rr)) + 1 - y0, 0), h)
                wx0 = min(max(int(math.floor(gx - rr)) - x0, 0), w)
                wx1 = min(max(int(math.ceil(gx + rr)) + 1 - x0, 0), w)
                win = (slice(wy0, wy1), slice(wx0, wx1))
                if op == "+":
                    if wy1 > wy0 and wx1 > wx0:
                        m[win] |= prim(u[win], v[win])
                elif op == "-":
                    if wy1 > wy0 and wx1 > wx0:
                        m[win] &= ~prim(u[win], v[win])
                else:  # "&"
                    keep = np.zeros((h, w), bool)
                    if wy1 > wy0 and wx1 > wx0:
                        keep[win] = prim(u[win], v[win])
                    m &= keep
            if e.parent >= 0:
                m &= full[e.parent]
            full.append(m)

        # paint, depth-first; fills contrast with what is already around each entity
        groups: dict = {}
        attrs = []
        pad = 2
        for e, m in zip(ents, full):
            rows = np.flatnonzero(m.any(1))
            if rows.size == 0:
                attrs.append(None)
                continue
            cols = np.flatnonzero(m.any(0))
            ey0, ey1, ex0, ex1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
            py0, py1 = max(ey0 - pad, 0), min(ey1 + pad, h)
            px0, px1 = max(ex0 - pad, 0), min(ex1 + pad, w)
            mw = m[py0:py1, px0:px1]
            cw = canvas[y0 + py0:y0 + py1, x0 + px0:x0 + px1]
            me = m[ey0:ey1, ex0:ex1]
            if e.group is not None and e.group in groups:
                fill, outline = groups[e.group]
            else:
                ring = _dilate(mw, pad) & ~mw
                ring_px = cw[ring].astype(np.int32)
                fill, forced = self._pick_fill(
                    rng, ring_px, (y0 + ey0, y0 + ey1, x0 + ex0, x0 + ex1, me), level=e.level)
                if fill.kind == "photo":
                    p_out = 1.0 if fill.params["tint"] is None else 0.5
                else:
                    p_out = self.outline_prob
                outline = None
                if forced or rng.random() < p_out:
                    width = 2 if (size >= 0.3 * S and e.level == 0) else 1
                    outline = ("dark", width) if _luma(fill.base) > 110 else ("bright", width)
                if e.group is not None:
                    groups[e.group] = (fill, outline)
            patch = fill.render(y0 + ey0, y0 + ey1, x0 + ex0, x0 + ex1)
            target = canvas[y0 + ey0:y0 + ey1, x0 + ex0:x0 + ex1]
            target[me] = patch[me]
            a = fill.attributes()
            a["shape"] = e.word
            if outline is not None and me.sum() >= 40:
                edge = mw & _dilate(~mw, outline[1])
                cw[edge] = 25 if outline[0] == "dark" else 235
                a["outline"] = outline[0]
            attrs.append(a)
        return (kind, (y0, y1, x0, x1), ents, full, attrs)

    # --------------------------------------------------------------------------------------------
    def _assemble(self, seed, canvas, objects, background) -> Scene:
        S = self.image_size
        occ = np.zeros((S, S), bool)
        vis_per_obj: list[list[np.ndarray]] = [[] for _ in objects]  # filled for every object below
        for k in range(len(objects) - 1, -1, -1):
            kind, (y0, y1, x0, x1), ents, full, _ = objects[k]
            n = len(ents)
            # end of each entity's subtree (entities are depth-first)
            ends = []
            for i, e in enumerate(ents):
                j = i + 1
                while j < n and ents[j].level > e.level:
                    j += 1
                ends.append(j)
            # cover[n]: later objects hide everything here; cover[i] (i < n) is set below
            cover: list[np.ndarray] = [occ[y0:y1, x0:x1].copy()] * (n + 1)
            for i in range(n - 1, -1, -1):
                cover[i] = cover[i + 1] | full[i]
            vis_per_obj[k] = [full[i] & ~cover[ends[i]] for i in range(n)]
            occ[y0:y1, x0:x1] |= full[0]

        out_masks, levels, parents, oids, names, attrs, full_areas = [], [], [], [], [], [], []
        oid = 0
        for k, (_kind, bbox, ents, full, eattrs) in enumerate(objects):
            vis = vis_per_obj[k]
            areas = [int(m.sum()) for m in vis]
            kept = [False] * len(ents)
            for i, e in enumerate(ents):
                if areas[i] < self.min_visible_pixels or eattrs[i] is None:
                    continue
                if e.level > 0 and (not kept[e.parent]
                                    or areas[i] > self.max_child_fraction * areas[e.parent]):
                    continue
                kept[i] = True
            if not kept[0] or not any(kept[i] for i, e in enumerate(ents) if e.level == 1):
                continue
            new_index = {}
            for i, e in enumerate(ents):
                if not kept[i]:
                    continue
                new_index[i] = len(out_masks)
                out_masks.append((bbox, vis[i]))
                levels.append(e.level)
                parents.append(-1 if e.parent < 0 else new_index[e.parent])
                oids.append(oid)
                names.append(e.name)
                attrs.append(dict(eattrs[i]))
                full_areas.append(int(full[i].sum()))
            oid += 1

        masks = np.zeros((len(out_masks), S, S), bool)
        for j, ((y0, y1, x0, x1), m) in enumerate(out_masks):
            masks[j, y0:y1, x0:x1] = m
        return Scene(
            image=canvas,
            masks=masks,
            levels=np.asarray(levels, np.int8),
            parents=np.asarray(parents, np.int32),
            object_ids=np.asarray(oids, np.int32),
            names=names,
            attributes=attrs,
            full_areas=np.asarray(full_areas, np.int64),
            background=background,
            seed=int(seed) if seed is not None else None,
        )
