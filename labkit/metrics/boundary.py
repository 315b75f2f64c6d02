"""Boundary-quality scores for segmentation masks: boundary F-score and Boundary IoU.

Region scores (IoU, Dice) barely move when a contour is off by a pixel or two on a large object;
these two scores look at the contour only.

**Boundary F-score** (G. Csurka, D. Larlus, F. Perronnin, "What is a good evaluation measure for
semantic segmentation?", BMVC 2013; the contour accuracy F of F. Perazzi et al., "A Benchmark
Dataset and Evaluation Methodology for Video Object Segmentation", CVPR 2016). With ``B_gt`` and
``B_pred`` the contour pixels of the two masks and a distance tolerance ``theta`` (pixels):
precision = share of ``B_pred`` within ``theta`` of some pixel of ``B_gt``, recall = share of
``B_gt`` within ``theta`` of ``B_pred``, ``F = 2 P R / (P + R)``. Distances are Euclidean
(``scipy.ndimage.distance_transform_edt``); a pixel at distance exactly ``theta`` matches, so the
rule equals DAVIS's dilation by a disk of radius ``theta``. Empty contours follow DAVIS:
both empty -> P = R = 1; only the prediction empty -> P = 1, R = 0; only the ground truth
empty -> P = 0, R = 1; ``F = 0`` when ``P + R = 0``. Csurka et al. set ``theta`` to 0.75 % of
the image diagonal (:func:`diagonal_fraction`); here it is given in pixels.

**Boundary IoU** (B. Cheng, R. Girshick, P. Dollar, A. C. Berg, A. Kirillov, "Boundary IoU:
Improving Object-Centric Image Segmentation Evaluation", CVPR 2021): with ``G_d`` / ``P_d`` the
pixels of each mask within ``d`` pixels of its own contour,
``|G_d ∩ P_d| / |G_d ∪ P_d|``. As in the authors' code, "within d" is the chessboard distance
(erosion by a 3x3 square ``d`` times) and the image frame counts as contour; they choose ``d`` as
2 % of the image diagonal.

Contour pixels (for the F-score) are the mask pixels with at least one of their 8 neighbours
outside the mask; the image frame is *not* a contour there (an object cut by the frame has no
real edge along it, and DAVIS also ignores it). Both bands come from one chessboard distance
transform (``cv2.distanceTransform(..., cv2.DIST_C, 3)``).

Semantic masks (:class:`BoundaryScores`): each class is scored as the binary mask ``label == c``.
Pixels whose ground truth is the ignore index are dropped from both contours (F-score) and from
both bands (Boundary IoU): a contour drawn inside a void region is neither rewarded nor
penalised. Per class, the boundary F is the mean over the images in which the class occurs (in
the ground truth or the prediction) as in Csurka et al.; Boundary IoU sums intersections and
unions over the dataset first, like mIoU. Classes that never occur are NaN and left out of the
means.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import cv2
import numpy as np
from scipy import ndimage

from labkit.errors import DataError
from labkit.metrics.segmentation import _nanmean, _num, check_label_masks


class BoundaryF(NamedTuple):
    """Boundary precision, recall and F-score of one mask pair."""

    precision: float
    recall: float
    f: float


def _binary(mask: Any, what: str) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise DataError(f"{what} must be a 2-D mask, got shape {arr.shape}")
    return arr.astype(bool)


def _pair(gt: Any, pred: Any, valid: Any | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    gt_m, pred_m = _binary(gt, "ground-truth mask"), _binary(pred, "predicted mask")
    if gt_m.shape != pred_m.shape:
        raise DataError(f"predicted mask shape {pred_m.shape} differs from ground-truth shape {gt_m.shape}")
    valid_m = np.ones(gt_m.shape, dtype=bool) if valid is None else _binary(valid, "valid mask")
    if valid_m.shape != gt_m.shape:
        raise DataError(f"valid mask shape {valid_m.shape} differs from mask shape {gt_m.shape}")
    return gt_m, pred_m, valid_m


def diagonal_fraction(height: int, width: int, ratio: float) -> float:
    """``ratio`` times the image diagonal, in pixels (0.0075 for Csurka's tolerance, 0.02 for
    Cheng's Boundary-IoU band)."""
    return ratio * math.hypot(height, width)


def mask_boundary(mask: Any, width: int = 1, *, frame_is_contour: bool = False) -> np.ndarray:
    """Pixels of a binary mask within ``width`` px (chessboard distance) of its contour.

    ``width=1`` gives the one-pixel inner contour (mask pixels with a background 8-neighbour);
    ``width=d`` equals the mask minus its erosion by a ``(2d+1) x (2d+1)`` square. With
    ``frame_is_contour`` the pixels outside the image count as background.
    """
    m = _binary(mask, "mask")
    if width < 1:
        raise ValueError(f"boundary width must be >= 1 pixel, got {width}")
    src = m.astype(np.uint8)
    if frame_is_contour:
        src = cv2.copyMakeBorder(src, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    depth = cv2.distanceTransform(src, cv2.DIST_C, 3)
    if frame_is_contour:
        depth = depth[1:-1, 1:-1]
    return m & (depth <= width)


def boundary_distance(labels: Any) -> np.ndarray:
    """Euclidean distance (pixels) of every pixel of a label map to the nearest one-pixel contour
    (:func:`mask_boundary`) of any of its class regions; 0 on the contours themselves."""
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise DataError(f"expected a 2-D label map, got shape {lab.shape}")
    edges = np.zeros(lab.shape, bool)
    for cls in np.unique(lab):
        edges |= mask_boundary(lab == cls)
    return ndimage.distance_transform_edt(~edges)


def _matched(points: np.ndarray, targets: np.ndarray, tolerance: float) -> int:
    """How many ``points`` pixels lie within ``tolerance`` (Euclidean) of a ``targets`` pixel.

    Both sets lie in the bounding box of their union, so the distance transform is computed on
    that crop only (same distances, less work).
    """
    if not points.any() or not targets.any():
        return 0
    rows, cols = np.nonzero(points | targets)
    crop = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    distance = ndimage.distance_transform_edt(~targets[crop])
    return int(np.count_nonzero(distance[points[crop]] <= tolerance))


def boundary_f_score(gt: Any, pred: Any, tolerance: float = 2.0, *, valid: Any | None = None) -> BoundaryF:
    """Boundary precision / recall / F of two binary masks with a tolerance in pixels.

    ``valid`` (optional bool mask) keeps only contour pixels lying on valid pixels.
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0 pixels, got {tolerance}")
    gt_m, pred_m, valid_m = _pair(gt, pred, valid)
    gt_b = mask_boundary(gt_m) & valid_m
    pred_b = mask_boundary(pred_m) & valid_m
    n_gt, n_pred = int(gt_b.sum()), int(pred_b.sum())
    precision = _matched(pred_b, gt_b, tolerance) / n_pred if n_pred else 1.0
    recall = _matched(gt_b, pred_b, tolerance) / n_gt if n_gt else 1.0
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return BoundaryF(precision, recall, f)


def _band_counts(gt: np.ndarray, pred: np.ndarray, valid: np.ndarray, dilation: int) -> tuple[int, int]:
    gt_band = mask_boundary(gt, dilation, frame_is_contour=True) & valid
    pred_band = mask_boundary(pred, dilation, frame_is_contour=True) & valid
    return int(np.count_nonzero(gt_band & pred_band)), int(np.count_nonzero(gt_band | pred_band))


def boundary_iou(gt: Any, pred: Any, dilation: int = 2, *, valid: Any | None = None) -> float:
    """Boundary IoU of two binary masks with a band of ``dilation`` pixels (NaN if both empty)."""
    if dilation < 1:
        raise ValueError(f"dilation must be >= 1 pixel, got {dilation}")
    inter, union = _band_counts(*_pair(gt, pred, valid), dilation)
    return inter / union if union else float("nan")


class BoundaryScores:
    """Per-class boundary F and Boundary IoU accumulated over a dataset of semantic masks.

    Args:
        num_classes: ``K``; valid class ids are ``0 .. K-1``.
        ignore_index: ground-truth value of void pixels (``None``: none).
        tolerance: boundary-F distance tolerance in pixels.
        dilation: Boundary-IoU band width in pixels.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = 255, tolerance: float = 2.0,
                 dilation: int = 2):
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.tolerance = float(tolerance)
        self.dilation = int(dilation)
        self.f_sum = np.zeros(self.num_classes)
        self.f_images = np.zeros(self.num_classes, dtype=np.int64)
        self.band_intersection = np.zeros(self.num_classes, dtype=np.int64)
        self.band_union = np.zeros(self.num_classes, dtype=np.int64)

    def update(self, gt: Any, pred: Any, *, source: str | None = None) -> "BoundaryScores":
        """Add one ``(H, W)`` ground-truth / prediction pair of class-id masks. Returns ``self``."""
        gt, pred, valid = check_label_masks(gt, pred, self.num_classes, self.ignore_index, source=source)
        if gt.ndim != 2:
            raise DataError(f"boundary scores need 2-D masks, got shape {gt.shape}", source=source)
        present = np.union1d(np.unique(gt[valid]), np.unique(pred[valid]))
        for c in present:
            gt_c, pred_c = gt == c, pred == c
            self.f_sum[c] += boundary_f_score(gt_c, pred_c, self.tolerance, valid=valid).f
            self.f_images[c] += 1
            inter, union = _band_counts(gt_c, pred_c, valid, self.dilation)
            self.band_intersection[c] += inter
            self.band_union[c] += union
        return self

    def boundary_f(self) -> np.ndarray:
        """Per-class mean boundary F over the images where the class occurs (NaN: never)."""
        out = np.full(self.num_classes, np.nan)
        np.divide(self.f_sum, self.f_images, out=out, where=self.f_images > 0)
        return out

    def boundary_iou(self) -> np.ndarray:
        """Per-class dataset-level Boundary IoU (NaN: class never occurs)."""
        out = np.full(self.num_classes, np.nan)
        np.divide(self.band_intersection, self.band_union, out=out, where=self.band_union > 0)
        return out

    def merge_into(self, summary: dict[str, Any]) -> dict[str, Any]:
        """Add the boundary scores to a :meth:`ConfusionMatrix.summary` dict (in place; returned)."""
        summary["boundary_tolerance_px"] = self.tolerance
        summary["boundary_iou_dilation_px"] = self.dilation
        summary["mean_boundary_f"] = _num(_nanmean(self.boundary_f()))
        summary["mean_boundary_iou"] = _num(_nanmean(self.boundary_iou()))
        for row, f, biou in zip(summary["per_class"], self.boundary_f(), self.boundary_iou()):
            row["boundary_f"] = _num(f)
            row["boundary_iou"] = _num(biou)
        return summary


def class_scores(truths: Any, preds: Any, class_names: list[str], *, ignore_index: int | None = 255,
                 tolerance: float = 2.0):
    """A ``pandas.DataFrame`` indexed by ``class_names``: per-class IoU and Dice (pixels pooled over
    the image pairs, :class:`~labkit.metrics.segmentation.ConfusionMatrix`) and boundary F (mean
    over the images where the class occurs, :class:`BoundaryScores` at ``tolerance`` pixels)."""
    import pandas as pd

    from labkit.metrics.segmentation import ConfusionMatrix

    k = len(class_names)
    cm, bs = ConfusionMatrix(k, ignore_index=ignore_index), BoundaryScores(k, ignore_index=ignore_index, tolerance=tolerance)
    for truth, pred in zip(truths, preds, strict=True):
        cm.update(truth, pred)
        bs.update(truth, pred)
    return pd.DataFrame({"IoU": cm.iou(), "Dice": cm.dice(), "boundary F": bs.boundary_f()}, index=list(class_names))
