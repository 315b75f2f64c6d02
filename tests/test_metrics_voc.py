"""VOC AP: hand-checked cases, both box conventions, and Padilla's 7-image reference example."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labkit.data.annotations import Detections
from labkit.errors import DataError
from labkit.metrics.iou import box_iou
from labkit.metrics.voc import average_precision, voc_evaluate


def test_box_iou_conventions_by_hand() -> None:
    a, b = np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10], [10, 10, 20, 20]])
    np.testing.assert_allclose(box_iou(a, b), [[50 / 150, 0.0]])
    # +1: boxes are 11 x 11 pixels, the first pair shares 6 x 11, the second one pixel
    np.testing.assert_allclose(box_iou(a, b, pixel_plus_one=True), [[66 / 176, 1 / 241]])
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 2)


def test_box_iou_off_the_origin_tells_x_from_y() -> None:
    """a = x 2..8, y 5..9 (6 x 4 = 24); b = x 4..10, y 6..12 (6 x 6 = 36); they share
    x 4..8, y 6..9 (4 x 3 = 12): IoU 12 / (24 + 36 - 12) = 0.25. Read y1 for x1 (or the
    reverse) and the overlap changes. VOC +1 widths: 7 x 5 = 35, 7 x 7 = 49, shared 5 x 4 = 20:
    20 / 64."""
    a, b = np.array([[2, 5, 8, 9]]), np.array([[4, 6, 10, 12]])
    np.testing.assert_allclose(box_iou(a, b), [[0.25]])
    np.testing.assert_allclose(box_iou(b, a), [[0.25]])
    np.testing.assert_allclose(box_iou(a, b, pixel_plus_one=True), [[20 / 64]])
    # a box 3 px to the right of a overlaps it 3 x 4; one 3 px below overlaps it 6 x 1
    np.testing.assert_allclose(box_iou(a, [[5, 5, 11, 9], [2, 8, 8, 12]]), [[12 / 36, 6 / 42]])


def test_box_iou_equals_torchvision_on_random_boxes() -> None:
    """torchvision.ops.box_iou is an independent implementation of the same definition."""
    import torch
    from torchvision.ops import box_iou as tv_box_iou

    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 50, (2, 40, 2))
    wh = rng.uniform(1, 30, (2, 40, 2))
    a, b = (np.concatenate([xy[i], xy[i] + wh[i]], axis=1) for i in range(2))
    expected = tv_box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    assert (expected > 0).mean() > 0.2  # enough overlapping pairs to matter
    np.testing.assert_allclose(box_iou(a, b), expected, rtol=1e-12, atol=1e-12)


def test_average_precision_by_hand() -> None:
    # TP, FP, TP with 2 positives: recall .5 .5 1, precision 1 .5 .667
    rec, prec = np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])
    assert average_precision(rec, prec) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # 11-point: recall >= 0..0.5 -> 1 (6 points), 0.6..1.0 -> 2/3 (5 points)
    assert average_precision(rec, prec, "11_point") == pytest.approx((6 + 5 * 2 / 3) / 11)
    assert average_precision(np.zeros(0), np.zeros(0)) == 0.0
    with pytest.raises(ValueError, match="interpolation"):
        average_precision(rec, prec, "101_point")


def _det(boxes, cls, score=None, **data) -> Detections:
    return Detections(np.asarray(boxes, float).reshape(-1, 4), cls, score=score, data=data)


def test_duplicates_difficult_and_classes_by_hand() -> None:
    gt = {1: _det([[0, 0, 10, 10], [20, 20, 10, 10]], [1, 1], difficult=np.array([False, True])),
          2: _det([[0, 0, 10, 10]], [2])}
    preds = {1: _det([[0, 0, 10, 10], [1, 0, 10, 10], [20, 20, 10, 10], [50, 50, 5, 5]], [1, 1, 1, 1],
                     score=[0.9, 0.8, 0.7, 0.6]),
             2: _det([[0, 0, 10, 10]], [1], score=[0.95])}  # right box, wrong class
    report = voc_evaluate(gt, preds)
    c1 = report.classes[1]
    # order: 0.95 (img 2, no class-1 GT: FP), 0.9 TP, 0.8 duplicate FP, 0.7 difficult (ignored), 0.6 FP
    np.testing.assert_array_equal(c1.tp, [0, 1, 0, 0])
    np.testing.assert_array_equal(c1.fp, [1, 0, 1, 1])
    assert c1.num_positives == 1
    assert c1.ap == pytest.approx(0.5)  # recall 1 reached at precision 1/2
    assert report.classes[2].ap == 0.0 and report.mean_ap == pytest.approx(0.25)
    assert report.to_dict()["per_class"][0]["num_detections"] == 4


def test_input_errors() -> None:
    gt = {1: _det([[0, 0, 10, 10]], [1])}
    with pytest.raises(DataError, match="image 7"):
        voc_evaluate(gt, {7: _det([[0, 0, 1, 1]], [1], score=[0.5])})
    with pytest.raises(DataError, match="need scores"):
        voc_evaluate(gt, {1: _det([[0, 0, 1, 1]], [1])})


# --------------------------------------------------------------------------- Padilla's example
def _read_padilla(folder: Path, scored: bool) -> dict[int, Detections]:
    """``<class> [<confidence>] <left> <top> <width> <height>`` per line, one file per image."""
    out = {}
    for f in sorted(folder.glob("*.txt")):
        rows = np.array([[float(v) for v in line.split()[1:]] for line in f.read_text().splitlines() if line.strip()])
        out[int(f.stem)] = Detections(rows[:, -4:], np.zeros(len(rows), np.int64), score=rows[:, 0] if scored else None)
    return out


@pytest.fixture
def padilla(shared_data: Path) -> tuple[dict, dict]:
    root = shared_data / "padilla-toy-ap"
    return _read_padilla(root / "groundtruths", False), _read_padilla(root / "detections", True)


@pytest.mark.shared
@pytest.mark.parametrize("iou, plus_one, all_point, eleven_point", [
    (0.3, True, 24.57, 26.84),   # SOURCE.md / results.txt: the repository's numbers
    (0.3, False, 22.54, 26.84),  # detection G drops below IoU 0.3 without the +1
    (0.5, True, 2.22, 3.03),
    (0.5, False, 2.22, 3.03),
])
def test_padilla_reference_values(padilla, iou: float, plus_one: bool, all_point: float, eleven_point: float) -> None:
    gt, dets = padilla
    for interpolation, expected in (("all_point", all_point), ("11_point", eleven_point)):
        report = voc_evaluate(gt, dets, iou_threshold=iou, interpolation=interpolation, pixel_plus_one=plus_one)
        assert report.mean_ap * 100 == pytest.approx(expected, abs=0.005)


@pytest.mark.shared
def test_padilla_precision_recall_lists(padilla, shared_data: Path) -> None:
    text = (shared_data / "padilla-toy-ap" / "results" / "results.txt").read_text()
    lists = {line.split(":")[0]: [float(v) for v in line.split("[")[1].rstrip("]").replace("'", "").split(",")]
             for line in text.splitlines() if line.startswith(("Precision:", "Recall:"))}
    c = voc_evaluate(*padilla, iou_threshold=0.3, pixel_plus_one=True).classes[0]
    np.testing.assert_allclose(c.precision, lists["Precision"], atol=0.005)
    np.testing.assert_allclose(c.recall, lists["Recall"], atol=0.005)


# --------------------------------------------------------------------------- boundaries (mutation run)
def test_iou_exactly_at_the_threshold_is_a_true_positive() -> None:
    """VOCevaldet.m: ``if ovmax >= VOCopts.minoverlap`` -> TP. A 10 x 10 object and a 20 x 10
    detection over it share 100 of 200 pixels: IoU 0.5 exactly, a TP at 0.5 and an FP just above."""
    gt = {1: _det([[0, 0, 10, 10]], [1])}
    preds = {1: _det([[0, 0, 20, 10]], [1], score=[0.9])}
    at = voc_evaluate(gt, preds, iou_threshold=0.5).classes[1]
    np.testing.assert_array_equal(at.tp, [1])
    assert at.ap == 1.0 and at.class_id == 1
    above = voc_evaluate(gt, preds, iou_threshold=0.5 + 1e-9).classes[1]
    np.testing.assert_array_equal(above.fp, [1])
    assert above.ap == 0.0


def test_no_predictions_at_all_scores_zero_per_class() -> None:
    """An empty prediction dict: every class with objects has recall 0, so AP 0 (not a crash)."""
    gt = {1: _det([[0, 0, 10, 10]], [1]), 2: _det([[5, 5, 10, 10], [30, 30, 5, 5]], [2, 3])}
    report = voc_evaluate(gt, {})
    assert sorted(report.classes) == [1, 2, 3]
    for cid, c in report.classes.items():
        assert (c.class_id, c.ap, c.num_positives, c.scores.size) == (cid, 0.0, 1, 0)
    assert report.mean_ap == 0.0
    # an image listed with no detections at all is the same as no entry
    assert voc_evaluate(gt, {1: _det(np.zeros((0, 4)), np.zeros(0, np.int64), score=np.zeros(0))}).mean_ap == 0.0


def test_error_messages_name_the_image() -> None:
    gt = {1: _det([[0, 0, 10, 10]], [1])}
    with pytest.raises(DataError) as info:
        voc_evaluate(gt, {1: _det([[0, 0, 1, 1]], [1])})
    assert str(info.value) == "record image 1: predictions need scores"
    with pytest.raises(DataError) as info:
        voc_evaluate(gt, {1: _det([[np.nan, 0, 1, 1]], [1], score=[0.5])})
    assert str(info.value) == "record image 1: a predicted box has a NaN or infinite coordinate"


def test_to_dict_by_hand() -> None:
    """Two TPs of class 1 (AP 1) and one object of class 2 that nothing found (AP 0)."""
    gt = {1: _det([[0, 0, 10, 10], [20, 20, 10, 10]], [1, 1]), 2: _det([[0, 0, 10, 10]], [2])}
    preds = {1: _det([[0, 0, 10, 10], [20, 20, 10, 10]], [1, 1], score=[0.9, 0.8])}
    assert voc_evaluate(gt, preds, pixel_plus_one=True).to_dict() == {
        "iou_threshold": 0.5, "interpolation": "all_point", "pixel_plus_one": True, "mAP": 0.5,
        "per_class": [{"class_id": 1, "AP": 1.0, "num_positives": 2, "num_detections": 2},
                      {"class_id": 2, "AP": 0.0, "num_positives": 1, "num_detections": 0}]}
