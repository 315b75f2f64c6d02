"""Boundary F-score and Boundary IoU: hand-checked cases and independent re-computations."""

import cv2
import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.distance import cdist

from labkit.errors import DataError
from labkit.metrics.boundary import (BoundaryScores, boundary_distance, boundary_f_score, class_scores, boundary_iou, diagonal_fraction,
                                     mask_boundary)
from labkit.metrics.segmentation import ConfusionMatrix


def _square(size=20, lo=5, hi=15, shift=0) -> np.ndarray:
    m = np.zeros((size, size), bool)
    m[lo:hi, lo + shift:hi + shift] = True
    return m


def _random_blobs(rng: np.random.Generator, shape=(24, 30)) -> np.ndarray:
    noise = ndimage.gaussian_filter(rng.random(shape), 2.0)
    return noise > np.median(noise)


def test_hand_checked_shifted_square():
    gt, pred = _square(), _square(shift=1)
    # Both 10x10 contours have 36 pixels; only the top and bottom rows overlap (2 x 9 pixels).
    assert boundary_f_score(gt, pred, tolerance=0) == pytest.approx((0.5, 0.5, 0.5))
    assert boundary_f_score(gt, pred, tolerance=0.99) == pytest.approx((0.5, 0.5, 0.5))
    assert boundary_f_score(gt, pred, tolerance=1) == pytest.approx((1.0, 1.0, 1.0))
    # 1-px bands: 36 pixels each, 18 shared -> 18 / 54.
    assert boundary_iou(gt, pred, dilation=1) == pytest.approx(1 / 3)
    assert boundary_iou(gt, gt, dilation=3) == 1.0


def test_hand_checked_small_prediction_inside():
    gt, pred = _square(lo=4, hi=16), _square(lo=7, hi=13)  # 12x12 vs 6x6, 3 px apart everywhere
    assert boundary_f_score(gt, pred, tolerance=2).f == 0.0
    precision, recall, _ = boundary_f_score(gt, pred, tolerance=3)
    assert precision == 1.0
    # Of the 44 gt contour pixels only the 4 x 6 facing the inner square's sides are within 3 px.
    gt_pts = np.argwhere(mask_boundary(gt))
    pred_pts = np.argwhere(mask_boundary(pred))
    expected = np.mean(cdist(gt_pts, pred_pts).min(axis=1) <= 3)
    assert recall == pytest.approx(24 / 44) == pytest.approx(expected)


def test_empty_contour_conventions_follow_davis():
    empty, full = np.zeros((8, 8), bool), _square(8, 2, 6)
    assert boundary_f_score(empty, empty) == (1.0, 1.0, 1.0)
    assert boundary_f_score(full, empty) == (1.0, 0.0, 0.0)
    assert boundary_f_score(empty, full) == (0.0, 1.0, 0.0)
    assert np.isnan(boundary_iou(empty, empty))
    # The image frame is not a contour for the F-score: a mask filling the image has none.
    assert not mask_boundary(np.ones((5, 5), bool)).any()
    assert mask_boundary(np.ones((5, 5), bool), frame_is_contour=True).sum() == 16


@pytest.mark.parametrize("width", [1, 2, 3])
@pytest.mark.parametrize("frame", [False, True])
def test_mask_boundary_equals_erosion_by_a_square(width, frame):
    rng = np.random.default_rng(width)
    mask = _random_blobs(rng)
    kernel = np.ones((3, 3), np.uint8)
    border = 0 if frame else 1
    padded = cv2.copyMakeBorder(mask.astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=border)
    eroded = cv2.erode(padded, kernel, iterations=width)[1:-1, 1:-1].astype(bool)
    np.testing.assert_array_equal(mask_boundary(mask, width, frame_is_contour=frame), mask & ~eroded)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("tolerance", [0, 1, 1.5, 2.5])
def test_boundary_f_equals_brute_force_distances(seed, tolerance):
    rng = np.random.default_rng(seed)
    gt, pred = _random_blobs(rng), _random_blobs(rng)
    g = np.argwhere(gt & ~ndimage.binary_erosion(gt, np.ones((3, 3)), border_value=1))
    p = np.argwhere(pred & ~ndimage.binary_erosion(pred, np.ones((3, 3)), border_value=1))
    d = cdist(p, g)
    precision, recall = np.mean(d.min(axis=1) <= tolerance), np.mean(d.min(axis=0) <= tolerance)
    got = boundary_f_score(gt, pred, tolerance)
    assert got.precision == pytest.approx(precision) and got.recall == pytest.approx(recall)
    assert got.f == pytest.approx(2 * precision * recall / (precision + recall))


@pytest.mark.parametrize("seed", range(4))
def test_boundary_iou_equals_cheng_et_al_definition(seed):
    rng = np.random.default_rng(10 + seed)
    gt, pred = _random_blobs(rng), _random_blobs(rng)
    d = 2

    def band(m):  # Cheng et al.'s mask_to_boundary: mask minus its erosion, frame padded with zeros
        padded = np.pad(m, 1).astype(np.uint8)
        return m & ~cv2.erode(padded, np.ones((3, 3), np.uint8), iterations=d)[1:-1, 1:-1].astype(bool)

    g, p = band(gt), band(pred)
    assert boundary_iou(gt, pred, d) == pytest.approx((g & p).sum() / (g | p).sum())


@pytest.mark.parametrize("seed", range(3))
def test_valid_mask_keeps_only_contour_pixels_on_valid_pixels(seed):
    """Both scores with ``valid``: the same brute-force references, restricted to valid pixels."""
    rng = np.random.default_rng(20 + seed)
    gt, pred = _random_blobs(rng), _random_blobs(rng)
    valid = np.ones(gt.shape, bool)
    valid[:, : gt.shape[1] // 2] = False  # the left half is void
    g = gt & ~ndimage.binary_erosion(gt, np.ones((3, 3)), border_value=1) & valid
    p = pred & ~ndimage.binary_erosion(pred, np.ones((3, 3)), border_value=1) & valid
    d = cdist(np.argwhere(p), np.argwhere(g))
    precision, recall = np.mean(d.min(axis=1) <= 1.5), np.mean(d.min(axis=0) <= 1.5)
    got = boundary_f_score(gt, pred, 1.5, valid=valid)
    assert (got.precision, got.recall) == pytest.approx((precision, recall))
    assert got != boundary_f_score(gt, pred, 1.5)

    def band(m):  # Cheng et al.'s band of width 2, then restricted to valid pixels
        padded = np.pad(m, 1).astype(np.uint8)
        return m & ~cv2.erode(padded, np.ones((3, 3), np.uint8), iterations=2)[1:-1, 1:-1].astype(bool) & valid

    gb, pb = band(gt), band(pred)
    assert boundary_iou(gt, pred, 2, valid=valid) == pytest.approx((gb & pb).sum() / (gb | pb).sum())
    assert boundary_iou(gt, pred, 2, valid=valid) != pytest.approx(boundary_iou(gt, pred, 2))


def test_bad_inputs_raise():
    with pytest.raises(DataError, match="differs"):
        boundary_f_score(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(DataError, match="2-D"):
        boundary_iou(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)))
    with pytest.raises(ValueError):
        boundary_iou(np.zeros((4, 4)), np.zeros((4, 4)), dilation=0)


def test_boundary_scores_per_class_with_ignore_and_absent_classes():
    gt = np.zeros((20, 20), np.uint8)
    gt[5:15, 5:15] = 1
    pred = np.roll(gt, 1, axis=1)
    scores = BoundaryScores(num_classes=4, tolerance=0, dilation=1)
    scores.update(gt, pred)
    scores.update(gt, gt)
    f = scores.boundary_f()
    assert f[1] == pytest.approx((0.5 + 1.0) / 2)
    assert np.isnan(f[2]) and np.isnan(f[3])
    biou = scores.boundary_iou()
    assert biou[1] == pytest.approx((18 + 36) / (54 + 36))
    # A predicted contour inside a void region is not penalised.
    void = gt.copy()
    void[:, 12:] = 255
    clean = BoundaryScores(4, tolerance=1).update(void, np.where(void == 255, 0, void))
    noisy = BoundaryScores(4, tolerance=1).update(void, np.where(void == 255, 3, void))
    assert clean.boundary_f()[1] == noisy.boundary_f()[1]
    assert np.isnan(noisy.boundary_f()[3])
    summary = noisy.merge_into(ConfusionMatrix(4).update(void, np.where(void == 255, 3, void)).summary())
    assert summary["mean_boundary_f"] == pytest.approx(np.nanmean(noisy.boundary_f()))
    assert summary["per_class"][1]["boundary_iou"] == pytest.approx(noisy.boundary_iou()[1])


def test_diagonal_fraction():
    assert diagonal_fraction(300, 400, 0.02) == pytest.approx(10.0)


def test_boundary_distance_counts_pixels_to_the_nearest_contour() -> None:
    labels = np.zeros((9, 9), np.uint8)
    labels[3:6, 3:6] = 1
    got = boundary_distance(labels)
    # contours: the square's ring (rows/cols 3..5 minus the centre) and the background pixels touching it
    assert got[4, 4] == 1.0 and got[3, 3] == 0.0 and got[2, 4] == 0.0
    assert got[0, 4] == 2.0 and got[0, 0] == pytest.approx(np.hypot(2, 2))
    assert np.all(boundary_distance(np.zeros((4, 4), np.uint8)) > 0)  # one region: no contour
    with pytest.raises(DataError, match="2-D"):
        boundary_distance(np.zeros((2, 2, 2)))


def test_class_scores_table_against_hand_counts() -> None:
    truth = np.zeros((10, 10), np.uint8)
    truth[2:6, 2:6] = 1  # 16 pixels
    truth[0, :] = 255
    pred = np.zeros_like(truth)
    pred[2:6, 2:8] = 1  # 24 pixels: TP 16, FP 8
    table = class_scores([truth], [pred], ["background", "disc", "rod"])
    assert list(table.index) == ["background", "disc", "rod"] and list(table.columns) == ["IoU", "Dice", "boundary F"]
    assert table.loc["disc", "IoU"] == pytest.approx(16 / 24) and table.loc["disc", "Dice"] == pytest.approx(32 / 40)
    assert table.loc["background", "IoU"] == pytest.approx(66 / 74)  # 90 valid pixels: 74 true bg, 66 kept
    assert np.isnan(table.loc["rod", "IoU"]) and np.isnan(table.loc["rod", "boundary F"])
    assert table.loc["disc", "boundary F"] == pytest.approx(boundary_f_score(truth == 1, pred == 1, 2.0, valid=truth != 255).f)
    with pytest.raises(ValueError):
        class_scores([truth], [], ["background", "disc", "rod"])


def test_the_default_tolerance_is_two_pixels_hand_checked():
    gt, pred = _square(), _square(shift=3)
    # Shifted by 3 px, within 2 px of the other contour: 9 of 10 pixels of each of the top and bottom
    # rows, 4 of 8 of the inner side (the two rows next to each corner), 0 of 8 of the outer side.
    assert boundary_f_score(gt, pred) == pytest.approx((22 / 36, 22 / 36, 22 / 36))
    assert boundary_f_score(gt, pred, tolerance=3) == pytest.approx((1.0, 1.0, 1.0))


def test_the_summary_names_the_tolerance_and_band_it_used():
    gt = _square().astype(np.uint8)
    scores = BoundaryScores(2, tolerance=1.5, dilation=3).update(gt, gt)
    summary = scores.merge_into(ConfusionMatrix(2).update(gt, gt).summary())
    assert summary["boundary_tolerance_px"] == 1.5 and summary["boundary_iou_dilation_px"] == 3


def test_masks_that_are_not_2d_are_refused_naming_the_file():
    stack = np.zeros((2, 4, 4), np.uint8)
    with pytest.raises(DataError, match=r"frames\.npy.*boundary scores need 2-D masks, got shape \(2, 4, 4\)"):
        BoundaryScores(2).update(stack, stack, source="frames.npy")
