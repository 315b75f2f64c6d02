"""Procedural textures: scene palettes and textured backgrounds.

Every function takes a ``numpy.random.Generator`` and returns float32 RGB arrays in ``[0, 1]``
(``H x W x 3``), so they compose by simple arithmetic before the final 8-bit conversion.
"""

from __future__ import annotations

import cv2
import numpy as np

PATTERNS = ("noise", "stripes", "tiles", "blobs")


def hsv_to_rgb(hue_deg: float, sat: float, val: float) -> np.ndarray:
    """One colour from hue (degrees), saturation and value in ``[0, 1]`` to float RGB."""
    pixel = np.array([[[hue_deg % 360.0, sat, val]]], dtype=np.float32)
    return cv2.cvtColor(pixel, cv2.COLOR_HSV2RGB)[0, 0]


def scene_palette(rng: np.random.Generator) -> np.ndarray:
    """Four related colours (``4 x 3`` float RGB): an analogous hue family around a random base
    hue, one darker and one lighter, plus a contrasting accent."""
    base = rng.uniform(0, 360)
    sat = rng.uniform(0.1, 0.6)
    return np.stack([
        hsv_to_rgb(base, sat, rng.uniform(0.35, 0.6)),
        hsv_to_rgb(base + rng.uniform(-40, 40), sat * rng.uniform(0.5, 1.2), rng.uniform(0.55, 0.85)),
        hsv_to_rgb(base + rng.uniform(-25, 25), min(sat * 1.3, 1.0), rng.uniform(0.2, 0.45)),
        hsv_to_rgb(base + 180 + rng.uniform(-30, 30), rng.uniform(0.1, 0.5), rng.uniform(0.4, 0.8)),
    ])


def value_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Smooth noise in ``[0, 1]``: a random grid with spacing ``cell`` px, bicubically upsampled."""
    gh, gw = int(np.ceil(height / cell)) + 2, int(np.ceil(width / cell)) + 2
    grid = rng.random((gh, gw)).astype(np.float32)
    big = cv2.resize(grid, (int(gw * cell), int(gh * cell)), interpolation=cv2.INTER_CUBIC)
    return np.clip(big[:height, :width], 0.0, 1.0)


def _coords(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return xs, ys


def _pattern(rng: np.random.Generator, kind: str, height: int, width: int) -> np.ndarray:
    """A ``[0, 1]`` weight map of one pattern kind."""
    xs, ys = _coords(height, width)
    if kind == "noise":
        return value_noise(rng, height, width, rng.uniform(12, 60))
    if kind == "stripes":
        theta, period = rng.uniform(0, np.pi), rng.uniform(10, 40)
        phase = (xs * np.cos(theta) + ys * np.sin(theta)) * (2 * np.pi / period)
        soft = rng.uniform(0.5, 4)
        return 0.5 + 0.5 * np.tanh(soft * np.sin(phase))
    if kind == "tiles":
        tw, th = rng.uniform(14, 48), rng.uniform(14, 48)
        cells = (np.floor(xs / tw) + np.floor(ys / th)) % 2
        grout = ((xs % tw) < 1.5) | ((ys % th) < 1.5)
        return np.where(grout, 0.2, 0.3 + 0.5 * cells).astype(np.float32)
    blobs = np.zeros((height, width), np.float32)
    for _ in range(int(rng.integers(4, 12))):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.integers(8, max(9, width // 4))), int(rng.integers(8, max(9, height // 4))))
        cv2.ellipse(blobs, centre, axes, float(rng.uniform(0, 180)), 0, 360, float(rng.uniform(0.4, 1.0)), -1)
    return cv2.GaussianBlur(blobs, (0, 0), rng.uniform(2, 8))


def background(rng: np.random.Generator, height: int, width: int, palette: np.ndarray) -> np.ndarray:
    """A textured ``H x W x 3`` float background: a linear gradient between two palette colours,
    one or two pattern layers (value noise, stripes, tiles, blobs) tinted with the others, and
    fine grain."""
    xs, ys = _coords(height, width)
    theta = rng.uniform(0, 2 * np.pi)
    ramp = xs * np.cos(theta) + ys * np.sin(theta)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    img = palette[0] * (1 - ramp[..., None]) + palette[1] * ramp[..., None]
    n_layers = int(rng.integers(1, 3))
    for kind in rng.choice(PATTERNS, size=n_layers, replace=False):
        weight = _pattern(rng, str(kind), height, width)[..., None] * rng.uniform(0.35, 0.8)
        img = img * (1 - weight) + palette[int(rng.integers(2, 4))] * weight
    grain = value_noise(rng, height, width, 2.0)[..., None] - 0.5
    img = img * (1 + rng.uniform(0.04, 0.12) * grain)
    return np.clip(img, 0.0, 1.0).astype(np.float32)
