"""Mask encodings: COCO polygons, COCO RLE (compressed), and raster arrays.

All conversions go through pycocotools' ``mask`` API, the reference implementation of the
COCO run-length encoding (https://cocodataset.org/#format-data, "segmentation").
RLE ``counts`` are kept as ``str`` so they survive JSON.
"""

from __future__ import annotations

import warnings
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from labkit.errors import DataError


def _to_json_rle(rle: dict) -> dict:
    counts = rle["counts"]
    return {"size": [int(rle["size"][0]), int(rle["size"][1])],
            "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}


def mask_to_rle(mask: np.ndarray) -> dict:
    """``(H, W)`` bool/0-1 mask -> compressed COCO RLE with a ``str`` ``counts``."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise DataError(f"a mask must be 2-D, got shape {m.shape}")
    return _to_json_rle(mask_utils.encode(np.asfortranarray(m.astype(np.uint8))))


def rle_to_mask(rle: dict) -> np.ndarray:
    """COCO RLE (compressed or uncompressed) -> ``(H, W)`` bool mask."""
    return segmentation_to_mask(rle, int(rle["size"][0]), int(rle["size"][1]))


def _frpy(segm: Any, height: int, width: int) -> dict:
    if isinstance(segm, dict):
        if "size" not in segm or "counts" not in segm:
            raise DataError("RLE segmentation needs 'size' and 'counts'")
        if [int(segm["size"][0]), int(segm["size"][1])] != [height, width]:
            raise DataError(f"RLE size {segm['size']} differs from the image size {[height, width]}")
        if isinstance(segm["counts"], list):  # uncompressed RLE
            return mask_utils.frPyObjects(segm, height, width)
        counts = segm["counts"]
        return {"size": [height, width], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    if isinstance(segm, list):
        polys = [p for p in segm if len(p) >= 6]
        if len(polys) != len(segm) or not polys:
            raise DataError("each polygon needs at least 3 points (6 numbers)")
        return mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
    raise DataError(f"segmentation must be a polygon list or an RLE dict, got {type(segm).__name__}")


def segmentation_to_rle(segm: Any, height: int, width: int) -> dict:
    """Any COCO segmentation (polygons, RLE) -> compressed RLE with ``str`` counts."""
    return _to_json_rle(_frpy(segm, height, width))


def segmentation_to_mask(segm: Any, height: int, width: int) -> np.ndarray:
    """Any COCO segmentation -> ``(H, W)`` bool mask."""
    with warnings.catch_warnings():
        # pycocotools 2.0.x trips NumPy 2's copy-keyword deprecation inside decode; harmless
        warnings.filterwarnings("ignore", message="__array__ implementation", category=DeprecationWarning)
        return mask_utils.decode(_frpy(segm, height, width)).astype(bool)


def segmentation_area(segm: Any, height: int, width: int) -> float:
    """Pixel area of a COCO segmentation, as pycocotools computes it."""
    return float(mask_utils.area(_frpy(segm, height, width)))


def rle_bbox(rle: dict) -> list[float]:
    """Tight ``[x, y, w, h]`` box of an RLE (pycocotools ``toBbox``)."""
    h, w = int(rle["size"][0]), int(rle["size"][1])
    return [float(v) for v in mask_utils.toBbox(_frpy(rle, h, w))]


def box_to_mask(xywh: np.ndarray, height: int, width: int) -> np.ndarray:
    """Filled box as a mask (pixels whose centres lie inside the box)."""
    x, y, w, h = (float(v) for v in xywh)
    out = np.zeros((height, width), dtype=bool)
    x0, y0 = max(int(np.ceil(x - 0.5)), 0), max(int(np.ceil(y - 0.5)), 0)
    x1, y1 = min(int(np.ceil(x + w - 0.5)), width), min(int(np.ceil(y + h - 0.5)), height)
    if x1 > x0 and y1 > y0:  # a box wholly left of or above the image has x1 or y1 < 0: no wrap-around
        out[y0:y1, x0:x1] = True
    return out


def mask_to_polygons(mask: np.ndarray, min_points: int = 3) -> list[list[float]]:
    """Outer contours of a mask as COCO polygons (lossy: holes and sub-pixel detail are lost).

    Contour points are pixel centres, so a polygon rasterised back by pycocotools covers the
    same pixels up to the boundary row/column.
    """
    m = np.ascontiguousarray(np.asarray(mask).astype(np.uint8))
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    polys = []
    for c in contours:
        if len(c) >= min_points:
            polys.append([float(v) for v in c.reshape(-1)])
    return polys
