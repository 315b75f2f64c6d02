"""Cost matrices between tracks and detections, and their assignment.

Costs (rows = tracks, columns = detections, each in [0, 1], lower = more alike):

* IoU distance ``1 - IoU`` (SORT, A. Bewley et al., "Simple Online and Realtime Tracking", ICIP 2016).
* Normalised centre distance: the distance between the box centres divided by the diagonal of the
  smallest box enclosing both (the penalty term of DIoU, Z. Zheng et al., "Distance-IoU Loss",
  AAAI 2020), so it is scale free and below 1.
* Appearance cosine distance ``1 - cos(e_track, e_det)`` of L2-normalised embeddings (DeepSORT,
  Wojke et al. 2017), clipped to [0, 1].
* The blend: ``sum_k w_k c_k / sum_k w_k`` over the parts with weight ``w_k > 0``.

:func:`assign` solves the rectangular assignment problem with SciPy's
``linear_sum_assignment`` (Crouse's shortest augmenting path variant of the Hungarian method,
H. W. Kuhn 1955) on the allowed pairs and keeps a match only when its cost is at most
``max_cost`` (a pair exactly at the threshold is accepted). Forbidden pairs (gated out, or
costing more than ``max_cost``) never match, so the solver first matches as many allowed pairs as
it can, then minimises their summed cost. Equal costs are broken towards pairing track ``i``
with detection ``i`` (a nudge of ``1e-9 * |i - j|``), so the result never depends on the
solver's internal order: one track and two equally good detections -> detection 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.optimize import linear_sum_assignment


#: Cost given to a forbidden pair inside the solver (any value above every allowed cost works).
_FORBIDDEN = 1e6
#: Size of the tie-breaking nudge (far below any meaningful cost difference).
_TIE = 1e-9


def iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(T, D)`` IoU of ``[x, y, w, h]`` boxes: the formula of :func:`labkit.metrics.iou.box_iou`
    (continuous coordinates, 0 for a zero union) written on xywh for the tracker's inner loop."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ax1, ay1, bx1, by1 = a[:, 0:1], a[:, 1:2], b[:, 0], b[:, 1]
    iw = np.minimum(ax1 + a[:, 2:3], bx1 + b[:, 2]) - np.maximum(ax1, bx1)
    ih = np.minimum(ay1 + a[:, 3:4], by1 + b[:, 3]) - np.maximum(ay1, by1)
    inter = np.maximum(iw, 0.0, out=iw) * np.maximum(ih, 0.0, out=ih)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3]) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def iou_distance(track_xywh: np.ndarray, det_xywh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(1 - IoU, IoU)``, both ``(T, D)``."""
    iou = iou_xywh(track_xywh, det_xywh)
    return 1.0 - iou, iou


def centre_distance(track_xywh: np.ndarray, det_xywh: np.ndarray) -> np.ndarray:
    """``(T, D)`` centre distance over the diagonal of the enclosing box (DIoU's normalisation)."""
    a = np.asarray(track_xywh, dtype=np.float64).reshape(-1, 4)[:, None, :]
    b = np.asarray(det_xywh, dtype=np.float64).reshape(-1, 4)[None, :, :]
    ca, cb = a[..., :2] + a[..., 2:] / 2, b[..., :2] + b[..., 2:] / 2
    lo = np.minimum(a[..., :2], b[..., :2])
    hi = np.maximum(a[..., :2] + a[..., 2:], b[..., :2] + b[..., 2:])
    diag = np.sqrt(((hi - lo) ** 2).sum(-1))
    dist = np.sqrt(((ca - cb) ** 2).sum(-1))
    return np.where(diag > 0, dist / np.maximum(diag, 1e-12), 0.0)


def cosine_distance(track_emb: np.ndarray, det_emb: np.ndarray) -> np.ndarray:
    """``(T, D)`` ``1 - cos`` of the embeddings (rows are normalised here), clipped to [0, 1]."""
    a = _normalise(np.asarray(track_emb, dtype=np.float64))
    b = _normalise(np.asarray(det_emb, dtype=np.float64))
    if a.size == 0 or b.size == 0:
        return np.zeros((len(a), len(b)))
    return np.clip(1.0 - a @ b.T, 0.0, 1.0)


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def blend(parts: dict[str, tuple[float, np.ndarray]]) -> np.ndarray:
    """Weighted mean of cost matrices: ``parts = {name: (weight, cost)}``; zero weights are skipped."""
    used = [(w, c) for w, c in parts.values() if w > 0]
    if not used:
        raise ValueError("blend needs at least one part with a positive weight")
    return sum(w * c for w, c in used) / sum(w for w, _ in used)


@dataclass
class Assignment:
    """Result of one assignment: matched ``(track row, detection column)`` pairs (sorted by row),
    unmatched rows and columns, and the cost of each match."""

    matches: np.ndarray  # (K, 2) int
    costs: np.ndarray  # (K,)
    unmatched_tracks: np.ndarray
    unmatched_detections: np.ndarray


def assign(cost: np.ndarray, max_cost: float, allowed: np.ndarray | None = None) -> Assignment:
    """Minimum-cost matching of rows (tracks) to columns (detections).

    ``allowed`` (bool, same shape) marks the pairs the gates let through; a pair is matched only
    when allowed and ``cost <= max_cost``. Empty inputs give empty matches.
    """
    cost = np.asarray(cost, dtype=np.float64)
    n_tracks, n_dets = cost.shape
    if n_tracks == 0 or n_dets == 0:
        return Assignment(np.zeros((0, 2), dtype=np.int64), np.zeros(0), np.arange(n_tracks), np.arange(n_dets))
    ok = (cost <= max_cost) if allowed is None else (np.asarray(allowed, dtype=bool) & (cost <= max_cost))
    rows = cols = np.zeros(0, dtype=np.int64)
    if ok.any():
        rows, cols = linear_sum_assignment(np.where(ok, cost + _tie_nudge(n_tracks, n_dets), _FORBIDDEN))
        keep = ok[rows, cols]
        rows, cols = rows[keep].astype(np.int64, copy=False), cols[keep].astype(np.int64, copy=False)
    matches = np.empty((len(rows), 2), dtype=np.int64)
    matches[:, 0], matches[:, 1] = rows, cols
    free_t = np.ones(n_tracks, dtype=bool)
    free_d = np.ones(n_dets, dtype=bool)
    free_t[rows], free_d[cols] = False, False
    return Assignment(matches, cost[rows, cols], free_t.nonzero()[0], free_d.nonzero()[0])


@lru_cache(maxsize=256)
def _tie_nudge(n_tracks: int, n_dets: int) -> np.ndarray:
    """The tie-breaking nudge ``1e-9 * |i - j|`` of a ``(n_tracks, n_dets)`` cost matrix (read-only, cached)."""
    nudge = _TIE * np.abs(np.subtract.outer(np.arange(n_tracks), np.arange(n_dets)))
    nudge.flags.writeable = False
    return nudge
