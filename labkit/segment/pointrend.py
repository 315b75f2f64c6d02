"""The PointRend idea in a few pure functions: refine a coarse mask only where it is unsure.

A. Kirillov, Y. Wu, K. He, R. Girshick, "PointRend: Image Segmentation as Rendering", CVPR 2020.
A mask predicted at low resolution and upsampled bilinearly is right almost everywhere except
near boundaries and thin parts, where the interpolated probability sits close to 0.5. PointRend
therefore re-predicts only the ``N`` most uncertain points (uncertainty ``-|p - 0.5|`` for a
binary mask, Sec. 3.1), with a small *point head* that sees fine-grained features at those
points plus the coarse prediction there (Sec. 3.2). At inference it does so coarse-to-fine,
"adaptive subdivision": upsample x2, re-predict the N most uncertain points, repeat until the
output resolution (:func:`subdivide`). At training time the points are drawn by "importance
sampling": ``k N`` random candidates, the ``beta N`` most uncertain of them, plus ``(1 - beta) N``
uniform ones (Sec. 3.3, :func:`training_points`).

Here a mask is an ``(H, W)`` float array of foreground probabilities and points are ``(n, 2)``
integer ``(row, col)`` pixel indices. A *point function* ``f(points, shape) -> (n,)``
probabilities re-predicts points given at resolution ``shape``: :func:`from_fine_map` re-reads a
fine model's full-resolution output (the simplest point head: re-evaluating the fine model),
:func:`head_point_fn` runs a trained :class:`PointHead` MLP. :func:`boundary_gain` measures what
the refinement bought with the boundary F-score (Csurka et al., BMVC 2013;
:func:`labkit.metrics.boundary.boundary_f_score`).
"""

from __future__ import annotations

from typing import Callable, Sequence

import cv2
import numpy as np
import torch

from labkit.errors import DataError

PointFn = Callable[[np.ndarray, tuple[int, int]], np.ndarray]


def _prob(p: np.ndarray) -> np.ndarray:
    arr = np.asarray(p, dtype=np.float32)
    if arr.ndim != 2:
        raise DataError(f"a mask probability map must be 2-D, got shape {arr.shape}")
    return arr


def upsample(prob: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a probability map to ``shape = (H, W)`` (pixel centres aligned)."""
    return cv2.resize(_prob(prob), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def uncertainty(prob: np.ndarray) -> np.ndarray:
    """``-|p - 0.5|``: 0 where the mask is undecided, -0.5 where it is certain."""
    return -np.abs(_prob(prob) - 0.5)


def most_uncertain(prob: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` most uncertain pixels as ``(n, 2)`` ``(row, col)``; ties go to the lower flat
    index, so the choice is deterministic."""
    u = uncertainty(prob).ravel()
    n = int(min(max(n, 0), u.size))
    order = np.lexsort((np.arange(u.size), -u))[:n]
    return np.stack(np.unravel_index(order, prob.shape), axis=1)


def refine(prob: np.ndarray, n_points: int, point_fn: PointFn) -> tuple[np.ndarray, np.ndarray]:
    """One refinement step at ``prob``'s resolution: ``(refined map, points re-predicted)``."""
    out = _prob(prob).copy()
    points = most_uncertain(out, n_points)
    if len(points):
        out[points[:, 0], points[:, 1]] = point_fn(points, out.shape)
    return out, points


def subdivide(coarse: np.ndarray, shape: tuple[int, int], n_points: int, point_fn: PointFn) -> tuple[np.ndarray, int]:
    """PointRend's adaptive subdivision from a coarse map to ``shape``: upsample x2 (the last
    step to ``shape`` exactly), re-predict the ``n_points`` most uncertain points, repeat.

    Returns the refined map and the number of points re-predicted in total.
    """
    prob, evaluated = _prob(coarse), 0
    if prob.shape[0] > shape[0] or prob.shape[1] > shape[1]:
        raise DataError(f"coarse map {prob.shape} is larger than the output {shape}")
    while prob.shape != tuple(shape):
        nxt = (min(2 * prob.shape[0], shape[0]), min(2 * prob.shape[1], shape[1]))
        prob, points = refine(upsample(prob, nxt), n_points, point_fn)
        evaluated += len(points)
    return prob, evaluated


def _source_pixels(points: np.ndarray, shape: tuple[int, int], fine_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Nearest pixel of a ``fine_shape`` map to each point given at resolution ``shape``."""
    rows = np.clip(((points[:, 0] + 0.5) * fine_shape[0] / shape[0]).astype(np.int64), 0, fine_shape[0] - 1)
    cols = np.clip(((points[:, 1] + 0.5) * fine_shape[1] / shape[1]).astype(np.int64), 0, fine_shape[1] - 1)
    return rows, cols


def from_fine_map(fine: np.ndarray) -> PointFn:
    """A point function that reads a fine model's full-resolution probability map (re-evaluating
    the fine model at the points)."""
    fine = _prob(fine)

    def point_fn(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        rows, cols = _source_pixels(points, shape, fine.shape)
        return fine[rows, cols]

    return point_fn


def training_points(prob: np.ndarray, n: int, *, k: int = 3, beta: float = 0.75, seed: int = 0) -> np.ndarray:
    """PointRend's training points: of ``k n`` uniform random pixels keep the ``beta n`` most
    uncertain, and add ``(1 - beta) n`` uniform random pixels; ``(n, 2)`` ``(row, col)``."""
    if k < 1 or not 0 <= beta <= 1:
        raise DataError(f"need k >= 1 and 0 <= beta <= 1, got k={k}, beta={beta}")
    p = _prob(prob)
    rng = np.random.default_rng(seed)
    candidates = rng.integers(0, p.size, size=k * n)
    n_unsure = int(round(beta * n))
    unsure = candidates[np.argsort(-uncertainty(p).ravel()[candidates], kind="stable")[:n_unsure]]
    flat = np.concatenate([unsure, rng.integers(0, p.size, size=n - n_unsure)])
    return np.stack(np.unravel_index(flat, p.shape), axis=1)


def point_features(features: np.ndarray, coarse: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(n, C + 1)`` inputs of the point head: fine ``(C, H, W)`` features at the points (nearest
    pixel) and the coarse probability there (both at the output resolution ``coarse.shape``)."""
    feats = np.asarray(features, dtype=np.float32)
    if feats.ndim != 3:
        raise DataError(f"fine features must be (C, H, W), got shape {feats.shape}")
    rows, cols = _source_pixels(points, coarse.shape, feats.shape[1:])
    return np.concatenate([feats[:, rows, cols].T, _prob(coarse)[points[:, 0], points[:, 1]][:, None]], axis=1)


class PointHead(torch.nn.Module):
    """PointRend's point head: an MLP from point features to a foreground logit (the paper uses
    3 hidden layers of 256 channels; a demo needs far less)."""

    def __init__(self, in_features: int, hidden: int = 32, layers: int = 2):
        super().__init__()
        blocks: list[torch.nn.Module] = []
        width = in_features
        for _ in range(layers):
            blocks += [torch.nn.Linear(width, hidden), torch.nn.ReLU()]
            width = hidden
        self.mlp = torch.nn.Sequential(*blocks, torch.nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)[:, 0]


def fit_point_head(features: Sequence[np.ndarray], coarse: Sequence[np.ndarray], targets: Sequence[np.ndarray], *,
                   points_per_image: int = 256, steps: int = 300, lr: float = 1e-2, hidden: int = 32,
                   seed: int = 0) -> PointHead:
    """Train a :class:`PointHead` with binary cross-entropy on :func:`training_points` of each
    image (fine features, upsampled coarse map, binary ground truth; a fresh draw every step)."""
    if not (len(features) == len(coarse) == len(targets)) or not features:
        raise DataError("need the same (non-zero) number of feature maps, coarse maps and targets")
    torch.manual_seed(seed)
    head = PointHead(np.asarray(features[0]).shape[0] + 1, hidden)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    for step in range(steps):
        xs, ys = [], []
        for i, (f, c, t) in enumerate(zip(features, coarse, targets)):
            pts = training_points(c, points_per_image, seed=seed * 1_000_003 + step * 1009 + i)
            xs.append(point_features(f, c, pts))
            ys.append(np.asarray(t, dtype=np.float32)[pts[:, 0], pts[:, 1]])
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            head(torch.from_numpy(np.concatenate(xs))), torch.from_numpy(np.concatenate(ys)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return head.eval()


def head_point_fn(head: PointHead, features: np.ndarray, coarse: np.ndarray) -> PointFn:
    """A point function running ``head`` on fine ``features`` and the coarse map (both read at
    the nearest pixel of the point)."""
    def point_fn(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        coarse_here = upsample(coarse, shape) if coarse.shape != tuple(shape) else coarse
        with torch.no_grad():
            return torch.sigmoid(head(torch.from_numpy(point_features(features, coarse_here, points)))).numpy()

    return point_fn


def boundary_gain(gt: np.ndarray, coarse: np.ndarray, refined: np.ndarray, tolerance: float = 1.0) -> dict[str, float]:
    """Boundary F (and mask IoU) of the coarse and the refined map thresholded at 0.5, and the gain."""
    from labkit.metrics.boundary import boundary_f_score

    truth = np.asarray(gt).astype(bool)

    def iou(mask: np.ndarray) -> float:
        union = np.count_nonzero(mask | truth)
        return float(np.count_nonzero(mask & truth) / union) if union else 1.0

    before, after = _prob(coarse) > 0.5, _prob(refined) > 0.5
    f0, f1 = boundary_f_score(truth, before, tolerance).f, boundary_f_score(truth, after, tolerance).f
    return {"coarse_boundary_f": f0, "refined_boundary_f": f1, "boundary_f_gain": f1 - f0,
            "coarse_iou": iou(before), "refined_iou": iou(after), "tolerance_px": tolerance}
