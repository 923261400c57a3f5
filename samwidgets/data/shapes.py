"""Shape primitives and object templates (object > part > subpart) for procedural scenes.

Templates describe an object in its own coordinates (u, v), the object spanning about
[-0.5, 0.5] x [-0.5, 0.5], v pointing down. Primitives are vectorised inside-tests on coordinate
grids (squared-distance tests for ellipses and rounded rectangles, crossing-number tests for
polygons); only ``+ - * /`` and comparisons touch arrays, so masks are bitwise reproducible.

Entities are listed depth-first (an entity's descendants directly follow it); an entity painted
later hides the earlier ones it is not a descendant of (petals under the flower's centre).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["OBJECT_KINDS", "TEMPLATES", "Ellipse", "Rect", "Poly", "Entity", "rotation"]


# --------------------------------------------------------------------------------------------
# primitives
# --------------------------------------------------------------------------------------------

def _r(x: float) -> float:
    """Round a libm result so that last-ulp differences between platforms disappear."""
    return round(x, 10)


def _table(n: int, phase: float = 0.0) -> list[tuple[float, float]]:
    """n unit vectors evenly spaced (rounded, platform independent), starting at angle ``phase`` turns."""
    return [(_r(math.cos(2 * math.pi * (k / n + phase))), _r(math.sin(2 * math.pi * (k / n + phase))))
            for k in range(n)]


def rotation(rng: np.random.Generator, max_deg: float) -> tuple[float, float]:
    """(cos, sin) of a random rotation within +-max_deg, from exact rational arithmetic."""
    if max_deg >= 180:
        t = rng.uniform(-1.0, 1.0)
        flip = rng.random() < 0.5
    else:
        tmax = _r(math.tan(math.radians(max_deg) / 2))
        t = rng.uniform(-tmax, tmax)
        flip = False
    c, s = (1 - t * t) / (1 + t * t), 2 * t / (1 + t * t)
    return (-c, -s) if flip else (c, s)


class Ellipse:
    def __init__(self, cx, cy, rx, ry, c=1.0, s=0.0):
        self.cx, self.cy, self.rx, self.ry, self.c, self.s = float(cx), float(cy), float(rx), float(ry), c, s
        self.extent = (self.cx, self.cy, max(self.rx, self.ry))

    def __call__(self, u, v):
        a = u - self.cx
        b = v - self.cy
        if self.s != 0.0:
            a, b = self.c * a + self.s * b, self.c * b - self.s * a
        a = a * (1.0 / self.rx)
        b = b * (1.0 / self.ry)
        return a * a + b * b <= 1.0


def Circle(cx, cy, r):
    return Ellipse(cx, cy, r, r)


class Rect:
    """Rectangle of half sizes (hw, hh), corners rounded with radius ``r``, rotated by (c, s)."""

    def __init__(self, cx, cy, hw, hh, r=0.0, c=1.0, s=0.0):
        self.cx, self.cy, self.hw, self.hh = float(cx), float(cy), float(hw), float(hh)
        self.r, self.c, self.s = float(min(r, hw, hh)), c, s
        self.extent = (self.cx, self.cy, math.hypot(self.hw, self.hh))

    def __call__(self, u, v):
        a = u - self.cx
        b = v - self.cy
        if self.s != 0.0:
            a, b = self.c * a + self.s * b, self.c * b - self.s * a
        a = np.abs(a)
        b = np.abs(b)
        inside = (a <= self.hw) & (b <= self.hh)
        if self.r > 0:
            qa = a - (self.hw - self.r)
            qb = b - (self.hh - self.r)
            inside &= ~((qa > 0) & (qb > 0) & (qa * qa + qb * qb > self.r * self.r))
        return inside


class Poly:
    """Simple polygon (any, convex or not) by the even-odd crossing test."""

    def __init__(self, pts):
        self.pts = [(float(x), float(y)) for x, y in pts]
        xs = [p[0] for p in self.pts]
        ys = [p[1] for p in self.pts]
        cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
        self.extent = (cx, cy, math.hypot(max(xs) - cx, max(ys) - cy))

    def __call__(self, u, v):
        inside = np.zeros(np.broadcast_shapes(u.shape, v.shape), bool)
        pts = self.pts
        n = len(pts)
        for i in range(n):
            x0, y0 = pts[i]
            x1, y1 = pts[(i + 1) % n]
            if y0 == y1:
                continue
            k = (x1 - x0) / (y1 - y0)
            inside ^= ((y0 > v) != (y1 > v)) & (u < x0 + (v - y0) * k)
        return inside


def star(cx, cy, ro, ri, n=5, c=1.0, s=0.0):
    pts = []
    for k, (a, b) in enumerate(_table(2 * n, -0.25)):
        r = ro if k % 2 == 0 else ri
        x, y = r * a, r * b
        pts.append((cx + c * x - s * y, cy + s * x + c * y))
    return Poly(pts)


def regular(cx, cy, r, n, c=1.0, s=0.0, phase=-0.25):
    pts = []
    for a, b in _table(n, phase):
        x, y = r * a, r * b
        pts.append((cx + c * x - s * y, cy + s * x + c * y))
    return Poly(pts)


def _rot_pts(pts, cx, cy, c, s):
    return [(cx + c * x - s * y, cy + s * x + c * y) for x, y in pts]


def symbol(rng, cx, cy, r):
    """A small pictogram of radius ~r: (shape list, word)."""
    kind = rng.choice(["star", "circle", "triangle", "diamond", "cross", "heart", "arrow", "hexagon"])
    c, s = rotation(rng, 25)
    if kind == "star":
        return [("+", star(cx, cy, r, r * rng.uniform(0.42, 0.55), int(rng.integers(5, 7)), c, s))], "star"
    if kind == "circle":
        return [("+", Circle(cx, cy, r * 0.85))], "circle"
    if kind == "triangle":
        return [("+", regular(cx, cy + 0.2 * r, r * 1.05, 3, c, s))], "triangle"
    if kind == "diamond":
        return [("+", Poly(_rot_pts([(0, -r), (0.7 * r, 0), (0, r), (-0.7 * r, 0)], cx, cy, c, s)))], "diamond"
    if kind == "hexagon":
        return [("+", regular(cx, cy, r * 0.9, 6, c, s))], "hexagon"
    if kind == "cross":
        t = r * 0.32
        return [("+", Rect(cx, cy, r * 0.9, t, 0, c, s)), ("+", Rect(cx, cy, t, r * 0.9, 0, c, s))], "cross"
    if kind == "heart":
        q = r * 0.45
        return [("+", Circle(cx - q, cy - 0.25 * r, q * 1.05)), ("+", Circle(cx + q, cy - 0.25 * r, q * 1.05)),
                ("+", Poly([(cx - 2.0 * q, cy - 0.1 * r), (cx + 2.0 * q, cy - 0.1 * r), (cx, cy + r)]))], "heart"
    # arrow
    pts = [(-r, -0.3 * r), (0.1 * r, -0.3 * r), (0.1 * r, -0.8 * r), (r, 0), (0.1 * r, 0.8 * r),
           (0.1 * r, 0.3 * r), (-r, 0.3 * r)]
    return [("+", Poly(_rot_pts(pts, cx, cy, c, s)))], "arrow"


# --------------------------------------------------------------------------------------------
# templates
# --------------------------------------------------------------------------------------------

@dataclass
class Entity:
    name: str
    level: int
    parent: int                 # index in the object's entity list, -1 for the whole object
    shape: list                 # [(op, primitive)], op in "+" (union), "-" (cut), "&" (intersect)
    word: str                   # shape word for text prompts
    group: str | None = None    # entities of a group share one fill (both eyes)
    extra: dict = field(default_factory=dict)


class _Builder:
    def __init__(self):
        self.ents: list[Entity] = []

    def add(self, name, parent, shape, word, group=None) -> int:
        level = 0 if parent < 0 else self.ents[parent].level + 1
        if not isinstance(shape, list):
            shape = [("+", shape)]
        self.ents.append(Entity(name, level, parent, shape, word, group))
        return len(self.ents) - 1


def _u(rng, a, b):
    return float(rng.uniform(a, b))


def face(rng):
    b = _Builder()
    rx, ry = _u(rng, 0.38, 0.48), 0.48
    root = b.add("face", -1, Ellipse(0, 0, rx, ry), "circle" if rx > 0.45 else "ellipse")
    ey, ex = _u(rng, -0.17, -0.08), _u(rng, 0.36, 0.45) * rx
    erx = _u(rng, 0.1, 0.14)
    ery = erx * _u(rng, 0.75, 1.15)
    pr = min(erx, ery) * _u(rng, 0.45, 0.62)
    gx, gy = _u(rng, -0.3, 0.3) * (erx - pr), _u(rng, -0.3, 0.3) * (ery - pr)
    eye_word = "circle" if abs(erx - ery) < 0.012 else "ellipse"
    for side in (-1, 1):
        e = b.add("eye", root, Ellipse(side * ex, ey, erx, ery), eye_word, "eye")
        b.add("pupil", e, Circle(side * ex + gx, ey + gy, pr), "circle", "pupil")
    if rng.random() < 0.6:
        b.add("nose", root, Poly([(0, ey + 0.06), (-0.055, 0.1), (0.055, 0.1)]), "triangle")
    my, mrx, mry = _u(rng, 0.2, 0.27), _u(rng, 0.13, 0.22), _u(rng, 0.06, 0.1)
    if rng.random() < 0.5:
        m = b.add("mouth", root, Ellipse(0, my, mrx, mry), "ellipse")
    else:
        m = b.add("mouth", root, Rect(0, my, mrx, mry, mry * 0.6), "rounded rectangle")
    if rng.random() < 0.5:
        b.add("tongue", m, Ellipse(0, my + mry * 0.45, mrx * 0.5, mry * 0.6), "ellipse")
    else:
        b.add("teeth", m, Rect(0, my - mry * 0.55, mrx * 0.6, mry * 0.38), "rectangle")
    return b.ents, 30


def wheel(rng):
    b = _Builder()
    root = b.add("wheel", -1, Circle(0, 0, 0.48), "circle")
    rr = _u(rng, 0.28, 0.35)
    rim = b.add("rim", root, Circle(0, 0, rr), "circle")
    hr = rr * _u(rng, 0.3, 0.42)
    b.add("hub", rim, Circle(0, 0, hr), "circle")
    if rng.random() < 0.6:
        n = int(rng.integers(4, 7))
        br = _u(rng, 0.035, 0.045)
        d = (hr + rr) / 2
        for a, s in _table(n, _u(rng, 0, 1)):
            b.add("bolt", rim, Circle(d * a, d * s, br), "circle", "bolt")
    return b.ents, 180


def target(rng):
    b = _Builder()
    shape = rng.choice(["circle", "square", "diamond"])

    def ring(r):
        if shape == "circle":
            return Circle(0, 0, r)
        if shape == "square":
            return Rect(0, 0, r * 0.9, r * 0.9)
        return Poly([(0, -r), (r, 0), (0, r), (-r, 0)])

    root = b.add("target", -1, ring(0.48), str(shape))
    r1 = _u(rng, 0.28, 0.36)
    ring_id = b.add("ring", root, ring(r1), str(shape))
    b.add("bullseye", ring_id, ring(r1 * _u(rng, 0.3, 0.5)), str(shape))
    return b.ents, 180


def house(rng):
    b = _Builder()
    top = _u(rng, -0.12, 0.0)
    hw = _u(rng, 0.34, 0.42)
    walls = Rect(0, (top + 0.48) / 2, hw, (0.48 - top) / 2)
    eave = _u(rng, 0.03, 0.08)
    roof = Poly([(-hw - eave, top), (hw + eave, top), (0, -0.48)])
    root = b.add("house", -1, [("+", walls), ("+", roof)], "pentagon")
    rid = b.add("roof", root, roof, "triangle")
    rh = top + 0.48
    if rng.random() < 0.5:
        b.add("attic window", rid, Circle(0, top - rh * 0.38, rh * 0.17), "circle")
    else:
        b.add("chimney", rid, Rect(hw * 0.45, top - rh * 0.4, 0.045, rh * 0.25), "rectangle")
    dw = _u(rng, 0.08, 0.11)
    dtop = _u(rng, 0.12, 0.22)
    dx = float(rng.choice([-1, 0, 1])) * (hw - dw - 0.06) * _u(rng, 0.6, 1.0)
    door = b.add("door", root, Rect(dx, (dtop + 0.48) / 2 + 0.01, dw, (0.48 - dtop) / 2), "rectangle")
    if rng.random() < 0.5:
        b.add("knob", door, Circle(dx + dw * 0.55, (dtop + 0.48) / 2 + 0.03, 0.028), "circle")
    else:
        b.add("door window", door, Rect(dx, dtop + 0.08, dw * 0.6, 0.05), "rectangle")
    ww = _u(rng, 0.09, 0.12)
    wy = top + _u(rng, 0.14, 0.2)
    slots = [x for x in (-hw + ww + 0.05, hw - ww - 0.05) if abs(x - dx) > dw + ww + 0.02]
    if not slots:
        slots = [0.0] if abs(dx) > dw + ww + 0.02 else []
    four = rng.random() < 0.6
    for wx in slots:
        w = b.add("window", root, Rect(wx, wy, ww, ww), "square", "window")
        f = ww * 0.14
        if four:
            p = (2 * ww - 3 * f) / 4
            for sy in (-1, 1):
                for sx in (-1, 1):
                    b.add("pane", w, Rect(wx + sx * (f / 2 + p), wy + sy * (f / 2 + p), p, p), "square", "pane")
        else:
            p = (2 * ww - 3 * f) / 4
            for sx in (-1, 1):
                b.add("pane", w, Rect(wx + sx * (f / 2 + p), wy, p, ww - f), "rectangle", "pane")
    return b.ents, 15


def flower(rng):
    b = _Builder()
    n = int(rng.integers(5, 9))
    cr = _u(rng, 0.13, 0.18)
    d = _u(rng, 0.26, 0.3)
    prx = 0.49 - d
    pry = prx * _u(rng, 0.4, 0.6)
    petals = []
    for a, s in _table(n, _u(rng, 0, 1)):
        petals.append((Ellipse(d * a, d * s, prx, pry, a, s), a, s))
    centre = Circle(0, 0, cr)
    root = b.add("flower", -1, [("+", p) for p, _, _ in petals] + [("+", centre)], "flower")
    mark = rng.random() < 0.5
    for p, a, s in petals:
        pid = b.add("petal", root, p, "ellipse", "petal")
        if mark:
            dd = d + prx * 0.15
            b.add("petal spot", pid, Ellipse(dd * a, dd * s, prx * 0.5, pry * 0.4, a, s), "ellipse", "spot")
    c = b.add("centre", root, centre, "circle")
    if rng.random() < 0.6:
        b.add("dot", c, Circle(0, 0, cr * _u(rng, 0.35, 0.5)), "circle")
    else:
        for a, s in _table(3, _u(rng, 0, 1)):
            b.add("seed", c, Circle(cr * 0.45 * a, cr * 0.45 * s, cr * 0.28), "circle", "seed")
    return b.ents, 180


def box(rng):
    b = _Builder()
    hw, hh = _u(rng, 0.38, 0.47), _u(rng, 0.28, 0.45)
    rr = _u(rng, 0.04, 0.09) if rng.random() < 0.4 else 0.0
    word = ("rounded " if rr else "") + ("square" if abs(hw - hh) < 0.04 else "rectangle")
    root = b.add("box", -1, Rect(0, 0, hw, hh, rr), word)
    lx, ly = _u(rng, -0.1, 0.1) * hw, _u(rng, -0.05, 0.2) * hh
    lhw, lhh = hw * _u(rng, 0.45, 0.6), hh * _u(rng, 0.42, 0.58)
    lab = b.add("label", root, Rect(lx, ly, lhw, lhh, min(lhw, lhh) * _u(rng, 0.0, 0.4)), "rectangle")
    shape, sword = symbol(rng, lx, ly, min(lhw, lhh) * _u(rng, 0.55, 0.75))
    b.add("symbol", lab, shape, sword)
    if rng.random() < 0.5:
        sr = min(hw, hh) * 0.18
        st = b.add("sticker", root, Circle(-hw + sr * 1.4, -hh + sr * 1.4, sr), "circle")
        if rng.random() < 0.5:
            b.add("dot", st, Circle(-hw + sr * 1.4, -hh + sr * 1.4, sr * 0.45), "circle")
    return b.ents, 45


def car(rng):
    b = _Builder()
    body = Rect(0, 0.1, 0.48, 0.15, _u(rng, 0.03, 0.08))
    cf, cb = _u(rng, 0.05, 0.22), _u(rng, -0.34, -0.22)
    cabin = Poly([(cb - 0.04, -0.05), (cf + 0.12, -0.05), (cf, -0.32), (cb + 0.04, -0.32)])
    wr = _u(rng, 0.11, 0.14)
    wheels = [Circle(x, 0.25, wr) for x in (-0.28, 0.28)]
    root = b.add("car", -1, [("+", body), ("+", cabin)] + [("+", w) for w in wheels], "car")
    mid = (cb + cf) / 2 + 0.02
    b.add("window", root, Poly([(cb + 0.02, -0.08), (mid - 0.02, -0.08), (mid - 0.02, -0.28), (cb + 0.05, -0.28)]),
          "quadrilateral", "window")
    b.add("window", root, Poly([(mid + 0.02, -0.08), (cf + 0.08, -0.08), (cf - 0.01, -0.28), (mid + 0.02, -0.28)]),
          "quadrilateral", "window")
    door = b.add("door", root, Rect(mid, 0.09, 0.13, 0.11, 0.02), "rectangle")
    b.add("handle", door, Rect(mid + 0.06, 0.03, 0.045, 0.018, 0.01), "rectangle")
    hl = b.add("headlight", root, Ellipse(0.44, 0.03, 0.045, 0.035), "ellipse")
    del hl
    for w in wheels:
        wid = b.add("wheel", root, w, "circle", "wheel")
        b.add("hub", wid, Circle(w.cx, w.cy, wr * _u(rng, 0.4, 0.5)), "circle", "hub")
    return b.ents, 15


def tree(rng):
    b = _Builder()
    tw = _u(rng, 0.06, 0.09)
    trunk = Rect(0, 0.28, tw, 0.22)
    # a cartoon canopy of three leafy clumps, each a part carrying its fruit
    rt, rs = _u(rng, 0.19, 0.24), _u(rng, 0.16, 0.2)
    spread = _u(rng, 0.17, 0.23)
    clumps = [Circle(-spread, -0.02, rs), Circle(spread, -0.02, rs), Circle(0, -0.48 + rt, rt)]
    root = b.add("tree", -1, [("+", trunk)] + [("+", c) for c in clumps], "tree")
    t = b.add("trunk", root, trunk, "rectangle")
    b.add("knot", t, Ellipse(_u(rng, -0.3, 0.3) * tw, 0.34, tw * 0.5, 0.05), "ellipse")
    fr = _u(rng, 0.04, 0.055)
    for clump in clumps:
        cid = b.add("foliage", root, clump, "circle", "foliage")
        placed = []
        for _ in range(int(rng.integers(1, 4))):
            for _try in range(6):
                fx = clump.cx + _u(rng, -0.6, 0.6) * (clump.rx - fr)
                fy = clump.cy + _u(rng, -0.6, 0.6) * (clump.rx - fr)
                if all((fx - px) * (fx - px) + (fy - py) * (fy - py) > 5.76 * fr * fr for px, py in placed):
                    placed.append((fx, fy))
                    b.add("fruit", cid, Circle(fx, fy, fr), "circle", "fruit")
                    break
    return b.ents, 10


def ladybug(rng):
    b = _Builder()
    bry = _u(rng, 0.36, 0.4)
    body = Ellipse(0, 0.08, _u(rng, 0.32, 0.38), bry)
    head = Ellipse(0, 0.08 - bry, _u(rng, 0.17, 0.22), 0.12)
    root = b.add("ladybug", -1, [("+", body), ("+", head)], "oval")
    h = b.add("head", root, head, "ellipse")
    for side in (-1, 1):
        b.add("eye", h, Circle(side * 0.08, 0.08 - bry - 0.04, 0.04), "circle", "eye")
    gap = _u(rng, 0.008, 0.025)
    for side in (-1, 1):
        wing = [("+", body), ("&", Rect(side * (0.3 + gap), 0.08, 0.3, 0.5))]
        w = b.add("wing", root, wing, "half ellipse", "wing")
        sr = _u(rng, 0.05, 0.075)
        for sx, sy in ((0.16, -0.08), (0.12, 0.2), (0.26, 0.08))[: int(rng.integers(1, 4))]:
            b.add("spot", w, Circle(side * sx, sy, sr), "circle", "spot")
    return b.ents, 180


def robot(rng):
    b = _Builder()
    hw = _u(rng, 0.18, 0.26)
    head = Rect(0, -0.3, hw, 0.17, _u(rng, 0.0, 0.06))
    neck = Rect(0, -0.1, 0.05, 0.05)
    bw = _u(rng, 0.26, 0.34)
    body = Rect(0, 0.22, bw, 0.24, 0.03)
    arms = [Rect(sx * (bw + 0.07), 0.2, 0.055, 0.18, 0.03) for sx in (-1, 1)]
    root = b.add("robot", -1, [("+", head), ("+", neck), ("+", body)] + [("+", a) for a in arms], "robot")
    h = b.add("head", root, head, "rounded rectangle")
    er = _u(rng, 0.04, 0.06)
    sq = rng.random() < 0.4
    for sx in (-1, 1):
        e = Rect(sx * hw * 0.45, -0.35, er, er) if sq else Circle(sx * hw * 0.45, -0.35, er)
        b.add("eye", h, e, "square" if sq else "circle", "eye")
    b.add("mouth", h, Rect(0, -0.22, hw * 0.55, 0.03), "rectangle")
    bd = b.add("body", root, body, "rounded rectangle")
    b.add("screen", bd, Rect(0, 0.14, bw * 0.65, 0.1, 0.02), "rectangle")
    for sx in (-1, 0, 1)[: int(rng.integers(2, 4))]:
        b.add("button", bd, Circle(sx * bw * 0.4, 0.34, 0.045), "circle", "button")
    for a in arms:
        arm = b.add("arm", root, a, "rounded rectangle", "arm")
        b.add("hand", arm, Circle(a.cx, a.cy + a.hh - 0.05, 0.045), "circle", "hand")
    return b.ents, 15


_PIPS = {
    1: [(0, 0)], 2: [(-1, -1), (1, 1)], 3: [(-1, -1), (0, 0), (1, 1)],
    4: [(-1, -1), (1, -1), (-1, 1), (1, 1)], 5: [(-1, -1), (1, -1), (0, 0), (-1, 1), (1, 1)],
    6: [(-1, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (1, 1)],
}


def die(rng):
    b = _Builder()
    root = b.add("die", -1, Rect(0, 0, 0.45, 0.45, _u(rng, 0.05, 0.12)), "rounded square")
    p = b.add("panel", root, Rect(0, 0, 0.36, 0.36, _u(rng, 0.02, 0.08)), "rounded square")
    n = int(rng.integers(1, 7))
    pr = _u(rng, 0.05, 0.065)
    for x, y in _PIPS[n]:
        b.add("pip", p, Circle(x * 0.2, y * 0.2, pr), "circle", "pip")
    return b.ents, 180


def fish(rng):
    b = _Builder()
    bry = _u(rng, 0.18, 0.26)
    body = Ellipse(0.06, 0, 0.38, bry)
    tail = Poly([(-0.24, 0), (-0.49, -0.22), (-0.49, 0.22)])
    fin = Poly([(-0.08, -bry + 0.05), (0.16, -bry + 0.04), (-0.02, -bry - 0.12)])
    root = b.add("fish", -1, [("+", tail), ("+", fin), ("+", body)], "fish")
    t = b.add("tail", root, tail, "triangle")
    if rng.random() < 0.6:
        b.add("tail spot", t, Circle(-0.41, 0, 0.06), "circle")
    b.add("fin", root, fin, "triangle")
    if rng.random() < 0.5:
        b.add("stripe", root, [("+", Rect(_u(rng, -0.12, 0.0), 0, 0.04, 0.4)), ("&", body)], "band")
    e = b.add("eye", root, Circle(0.29, -bry * 0.25, 0.065), "circle")
    b.add("pupil", e, Circle(0.3, -bry * 0.25, 0.032), "circle")
    return b.ents, 45


def signpost(rng):
    b = _Builder()
    pw = _u(rng, 0.03, 0.045)
    pole = Rect(0, 0.02, pw, 0.48)
    two = rng.random() < 0.6
    boards, symbols = [], []
    for k in range(2 if two else 1):
        kind = rng.choice(["arrow", "rectangle"] if two else ["circle", "octagon", "square", "diamond"])
        by = (-0.3 if k == 0 else 0.02) if two else -0.22
        br = _u(rng, 0.13, 0.15) if two else _u(rng, 0.18, 0.22)
        if kind == "circle":
            board = Circle(0, by, br)
        elif kind == "octagon":
            board = regular(0, by, br, 8, phase=1 / 16)
        elif kind == "square":
            board = Rect(0, by, br * 0.88, br * 0.88, 0.02)
        elif kind == "diamond":
            board = Poly([(0, by - br), (br, by), (0, by + br), (-br, by)])
        else:  # a direction board, pointing left or right
            d = 1.0 if rng.random() < 0.5 else -1.0
            L = _u(rng, 0.38, 0.46)
            hb = br * 0.7
            if kind == "arrow":
                pts = [(-L, by - hb), (L - hb, by - hb), (L, by), (L - hb, by + hb), (-L, by + hb)]
            else:
                pts = [(-L, by - hb), (L, by - hb), (L, by + hb), (-L, by + hb)]
            board = Poly([(d * x, y) for x, y in pts])
        boards.append((board, str(kind), by, br))
    base = Rect(0, 0.47, _u(rng, 0.1, 0.16), 0.03)
    root = b.add("signpost", -1, [("+", pole), ("+", base)] + [("+", bd) for bd, _, _, _ in boards], "signpost")
    b.add("pole", root, pole, "rectangle")
    b.add("base", root, base, "rectangle")
    for board, kind, by, br in boards:
        bd = b.add("sign", root, board, kind, "sign")
        if kind in ("arrow", "rectangle"):
            shape, word = symbol(rng, 0, by, br * 0.5)
        else:
            shape, word = symbol(rng, 0, by, br * (0.45 if kind == "diamond" else 0.58))
        b.add("symbol", bd, shape, word)
    return b.ents, 15


TEMPLATES = {
    "face": face, "wheel": wheel, "target": target, "house": house, "flower": flower, "box": box,
    "car": car, "tree": tree, "ladybug": ladybug, "robot": robot, "die": die, "fish": fish, "signpost": signpost,
}
OBJECT_KINDS = tuple(TEMPLATES)
