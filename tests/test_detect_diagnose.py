"""Targeted fixes chosen from an error breakdown, and the error gallery figure."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from labkit.data.coco import coco_to_dataset
from labkit.detect.diagnose import (GT_COLOUR, PRED_COLOUR, TARGETED_FIXES, crop_case, diverse_gallery,
                                    fixed_settings, pick_targeted_fix, plot_error_gallery)
from labkit.detect.report import EvalSettings, settings_diff
from labkit.metrics.errors import ErrorCase, analyze_errors, error_gallery

SETTINGS = EvalSettings("w.pt", "0" * 64, "d", "0" * 64, "val", 1, imgsz=320)


def _scene() -> tuple[dict, list[dict]]:
    """One 200 x 200 image with four class-1 objects: three found, each with a duplicate; one missed."""
    boxes = [[10, 10, 40, 40], [100, 10, 40, 40], [10, 100, 40, 40], [150, 150, 30, 30]]
    anns = [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": b, "area": b[2] * b[3], "iscrowd": 0}
            for i, b in enumerate(boxes)]
    preds = [(b, 0.9 - 0.1 * i) for i, b in enumerate(boxes[:3])]           # three TPs
    preds += [([b[0] + 3, b[1], 40, 40], 0.85 - 0.1 * i) for i, b in enumerate(boxes[:3])]  # three duplicates
    preds += [([60, 60, 10, 10], 0.05)]                                    # one background error
    gt = {"images": [{"id": 1, "file_name": "1.png", "width": 200, "height": 200}], "annotations": anns,
          "categories": [{"id": 1, "name": "one"}, {"id": 2, "name": "two"}]}
    return gt, [{"image_id": 1, "category_id": 1, "bbox": b, "score": s} for b, s in preds]


def test_fix_changes_exactly_one_setting() -> None:
    for kind, fix in TARGETED_FIXES.items():
        diff = settings_diff(SETTINGS, fixed_settings(kind, SETTINGS))
        assert list(diff) == [fix.field], kind
    assert fixed_settings("miss", SETTINGS).imgsz == 480
    assert fixed_settings("dupe", SETTINGS).nms_iou == 0.5
    assert fixed_settings("dupe", dataclasses.replace(SETTINGS, nms_iou=0.45)).nms_iou == 0.35
    assert fixed_settings("cls", SETTINGS).nms == "class-agnostic"
    with pytest.raises(ValueError, match="no fix"):
        fixed_settings("bkg", SETTINGS)


def test_pick_follows_the_largest_gain() -> None:
    gt, preds = _scene()
    report = analyze_errors(gt, preds)
    assert report.counts["dupe"] == 3 and report.counts["miss"] == 1 and report.counts["bkg"] == 1
    # ranks TP FP TP FP TP FP FP, 4 objects: AP50 = (26 * 1 + 25 * 2/3 + 25 * 3/5) / 101 = 57.667 / 101
    # no duplicates: TP TP TP FP -> (76 * 1) / 101; delta 18.333 / 101
    # no miss (3 objects): recall 1/3, 2/3, 1 at precision 1, 2/3, 3/5 -> (34 + 33 * 2/3 + 34 * 3/5) / 101
    assert report.base == pytest.approx(57.6667 / 101, abs=1e-4)
    assert report.delta["dupe"] == pytest.approx(18.3333 / 101, abs=1e-4)
    assert report.delta["miss"] == pytest.approx(18.7333 / 101, abs=1e-4)
    assert pick_targeted_fix(report) == "miss"
    assert pick_targeted_fix(report, candidates=["dupe", "cls"]) == "dupe"
    fake = dataclasses.replace(report, delta=dict(report.delta, miss=float("nan")))
    assert pick_targeted_fix(fake) == "dupe"
    with pytest.raises(ValueError, match="no candidate"):
        pick_targeted_fix(report, candidates=["bkg"])


def test_crop_and_gallery(tmp_path) -> None:
    gt, preds = _scene()
    image = np.full((200, 200, 3), 90, dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "1.png"), image)
    case = ErrorCase("loc", 1, 1, "medium", 0.4, score=0.7, box=[20, 20, 40, 40], result_index=0, gt_id=1,
                     gt_class=1, gt_box=[10, 10, 40, 40])
    crop = crop_case(image, case, out_side=96)
    assert crop.shape[0] == 96 and crop.shape[2] == 3
    colours = {tuple(c) for c in crop.reshape(-1, 3)}
    assert PRED_COLOUR in colours and GT_COLOUR in colours
    ds = coco_to_dataset(gt, root=tmp_path)
    gallery = error_gallery(analyze_errors(gt, preds), per_type=2)
    fig = plot_error_gallery(ds, gallery)
    shown = [k for k, v in gallery.items() if v]
    assert shown == ["dupe", "bkg", "miss"]
    assert len(fig.axes) == sum(len(gallery[k]) for k in shown)


def test_diverse_gallery_takes_one_case_per_scene() -> None:
    gt, preds = _scene()
    gt["images"] = [dict(gt["images"][0], scene_id=7), {"id": 2, "file_name": "2.png", "width": 200, "height": 200,
                                                        "scene_id": 7}, {"id": 3, "file_name": "3.png", "width": 200,
                                                                         "height": 200}]
    for image_id in (2, 3):  # the same objects and predictions in two more images
        gt["annotations"] += [dict(a, id=a["id"] + 10 * image_id, image_id=image_id) for a in gt["annotations"][:4]]
        preds += [dict(p, image_id=image_id) for p in preds[:7]]
    ds = coco_to_dataset(gt)
    report = analyze_errors(gt, preds)
    assert report.counts["dupe"] == 9
    gallery = diverse_gallery(report, ds, per_type=4)
    # images 1 and 2 share scene 7, image 3 has no scene: two duplicates can be shown, not four
    assert sorted(c.image_id for c in gallery["dupe"]) in ([1, 3], [2, 3])
    assert len(error_gallery(report, per_type=4)["dupe"]) == 4


def test_gallery_rows_can_be_labelled_before_and_after(tmp_path) -> None:
    gt, preds = _scene()
    cv2.imwrite(str(tmp_path / "1.png"), np.full((200, 200, 3), 90, dtype=np.uint8))
    ds = coco_to_dataset(gt, root=tmp_path)
    dupes = error_gallery(analyze_errors(gt, preds), per_type=3)["dupe"]
    fig = plot_error_gallery(ds, {"before": dupes, "after": dupes[:1]},
                             row_labels={"before": "before: duplicate", "after": "after: duplicate"})
    assert len(fig.axes) == len(dupes) + 1 == 4
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert labels == ["before: duplicate", "", "", "after: duplicate"]
    default = plot_error_gallery(ds, {"dupe": dupes})
    assert default.axes[0].get_ylabel() == "duplicate"
