"""Gates: which track-detection pairs may be matched at all.

* Mahalanobis gate (DeepSORT, Wojke et al. 2017, Sec. 2.2): the squared Mahalanobis distance
  ``d^2 = (z - Hx)^T S^-1 (z - Hx)`` of a detection from a track's predicted box follows a
  chi-square distribution with 4 degrees of freedom when the detection belongs to the track, so
  pairs with ``d^2 > chi2.ppf(p, 4)`` lie outside the ``p`` confidence ellipsoid and are gated
  out (``p = 0.95`` gives 9.4877). A pair exactly at the threshold is kept.
* IoU gate: pairs whose IoU is below ``min_iou`` are gated out (a pair exactly at it is kept).
* Class gate: with ``class_aware``, pairs of different classes are gated out.

Each gate returns a boolean ``(tracks, detections)`` mask, True = allowed.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import chi2

#: Degrees of freedom of a box measurement [cx, cy, a, h].
MEASUREMENT_DOF = 4


def chi2_threshold(probability: float, dof: int = MEASUREMENT_DOF) -> float:
    """The squared-Mahalanobis gate of the ``probability`` ellipsoid (``inf`` when 0 = off)."""
    return float("inf") if probability <= 0 else float(chi2.ppf(probability, dof))


def mahalanobis_gate(squared_distance: np.ndarray, probability: float) -> np.ndarray:
    """True where ``d^2 <= chi2.ppf(probability, 4)``; everything passes when ``probability == 0``."""
    return np.asarray(squared_distance) <= chi2_threshold(probability)


def iou_gate(iou: np.ndarray, min_iou: float) -> np.ndarray:
    """True where ``IoU >= min_iou`` (everything passes when ``min_iou == 0``)."""
    iou = np.asarray(iou)
    return np.ones(iou.shape, dtype=bool) if min_iou <= 0 else iou >= min_iou


def class_gate(track_class: np.ndarray, det_class: np.ndarray) -> np.ndarray:
    """True where track and detection have the same class id."""
    return np.asarray(track_class)[:, None] == np.asarray(det_class)[None, :]
