"""The five object classes: how each looks, how to sample one, and how to draw it.

An object is an :class:`ObjectSpec` (class, centre, size, orientation, colour, surface
texture). :func:`render_sprite` draws it into a :class:`Sprite`: its exact binary mask
(``cv2.fillPoly`` without anti-aliasing, sub-pixel vertices) and its colours, in a patch
the size of its bounding box. Classes differ in outline *and* in colour/texture ranges,
which overlap a little (orange discs, cones and gold stars) so colour alone is not enough.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from labkit.data.synth.textures import hsv_to_rgb

_SHIFT = 4  # fixed-point bits of the polygon vertices given to cv2.fillPoly


@dataclass(frozen=True)
class ClassStyle:
    """Appearance ranges of one class. ``hues`` are (low, high) degree ranges picked with
    ``hue_weights``; ``minor`` is the second half-size as a fraction of the radius (for
    ``rod``: the full width in pixels)."""

    class_id: int
    name: str
    definition: str
    hues: tuple[tuple[float, float], ...]
    hue_weights: tuple[float, ...]
    sat: tuple[float, float]
    val: tuple[float, float]
    textures: tuple[str, ...]
    minor: tuple[float, float]


STYLES: dict[int, ClassStyle] = {s.class_id: s for s in (
    ClassStyle(1, "disc", "a filled circle or slightly squashed ellipse (axis ratio 0.8-1), shaded like a ball; "
               "red, orange or yellow", ((-20, 50),), (1.0,), (0.5, 0.95), (0.55, 1.0), ("shaded", "speckle"), (0.8, 1.0)),
    ClassStyle(2, "block", "a rotated rectangle (side ratio 0.45-1) with a checked or striped surface; mostly cyan to "
               "blue, sometimes orange", ((165, 255), (20, 45)), (0.85, 0.15), (0.35, 0.9), (0.4, 0.95),
               ("checker", "stripes"), (0.45, 1.0)),
    ClassStyle(3, "cone", "an isosceles triangle (base half-width 0.45-0.75 of its height), often banded like a "
               "traffic cone; orange to green", ((15, 140),), (1.0,), (0.55, 1.0), (0.5, 1.0), ("bands", "shaded"),
               (0.45, 0.75)),
    ClassStyle(4, "rod", "a thin, elongated rectangle 3-6 px wide and 12-90 px long, grey or brownish, "
               "shaded like a cylinder", ((0, 360),), (1.0,), (0.05, 0.45), (0.25, 0.85), ("cylinder",), (3, 6)),
    ClassStyle(5, "star", "a five-pointed star (inner radius 0.38-0.5 of the outer); gold or purple; rare "
               "(at most 5 % of instances)", ((40, 60), (270, 320)), (0.5, 0.5), (0.6, 1.0), (0.7, 1.0),
               ("speckle", "flat"), (0.38, 0.5)),
)}

#: Unlabelled clutter: irregular blobs drawn among the objects (background in every mask).
CLUTTER = ClassStyle(0, "clutter", "irregular polygon, not an object class", ((0, 360),), (1.0,), (0.05, 0.6),
                     (0.2, 0.9), ("speckle", "flat", "stripes"), (0.3, 0.6))

#: COCO category table of the dataset.
CATEGORIES = [{"id": s.class_id, "name": s.name, "supercategory": "shape"} for s in STYLES.values()]
#: Probability of each class for an ordinary object (star kept rare on purpose).
CLASS_PROBS = {1: 0.28, 2: 0.27, 3: 0.23, 4: 0.2, 5: 0.02}


@dataclass(frozen=True)
class ObjectSpec:
    """One object: class, centre (px), radius (half of its longest extent, px), second
    half-size ``minor`` (px), rotation (degrees), RGB colour in [0, 1], texture and the seed
    of its speckle."""

    class_id: int
    cx: float
    cy: float
    radius: float
    minor: float
    angle: float
    colour: tuple[float, float, float]
    texture: str
    seed: int

    def moved(self, dx: float, dy: float, dangle: float = 0.0) -> "ObjectSpec":
        """The same object shifted by ``(dx, dy)`` px and turned by ``dangle`` degrees."""
        return ObjectSpec(self.class_id, self.cx + dx, self.cy + dy, self.radius, self.minor,
                          self.angle + dangle, self.colour, self.texture, self.seed)


@dataclass
class Sprite:
    """A drawn object: top-left pixel ``(x0, y0)``, ``mask`` (h x w bool) and ``rgb``
    (h x w x 3 float32) of its bounding-box patch. ``full_area`` counts every mask pixel,
    inside the image or not."""

    x0: int
    y0: int
    mask: np.ndarray
    rgb: np.ndarray

    @property
    def full_area(self) -> int:
        return int(self.mask.sum())


def sample_class(rng: np.random.Generator, exclude: tuple[int, ...] = ()) -> int:
    """A class id drawn from :data:`CLASS_PROBS` (renormalised without ``exclude``)."""
    ids = [c for c in CLASS_PROBS if c not in exclude]
    p = np.array([CLASS_PROBS[c] for c in ids])
    return int(rng.choice(ids, p=p / p.sum()))


def sample_object(rng: np.random.Generator, class_id: int, cx: float, cy: float, radius: float) -> ObjectSpec:
    """An object of ``class_id`` (0 = :data:`CLUTTER`) centred at ``(cx, cy)`` with the given radius and a random
    orientation, shape ratio, colour and texture from the class's :class:`ClassStyle`."""
    s = STYLES.get(class_id, CLUTTER)
    lo, hi = s.hues[int(rng.choice(len(s.hues), p=s.hue_weights))]
    colour = hsv_to_rgb(rng.uniform(lo, hi), rng.uniform(*s.sat), rng.uniform(*s.val))
    minor_factor = rng.uniform(*s.minor)
    if s.name == "rod":
        radius, minor = max(radius, 6.0), minor_factor / 2
    else:
        minor = radius * minor_factor
    return ObjectSpec(class_id, float(cx), float(cy), float(radius), float(minor), float(rng.uniform(0, 360)),
                      tuple(float(c) for c in colour), str(rng.choice(s.textures)), int(rng.integers(2**31)))


def _outline(spec: ObjectSpec) -> np.ndarray:
    """Polygon vertices ``(K, 2)`` in the object's own frame (u along its axis, v across)."""
    r, m = spec.radius, spec.minor
    name = STYLES.get(spec.class_id, CLUTTER).name
    if name == "clutter":  # an irregular heptagon with random radii, fixed by the object's seed
        t = np.linspace(0, 2 * np.pi, 7, endpoint=False)
        rad = np.random.default_rng(spec.seed).uniform(m / r, 1.0, t.size) * r
        return np.column_stack([rad * np.cos(t), rad * np.sin(t)])
    if name == "disc":
        t = np.linspace(0, 2 * np.pi, max(24, int(np.pi * r)), endpoint=False)
        return np.column_stack([r * np.cos(t), m * np.sin(t)])
    if name in ("block", "rod"):
        return np.array([[-r, -m], [r, -m], [r, m], [-r, m]], dtype=np.float64)
    if name == "cone":
        return np.array([[-r, 0.0], [r, -m], [r, m]], dtype=np.float64)
    t = -np.pi / 2 + np.arange(10) * np.pi / 5
    rad = np.where(np.arange(10) % 2 == 0, r, m)
    return np.column_stack([rad * np.cos(t), rad * np.sin(t)])


def with_area(spec: ObjectSpec, area: float) -> ObjectSpec:
    """The same object scaled (radius and minor together) to a polygon area of ``area`` px²."""
    scale = np.sqrt(area / cv2.contourArea(_outline(spec).astype(np.float32)))
    return replace(spec, radius=spec.radius * scale, minor=spec.minor * scale)


def _shading(spec: ObjectSpec, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel brightness factor and the weight of a pale second colour (bands)."""
    r, m = spec.radius, max(spec.minor, 1.0)
    pale = np.zeros_like(u)
    if spec.texture == "shaded":
        d = (u / r) ** 2 + (v / m) ** 2
        shade = 1.1 - 0.45 * d - 0.18 * (u / r + v / m)
    elif spec.texture == "speckle":
        shade = 0.85 + 0.3 * np.random.default_rng(spec.seed).random(u.shape)
    elif spec.texture == "checker":
        p = max(r / 2.5, 3.0)
        shade = np.where((np.floor(u / p) + np.floor(v / p)) % 2 == 0, 1.0, 0.68)
        shade = shade * np.where(np.maximum(np.abs(u) / r, np.abs(v) / m) > 0.85, 0.75, 1.0)
    elif spec.texture == "stripes":
        shade = np.where(np.sin(u * 2 * np.pi / max(r / 2, 4.0)) > 0, 1.0, 0.7)
    elif spec.texture == "bands":
        shade = 1.0 - 0.25 * (u / r)
        pale = (np.sin(u * 2 * np.pi / max(r * 0.7, 5.0)) > 0.3).astype(np.float32)
    elif spec.texture == "cylinder":
        shade = 1.15 - 0.6 * (v / m) ** 2
    else:
        shade = np.ones_like(u)
    return np.clip(shade, 0.25, 1.3).astype(np.float32), pale.astype(np.float32)


def render_sprite(spec: ObjectSpec) -> Sprite:
    """Draw an object: exact mask of its polygon (pixel centres inside) and its colours."""
    a = np.deg2rad(spec.angle)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    pts = _outline(spec) @ rot.T + [spec.cx, spec.cy]
    x0, y0 = int(np.floor(pts[:, 0].min())) - 1, int(np.floor(pts[:, 1].min())) - 1
    x1, y1 = int(np.ceil(pts[:, 0].max())) + 1, int(np.ceil(pts[:, 1].max())) + 1
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    fixed = np.round((pts - [x0 + 0.5, y0 + 0.5]) * (1 << _SHIFT)).astype(np.int32)
    cv2.fillPoly(mask, [fixed], 1, lineType=cv2.LINE_8, shift=_SHIFT)
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5
    dx, dy = xs - spec.cx, ys - spec.cy
    u, v = dx * np.cos(a) + dy * np.sin(a), -dx * np.sin(a) + dy * np.cos(a)
    shade, pale = _shading(spec, u, v)
    colour = np.asarray(spec.colour, np.float32)
    rgb = colour * shade[..., None]
    rgb = rgb * (1 - pale[..., None]) + (0.35 * colour + 0.6) * pale[..., None]
    return Sprite(x0, y0, mask.astype(bool), np.clip(rgb, 0, 1).astype(np.float32))
