"""Tiled inference for images larger than the network's input.

The image is covered by ``tile``-sized windows that overlap by ``overlap`` pixels (the last row
and column of windows are shifted back inside the image, so every window is full-size); each
window's class scores are weighted by a window function that is 1 in the middle and ramps down
towards the window edges that touch a neighbour, summed, and normalised by the summed weights.
Averaging (rather than pasting) removes seams: a model whose output does not depend on the
position gives exactly the same result as on the whole image (tested with a constant model).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from labkit.errors import DataError


def tile_origins(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets along one axis: stride ``tile - overlap``, last window flush with the end."""
    if tile <= 0 or not 0 <= overlap < tile:
        raise DataError(f"need tile > 0 and 0 <= overlap < tile, got tile={tile}, overlap={overlap}")
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


def _ramp(length: int, overlap: int, left: bool, right: bool) -> np.ndarray:
    w = np.ones(length, dtype=np.float64)
    if overlap > 0:
        ramp = (np.arange(overlap) + 0.5) / overlap
        if left:
            w[:overlap] = np.minimum(w[:overlap], ramp)
        if right:
            w[-overlap:] = np.minimum(w[-overlap:], ramp[::-1])
    return w


def predict_tiled(image: np.ndarray, predict: Callable[[np.ndarray], np.ndarray], *, tile: int, overlap: int,
                  num_classes: int) -> np.ndarray:
    """Class scores ``(K, H, W)`` for an ``(H, W, C)`` image from a model that maps a
    ``(tile, tile, C)`` (or smaller, for small images) crop to ``(K, h, w)`` scores.

    Take ``argmax(axis=0)`` for the label map. Images smaller than ``tile`` go through in one call.
    """
    if image.ndim != 3:
        raise DataError(f"expected an (H, W, C) image, got shape {image.shape}")
    h, w = image.shape[:2]
    ys, xs = tile_origins(h, tile, overlap), tile_origins(w, tile, overlap)
    scores = np.zeros((num_classes, h, w), dtype=np.float64)
    weights = np.zeros((h, w), dtype=np.float64)
    for yi, y in enumerate(ys):
        for xi, x in enumerate(xs):
            crop = image[y:y + tile, x:x + tile]
            out = np.asarray(predict(crop), dtype=np.float64)
            if out.shape != (num_classes,) + crop.shape[:2]:
                raise DataError(f"model returned shape {out.shape} for a crop of {crop.shape[:2]}; "
                                f"expected {(num_classes,) + crop.shape[:2]}")
            wy = _ramp(crop.shape[0], overlap, yi > 0, yi < len(ys) - 1)
            wx = _ramp(crop.shape[1], overlap, xi > 0, xi < len(xs) - 1)
            win = wy[:, None] * wx[None, :]
            scores[:, y:y + tile, x:x + tile] += out * win
            weights[y:y + tile, x:x + tile] += win
    return scores / weights
