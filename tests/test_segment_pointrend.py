"""PointRend demo on crafted masks: re-predicting only the most uncertain points of a coarse mask
raises its boundary F, with a fine model's map as point head and with a trained MLP head."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from labkit.errors import DataError
from labkit.segment.pointrend import (boundary_gain, fit_point_head, from_fine_map, head_point_fn, most_uncertain,
                                      refine, subdivide, training_points, uncertainty, upsample)

SIZE = 128


def _triangle_and_rod() -> tuple[np.ndarray, np.ndarray]:
    """Ground truth (a sharp-cornered triangle and a 3-px rod) and a fine model's probabilities:
    a steep sigmoid of the signed distance to the boundary."""
    gt = np.zeros((SIZE, SIZE), np.uint8)
    cv2.fillPoly(gt, [np.array([[20, 100], [60, 15], [100, 105]])], 1)
    cv2.line(gt, (10, 10), (120, 40), 1, 3)
    inside = cv2.distanceTransform(gt, cv2.DIST_L2, 3)
    outside = cv2.distanceTransform(1 - gt, cv2.DIST_L2, 3)
    signed = inside - outside + np.where(gt > 0, 0.5, -0.5)
    return gt.astype(bool), (1 / (1 + np.exp(-3 * signed))).astype(np.float32)


def _coarse(prob: np.ndarray, side: int = 16) -> np.ndarray:
    return cv2.resize(prob.astype(np.float32), (side, side), interpolation=cv2.INTER_AREA)


def test_most_uncertain_points_are_those_nearest_one_half():
    prob = np.array([[0.0, 0.45, 0.9], [0.55, 0.5, 1.0]], np.float32)
    assert most_uncertain(prob, 3).tolist() == [[1, 1], [0, 1], [1, 0]]  # 0.45 and 0.55 tie: lower index first
    assert uncertainty(prob).max() == 0.0 and len(most_uncertain(prob, 100)) == 6
    with pytest.raises(DataError, match="2-D"):
        most_uncertain(np.zeros((2, 2, 2)), 1)


def test_refining_uncertain_points_with_the_fine_model_raises_boundary_f():
    gt, fine = _triangle_and_rod()
    low = _coarse(fine)
    coarse = upsample(low, gt.shape)
    one_shot, points = refine(coarse, 1024, from_fine_map(fine))
    changed = np.flatnonzero(one_shot.ravel() != coarse.ravel())
    assert len(points) == 1024 and set(changed) <= set(np.ravel_multi_index(points.T, gt.shape))  # only there
    shot = boundary_gain(gt, coarse, one_shot)
    refined, evaluated = subdivide(low, gt.shape, 512, from_fine_map(fine))
    sub = boundary_gain(gt, coarse, refined)
    # measured: coarse F 0.795; one-shot (1024 points, 6 %) 0.892; subdivision 16->32->64->128 (1536 points, 9 %) 0.999
    assert evaluated == 3 * 512
    assert 0.75 < shot["coarse_boundary_f"] < 0.85
    assert shot["boundary_f_gain"] > 0.05
    assert sub["refined_boundary_f"] > 0.98 and sub["boundary_f_gain"] > 0.15
    assert sub["refined_iou"] > sub["coarse_iou"]


def _scene(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noisy bright discs and a thin line on a dark background: (ground truth, image features, 16x16 coarse)."""
    rng = np.random.default_rng(seed)
    gt = np.zeros((SIZE, SIZE), np.uint8)
    for _ in range(3):
        centre = tuple(int(v) for v in rng.integers(20, SIZE - 20, 2))
        cv2.circle(gt, centre, int(rng.integers(8, 25)), 1, -1)
    cv2.line(gt, tuple(int(v) for v in rng.integers(0, SIZE, 2)), tuple(int(v) for v in rng.integers(0, SIZE, 2)), 1, 2)
    image = (0.2 + 0.6 * gt + rng.normal(0, 0.08, gt.shape)).astype(np.float32)
    return gt.astype(bool), image[None], _coarse(gt)


def test_a_trained_point_head_refines_a_new_image():
    train = [_scene(s) for s in range(4)]
    head = fit_point_head([f for _, f, _ in train], [upsample(c, (SIZE, SIZE)) for _, _, c in train],
                          [g for g, _, _ in train], steps=150, seed=0)
    gt, features, low = _scene(99)
    refined, evaluated = subdivide(low, gt.shape, 512, head_point_fn(head, features, low))
    gain = boundary_gain(gt, upsample(low, gt.shape), refined)
    # measured (150 steps): coarse F 0.805 -> 0.989 with 1536 of 16384 points re-predicted
    assert evaluated == 1536 and gain["boundary_f_gain"] > 0.1, gain


def test_training_points_mix_uncertain_and_uniform_points():
    _, fine = _triangle_and_rod()
    coarse = upsample(_coarse(fine), fine.shape)
    pts = training_points(coarse, 400, k=3, beta=0.75, seed=1)
    assert pts.shape == (400, 2) and np.array_equal(pts, training_points(coarse, 400, k=3, beta=0.75, seed=1))
    u = uncertainty(coarse)
    unsure, uniform = u[pts[:300, 0], pts[:300, 1]], u[pts[300:, 0], pts[300:, 1]]
    assert unsure.mean() > uniform.mean() + 0.1
    with pytest.raises(DataError, match="beta"):
        training_points(coarse, 10, beta=1.5)
