"""Camera artifacts with recorded parameters, and the camera pipeline that applies them.

:func:`sample_artifacts` draws the artifacts of one image as a JSON-ready dict (stored in
the image entry's ``artifacts`` field; ``{}`` for a clean image). :func:`develop` turns a
float scene render into the 8-bit image a :class:`~labkit.data.synth.config.Camera` with
those artifacts would record, in physical order: weather in the scene (fog, rain), blur
(motion, defocus), the device's optics/white balance/vignetting, low light, sensor noise.
JPEG compression (``jpeg`` artifact) happens when the file is written (:func:`jpeg_quality`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

import cv2
import numpy as np

from labkit.data.synth.config import JPEG_QUALITY, Camera

KINDS = ("motion_blur", "defocus_blur", "sensor_noise", "low_light", "jpeg", "rain", "fog")


def _params(rng: np.random.Generator, kind: str) -> dict[str, Any]:
    """Random parameters of one artifact kind (rounded: what is recorded is what is applied)."""
    if kind == "motion_blur":
        return {"length": int(rng.integers(5, 16)), "angle": round(float(rng.uniform(0, 180)), 1)}
    if kind == "defocus_blur":
        return {"radius": int(rng.integers(2, 6))}
    if kind == "sensor_noise":
        return {"sigma": round(float(rng.uniform(6, 20)), 1)}
    if kind == "low_light":
        return {"gamma": round(float(rng.uniform(1.6, 2.8)), 2), "gain": round(float(rng.uniform(0.45, 0.75)), 2),
                "noise_sigma": round(float(rng.uniform(3, 9)), 1)}
    if kind == "jpeg":
        return {"quality": int(rng.integers(10, 36))}
    if kind == "rain":
        return {"streaks": int(rng.integers(80, 260)), "length": int(rng.integers(8, 21)),
                "angle": round(float(rng.uniform(70, 110)), 1), "intensity": round(float(rng.uniform(0.25, 0.6)), 2)}
    if kind == "fog":
        return {"density": round(float(rng.uniform(0.25, 0.6)), 2)}
    raise ValueError(f"unknown artifact kind {kind!r}")


def sample_artifacts(rng: np.random.Generator, probability: float, kinds: Sequence[str] = KINDS) -> dict[str, dict]:
    """With ``probability``, one (70 %) or two (30 %) artifacts of distinct ``kinds`` with
    random parameters; else ``{}``. Keys are kinds in :data:`KINDS` order."""
    if rng.random() >= probability:
        return {}
    n = 1 if rng.random() < 0.7 else 2
    chosen = set(rng.choice(list(kinds), size=min(n, len(kinds)), replace=False).tolist())
    return {k: _params(rng, k) for k in KINDS if k in chosen}


def _line_kernel(length: int, angle_deg: float) -> np.ndarray:
    k = np.zeros((length, length), np.float32)
    c = (length - 1) / 2
    dx, dy = np.cos(np.deg2rad(angle_deg)) * c, np.sin(np.deg2rad(angle_deg)) * c
    cv2.line(k, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))), 1.0, 1)
    return k / k.sum()


def _disc_kernel(radius: int) -> np.ndarray:
    k = np.zeros((2 * radius + 1, 2 * radius + 1), np.float32)
    cv2.circle(k, (radius, radius), radius, 1.0, -1)
    return k / k.sum()


def _rain(img: np.ndarray, p: dict, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    layer = np.zeros((h, w), np.float32)
    a = np.deg2rad(p["angle"])
    starts = rng.uniform([0, -p["length"]], [w, h], size=(p["streaks"], 2))
    ends = starts + p["length"] * np.array([np.cos(a), np.sin(a)])
    for (x1, y1), (x2, y2) in zip(starts.astype(int), ends.astype(int)):
        cv2.line(layer, (int(x1), int(y1)), (int(x2), int(y2)), 1.0, 1)
    layer = cv2.GaussianBlur(layer, (3, 3), 0)[..., None] * p["intensity"]
    return img * (1 - layer) + 0.9 * layer


@lru_cache(maxsize=16)
def _vignette(h: int, w: int, strength: float) -> np.ndarray:
    """Brightness factor ``H x W x 1`` falling off quadratically to the corners (read-only)."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xs - w / 2) / (w / 2)) ** 2 + ((ys - h / 2) / (h / 2)) ** 2
    return (1 - strength * r2 / 2)[..., None]


def develop(scene: np.ndarray, camera: Camera, artifacts: dict[str, dict], rng: np.random.Generator) -> np.ndarray:
    """Float ``H x W x 3`` RGB scene in [0, 1] -> the uint8 RGB image the camera records."""
    img = scene.astype(np.float32)
    h, w = img.shape[:2]
    if "fog" in artifacts:
        depth = np.linspace(1.0, 0.6, h, dtype=np.float32)[:, None, None]  # denser towards the top
        t = artifacts["fog"]["density"] * depth
        img = img * (1 - t) + 0.82 * t
    if "rain" in artifacts:
        img = _rain(img, artifacts["rain"], rng)
    if "motion_blur" in artifacts:
        p = artifacts["motion_blur"]
        img = cv2.filter2D(img, -1, _line_kernel(p["length"], p["angle"]), borderType=cv2.BORDER_REFLECT)
    if "defocus_blur" in artifacts:
        img = cv2.filter2D(img, -1, _disc_kernel(artifacts["defocus_blur"]["radius"]), borderType=cv2.BORDER_REFLECT)
    if camera.blur_sigma > 0:
        img = cv2.GaussianBlur(img, (0, 0), camera.blur_sigma)
    img = img * np.asarray(camera.gains, np.float32) * _vignette(h, w, camera.vignette)
    sigma = camera.noise_sigma
    if "low_light" in artifacts:
        p = artifacts["low_light"]
        img = p["gain"] * np.clip(img, 0, 1) ** p["gamma"]
        sigma = np.hypot(sigma, p["noise_sigma"])
    if "sensor_noise" in artifacts:
        sigma = np.hypot(sigma, artifacts["sensor_noise"]["sigma"])
    img = img + rng.standard_normal(img.shape, dtype=np.float32) * np.float32(sigma / 255.0)
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def jpeg_quality(artifacts: dict[str, dict]) -> int:
    """JPEG quality to save with: the ``jpeg`` artifact's, else the default."""
    return int(artifacts["jpeg"]["quality"]) if "jpeg" in artifacts else JPEG_QUALITY
