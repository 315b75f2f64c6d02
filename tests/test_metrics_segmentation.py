"""ConfusionMatrix against scikit-learn (an independent implementation) and hand-checked cases."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, jaccard_score, recall_score

from labkit.errors import DataError
from labkit.metrics.segmentation import ConfusionMatrix, summary_to_markdown

K, IGNORE = 5, 255


def _random_pair(rng: np.random.Generator, shape=(23, 31)) -> tuple[np.ndarray, np.ndarray]:
    gt = rng.integers(0, K, size=shape).astype(np.uint8)
    gt[rng.random(shape) < 0.1] = IGNORE
    pred = np.where(rng.random(shape) < 0.6, gt, rng.integers(0, K, size=shape)).astype(np.uint8)
    pred[gt == IGNORE] = rng.integers(0, K, size=int((gt == IGNORE).sum()))
    return gt, pred


@pytest.mark.parametrize("seed", range(5))
def test_matches_sklearn_on_random_masks(seed):
    rng = np.random.default_rng(seed)
    pairs = [_random_pair(rng) for _ in range(4)]
    # class 4 never occurs in image 0 (checks absent classes inside a sum)
    pairs[0][0][pairs[0][0] == 4] = 3
    cm = ConfusionMatrix(K, ignore_index=IGNORE)
    for gt, pred in pairs:
        cm.update(gt, pred)
    y_true = np.concatenate([g[g != IGNORE] for g, _ in pairs])
    y_pred = np.concatenate([p[g != IGNORE] for g, p in pairs])
    labels = list(range(K))
    np.testing.assert_array_equal(cm.matrix, confusion_matrix(y_true, y_pred, labels=labels))
    np.testing.assert_allclose(cm.iou(), jaccard_score(y_true, y_pred, labels=labels, average=None), rtol=0, atol=1e-12)
    np.testing.assert_allclose(cm.dice(), f1_score(y_true, y_pred, labels=labels, average=None), rtol=0, atol=1e-12)
    np.testing.assert_allclose(cm.class_accuracy(), recall_score(y_true, y_pred, labels=labels, average=None),
                               rtol=0, atol=1e-12)
    assert cm.pixel_accuracy() == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-12)
    assert cm.mean_iou() == pytest.approx(jaccard_score(y_true, y_pred, labels=labels, average="macro"), abs=1e-12)
    support = np.bincount(y_true, minlength=K)
    fw = np.sum(support * jaccard_score(y_true, y_pred, labels=labels, average=None)) / support.sum()
    assert cm.frequency_weighted_iou() == pytest.approx(fw, abs=1e-12)


def test_hand_checked_two_class_case():
    gt = np.array([[0, 0, 1], [1, 1, IGNORE]])
    pred = np.array([[0, 1, 1], [1, 0, 4]])  # the 4 sits on an ignored pixel: not counted
    cm = ConfusionMatrix(K).update(gt, pred)
    # n00=1 n01=1 n10=1 n11=2 -> IoU0 = 1/3, IoU1 = 2/4; classes 2..4 absent -> NaN
    np.testing.assert_allclose(cm.iou()[:2], [1 / 3, 1 / 2])
    assert np.isnan(cm.iou()[2:]).all() and np.isnan(cm.dice()[2:]).all()
    assert cm.mean_iou() == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert cm.pixel_accuracy() == pytest.approx(3 / 5)
    assert cm.mean_accuracy() == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert cm.frequency_weighted_iou() == pytest.approx((2 * 1 / 3 + 3 * 1 / 2) / 5)
    np.testing.assert_allclose(cm.dice()[:2], [2 / 4, 4 / 6])


def test_class_only_in_prediction_scores_zero_and_counts():
    cm = ConfusionMatrix(3, ignore_index=None).update(np.zeros((2, 2), int), np.array([[0, 0], [0, 2]]))
    assert cm.iou()[2] == 0.0 and np.isnan(cm.iou()[1])
    assert cm.mean_iou() == pytest.approx((3 / 4 + 0) / 2)
    assert np.isnan(cm.class_accuracy()[2])  # absent from the ground truth


def test_ignore_index_is_honoured_and_can_be_switched_off():
    rng = np.random.default_rng(1)
    gt, pred = _random_pair(rng)
    other = pred.copy()
    other[gt == IGNORE] = 0
    a = ConfusionMatrix(K).update(gt, pred).matrix
    np.testing.assert_array_equal(a, ConfusionMatrix(K).update(gt, other).matrix)
    assert a.sum() == int((gt != IGNORE).sum())
    with pytest.raises(DataError, match="neither class ids"):
        ConfusionMatrix(K, ignore_index=None).update(gt, pred)


def test_batches_equal_image_by_image():
    rng = np.random.default_rng(2)
    pairs = [_random_pair(rng) for _ in range(3)]
    one = ConfusionMatrix(K)
    for gt, pred in pairs:
        one.update(gt, pred)
    batch = ConfusionMatrix(K).update(np.stack([g for g, _ in pairs]), np.stack([p for _, p in pairs]))
    np.testing.assert_array_equal(one.matrix, batch.matrix)


@pytest.mark.parametrize("gt, pred, message", [
    (np.zeros((4, 4), int), np.zeros((4, 5), int), "differs from ground-truth shape"),
    (np.zeros((4, 4), int), np.full((4, 4), 5), r"values \[5\] outside"),
    (np.zeros((4, 4), int), np.full((4, 4), -1), r"values \[-1\] outside"),
    (np.zeros((4, 4), int), np.full((4, 4), 255), r"values \[255\] outside"),
    (np.zeros((4, 4), int), np.zeros((4, 4)), "integer class ids"),
    (np.full((4, 4), 7), np.zeros((4, 4), int), r"values \[7\] that are neither"),
])
def test_bad_masks_raise_dataerror_naming_the_file(gt, pred, message):
    with pytest.raises(DataError, match=message) as info:
        ConfusionMatrix(K).update(gt, pred, source="masks/val/x.png")
    assert "masks/val/x.png" in str(info.value)


def test_summary_is_json_ready_and_renders():
    cm = ConfusionMatrix(3).update(np.array([[0, 1]]), np.array([[0, 1]]))
    summary = cm.summary(["bg", "disc", "block"])
    assert summary["mean_iou"] == 1.0 and summary["per_class"][2]["iou"] is None
    text = summary_to_markdown(summary)
    assert "| 1 disc | 1.0000 |" in text and "n/a" in text
    with pytest.raises(ValueError):
        cm.summary(["only one"])


def test_empty_matrix_gives_nan_not_a_crash():
    cm = ConfusionMatrix(2).update(np.full((2, 2), IGNORE), np.zeros((2, 2), int))
    assert np.isnan(cm.pixel_accuracy()) and np.isnan(cm.mean_iou()) and np.isnan(cm.frequency_weighted_iou())


def _half_right() -> ConfusionMatrix:
    """gt [0, 1], pred [0, 0]: n00 = 1, n10 = 1; t = (1, 1), p = (2, 0). IoU (1/2, 0), Dice (2/3, 0),
    accuracy (1, 0); pixel accuracy 1/2, mIoU 1/4, fwIoU (1 * 1/2 + 1 * 0) / 2 = 1/4, mean Dice 1/3."""
    return ConfusionMatrix(2).update(np.array([[0, 1]]), np.array([[0, 0]]))


def test_summary_by_hand():
    assert _half_right().summary(["bg", "disc"]) == {
        "num_classes": 2, "ignore_index": 255, "pixels": 2, "pixel_accuracy": 0.5, "mean_accuracy": 0.5,
        "mean_iou": 0.25, "frequency_weighted_iou": 0.25, "mean_dice": pytest.approx(1 / 3),
        "per_class": [
            {"class_id": 0, "name": "bg", "iou": 0.5, "dice": pytest.approx(2 / 3), "accuracy": 1.0,
             "gt_pixels": 1, "pred_pixels": 2},
            {"class_id": 1, "name": "disc", "iou": 0.0, "dice": 0.0, "accuracy": 0.0, "gt_pixels": 1, "pred_pixels": 0},
        ]}


def test_markdown_by_hand_with_boundary_columns_and_an_unnamed_class():
    summary = _half_right().summary(["bg", ""])
    summary["mean_boundary_f"] = 0.75
    summary["per_class"][0].update(boundary_f=1.0, boundary_iou=None)
    summary["per_class"][1].update(boundary_f=0.5, boundary_iou=0.25)
    assert summary_to_markdown(summary) == "\n".join([
        "pixels counted: 2 (ignore index 255)",
        "",
        "| metric | value |",
        "| --- | --- |",
        "| pixel_accuracy | 0.5000 |",
        "| mean_accuracy | 0.5000 |",
        "| mean_iou | 0.2500 |",
        "| frequency_weighted_iou | 0.2500 |",
        "| mean_dice | 0.3333 |",
        "| mean_boundary_f | 0.7500 |",
        "",
        "| class | IoU | Dice | accuracy | boundary_f | boundary_iou | gt pixels | pred pixels |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        "| 0 bg | 0.5000 | 0.6667 | 1.0000 | 1.0000 | n/a | 1 | 2 |",
        "| 1 | 0.0000 | 0.0000 | 0.0000 | 0.5000 | 0.2500 | 1 | 0 |",
    ])


def test_bad_values_are_listed_up_to_ten():
    gt = np.arange(20, 32).reshape(3, 4)  # 12 distinct values outside [0, 5): the first 10 are named
    with pytest.raises(DataError) as info:
        ConfusionMatrix(K).update(gt, np.zeros((3, 4), int))
    assert f"values {list(range(20, 30))} that are neither" in str(info.value)
    with pytest.raises(DataError) as info:
        ConfusionMatrix(K).update(np.zeros((3, 4), int), gt)
    assert f"values {list(range(20, 30))} outside" in str(info.value)
