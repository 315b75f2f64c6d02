"""Compositing sprites into an image and reading annotations off the result.

:func:`composite` paints sprites back to front and keeps a *label map* (index of the
top-most sprite at every pixel, -1 for background), so an object's visible mask is simply
``label == index``: occlusion by later sprites and truncation at the image border come for
free, and masks, boxes and the semantic mask agree by construction.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from labkit.data.masks import mask_to_rle, rle_bbox
from labkit.data.synth.config import MIN_VISIBLE_PIXELS
from labkit.data.synth.shapes import Sprite

#: Semantic-mask value of crowd regions (not evaluated).
IGNORE = 255


def _window(sprite: Sprite, height: int, width: int) -> tuple[slice, slice, slice, slice] | None:
    """(image rows, image cols, sprite rows, sprite cols) where a sprite overlaps the image."""
    h, w = sprite.mask.shape
    ya, yb = max(sprite.y0, 0), min(sprite.y0 + h, height)
    xa, xb = max(sprite.x0, 0), min(sprite.x0 + w, width)
    if ya >= yb or xa >= xb:
        return None
    return (slice(ya, yb), slice(xa, xb), slice(ya - sprite.y0, yb - sprite.y0), slice(xa - sprite.x0, xb - sprite.x0))


def composite(canvas: np.ndarray, sprites: Sequence[Sprite]) -> tuple[np.ndarray, np.ndarray]:
    """Paint ``sprites`` (back to front) over a float ``H x W x 3`` canvas.

    Returns the image and the ``H x W`` int32 label map (sprite index on top, -1 = canvas).
    """
    height, width = canvas.shape[:2]
    img = canvas.copy()
    label = np.full((height, width), -1, np.int32)
    for i, sprite in enumerate(sprites):
        win = _window(sprite, height, width)
        if win is None:
            continue
        ri, ci, rs, cs = win
        m = sprite.mask[rs, cs]
        img[ri, ci][m] = sprite.rgb[rs, cs][m]
        label[ri, ci][m] = i
    return img, label


def visible_mask(label: np.ndarray, indices: Sequence[int]) -> np.ndarray:
    """``H x W`` bool: pixels where one of the sprites ``indices`` is on top."""
    return np.isin(label, np.asarray(indices, dtype=np.int32))


def union_mask(sprites: Sequence[Sprite], height: int, width: int) -> np.ndarray:
    """``H x W`` bool: every in-frame pixel of the sprites' full masks (occlusion ignored)."""
    out = np.zeros((height, width), bool)
    for sprite in sprites:
        win = _window(sprite, height, width)
        if win is not None:
            ri, ci, rs, cs = win
            out[ri, ci] |= sprite.mask[rs, cs]
    return out


def amodal_box(sprite: Sprite, height: int, width: int) -> tuple[float, float, float, float] | None:
    """The full (occluded parts included) tight box of a sprite, clipped to the image, as
    ``(x, y, w, h)``; ``None`` when nothing of it lies inside the image."""
    rows, cols = np.flatnonzero(sprite.mask.any(axis=1)), np.flatnonzero(sprite.mask.any(axis=0))
    if rows.size == 0:
        return None
    x1, y1 = max(sprite.x0 + cols[0], 0), max(sprite.y0 + rows[0], 0)
    x2, y2 = min(sprite.x0 + cols[-1] + 1, width), min(sprite.y0 + rows[-1] + 1, height)
    if x2 <= x1 or y2 <= y1:
        return None
    return float(x1), float(y1), float(x2 - x1), float(y2 - y1)


def instance_annotation(mask: np.ndarray, full_area: int, category_id: int, *, iscrowd: int = 0) -> dict | None:
    """COCO annotation fields of one visible mask: RLE ``segmentation``, tight ``bbox`` of the
    mask, ``area`` (visible pixels), ``iscrowd`` and ``visibility`` = visible / full pixels
    (full = the whole object, occluded and out-of-frame parts included), rounded to 4
    decimals. ``None`` when fewer than :data:`MIN_VISIBLE_PIXELS` pixels are visible."""
    visible = int(mask.sum())
    if visible < MIN_VISIBLE_PIXELS:
        return None
    rle = mask_to_rle(mask)
    return {"category_id": int(category_id), "bbox": rle_bbox(rle), "segmentation": rle, "area": float(visible),
            "iscrowd": int(iscrowd), "visibility": round(min(visible / max(full_area, 1), 1.0), 4)}


def semantic_mask(label: np.ndarray, values: Sequence[int]) -> np.ndarray:
    """uint8 semantic mask: ``values[i]`` where sprite ``i`` is on top, 0 on the canvas."""
    lut = np.zeros(len(values) + 1, np.uint8)
    lut[1:] = values
    return lut[label + 1]
