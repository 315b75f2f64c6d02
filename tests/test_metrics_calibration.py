"""Reliability, ECE and precision-vs-threshold on cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labkit.metrics.calibration import (choose_threshold, expected_calibration_error, match_detections, reliability,
                                        threshold_sweep)


def test_reliability_hand_checked() -> None:
    # 2 bins. [0, .5): scores .1, .2, .3 (mean .2), correct 1 of 3 -> gap 1/3 - .2 = .1333
    #         [.5, 1]: scores .6, .9, 1.0 (mean .8333), correct 3 of 3 -> gap 1 - .8333 = .1667
    # ECE = 3/6 * .1333 + 3/6 * .1667 = .15; MCE = .1667
    scores = np.array([0.1, 0.2, 0.3, 0.6, 0.9, 1.0])
    correct = np.array([0, 1, 0, 1, 1, 1], dtype=bool)
    rel = reliability(scores, correct, bins=2)
    assert rel.bins["count"].tolist() == [3, 3]
    assert rel.bins["confidence"].tolist() == pytest.approx([0.2, 2.5 / 3])
    assert rel.bins["precision"].tolist() == pytest.approx([1 / 3, 1.0])
    assert rel.ece == pytest.approx(0.15)
    assert rel.mce == pytest.approx(1 / 6)
    assert expected_calibration_error(scores, correct, bins=2) == pytest.approx(0.15)
    fig = rel.plot()
    assert len(fig.axes) == 2 and "ECE 0.150" in fig.axes[0].get_title()


def test_reliability_empty_bins_and_perfect_calibration() -> None:
    # every score 0.25 with a quarter correct: calibrated, ECE 0; the other 9 bins are empty
    rel = reliability(np.full(8, 0.25), np.array([1, 0, 0, 0, 1, 0, 0, 0], dtype=bool), bins=10)
    assert rel.ece == pytest.approx(0.0) and rel.mce == pytest.approx(0.0)
    assert rel.bins["count"].tolist() == [0, 0, 8] + [0] * 7
    assert rel.bins["precision"].isna().sum() == 9
    with pytest.raises(ValueError, match="lie in"):
        reliability(np.array([1.2]), np.array([True]))
    with pytest.raises(ValueError, match="flags"):
        reliability(np.array([0.2, 0.3]), np.array([True]))


def test_threshold_sweep_and_choice() -> None:
    # scores .9 (TP), .8 (FP), .6 (TP), .3 (TP), .1 (FP); 4 ground-truth objects
    scores = np.array([0.9, 0.8, 0.6, 0.3, 0.1])
    correct = np.array([1, 0, 1, 1, 0], dtype=bool)
    sweep = threshold_sweep(scores, correct, num_gt=4, thresholds=[0.0, 0.5, 0.85, 0.95])
    assert sweep["kept"].tolist() == [5, 3, 1, 0]
    assert sweep["tp"].tolist() == [3, 2, 1, 0]
    assert sweep["precision"].tolist()[:3] == pytest.approx([0.6, 2 / 3, 1.0]) and np.isnan(sweep["precision"].iloc[3])
    assert sweep["recall"].tolist() == pytest.approx([0.75, 0.5, 0.25, 0.0])
    # F1: .6667, .5714, .4, 0 -> best at 0.0; precision >= .65 first reached at 0.5
    assert sweep["f1"].tolist() == pytest.approx([2 / 3, 4 / 7, 0.4, 0.0])
    assert choose_threshold(sweep) == 0.0
    assert choose_threshold(sweep, min_precision=0.65) == 0.5
    assert choose_threshold(sweep, min_precision=1.1) == 0.0  # unreachable: falls back to best F1


def test_threshold_sweep_keeps_scores_exactly_at_the_threshold_and_defaults() -> None:
    """"score >= threshold": a detection scored exactly 0.5 is kept at threshold 0.5. Scores
    .5 (TP), .5 (FP), .25 (TP); 2 objects. Default thresholds 0, 0.05, ..., 0.95 (20 of them)."""
    sweep = threshold_sweep(np.array([0.5, 0.5, 0.25]), np.array([1, 0, 1], dtype=bool), num_gt=2,
                            thresholds=[0.25, 0.5, 0.5000001])
    assert sweep["kept"].tolist() == [3, 2, 0]
    assert sweep["tp"].tolist() == [2, 1, 0] and sweep["fp"].tolist() == [1, 1, 0]
    default = threshold_sweep(np.array([0.5, 0.5, 0.25]), np.array([1, 0, 1], dtype=bool), num_gt=2)
    assert default["threshold"].tolist() == pytest.approx([k / 20 for k in range(20)])
    assert default.loc[default["threshold"] == 0.5, "kept"].item() == 2


def test_match_detections_uses_coco_matching() -> None:
    gt = {"images": [{"id": 1, "width": 200, "height": 200}, {"id": 2, "width": 200, "height": 200}],
          "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
          "annotations": [
              {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "area": 1600, "iscrowd": 0},
              {"id": 2, "image_id": 1, "category_id": 2, "bbox": [100, 100, 40, 40], "area": 1600, "iscrowd": 0},
              {"id": 3, "image_id": 2, "category_id": 1, "bbox": [0, 0, 100, 100], "area": 10000, "iscrowd": 1},
          ]}
    preds = [
        {"image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "score": 0.9},   # TP
        {"image_id": 1, "category_id": 1, "bbox": [12, 10, 40, 40], "score": 0.8},   # duplicate -> FP
        {"image_id": 1, "category_id": 1, "bbox": [100, 100, 40, 40], "score": 0.7},  # wrong class -> FP
        {"image_id": 1, "category_id": 2, "bbox": [110, 100, 40, 40], "score": 0.4},  # IoU 30/50 = .6 -> TP
        {"image_id": 2, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.6},   # inside the crowd -> ignored
    ]
    m = match_detections(gt, preds)
    assert m.table["status"].tolist() == ["tp", "fp", "fp", "tp", "ignored"]
    assert m.num_gt == 2 and m.iou_threshold == 0.5
    assert m.scores.tolist() == [0.9, 0.8, 0.7, 0.4] and m.correct.tolist() == [True, False, False, True]
    strict = match_detections(gt, preds, iou_threshold=0.75)  # the shifted block no longer counts
    assert strict.table["status"].tolist() == ["tp", "fp", "fp", "fp", "ignored"]
    capped = match_detections(gt, preds, max_det=2)  # COCO cuts per image and class: class 1 keeps its best two
    assert capped.table["status"].tolist() == ["tp", "fp", "not_evaluated", "tp", "ignored"]
    assert isinstance(match_detections(gt, []).table, pd.DataFrame)


def test_bin_edges_belong_to_the_upper_bin_and_one_to_the_last() -> None:
    """Bin b holds [b/B, (b+1)/B): with 4 bins 0.25 and 0.5 open bins 1 and 2, 0 is in bin 0 and 1.0 in
    bin 3 (the last bin is closed). Correct: 0 and 1.0; the gaps are 1 - 0, 0 - .25, 0 - .5, 1 - 1."""
    rel = reliability(np.array([0.0, 0.25, 0.5, 1.0]), np.array([1, 0, 0, 1], dtype=bool), bins=4)
    assert rel.bins["count"].tolist() == [1, 1, 1, 1]
    assert rel.bins["low"].tolist() == [0.0, 0.25, 0.5, 0.75] and rel.bins["high"].tolist() == [0.25, 0.5, 0.75, 1.0]
    assert rel.bins["gap"].tolist() == pytest.approx([1.0, -0.25, -0.5, 0.0])
    assert rel.ece == pytest.approx((1 + 0.25 + 0.5 + 0) / 4) and rel.mce == pytest.approx(1.0)
    assert rel.count == 4
    one = reliability(np.array([0.2, 0.9]), np.array([True, True]), bins=1)  # a single bin is allowed
    assert one.bins["count"].tolist() == [2] and one.ece == pytest.approx(1 - 0.55)
    with pytest.raises(ValueError, match="bins must be >= 1"):
        reliability(np.array([0.5]), np.array([True]), bins=0)
    with pytest.raises(ValueError, match="lie in"):
        reliability(np.array([-0.01]), np.array([True]))


def test_no_detections_gives_nan_not_a_crash() -> None:
    rel = reliability(np.zeros(0), np.zeros(0, dtype=bool), bins=5)
    assert np.isnan(rel.ece) and np.isnan(rel.mce) and rel.count == 0 and rel.bins["count"].sum() == 0
    sweep = threshold_sweep(np.array([0.4]), np.array([False]), num_gt=0, thresholds=[0.0, 0.5])
    assert np.isnan(sweep["recall"]).all()  # no ground truth: recall undefined
    assert sweep["f1"].tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="flags"):
        threshold_sweep(np.array([0.2, 0.3]), np.array([True]), num_gt=1)


def test_choose_threshold_ties_take_the_lowest_threshold() -> None:
    """Precision exactly at min_precision qualifies; equal best F1 at 0.3 and 0.6 -> 0.3."""
    sweep = pd.DataFrame({"threshold": [0.1, 0.3, 0.6, 0.9], "precision": [0.4, 0.5, 0.75, 1.0],
                          "f1": [0.2, 0.5, 0.5, 0.1]})
    assert choose_threshold(sweep) == 0.3
    assert choose_threshold(sweep, min_precision=0.75) == 0.6
    assert choose_threshold(sweep, min_precision=0.5) == 0.3


def test_reliability_plot_shows_the_diagonal_and_a_complete_legend() -> None:
    # 3 bins holding 1, 2 and 3 detections
    rel = reliability(np.array([0.1, 0.4, 0.5, 0.7, 0.8, 0.9]), np.array([0, 1, 0, 1, 1, 1], dtype=bool), bins=3)
    fig = rel.plot()
    ax, counts = fig.axes
    diagonal = [line for line in ax.lines if line.get_label() == "perfect calibration"]
    assert len(diagonal) == 1 and diagonal[0].get_linestyle() == "--"
    assert list(diagonal[0].get_xdata()) == [0, 1] and list(diagonal[0].get_ydata()) == [0, 1]
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == [
        "detections per bin (right axis)", "mean score in bin", "perfect calibration", "precision in bin"]
    assert counts.get_yscale() == "symlog" and counts.get_ylabel() == "detections per bin"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("detection score", "fraction correct")
    # the count steps end at 1.0 on the last bin's count
    step = counts.lines[0]
    np.testing.assert_allclose(step.get_xdata(), [0, 1 / 3, 2 / 3, 1])
    assert list(step.get_ydata()) == [1, 2, 3, 3]


def test_match_table_columns_and_the_score_range_message() -> None:
    gt = {"images": [{"id": 1, "width": 50, "height": 50}], "categories": [{"id": 4, "name": "a"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 4, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0}]}
    m = match_detections(gt, [{"image_id": 1, "category_id": 4, "bbox": [0, 0, 10, 10], "score": 0.5}])
    assert m.table.to_dict("records") == [{"image_id": 1, "category_id": 4, "score": 0.5, "status": "tp"}]
    with pytest.raises(ValueError, match=r"^scores must lie in \[0, 1\]$"):
        reliability(np.array([1.5]), np.array([True]))
