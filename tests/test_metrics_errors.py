"""TIDE-style error analysis on hand-built scenes whose counts and dAP50 are worked out by hand.

COCO AP50 of one class = (sum over the 101 recall points r = 0, .01, ..., 1 of the best precision
at recall >= r) / 101; the comments give the sums.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from labkit.metrics.errors import ERROR_TYPES, ErrorCase, ErrorReport, _rule, analyze_errors, error_gallery, size_label


def _scene() -> tuple[dict, list[dict]]:
    """One 200 x 200 image. Class 1 objects g1, g2, g5, g6; class 2 objects g3, g4."""
    boxes = {1: (1, [10, 10, 40, 40]), 2: (1, [100, 10, 40, 40]), 3: (2, [10, 100, 40, 40]),
             4: (2, [100, 100, 40, 40]), 5: (1, [150, 150, 30, 30]), 6: (1, [150, 60, 40, 30])}
    anns = [{"id": i, "image_id": 1, "category_id": c, "bbox": b, "area": b[2] * b[3], "iscrowd": 0}
            for i, (c, b) in boxes.items()]
    preds = [  # (class, box, score) -> what it is
        (1, [10, 10, 40, 40], 0.9),    # p1: TP on g1
        (1, [12, 10, 40, 40], 0.8),    # p2: IoU .905 with g1, already matched -> dupe
        (1, [10, 100, 40, 40], 0.7),   # p3: IoU 1 with g3 of class 2 -> cls
        (1, [160, 160, 30, 30], 0.6),  # p4: IoU 400/1400 = .286 with g5 -> loc
        (2, [100, 10, 40, 15], 0.5),   # p5: IoU .375 with g2 (class 1), nothing of class 2 -> both
        (1, [60, 60, 10, 10], 0.4),    # p6: overlaps nothing -> bkg
        (1, [100, 10, 40, 40], 0.3),   # p7: TP on g2
    ]
    gt = {"images": [{"id": 1, "width": 200, "height": 200}], "annotations": anns,
          "categories": [{"id": 1, "name": "one"}, {"id": 2, "name": "two"}]}
    return gt, [{"image_id": 1, "category_id": c, "bbox": b, "score": s} for c, b, s in preds]


def test_hand_built_scene_counts_and_targets() -> None:
    gt, preds = _scene()
    report = analyze_errors(gt, preds)
    assert report.counts == {"cls": 1, "loc": 1, "both": 1, "dupe": 1, "bkg": 1, "miss": 2}
    assert report.num_true_positives == 2 and report.num_ignored == 0
    by_result = {c.result_index: c for c in report.cases if c.result_index is not None}
    assert (by_result[2].kind, by_result[2].gt_id) == ("cls", 3)
    assert (by_result[3].kind, by_result[3].gt_id) == ("loc", 5) and by_result[3].iou == pytest.approx(400 / 1400)
    assert (by_result[4].kind, by_result[4].gt_id) == ("both", 2) and by_result[4].iou == pytest.approx(0.375)
    assert (by_result[1].kind, by_result[1].gt_id) == ("dupe", 1)
    assert by_result[5].kind == "bkg" and by_result[5].gt_id is None
    # g3 and g5 are claimed by the cls / loc errors; g4 and g6 are plainly missed
    assert sorted(c.gt_id for c in report.cases if c.kind == "miss") == [4, 6]
    assert report.counts_by_class["miss"] == {1: 1, 2: 1} and report.counts_by_class["both"] == {2: 1}
    assert report.counts_by_size["loc"] == {"small": 1, "medium": 0, "large": 0}  # 30 x 30 prediction
    assert report.counts_by_size["miss"] == {"small": 0, "medium": 2, "large": 0}


def test_hand_built_scene_delta_ap50() -> None:
    report = analyze_errors(*_scene())
    assert report.metric == "AP50"
    # class 1 (4 objects): TP FP FP FP FP TP -> recall .25 at precision 1, .5 at 1/3: 26 + 25/3
    # class 2 (2 objects): one FP -> 0
    base = (26 + 25 / 3) / 202
    assert report.base == pytest.approx(base, abs=1e-12)
    expected = {
        "cls": (26 + 25 * 0.4 + 51) / 202,      # p3 becomes a class-2 TP: class 2 = 51 points
        "loc": (26 + 25 * 0.5 + 25 * 0.5) / 202,  # p4 on g5: TP FP FP TP FP TP
        "both": base,                           # removing p5 leaves class 2 at 0
        "dupe": (26 + 25 * 0.4) / 202,          # TP FP FP FP TP
        "bkg": (26 + 25 * 0.4) / 202,
        "miss": (34 + 33 / 3) / 202,            # class 1 has 3 objects left, class 2 one
    }
    for kind, value in expected.items():
        assert report.delta[kind] == pytest.approx(value - base, abs=1e-12), kind
        assert report.fixed_stats[kind]["AP50"] == pytest.approx(value, abs=1e-12)
    json.dumps(report.to_dict(), allow_nan=False)
    assert "| localisation | 1 | 1 | 0 | 0 | +0.0825 |" in report.to_markdown()


def test_crowd_regions_empty_images_and_gallery() -> None:
    gt, preds = _scene()
    gt["images"].append({"id": 2, "width": 200, "height": 200})
    gt["annotations"].append({"id": 7, "image_id": 1, "category_id": 2, "bbox": [0, 150, 60, 50],
                              "area": 3000, "iscrowd": 1})
    preds += [{"image_id": 1, "category_id": 2, "bbox": [5, 155, 40, 40], "score": 0.95},  # inside the crowd
              {"image_id": 2, "category_id": 1, "bbox": [5, 5, 40, 40], "score": 0.99}]   # image without objects
    report = analyze_errors(gt, preds)
    assert report.num_ignored == 1
    assert report.counts["bkg"] == 2 and report.counts["miss"] == 2  # the crowd region is never "missed"
    gallery = error_gallery(report, per_type=1)
    assert set(gallery) == set(ERROR_TYPES)
    assert gallery["bkg"][0].image_id == 2 and gallery["bkg"][0].score == 0.99
    assert gallery["miss"][0].gt_box is not None and gallery["miss"][0].box is None
    randomly = error_gallery(report, per_type=5, kinds=["bkg"], order="random", seed=3)
    assert sorted(c.result_index for c in randomly["bkg"]) == sorted(c.result_index for c in report.cases if c.kind == "bkg")
    with pytest.raises(ValueError, match="unknown error type"):
        error_gallery(report, kinds=["oops"])


def test_segm_errors_match_bbox_errors_for_box_shaped_masks() -> None:
    gt, preds = _scene()

    def poly(b):
        x, y, w, h = b
        return [[x, y, x + w, y, x + w, y + h, x, y + h]]

    for a in gt["annotations"]:
        a["segmentation"] = poly(a["bbox"])
    for p in preds:
        p["segmentation"] = poly(p.pop("bbox"))
    report = analyze_errors(gt, preds, iou_type="segm")
    assert report.counts == {"cls": 1, "loc": 1, "both": 1, "dupe": 1, "bkg": 1, "miss": 2}
    assert report.delta["loc"] > 0.05 and np.isfinite(report.base)


# --------------------------------------------------------------------------- TIDE's rule at its thresholds
@pytest.mark.parametrize("iou, same, used, expected", [
    ([], [], [], ("bkg", None)),                       # an image without ground truth
    ([0.1], [True], [False], ("loc", 0)),              # IoU exactly t_b: localisation
    ([0.0999], [True], [False], ("bkg", None)),        # just below t_b: background
    ([0.4999], [True], [False], ("loc", 0)),           # just below t_f
    ([0.5], [False], [False], ("cls", 0)),             # exactly t_f with another class
    ([0.4999], [False], [False], ("both", 0)),         # just below t_f with another class
    ([0.1], [False], [False], ("both", 0)),            # exactly t_b with another class
    ([0.5], [True], [True], ("dupe", 0)),              # exactly t_f with an already matched object
    ([0.2, 0.4, 0.9], [True, True, False], [False, False, False], ("loc", 1)),  # loc first, best same-class IoU
    ([0.05, 0.6, 0.7], [True, False, False], [False, False, False], ("cls", 2)),  # best other-class IoU
    ([0.3, 0.9, 0.7], [False, True, True], [False, False, True], ("dupe", 2)),  # only matched objects are dupes
    ([0.3, 0.45, 0.0], [False, False, True], [False, False, False], ("both", 1)),  # both: the best IoU overall
])
def test_rule_at_the_thresholds(iou, same, used, expected) -> None:
    got = _rule(np.array(iou, dtype=float), np.array(same, dtype=bool), np.array(used, dtype=bool), 0.5, 0.1)
    assert got == expected


def test_size_label_boundaries_belong_to_the_larger_bucket() -> None:
    assert [size_label(a) for a in (0, 32**2 - 1, 32**2, 96**2 - 1, 96**2)] == \
        ["small", "small", "medium", "medium", "large"]


def test_to_dict_and_gallery_order_by_hand() -> None:
    cases = [ErrorCase("bkg", 1, 3, "small", 0.0, score=0.4, box=[0, 0, 5, 5], result_index=0),
             ErrorCase("bkg", 2, 1, "large", 0.0, score=0.9, box=[0, 0, 99, 99], result_index=1),
             ErrorCase("miss", 1, 2, "medium", 0.0, gt_id=5, gt_class=2, gt_box=[0, 0, 40, 40]),
             ErrorCase("miss", 1, 2, "large", 0.0, gt_id=6, gt_class=2, gt_box=[0, 0, 100, 100])]
    delta = {k: 0.0 for k in ERROR_TYPES} | {"bkg": 0.25, "miss": float("nan")}
    report = ErrorReport(cases, "AP50", 0.5, delta, {}, 3, 1, 2, 0.5, 0.1)
    zero_sizes = {"small": 0, "medium": 0, "large": 0}
    assert report.to_dict() == {
        "metric": "AP50", "base": 0.5, "delta": {k: 0.0 for k in ("cls", "loc", "both", "dupe")} | {"bkg": 0.25, "miss": None},
        "counts": {"cls": 0, "loc": 0, "both": 0, "dupe": 0, "bkg": 2, "miss": 2},
        "counts_by_class": {"cls": {}, "loc": {}, "both": {}, "dupe": {}, "bkg": {"1": 1, "3": 1}, "miss": {"2": 2}},
        "counts_by_size": {"cls": zero_sizes, "loc": zero_sizes, "both": zero_sizes, "dupe": zero_sizes,
                           "bkg": {"small": 1, "medium": 0, "large": 1}, "miss": {"small": 0, "medium": 1, "large": 1}},
        "true_positives": 3, "ignored": 1, "not_evaluated": 2, "pos_threshold": 0.5, "bg_threshold": 0.1}
    assert report.to_markdown().splitlines()[0] == "AP50 = 0.500; 3 true positives, 1 ignored (crowd), 2 beyond max_dets"
    assert "| background | 2 | 1 | 0 | 1 | +0.2500 |" in report.to_markdown()
    gallery = error_gallery(report, per_type=2, kinds=["bkg", "miss"])
    assert [c.result_index for c in gallery["bkg"]] == [1, 0]  # most confident first
    assert [c.gt_id for c in gallery["miss"]] == [6, 5]  # largest object first
    assert len(error_gallery(report, per_type=1)["bkg"]) == 1
    with pytest.raises(ValueError, match="order must be"):
        error_gallery(report, order="area")


def test_an_image_with_only_an_unfound_object_of_the_second_class() -> None:
    """Image 2 holds one class-2 object and no prediction: COCOeval has no entry for (class 1,
    image 2) and an entry without detections for (class 2, image 2). Every prediction of image 1
    is still judged as before, and the new object is one more miss."""
    gt, preds = _scene()
    gt["images"].append({"id": 2, "width": 200, "height": 200})
    gt["annotations"].append({"id": 7, "image_id": 2, "category_id": 2, "bbox": [20, 20, 40, 40], "area": 1600,
                              "iscrowd": 0})
    report = analyze_errors(gt, preds)
    assert report.counts == {"cls": 1, "loc": 1, "both": 1, "dupe": 1, "bkg": 1, "miss": 3}
    assert (report.num_true_positives, report.num_ignored, report.num_not_evaluated) == (2, 0, 0)
    misses = [c for c in report.cases if c.kind == "miss"]
    assert sorted(c.gt_id for c in misses) == [4, 6, 7] and all(c.iou == 0.0 and c.score is None for c in misses)


def test_an_object_smaller_than_one_pixel_is_still_an_object() -> None:
    """COCO's "all" area range starts at 0: a 0.5 x 0.5 object (area 0.25) found exactly is a true positive."""
    gt = {"images": [{"id": 1, "width": 50, "height": 50}], "categories": [{"id": 1, "name": "dot"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 0.5, 0.5], "area": 0.25,
                           "iscrowd": 0}]}
    report = analyze_errors(gt, [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 0.5, 0.5], "score": 0.9}])
    assert (report.num_true_positives, report.num_ignored) == (1, 0)
    assert sum(report.counts.values()) == 0


def test_random_gallery_defaults_to_seed_zero() -> None:
    cases = [ErrorCase("bkg", 1, 1, "small", 0.0, score=s, result_index=k) for k, s in enumerate(np.linspace(0.1, 0.9, 8))]
    report = ErrorReport(cases, "AP50", 0.0, {k: 0.0 for k in ERROR_TYPES}, {}, 0, 0, 0, 0.5, 0.1)
    order = [c.result_index for c in error_gallery(report, per_type=8, kinds=["bkg"], order="random")["bkg"]]
    assert order == [c.result_index for c in error_gallery(report, per_type=8, kinds=["bkg"], order="random",
                                                          seed=0)["bkg"]]
    assert order != [c.result_index for c in error_gallery(report, per_type=8, kinds=["bkg"], order="random",
                                                          seed=1)["bkg"]]
    assert sorted(order) == list(range(8))
