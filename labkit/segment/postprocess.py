"""Mask post-processing with small, explicit operations (OpenCV / scikit-image).

Each function takes a 2-D boolean mask (or a label map where stated) and returns a new array;
nothing is modified in place. Thin structures are the usual casualty of morphology: an opening
with a kernel wider than the structure deletes it, which the tests demonstrate.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from labkit.errors import DataError


def _mask(mask: np.ndarray) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim != 2:
        raise DataError(f"expected a 2-D mask, got shape {m.shape}")
    return m.astype(bool)


def _kernel(size: int, shape: str) -> np.ndarray:
    if size < 1:
        raise DataError(f"kernel size must be >= 1, got {size}")
    kinds = {"ellipse": cv2.MORPH_ELLIPSE, "rect": cv2.MORPH_RECT, "cross": cv2.MORPH_CROSS}
    if shape not in kinds:
        raise DataError(f"kernel shape must be one of {sorted(kinds)}, got {shape!r}")
    return cv2.getStructuringElement(kinds[shape], (size, size))


def opening(mask: np.ndarray, size: int = 3, shape: str = "ellipse") -> np.ndarray:
    """Erosion then dilation: removes specks narrower than the kernel (and thin parts too)."""
    return cv2.morphologyEx(_mask(mask).astype(np.uint8), cv2.MORPH_OPEN, _kernel(size, shape)).astype(bool)


def closing(mask: np.ndarray, size: int = 3, shape: str = "ellipse") -> np.ndarray:
    """Dilation then erosion: closes gaps and pinholes narrower than the kernel."""
    m = _mask(mask).astype(np.uint8)
    pad = size  # pad so the closing does not glue the mask to the image border
    padded = cv2.copyMakeBorder(m, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    closed = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, _kernel(size, shape))
    return closed[pad:-pad, pad:-pad].astype(bool)


def connected_components(mask: np.ndarray, connectivity: int = 8) -> tuple[int, np.ndarray]:
    """``(count, labels)``: labels 1..count for each connected blob, 0 for background."""
    if connectivity not in (4, 8):
        raise DataError(f"connectivity must be 4 or 8, got {connectivity}")
    n, labels = cv2.connectedComponents(_mask(mask).astype(np.uint8), connectivity=connectivity)
    return n - 1, labels


def remove_small_components(mask: np.ndarray, min_area: int, connectivity: int = 8) -> np.ndarray:
    """Drop connected blobs with fewer than ``min_area`` pixels."""
    count, labels = connected_components(mask, connectivity)
    if count == 0:
        return np.zeros_like(labels, dtype=bool)
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    keep = areas >= min_area
    keep[0] = False
    return keep[labels]


def fill_holes(mask: np.ndarray, max_area: int | None = None) -> np.ndarray:
    """Fill background regions fully enclosed by the mask (only those up to ``max_area`` px)."""
    m = _mask(mask)
    filled = ndimage.binary_fill_holes(m)
    if max_area is None:
        return filled
    holes = filled & ~m
    count, labels = connected_components(holes, connectivity=4)
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    small = areas <= max_area
    small[0] = False
    return m | small[labels]


def clean_label_map(labels: np.ndarray, min_area: int, ignore_index: int = 255) -> np.ndarray:
    """Per class of a semantic label map: remove blobs smaller than ``min_area`` (set to 0,
    background); ``ignore_index`` pixels are left alone."""
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise DataError(f"expected a 2-D label map, got shape {lab.shape}")
    out = lab.copy()
    for cls in np.unique(lab):
        if cls in (0, ignore_index):
            continue
        region = lab == cls
        out[region & ~remove_small_components(region, min_area)] = 0
    return out


def apply_per_class(labels: np.ndarray, op, num_classes: int, ignore_index: int | None = 255) -> np.ndarray:
    """Apply the binary-mask operation ``op`` (mask -> mask) to every foreground class region
    ``1 .. num_classes-1`` of a label map: pixels a region loses become background 0, where grown
    regions overlap the higher class id wins, and ``ignore_index`` pixels stay ignore."""
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise DataError(f"expected a 2-D label map, got shape {lab.shape}")
    out = np.zeros_like(lab)
    for cls in range(1, num_classes):
        out[_mask(op(lab == cls))] = cls
    return out if ignore_index is None else np.where(lab == ignore_index, ignore_index, out).astype(lab.dtype)
