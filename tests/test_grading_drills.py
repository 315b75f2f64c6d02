"""labkit.grading.drills helpers on hand-worked cases that test_drills.py leaves open (exact values,
integer inputs, empty inputs)."""

from __future__ import annotations

import numpy as np
import pytest

from labkit.grading import drills as dr


def test_export_logits_of_uint8_pixels_do_not_wrap():
    """Moments in float64 whatever the input's dtype: 200 squared is 40000, not 40000 mod 256."""
    chw = np.stack([np.full((2, 3), v, np.uint8) for v in (200, 10, 0)])
    weights = np.zeros((2, 7))
    weights[0, 3] = 1.0   # mean square of channel 0
    weights[1, [0, 1, 6]] = [1.0, 1.0, 0.5]  # the two means + bias
    assert dr.export_logits(chw, weights).tolist() == [40000.0, 210.5]


def test_pair_iou_takes_each_corner_from_its_own_axis():
    # [0, 0, 10, 10] and [0, 0, 5, 20]: overlap 5 x 10 = 50, union 100 + 100 - 50 -> 1/3
    assert dr.pair_iou([[0, 0, 10, 10]], [[0, 0, 5, 20]]).tolist() == [[50 / 150]]
    assert dr.pair_iou([[0, 0, 5, 20]], [[0, 0, 10, 10]]).tolist() == [[50 / 150]]
    assert dr.pair_iou(np.zeros((0, 4)), [[0, 0, 1, 1]]).shape == (0, 1)


def test_ap_ranks_tied_scores_in_input_order():
    """20 predictions for 15 ground-truth boxes: ten hits at 0.9 (listed last), then at 0.5 five
    misses listed before five hits. In input order the ties give precision 1 up to recall 10/15,
    then 11/16 ... 15/20, all raised to 15/20 by the interpolation: AP = 10/15 + 5/15 * 3/4 = 11/12."""
    scores = np.r_[np.full(10, 0.5), np.full(10, 0.9)]
    iou = np.zeros((20, 15))
    for k, p in enumerate(range(10, 20)):
        iou[p, k] = 0.9
    for k, p in enumerate(range(5, 10)):
        iou[p, 10 + k] = 0.9
    assert dr.average_precision(iou, scores, 0.5) == pytest.approx(11 / 12, abs=1e-12)


def test_nn_accuracy_without_a_train_or_validation_frame_is_nan():
    feats, labels = np.zeros((3, 2)), np.array([0, 1, 0])
    assert np.isnan(dr.nn_accuracy(feats, labels, [], [0, 1]))
    assert np.isnan(dr.nn_accuracy(feats, labels, [0, 1], []))
