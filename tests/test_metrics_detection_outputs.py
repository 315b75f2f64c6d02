"""COCO evaluation outputs worked out by hand (report dict, markdown, per-class AP, PR curves) and the
input checks at their exact boundaries (values just inside pass, just outside name the record)."""

from __future__ import annotations

import dataclasses
import math
import sys

import numpy as np
import pytest

from labkit.errors import DataError
from labkit.metrics.coco_inputs import prepare_ground_truth, prepare_results
from labkit.metrics.detection import BACKENDS, coco_objects, evaluate_coco, stat_names
from test_metrics_detection import _edit, _gt, _res


def test_report_outputs_by_hand() -> None:
    """Two small objects (areas 600 and 400 < 32^2), one per class; one exact prediction of the
    class-1 object and nothing of class 2: class 1 has AP 1, class 2 AP 0, so AP = AR = 0.5 at
    every IoU; medium and large are undefined (n/a / None)."""
    res = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 20], "score": 0.9}]
    for backend in BACKENDS:
        report = evaluate_coco(_gt(), res, backend=backend)
        nan, half, one = ("APm", "APl", "ARm", "ARl"), pytest.approx(0.5, abs=1e-12), pytest.approx(1.0, abs=1e-12)
        assert report.to_dict() == {
            "iou_type": "bbox", "backend": backend, "max_dets": [1, 10, 100], "num_images": 2, "num_gt": 2,
            "num_predictions": 1,
            "stats": {k: (None if k in nan else half) for k in stat_names()},
            "per_class": [{"category_id": 1, "name": "a", "num_gt": 1, "num_predictions": 1, "AP": one, "AP50": one,
                           "AP75": one},
                          {"category_id": 2, "name": "b", "num_gt": 1, "num_predictions": 0, "AP": 0.0, "AP50": 0.0,
                           "AP75": 0.0}]}
        assert report.to_markdown() == "\n".join([
            f"COCO bbox evaluation ({backend}): 2 images, 2 objects, 1 predictions", "",
            "| AP | AP50 | AP75 | APs | APm | APl | AR1 | AR10 | AR100 | ARs | ARm | ARl |", "|" + "---|" * 12,
            "| 0.500 | 0.500 | 0.500 | 0.500 | n/a | n/a | 0.500 | 0.500 | 0.500 | 0.500 | n/a | n/a |", "",
            "| id | class | GT | pred | AP | AP50 | AP75 |", "|" + "---|" * 7,
            "| 1 | a | 1 | 1 | 1.000 | 1.000 | 1.000 |",
            "| 2 | b | 1 | 0 | 0.000 | 0.000 | 0.000 |"])
        assert report.class_ap(1, area="small") == one and math.isnan(report.class_ap(1, area="medium"))
        with pytest.raises(ValueError, match="area must be one of"):
            report.class_ap(1, area="tiny")
        np.testing.assert_allclose(report.pr_curve(1)[1], np.ones(101))
        np.testing.assert_array_equal(report.pr_curve([2], iou=0.95)[1], np.zeros(101))
        np.testing.assert_allclose(report.pr_curve()[1], np.full(101, 0.5))
        assert np.isnan(report.pr_curve(1, area="large")[1]).all()
        np.testing.assert_allclose(report.pr_curve()[0], np.linspace(0, 1, 101))


@pytest.mark.parametrize("path, value", [
    (("annotations", 0, "bbox"), [10, 10, 0, 0]),  # an empty box is a box
    (("annotations", 0, "area"), 0),
    (("annotations", 0, "iscrowd"), 1),
    (("annotations", 0, "id"), 1 + 100),  # ids need only be >= 1 and unique (the other one is 2)
    (("images", 0, "width"), 1),
])
def test_ground_truth_values_at_the_boundary_are_accepted(path, value) -> None:
    gt = prepare_ground_truth(_edit(_gt(), path, value))
    assert len(gt.coco["annotations"]) == 2


@pytest.mark.parametrize("path, value, message", [
    (("annotations", 0, "area"), -0.5, "record annotation 1: area is negative (-0.5)"),
    (("annotations", 0, "id"), 0, "record annotation 0: annotation ids must be >= 1"),
    (("images", 0, "width"), 0, "record images[0]: width and height must be positive, got 0 x 80"),
    (("images", 1, "height"), -2, "record images[1]: width and height must be positive, got 100 x -2"),
    (("annotations", 1, "bbox"), [1, 2, 1e308, 1e308], "record annotation 2: bbox overflows"),
    (("annotations", 0, "iscrowd"), -1, "record annotation 1: iscrowd must be 0 or 1"),
    (("categories", 1, "id"), 1, "record categories[1]: duplicate category id 1"),
])
def test_ground_truth_messages_name_the_record(path, value, message) -> None:
    with pytest.raises(DataError) as err:
        prepare_ground_truth(_edit(_gt(), path, value))
    assert str(err.value).startswith(f"<ground-truth dict>: {message}")


def test_scores_exactly_zero_and_one_are_accepted_and_just_outside_are_not() -> None:
    gt = prepare_ground_truth(_gt())
    ok = prepare_results(_edit(_edit(_res(), (0, "score"), 1.0), (1, "score"), 0.0), gt)
    assert ok.score.tolist() == [1.0, 0.0] and ok.records[0]["bbox"] == [11.0, 10.0, 30.0, 20.0]
    for k, score in ((0, 1.0000001), (1, -1e-9)):
        with pytest.raises(DataError) as err:
            prepare_results(_edit(_res(), (k, "score"), score), gt)
        assert str(err.value) == f"<results list>: record result #{k}: score {score} is outside [0, 1]"


def test_pr_plot_shows_one_labelled_curve_per_class_and_their_mean(tmp_path) -> None:
    """The hand case of test_report_outputs_by_hand: class a found exactly (precision 1 at every
    recall point), class b not at all (precision 0), so the mean curve is 0.5 everywhere."""
    from matplotlib.figure import Figure

    res = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 20], "score": 0.9}]
    report = evaluate_coco(_gt(), res)
    recall = np.linspace(0, 1, 101)
    ax = Figure().add_subplot()
    assert report.plot_pr(ax) is ax.figure
    a, b, mean = ax.lines
    for line, precision in ((a, 1.0), (b, 0.0), (mean, 0.5)):
        np.testing.assert_allclose(line.get_xdata(), recall)
        np.testing.assert_allclose(line.get_ydata(), np.full(101, precision))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "a (AP50 1.00)", "b (AP50 0.00)", "mean of 2 classes (AP50 0.500)"]
    # the mean stands out: black and at least twice as thick as the class curves
    assert mean.get_color() == "black" and mean.get_linewidth() >= 2 * a.get_linewidth() == 2 * b.get_linewidth()
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("recall", "precision")
    assert ax.get_title() == "COCO bbox precision-recall (IoU 0.50, area all)"
    # the axes show the whole [0, 1] range, with room above 1 so a perfect curve is not on the frame
    assert ax.get_xlim() == (0, 1) and ax.get_ylim()[0] == 0 and 1 < ax.get_ylim()[1] <= 1.05
    assert ax.xaxis.get_gridlines()[0].get_visible()

    # IoU 0.75 is named in the legend and title; one chosen class gives its curve and a mean of 1
    ax = Figure().add_subplot()
    report.plot_pr(ax, iou=0.75, categories=[1])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a (AP75 1.00)", "mean of 1 classes (AP75 1.000)"]
    assert ax.get_title() == "COCO bbox precision-recall (IoU 0.75, area all)"

    # more classes than max_legend: class curves grey and unlabelled, only the mean in the legend
    ax = Figure().add_subplot()
    report.plot_pr(ax, max_legend=1)
    assert [line.get_color() for line in ax.lines] == ["0.7", "0.7", "black"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["mean of 2 classes (AP50 0.500)"]
    ax = Figure().add_subplot()
    report.plot_pr(ax, max_legend=2)  # exactly max_legend classes are still labelled
    assert len(ax.get_legend().get_texts()) == 3

    # a category without a name is labelled by its id (as in per_class)
    ax = Figure().add_subplot()
    dataclasses.replace(report, category_names={1: "a"}).plot_pr(ax)
    assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == ["a (AP50 1.00)", "2 (AP50 0.00)"]

    # no class has ground truth in the large range: nothing drawn, no legend
    ax = Figure().add_subplot()
    report.plot_pr(ax, area="large")
    assert len(ax.lines) == 0 and ax.get_legend() is None and ax.get_title().endswith("(IoU 0.50, area large)")

    # a path: a new figure saved there (folders made)
    fig = report.plot_pr(tmp_path / "sub" / "pr.png")
    assert (tmp_path / "sub" / "pr.png").stat().st_size > 1000 and len(fig.axes) == 1 and len(fig.axes[0].lines) == 3
    assert report.plot_pr().axes[0].get_legend() is not None  # None: a new figure, not saved


def test_empty_predictions_give_an_empty_result_set_over_the_ground_truth() -> None:
    gt = prepare_ground_truth(_gt())
    for backend in BACKENDS:
        coco_gt, coco_dt = coco_objects(gt, prepare_results([], gt), backend)
        assert sorted(coco_dt.getImgIds()) == [1, 2] and sorted(coco_dt.getCatIds()) == [1, 2]
        assert coco_dt.getAnnIds() == [] and len(coco_gt.getAnnIds()) == 2


def test_pycocotools_backend_needs_no_faster_coco_eval(monkeypatch) -> None:
    """backend="pycocotools" must run where faster-coco-eval is missing (an import of it fails)."""
    monkeypatch.setitem(sys.modules, "faster_coco_eval", None)
    report = evaluate_coco(_gt(), _res(), backend="pycocotools")
    assert report.backend == "pycocotools" and report.class_ap(1, 0.5) == pytest.approx(1.0)
    with pytest.raises(ImportError):
        evaluate_coco(_gt(), _res(), backend="faster")
