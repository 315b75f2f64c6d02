"""Pairwise intersection over union of boxes and masks.

IoU (Jaccard index) of two regions ``A`` and ``B`` is ``|A ∩ B| / |A ∪ B|`` (P. Jaccard, 1912;
the overlap criterion of PASCAL VOC, M. Everingham et al., IJCV 2010, Sec. 4.4).

Two box conventions exist and give different numbers for the same coordinates:

- continuous (COCO, this module's default): ``[x1, y1, x2, y2]`` are real coordinates and a box
  is ``(x2 - x1) * (y2 - y1)`` square pixels.
- ``pixel_plus_one`` (PASCAL VOC devkit, ``VOCevaldet.m``): ``x1 .. x2`` are inclusive pixel
  indices, so a box is ``(x2 - x1 + 1) * (y2 - y1 + 1)`` pixels and two boxes sharing one pixel
  column overlap by one pixel.

:func:`coco_iou` defers to pycocotools' ``maskUtils.iou`` (the code COCOeval itself uses) for
COCO boxes and RLE masks, including its crowd rule (a crowd region's IoU is the intersection
over the *detection's* area).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from pycocotools import mask as mask_utils


def box_iou(a: np.ndarray, b: np.ndarray, *, pixel_plus_one: bool = False) -> np.ndarray:
    """``(N, M)`` IoU of corner boxes ``a`` ``(N, 4)`` and ``b`` ``(M, 4)`` (``[x1, y1, x2, y2]``).

    ``pixel_plus_one`` selects the VOC convention (widths ``x2 - x1 + 1``). Degenerate pairs
    (zero union) get IoU 0.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    one = 1.0 if pixel_plus_one else 0.0
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + one
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + one
    inter = np.clip(iw, 0.0, None) * np.clip(ih, 0.0, None)
    area_a = (a[:, 2] - a[:, 0] + one) * (a[:, 3] - a[:, 1] + one)
    area_b = (b[:, 2] - b[:, 0] + one) * (b[:, 3] - b[:, 1] + one)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def coco_iou(dets: Sequence, gts: Sequence, iscrowd: Sequence[int] | None = None) -> np.ndarray:
    """``(D, G)`` IoU exactly as COCOeval computes it.

    ``dets`` and ``gts`` are both lists of ``[x, y, w, h]`` boxes or both lists of compressed
    RLE dicts (``bytes`` or ``str`` counts); ``iscrowd[g]`` applies the crowd rule to ``gts[g]``.
    """
    if len(dets) == 0 or len(gts) == 0:
        return np.zeros((len(dets), len(gts)))
    crowd = [0] * len(gts) if iscrowd is None else [int(c) for c in iscrowd]
    if isinstance(dets[0], dict):
        dets, gts = [_bytes_rle(r) for r in dets], [_bytes_rle(r) for r in gts]
    else:
        dets, gts = [list(map(float, d)) for d in dets], [list(map(float, g)) for g in gts]
    return np.asarray(mask_utils.iou(dets, gts, crowd), dtype=np.float64).reshape(len(dets), len(gts))


def _bytes_rle(rle: dict) -> dict:
    counts = rle["counts"]
    return {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
