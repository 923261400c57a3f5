"""Shape primitives and object templates (object > part > subpart) for procedural scenes.

Templates describe an object in its own coordinates (u, v), the object spanning about
[-0.5, 0.5] x [-0.5, 0.5], v pointing down. Primitives are vectorised inside-tests on coordinate
grids (squared-distance tests for ellipses and rounded rectangles, crossing-number tests for
polygons); only ``+ - * /`` and comparisons touch arrays, so masks are bitwise reproducible.

Entities are listed depth-first (an entity's descendants directly follow it); an entity painted
later hides the earlier ones it is not a descendant of (petals under the flower's centre).

Every template draws its random numbers from the scene's generator, so the order and number of
draws in each template is part of the recorded scenes (``tests/test_scenes.py`` pins them):
renaming is safe, reordering any computation that draws is not.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["OBJECT_KINDS", "TEMPLATES", "Ellipse", "Entity", "Poly", "Rect", "rotation"]


# --------------------------------------------------------------------------------------------
# primitives
# --------------------------------------------------------------------------------------------

def _round_libm(x: float) -> float:
    """Round a libm result so that last-ulp differences between platforms disappear."""
    return round(x, 10)


def _unit_vectors(n: int, phase: float = 0.0) -> list[tuple[float, float]]:
    """n unit vectors (cos, sin) evenly spaced (rounded, platform independent), starting at angle ``phase`` turns."""
    return [(_round_libm(math.cos(2 * math.pi * (k / n + phase))),
             _round_libm(math.sin(2 * math.pi * (k / n + phase))))
            for k in range(n)]


def rotation(rng: np.random.Generator, max_deg: float) -> tuple[float, float]:
    """(cos, sin) of a random rotation within +-max_deg, from exact rational arithmetic.

    The angle is drawn as t = tan(angle / 2), so cos = (1 - t^2) / (1 + t^2) and
    sin = 2t / (1 + t^2) need no libm call (only the bound tan(max_deg / 2) does, rounded).
    """
    if max_deg >= 180:
        half_tan = rng.uniform(-1.0, 1.0)
        flip = rng.random() < 0.5
    else:
        max_half_tan = _round_libm(math.tan(math.radians(max_deg) / 2))
        half_tan = rng.uniform(-max_half_tan, max_half_tan)
        flip = False
    cos, sin = (1 - half_tan * half_tan) / (1 + half_tan * half_tan), 2 * half_tan / (1 + half_tan * half_tan)
    return (-cos, -sin) if flip else (cos, sin)


class Ellipse:
    """Ellipse centred at (cx, cy) with semi-axes (rx, ry), rotated by (cos, sin)."""

    def __init__(self, cx: float, cy: float, rx: float, ry: float, cos: float = 1.0, sin: float = 0.0) -> None:
        self.cx, self.cy, self.rx, self.ry, self.cos, self.sin = float(cx), float(cy), float(rx), float(ry), cos, sin
        self.extent = (self.cx, self.cy, max(self.rx, self.ry))  # (centre x, centre y, bounding radius)

    def __call__(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Inside-test on coordinate grids: u, v (broadcastable) -> bool array of their broadcast shape."""
        du = u - self.cx
        dv = v - self.cy
        if self.sin != 0.0:
            du, dv = self.cos * du + self.sin * dv, self.cos * dv - self.sin * du
        du = du * (1.0 / self.rx)
        dv = dv * (1.0 / self.ry)
        return du * du + dv * dv <= 1.0


def Circle(cx: float, cy: float, r: float) -> Ellipse:
    """Circle of radius ``r`` centred at (cx, cy): an :class:`Ellipse` with equal semi-axes."""
    return Ellipse(cx, cy, r, r)


class Rect:
    """Rectangle of half sizes (half_width, half_height), corners rounded with ``corner_radius``,
    rotated by (cos, sin)."""

    def __init__(self, cx: float, cy: float, half_width: float, half_height: float, corner_radius: float = 0.0,
                 cos: float = 1.0, sin: float = 0.0) -> None:
        self.cx, self.cy = float(cx), float(cy)
        self.half_width, self.half_height = float(half_width), float(half_height)
        self.corner_radius, self.cos, self.sin = float(min(corner_radius, half_width, half_height)), cos, sin
        self.extent = (self.cx, self.cy, math.hypot(self.half_width, self.half_height))  # (centre x, y, radius)

    def __call__(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Inside-test on coordinate grids: u, v (broadcastable) -> bool array of their broadcast shape."""
        du = u - self.cx
        dv = v - self.cy
        if self.sin != 0.0:
            du, dv = self.cos * du + self.sin * dv, self.cos * dv - self.sin * du
        du = np.abs(du)  # by symmetry, test in the first quadrant only
        dv = np.abs(dv)
        inside = (du <= self.half_width) & (dv <= self.half_height)
        if self.corner_radius > 0:
            # offsets from the centre of the corner's rounding circle; outside it, past both edges, is cut
            corner_du = du - (self.half_width - self.corner_radius)
            corner_dv = dv - (self.half_height - self.corner_radius)
            inside &= ~((corner_du > 0) & (corner_dv > 0)
                        & (corner_du * corner_du + corner_dv * corner_dv > self.corner_radius * self.corner_radius))
        return inside


class Poly:
    """Simple polygon (any, convex or not) by the even-odd crossing test."""

    def __init__(self, points: list[tuple[float, float]]) -> None:
        self.points = [(float(x), float(y)) for x, y in points]
        xs = [p[0] for p in self.points]
        ys = [p[1] for p in self.points]
        cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
        self.extent = (cx, cy, math.hypot(max(xs) - cx, max(ys) - cy))  # (box centre x, y, box half-diagonal)

    def __call__(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Inside-test on coordinate grids: u, v (broadcastable) -> bool array of their broadcast shape."""
        inside = np.zeros(np.broadcast_shapes(u.shape, v.shape), bool)
        points = self.points
        n = len(points)
        for i in range(n):
            x0, y0 = points[i]
            x1, y1 = points[(i + 1) % n]
            if y0 == y1:
                continue  # a horizontal edge is never crossed by a horizontal ray
            x_per_y = (x1 - x0) / (y1 - y0)
            # the edge spans the ray's height v and lies right of u: one more crossing
            inside ^= ((y0 > v) != (y1 > v)) & (u < x0 + (v - y0) * x_per_y)
        return inside


#: One primitive of a shape, and a shape: primitives combined in order by their operation.
Primitive = Ellipse | Rect | Poly
Shape = list[tuple[str, Primitive]]


def star(cx: float, cy: float, outer_radius: float, inner_radius: float, n_points: int = 5,
         cos: float = 1.0, sin: float = 0.0) -> Poly:
    """Star polygon with ``n_points`` tips, the first pointing up before rotation by (cos, sin)."""
    points = []
    for k, (unit_x, unit_y) in enumerate(_unit_vectors(2 * n_points, -0.25)):
        radius = outer_radius if k % 2 == 0 else inner_radius  # tips and notches alternate
        x, y = radius * unit_x, radius * unit_y
        points.append((cx + cos * x - sin * y, cy + sin * x + cos * y))
    return Poly(points)


def regular(cx: float, cy: float, radius: float, n_sides: int, cos: float = 1.0, sin: float = 0.0,
            phase: float = -0.25) -> Poly:
    """Regular polygon of circumradius ``radius``, first vertex at angle ``phase`` turns, rotated by (cos, sin)."""
    points = []
    for unit_x, unit_y in _unit_vectors(n_sides, phase):
        x, y = radius * unit_x, radius * unit_y
        points.append((cx + cos * x - sin * y, cy + sin * x + cos * y))
    return Poly(points)


def _rotate_and_place(points: list[tuple[float, float]], cx: float, cy: float, cos: float,
                      sin: float) -> list[tuple[float, float]]:
    """Points around the origin rotated by (cos, sin), then moved to centre (cx, cy)."""
    return [(cx + cos * x - sin * y, cy + sin * x + cos * y) for x, y in points]


def symbol(rng: np.random.Generator, cx: float, cy: float, r: float) -> tuple[Shape, str]:
    """A small pictogram of radius ~r: (shape list, word)."""
    kind = rng.choice(["star", "circle", "triangle", "diamond", "cross", "heart", "arrow", "hexagon"])
    cos, sin = rotation(rng, 25)
    if kind == "star":
        return [("+", star(cx, cy, r, r * rng.uniform(0.42, 0.55), int(rng.integers(5, 7)), cos, sin))], "star"
    if kind == "circle":
        return [("+", Circle(cx, cy, r * 0.85))], "circle"
    if kind == "triangle":
        return [("+", regular(cx, cy + 0.2 * r, r * 1.05, 3, cos, sin))], "triangle"
    if kind == "diamond":
        diamond = [(0, -r), (0.7 * r, 0), (0, r), (-0.7 * r, 0)]
        return [("+", Poly(_rotate_and_place(diamond, cx, cy, cos, sin)))], "diamond"
    if kind == "hexagon":
        return [("+", regular(cx, cy, r * 0.9, 6, cos, sin))], "hexagon"
    if kind == "cross":
        bar_half_width = r * 0.32
        return [("+", Rect(cx, cy, r * 0.9, bar_half_width, 0, cos, sin)),
                ("+", Rect(cx, cy, bar_half_width, r * 0.9, 0, cos, sin))], "cross"
    if kind == "heart":
        lobe = r * 0.45  # the two round lobes' offset from the centre (their radius is 1.05 x this)
        return [("+", Circle(cx - lobe, cy - 0.25 * r, lobe * 1.05)),
                ("+", Circle(cx + lobe, cy - 0.25 * r, lobe * 1.05)),
                ("+", Poly([(cx - 2.0 * lobe, cy - 0.1 * r), (cx + 2.0 * lobe, cy - 0.1 * r), (cx, cy + r)]))], "heart"
    # arrow
    arrow = [(-r, -0.3 * r), (0.1 * r, -0.3 * r), (0.1 * r, -0.8 * r), (r, 0), (0.1 * r, 0.8 * r),
             (0.1 * r, 0.3 * r), (-r, 0.3 * r)]
    return [("+", Poly(_rotate_and_place(arrow, cx, cy, cos, sin)))], "arrow"


# --------------------------------------------------------------------------------------------
# templates
# --------------------------------------------------------------------------------------------

@dataclass
class Entity:
    """One node of an object's hierarchy (the whole object, a part or a subpart) and how to draw it."""

    name: str
    level: int
    parent: int                 # index in the object's entity list, -1 for the whole object
    shape: Shape                # [(op, primitive)], op in "+" (union), "-" (cut), "&" (intersect)
    word: str                   # shape word for text prompts
    group: str | None = None    # entities of a group share one fill (both eyes)
    extra: dict = field(default_factory=dict)


#: A template: a random generator -> (the object's entities depth-first, its max rotation in degrees).
Template = Callable[[np.random.Generator], tuple[list[Entity], float]]


class _EntityList:
    """Collects an object's entities in paint order, giving each its level from its parent's."""

    def __init__(self) -> None:
        self.entities: list[Entity] = []

    def add(self, name: str, parent: int, shape: Shape | Primitive, word: str, group: str | None = None) -> int:
        """Append an entity (a lone primitive is a union of one); returns its index, for its children's ``parent``."""
        level = 0 if parent < 0 else self.entities[parent].level + 1
        if not isinstance(shape, list):
            shape = [("+", shape)]
        self.entities.append(Entity(name, level, parent, shape, word, group))
        return len(self.entities) - 1


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """One uniform draw in [low, high), as a Python float."""
    return float(rng.uniform(low, high))


def face(rng: np.random.Generator) -> tuple[list[Entity], float]:
    """A face: two eyes with pupils, maybe a nose, a mouth with a tongue or teeth."""
    parts = _EntityList()
    face_rx, face_ry = _uniform(rng, 0.38, 0.48), 0.48
    root = parts.add("face", -1, Ellipse(0, 0, face_rx, face_ry), "circle" if face_rx > 0.45 else "ellipse")
    eye_y, eye_x = _uniform(rng, -0.17, -0.08), _uniform(rng, 0.36, 0.45) * face_rx
    eye_rx = _uniform(rng, 0.1, 0.14)
    eye_ry = eye_rx * _uniform(rng, 0.75, 1.15)
    pupil_r = min(eye_rx, eye_ry) * _uniform(rng, 0.45, 0.62)
    gaze_x, gaze_y = _uniform(rng, -0.3, 0.3) * (eye_rx - pupil_r), _uniform(rng, -0.3, 0.3) * (eye_ry - pupil_r)
    eye_word = "circle" if abs(eye_rx - eye_ry) < 0.012 else "ellipse"
    for side in (-1, 1):
        eye = parts.add("eye", root, Ellipse(side * eye_x, eye_y, eye_rx, eye_ry), eye_word, "eye")
        parts.add("pupil", eye, Circle(side * eye_x + gaze_x, eye_y + gaze_y, pupil_r), "circle", "pupil")
    if rng.random() < 0.6:
        parts.add("nose", root, Poly([(0, eye_y + 0.06), (-0.055, 0.1), (0.055, 0.1)]), "triangle")
    mouth_y, mouth_rx, mouth_ry = _uniform(rng, 0.2, 0.27), _uniform(rng, 0.13, 0.22), _uniform(rng, 0.06, 0.1)
    if rng.random() < 0.5:
        mouth = parts.add("mouth", root, Ellipse(0, mouth_y, mouth_rx, mouth_ry), "ellipse")
    else:
        mouth = parts.add("mouth", root, Rect(0, mouth_y, mouth_rx, mouth_ry, mouth_ry * 0.6), "rounded rectangle")
    if rng.random() < 0.5:
        parts.add("tongue", mouth, Ellipse(0, mouth_y + mouth_ry * 0.45, mouth_rx * 0.5, mouth_ry * 0.6), "ellipse")
    else:
        parts.add("teeth", mouth, Rect(0, mouth_y - mouth_ry * 0.55, mouth_rx * 0.6, mouth_ry * 0.38), "rectangle")
    return parts.entities, 30


def wheel(rng: np.random.Generator) -> tuple[list[Entity], float]:
    """A wheel: a rim, its hub, maybe a ring of bolts."""
    parts = _EntityList()
    root = parts.add("wheel", -1, Circle(0, 0, 0.48), "circle")
    rim_r = _uniform(rng, 0.28, 0.35)
    rim = parts.add("rim", root, Circle(0, 0, rim_r), "circle")
    hub_r = rim_r * _uniform(rng, 0.3, 0.42)
    parts.add("hub", rim, Circle(0, 0, hub_r), "circle")
    if rng.random() < 0.6:
        n_bolts = int(rng.integers(4, 7))
        bolt_r = _uniform(rng, 0.035, 0.045)
        bolt_distance = (hub_r + rim_r) / 2
        for cos, sin in _unit_vectors(n_bolts, _uniform(rng, 0, 1)):
            parts.add("bolt", rim, Circle(bolt_distance * cos, bolt_distance * sin, bolt_r), "circle", "bolt")
    return parts.entities, 180


def target(rng: np.random.Generator) -> tuple[list[Entity], float]:
    """A target: a ring and a bullseye, all circles, squares or diamonds."""
    parts = _EntityList()
    outline = rng.choice(["circle", "square", "diamond"])

    def ring(radius: float) -> Primitive:
        """The target's outline at ``radius``."""
        if outline == "circle":
            return Circle(0, 0, radius)
        if outline == "square":
            return Rect(0, 0, radius * 0.9, radius * 0.9)
        return Poly([(0, -radius), (radius, 0), (0, radius), (-radius, 0)])

    root = parts.add("target", -1, ring(0.48), str(outline))
    ring_r = _uniform(rng, 0.28, 0.36)
    ring_id = parts.add("ring", root, ring(ring_r), str(outline))
    parts.add("bullseye", ring_id, ring(ring_r * _uniform(rng, 0.3, 0.5)), str(outline))
    return parts.entities, 180


def house(rng: np.random.Generator) -> tuple[list[Entity], float]:
    """A house: a roof with an attic window or a chimney, a door with a knob or window, paned windows."""
    parts = _EntityList()
    wall_top = _uniform(rng, -0.12, 0.0)
    half_width = _uniform(rng, 0.34, 0.42)
    walls = Rect(0, (wall_top + 0.48) / 2, half_width, (0.48 - wall_top) / 2)
    eave = _uniform(rng, 0.03, 0.08)
    roof = Poly([(-half_width - eave, wall_top), (half_width + eave, wall_top), (0, -0.48)])
    root = parts.add("house", -1, [("+", walls), ("+", roof)], "pentagon")
    roof_id = parts.add("roof", root, roof, "triangle")
    roof_height = wall_top + 0.48
    if rng.random() < 0.5:
        parts.add("attic window", roof_id, Circle(0, wall_top - roof_height * 0.38, roof_height * 0.17), "circle")
    else:
        parts.add("chimney", roof_id, Rect(half_width * 0.45, wall_top - roof_height * 0.4, 0.045, roof_height * 0.25),
                  "rectangle")
    door_hw = _uniform(rng, 0.08, 0.11)
    door_top = _uniform(rng, 0.12, 0.22)
    door_x = float(rng.choice([-1, 0, 1])) * (half_width - door_hw - 0.06) * _uniform(rng, 0.6, 1.0)
    door = parts.add("door", root, Rect(door_x, (door_top + 0.48) / 2 + 0.01, door_hw, (0.48 - door_top) / 2),
                     "rectangle")
    if rng.random() < 0.5:
        parts.add("knob", door, Circle(door_x + door_hw * 0.55, (door_top + 0.48) / 2 + 0.03, 0.028), "circle")
    else:
        parts.add("door window", door, Rect(door_x, door_top + 0.08, door_hw * 0.6, 0.05), "rectangle")
    window_hw = _uniform(rng, 0.09, 0.12)
    window_y = wall_top + _uniform(rng, 0.14, 0.2)
    window_xs = [x for x in (-half_width + window_hw + 0.05, half_width - window_hw - 0.05)
                 if abs(x - door_x) > door_hw + window_hw + 0.02]  # the two sides, where the door leaves room
    if not window_xs:
        window_xs = [0.0] if abs(door_x) > door_hw + window_hw + 0.02 else []
    four_panes = rng.random() < 0.6
    for window_x in window_xs:
        window = parts.add("window", root, Rect(window_x, window_y, window_hw, window_hw), "square", "window")
        frame = window_hw * 0.14  # width of the window's frame and mullions
        if four_panes:
            pane_hw = (2 * window_hw - 3 * frame) / 4
            for side_y in (-1, 1):
                for side_x in (-1, 1):
                    pane = Rect(window_x + side_x * (frame / 2 + pane_hw), window_y + side_y * (frame / 2 + pane_hw),
                                pane_hw, pane_hw)
                    parts.add("pane", window, pane, "square", "pane")
        else:
            pane_hw = (2 * window_hw - 3 * frame) / 4
            for side_x in (-1, 1):
                pane = Rect(window_x + side_x * (frame / 2 + pane_hw), window_y, pane_hw, window_hw - frame)
                parts.add("pane", window, pane, "rectangle", "pane")
    return parts.entities, 15


def flower(rng: np.random.Generator) -> tuple[list[Entity], float]:
    """A flower: a ring of petals, maybe spotted, under a centre with a dot or three seeds."""
    parts = _EntityList()
    n_petals = int(rng.integers(5, 9))
    centre_r = _uniform(rng, 0.13, 0.18)
    petal_distance = _uniform(rng, 0.26, 0.3)
    petal_rx = 0.49 - petal_distance
    petal_ry = petal_rx * _uniform(rng, 0.4, 0.6)
    petals = []
    for cos, sin in _unit_vectors(n_petals, _uniform(rng, 0, 1)):
        petals.append((Ellipse(petal_distance * cos, petal_distance * sin, petal_rx, petal_ry, cos, sin), cos, sin))
    centre = Circle(0, 0, centre_r)
    root = parts.add("flower", -1, [("+", petal) for petal, _, _ in petals] + [("+", centre)], "flower")
    spotted = rng.random() < 0.5
    for petal, cos, sin in petals:
        petal_id = parts.add("petal", root, petal, "ellipse", "petal")
        if spotted:
            spot_distance = petal_distance + petal_rx * 0.15
            spot = Ellipse(spot_distance * cos, spot_distance * sin, petal_rx * 0.5, petal_ry * 0.4, cos, sin)
            parts.add("petal spot", petal_id, spot, "ellipse", "spot")
    centre_id = parts.add("centre", root, centre, "circle")
    if rng.random() < 0.6:
        parts.add("dot", centre_id, Circle(0, 0, centre_r * _uniform(rng, 0.35, 0.5)), "circle")
    else:
        for cos, sin in _unit_vectors(3, _uniform(rng, 0, 1)):
            seed = Circle(centre_r * 0.45 * cos, centre_r * 0.45 * sin, centre_r * 0.28)
            parts.add("seed", centre_id, seed, "circle", "seed")
    return parts.entities, 180


def box(rng: np.random.Generator) -> tuple[list[Entity], float]:
    """A box: a label with a symbol, maybe a sticker with a dot."""
    parts = _EntityList()
    half_width, half_height = _uniform(rng, 0.38, 0.47), _uniform(rng, 0.28, 0.45)
    corner_r = _uniform(rng, 0.04, 0.09) if rng.random() < 0.4 else 0.0
    word = ("rounded " if corner_r else "") + ("square" if abs(half_width - half_height) < 0.04 else "rectangle")
    root = parts.add("box", -1, Rect(0, 0, half_width, half_height, corner_r), word)
    label_x, label_y = _uniform(rng, -0.1, 0.1) * half_width, _uniform(rng, -0.05, 0.2) * half_height
    label_hw, label_hh = half_width * _uniform(rng, 0.45, 0.6), half_height * _uniform(rng, 0.42, 0.58)
    label_shape = Rect(label_x, label_y, label_hw, label_hh, min(label_hw, label_hh) * _uniform(rng, 0.0, 0.4))
    label = parts.add("label", root, label_shape, "rectangle")
    symbol_shape, symbol_word = symbol(rng, label_x, label_y, min(label_hw, label_hh) * _uniform(rng, 0.55, 0.75))
    parts.add("symbol", label, symbol_shape, symbol_word)
    if rng.random() < 0.5:
        sticker_r = min(half_width, half_height) * 0.18
        sticker_x, sticker_y = -half_width + sticker_r * 1.4, -half_height + sticker_r * 1.4  # the top-left corner
        sticker = parts.add("sticker", root, Circle(sticker_x, sticker_y, sticker_r), "circle")
        if rng.random() < 0.5:
            parts.add("dot", sticker, Circle(sticker_x, sticker_y, sticker_r * 0.45), "circle")
    return parts.entities, 45


def car(rng: np.random.Generator) -> tuple[list[Entity], float]:
    """A car: two windows, a door with a handle, a headlight, two wheels with hubs."""
    parts = _EntityList()
    body = Rect(0, 0.1, 0.48, 0.15, _uniform(rng, 0.03, 0.08))
    cabin_front, cabin_back = _uniform(rng, 0.05, 0.22), _uniform(rng, -0.34, -0.22)
    cabin = Poly([(cabin_back - 0.04, -0.05), (cabin_front + 0.12, -0.05), (cabin_front, -0.32),
                  (cabin_back + 0.04, -0.32)])
    wheel_r = _uniform(rng, 0.11, 0.14)
    wheels = [Circle(x, 0.25, wheel_r) for x in (-0.28, 0.28)]
    root = parts.add("car", -1, [("+", body), ("+", cabin)] + [("+", w) for w in wheels], "car")
    pillar_x = (cabin_back + cabin_front) / 2 + 0.02  # between the two windows, above the door
    back_window = Poly([(cabin_back + 0.02, -0.08), (pillar_x - 0.02, -0.08), (pillar_x - 0.02, -0.28),
                        (cabin_back + 0.05, -0.28)])
    parts.add("window", root, back_window, "quadrilateral", "window")
    front_window = Poly([(pillar_x + 0.02, -0.08), (cabin_front + 0.08, -0.08), (cabin_front - 0.01, -0.28),
                         (pillar_x + 0.02, -0.28)])
    parts.add("window", root, front_window, "quadrilateral", "window")
    door = parts.add("door", root, Rect(pillar_x, 0.09, 0.13, 0.11, 0.02), "rectangle")
    parts.add("handle", door, Rect(pillar_x + 0.06, 0.03, 0.045, 0.018, 0.01), "rectangle")
    parts.add("headlight", root, Ellipse(0.44, 0.03, 0.045, 0.035), "ellipse")
    for wheel_shape in wheels:
        wheel_id = parts.add("wheel", root, wheel_shape, "circle", "wheel")
        hub = Circle(wheel_shape.cx, wheel_shape.cy, wheel_r * _uniform(rng, 0.4, 0.5))
        parts.add("hub", wheel_id, hub, "circle", "hub")
    return parts.entities, 15


def tree(rng: np.random.Generator) -> tuple[list[Entity], float]:
    """A tree: a trunk with a knot, three leafy clumps with 1-3 non-overlapping fruit each."""
    parts = _EntityList()
    trunk_hw = _uniform(rng, 0.06, 0.09)
    trunk = Rect(0, 0.28, trunk_hw, 0.22)
    # a cartoon canopy of three leafy clumps, each a part carrying its fruit
    top_r, side_r = _uniform(rng, 0.19, 0.24), _uniform(rng, 0.16, 0.2)
    spread = _uniform(rng, 0.17, 0.23)
    clumps = [Circle(-spread, -0.02, side_r), Circle(spread, -0.02, side_r), Circle(0, -0.48 + top_r, top_r)]
    silhouette: Shape = [("+", trunk), *[("+", clump) for clump in clumps]]
    root = parts.add("tree", -1, silhouette, "tree")
    trunk_id = parts.add("trunk", root, trunk, "rectangle")
    parts.add("knot", trunk_id, Ellipse(_uniform(rng, -0.3, 0.3) * trunk_hw, 0.34, trunk_hw * 0.5, 0.05), "ellipse")
    fruit_r = _uniform(rng, 0.04, 0.055)
    for clump in clumps:
        clump_id = parts.add("foliage", root, clump, "circle", "foliage")
        placed = []
        for _ in range(int(rng.integers(1, 4))):
            for _attempt in range(6):  # up to 6 tries to place a fruit clear of the others (2.4 radii apart)
                fruit_x = clump.cx + _uniform(rng, -0.6, 0.6) * (clump.rx - fruit_r)
                fruit_y = clump.cy + _uniform(rng, -0.6, 0.6) * (clump.rx - fruit_r)
                if all((fruit_x - other_x) * (fruit_x - other_x) + (fruit_y - other_y) * (fruit_y - other_y)
                       > 5.76 * fruit_r * fruit_r for other_x, other_y in placed):
                    placed.append((fruit_x, fruit_y))
                    parts.add("fruit", clump_id, Circle(fruit_x, fruit_y, fruit_r), "circle", "fruit")
                    break
    return parts.entities, 10


def ladybug(rng: np.random.Generator) -> tuple[list[Entity], float]:
    """A ladybug: a head with two eyes, two wings (halves of the body) with 1-3 spots each."""
    parts = _EntityList()
    body_ry = _uniform(rng, 0.36, 0.4)
    body = Ellipse(0, 0.08, _uniform(rng, 0.32, 0.38), body_ry)
    head = Ellipse(0, 0.08 - body_ry, _uniform(rng, 0.17, 0.22), 0.12)
    root = parts.add("ladybug", -1, [("+", body), ("+", head)], "oval")
    head_id = parts.add("head", root, head, "ellipse")
    for side in (-1, 1):
        parts.add("eye", head_id, Circle(side * 0.08, 0.08 - body_ry - 0.04, 0.04), "circle", "eye")
    gap = _uniform(rng, 0.008, 0.025)  # between the two wings
    for side in (-1, 1):
        wing = [("+", body), ("&", Rect(side * (0.3 + gap), 0.08, 0.3, 0.5))]
        wing_id = parts.add("wing", root, wing, "half ellipse", "wing")
        spot_r = _uniform(rng, 0.05, 0.075)
        for spot_x, spot_y in ((0.16, -0.08), (0.12, 0.2), (0.26, 0.08))[: int(rng.integers(1, 4))]:
            parts.add("spot", wing_id, Circle(side * spot_x, spot_y, spot_r), "circle", "spot")
    return parts.entities, 180


def robot(rng: np.random.Generator) -> tuple[list[Entity], float]:
    """A robot: a head with eyes and a mouth, a body with a screen and buttons, arms with hands."""
    parts = _EntityList()
    head_hw = _uniform(rng, 0.18, 0.26)
    head = Rect(0, -0.3, head_hw, 0.17, _uniform(rng, 0.0, 0.06))
    neck = Rect(0, -0.1, 0.05, 0.05)
    body_hw = _uniform(rng, 0.26, 0.34)
    body = Rect(0, 0.22, body_hw, 0.24, 0.03)
    arms = [Rect(side * (body_hw + 0.07), 0.2, 0.055, 0.18, 0.03) for side in (-1, 1)]
    silhouette: Shape = [("+", head), ("+", neck), ("+", body), *[("+", arm) for arm in arms]]
    root = parts.add("robot", -1, silhouette, "robot")
    head_id = parts.add("head", root, head, "rounded rectangle")
    eye_r = _uniform(rng, 0.04, 0.06)
    square_eyes = rng.random() < 0.4
    for side in (-1, 1):
        eye_x = side * head_hw * 0.45
        eye = Rect(eye_x, -0.35, eye_r, eye_r) if square_eyes else Circle(eye_x, -0.35, eye_r)
        parts.add("eye", head_id, eye, "square" if square_eyes else "circle", "eye")
    parts.add("mouth", head_id, Rect(0, -0.22, head_hw * 0.55, 0.03), "rectangle")
    body_id = parts.add("body", root, body, "rounded rectangle")
    parts.add("screen", body_id, Rect(0, 0.14, body_hw * 0.65, 0.1, 0.02), "rectangle")
    for column in (-1, 0, 1)[: int(rng.integers(2, 4))]:
        parts.add("button", body_id, Circle(column * body_hw * 0.4, 0.34, 0.045), "circle", "button")
    for arm in arms:
        arm_id = parts.add("arm", root, arm, "rounded rectangle", "arm")
        parts.add("hand", arm_id, Circle(arm.cx, arm.cy + arm.half_height - 0.05, 0.045), "circle", "hand")
    return parts.entities, 15


#: Pip positions of a die face with 1..6 pips, in units of the pip spacing from the face's centre.
_DIE_PIPS = {
    1: [(0, 0)], 2: [(-1, -1), (1, 1)], 3: [(-1, -1), (0, 0), (1, 1)],
    4: [(-1, -1), (1, -1), (-1, 1), (1, 1)], 5: [(-1, -1), (1, -1), (0, 0), (-1, 1), (1, 1)],
    6: [(-1, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (1, 1)],
}


def die(rng: np.random.Generator) -> tuple[list[Entity], float]:
    """A die: a panel with 1-6 pips."""
    parts = _EntityList()
    root = parts.add("die", -1, Rect(0, 0, 0.45, 0.45, _uniform(rng, 0.05, 0.12)), "rounded square")
    panel = parts.add("panel", root, Rect(0, 0, 0.36, 0.36, _uniform(rng, 0.02, 0.08)), "rounded square")
    n_pips = int(rng.integers(1, 7))
    pip_r = _uniform(rng, 0.05, 0.065)
    for x, y in _DIE_PIPS[n_pips]:
        parts.add("pip", panel, Circle(x * 0.2, y * 0.2, pip_r), "circle", "pip")
    return parts.entities, 180


def fish(rng: np.random.Generator) -> tuple[list[Entity], float]:
    """A fish: a tail (maybe spotted), a fin, maybe a stripe, an eye with a pupil."""
    parts = _EntityList()
    body_ry = _uniform(rng, 0.18, 0.26)
    body = Ellipse(0.06, 0, 0.38, body_ry)
    tail = Poly([(-0.24, 0), (-0.49, -0.22), (-0.49, 0.22)])
    fin = Poly([(-0.08, -body_ry + 0.05), (0.16, -body_ry + 0.04), (-0.02, -body_ry - 0.12)])
    root = parts.add("fish", -1, [("+", tail), ("+", fin), ("+", body)], "fish")
    tail_id = parts.add("tail", root, tail, "triangle")
    if rng.random() < 0.6:
        parts.add("tail spot", tail_id, Circle(-0.41, 0, 0.06), "circle")
    parts.add("fin", root, fin, "triangle")
    if rng.random() < 0.5:
        parts.add("stripe", root, [("+", Rect(_uniform(rng, -0.12, 0.0), 0, 0.04, 0.4)), ("&", body)], "band")
    eye = parts.add("eye", root, Circle(0.29, -body_ry * 0.25, 0.065), "circle")
    parts.add("pupil", eye, Circle(0.3, -body_ry * 0.25, 0.032), "circle")
    return parts.entities, 45


def signpost(rng: np.random.Generator) -> tuple[list[Entity], float]:
    """A signpost: a pole on a base with one sign (circle, octagon, square, diamond) or two direction boards."""
    parts = _EntityList()
    pole_hw = _uniform(rng, 0.03, 0.045)
    pole = Rect(0, 0.02, pole_hw, 0.48)
    two_boards = rng.random() < 0.6
    boards = []  # (shape, kind, centre y, radius)
    for board_index in range(2 if two_boards else 1):
        kind = rng.choice(["arrow", "rectangle"] if two_boards else ["circle", "octagon", "square", "diamond"])
        board_y = (-0.3 if board_index == 0 else 0.02) if two_boards else -0.22
        board_r = _uniform(rng, 0.13, 0.15) if two_boards else _uniform(rng, 0.18, 0.22)
        if kind == "circle":
            board = Circle(0, board_y, board_r)
        elif kind == "octagon":
            board = regular(0, board_y, board_r, 8, phase=1 / 16)
        elif kind == "square":
            board = Rect(0, board_y, board_r * 0.88, board_r * 0.88, 0.02)
        elif kind == "diamond":
            board = Poly([(0, board_y - board_r), (board_r, board_y), (0, board_y + board_r), (-board_r, board_y)])
        else:  # a direction board, pointing left or right
            direction = 1.0 if rng.random() < 0.5 else -1.0
            half_length = _uniform(rng, 0.38, 0.46)
            half_height = board_r * 0.7
            if kind == "arrow":
                outline = [(-half_length, board_y - half_height), (half_length - half_height, board_y - half_height),
                           (half_length, board_y), (half_length - half_height, board_y + half_height),
                           (-half_length, board_y + half_height)]
            else:
                outline = [(-half_length, board_y - half_height), (half_length, board_y - half_height),
                           (half_length, board_y + half_height), (-half_length, board_y + half_height)]
            board = Poly([(direction * x, y) for x, y in outline])
        boards.append((board, str(kind), board_y, board_r))
    base = Rect(0, 0.47, _uniform(rng, 0.1, 0.16), 0.03)
    silhouette: Shape = [("+", pole), ("+", base), *[("+", board) for board, _, _, _ in boards]]
    root = parts.add("signpost", -1, silhouette, "signpost")
    parts.add("pole", root, pole, "rectangle")
    parts.add("base", root, base, "rectangle")
    for board, kind, board_y, board_r in boards:
        sign_id = parts.add("sign", root, board, kind, "sign")
        if kind in ("arrow", "rectangle"):
            shape, word = symbol(rng, 0, board_y, board_r * 0.5)
        else:
            shape, word = symbol(rng, 0, board_y, board_r * (0.45 if kind == "diamond" else 0.58))
        parts.add("symbol", sign_id, shape, word)
    return parts.entities, 15


#: Every object template by kind: ``TEMPLATES[kind](rng) -> (entities, max rotation in degrees)``.
TEMPLATES: dict[str, Template] = {
    "face": face, "wheel": wheel, "target": target, "house": house, "flower": flower, "box": box,
    "car": car, "tree": tree, "ladybug": ladybug, "robot": robot, "die": die, "fish": fish, "signpost": signpost,
}
OBJECT_KINDS = tuple(TEMPLATES)
