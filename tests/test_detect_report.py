"""The detection report states every evaluation setting, and its numbers are the CocoReport's."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from labkit.data.coco import coco_to_dataset
from labkit.detect.predict import CATEGORY_FILE, load_detector
from labkit.detect.report import (SETTING_LABELS, EvalSettings, evaluation_settings, predict_split, settings_diff,
                                  size_counts, write_detection_report)
from labkit.detect.simulate import noisy_detector
from labkit.errors import DataError
from labkit.metrics.detection import evaluate_coco
from labkit.metrics.voc import voc_evaluate

CATEGORIES = [{"id": 1, "name": "disc"}, {"id": 2, "name": "block"}]


def _gt() -> dict:
    """Three 100 x 80 images; a crowd region in image 2; objects of both classes and sizes."""
    boxes = [(1, 1, [5, 5, 20, 20], 0), (1, 2, [40, 10, 40, 40], 0), (2, 1, [10, 40, 12, 30], 0),
             (2, 2, [50, 30, 35, 40], 0), (2, 1, [0, 0, 30, 30], 1), (3, 1, [60, 20, 20, 20], 0)]
    anns = [{"id": i + 1, "image_id": im, "category_id": c, "bbox": b, "area": b[2] * b[3], "iscrowd": crowd}
            for i, (im, c, b, crowd) in enumerate(boxes)]
    images = [{"id": i, "file_name": f"{i}.png", "width": 100, "height": 80} for i in (1, 2, 3)]
    return {"images": images, "annotations": anns, "categories": CATEGORIES}


@pytest.fixture()
def evaluated(tmp_path: Path):
    gt = coco_to_dataset(_gt())
    preds = noisy_detector(gt, seed=3, duplicates=1.0, background=1.0)
    report = evaluate_coco(gt, preds)
    voc = {m: voc_evaluate(gt, preds, interpolation=m) for m in ("all_point", "11_point")}
    settings = EvalSettings(checkpoint="artifacts/models/x/weights.pt", checkpoint_sha256="ab" * 32,
                            dataset="labkit-synth 1.1.0 (size small, seed 0)", dataset_sha256="cd" * 32, split="val",
                            num_images=3, imgsz=320, conf=0.001, nms="class-aware", nms_iou=0.7, max_det=300)
    return gt, report, voc, settings


def test_every_setting_is_stated_in_both_files(evaluated, tmp_path: Path) -> None:
    gt, report, voc, settings = evaluated
    md_path, json_path = write_detection_report(report, settings, tmp_path, voc=voc, gt=gt)
    assert (md_path.name, json_path.name) == ("detection_report.md", "detection_report.json")
    payload = json.loads(json_path.read_text())
    md = md_path.read_text()
    for key, label in SETTING_LABELS.items():
        assert key in payload["settings"], key
        assert f"| {label} |" in md, label
    s = payload["settings"]
    assert s["iou_thresholds"] == pytest.approx(np.arange(0.5, 0.96, 0.05).tolist())
    assert s["coco_max_dets"] == [1, 10, 100] and s["recall_points"] == 101
    assert (s["conf"], s["nms"], s["nms_iou"], s["max_det"], s["imgsz"]) == (0.001, "class-aware", 0.7, 300, 320)
    assert s["voc"] == {"iou_threshold": 0.5, "interpolations": ["all_point", "11_point"], "pixel_plus_one": False}
    assert settings.checkpoint_sha256 in md and settings.dataset in md


def test_numbers_equal_the_coco_report(evaluated, tmp_path: Path) -> None:
    gt, report, voc, settings = evaluated
    _, json_path = write_detection_report(report, settings, tmp_path, voc=voc, gt=gt, stem="r")
    payload = json.loads(json_path.read_text())
    for name, value in report.stats.items():
        got = payload["coco"]["stats"][name]
        assert (got is None) if math.isnan(value) else got == pytest.approx(value, abs=1e-12), name
    for row, expected in zip(payload["coco"]["per_class"], report.per_class()):
        assert row["AP50"] == pytest.approx(expected["AP50"], abs=1e-12)
    sizes = payload["per_size"]
    assert sizes["small"]["AP"] == pytest.approx(report.stats["APs"], abs=1e-12)
    assert sizes["medium"]["AP"] == pytest.approx(report.stats["APm"], abs=1e-12)
    assert sizes["large"]["AP"] is None  # no large object: undefined, not 0
    assert {a: sizes[a]["num_gt"] for a in sizes} == size_counts(gt) == {"small": 3, "medium": 2, "large": 0}
    assert payload["voc"]["all_point"]["mAP"] == pytest.approx(voc["all_point"].mean_ap, abs=1e-12)


def test_mismatched_report_and_settings_are_refused(evaluated, tmp_path: Path) -> None:
    _, report, _, settings = evaluated
    with pytest.raises(DataError, match="3 images"):
        write_detection_report(report, dataclasses.replace(settings, num_images=4), tmp_path)
    with pytest.raises(DataError, match="nms"):
        dataclasses.replace(settings, nms="soft")
    with pytest.raises(DataError, match="multiple of 32"):
        dataclasses.replace(settings, imgsz=300)


def test_settings_read_from_files_and_diff(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "instances_val.json").write_text(json.dumps(_gt()))
    (root / "manifest.json").write_text(json.dumps({"name": "synth", "generator_version": "9.9", "size": "small",
                                                    "seed": 4}))
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"not really weights")
    s = evaluation_settings(weights, root, "val", imgsz=320)
    assert (s.dataset, s.num_images, s.split, len(s.checkpoint_sha256)) == ("synth 9.9 (size small, seed 4)", 3, "val", 64)
    assert settings_diff(s, s) == {}
    assert settings_diff(s, dataclasses.replace(s, nms_iou=0.5)) == {"nms_iou": (0.7, 0.5)}
    with pytest.raises(DataError, match="not found"):
        evaluation_settings(tmp_path / "missing.pt", root, imgsz=320)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained 2-class YOLOv8n checkpoint (seeded) with its categories.json."""
    from labkit.detect._ultralytics import ul

    torch.manual_seed(0)
    model = ul("ultralytics.nn.tasks").DetectionModel("yolov8n.yaml", nc=2, verbose=False)
    model.names = {i: c["name"] for i, c in enumerate(CATEGORIES)}
    folder = tmp_path_factory.mktemp("untrained")
    path = folder / "weights.pt"
    torch.save({"model": model, "train_args": {"imgsz": 64}}, path)
    (folder / CATEGORY_FILE).write_text(json.dumps(CATEGORIES))
    return path


def test_predict_split_applies_every_knob(weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from labkit.detect._ultralytics import ul

    rng = np.random.default_rng(0)
    for i in (1, 2, 3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), rng.integers(0, 255, (80, 100, 3), dtype=np.uint8))
    ds = coco_to_dataset(_gt(), root=tmp_path)
    module = ul("ultralytics.utils.nms")
    real, calls = module.non_max_suppression, []

    def spy(prediction, conf, iou, **kwargs):
        head = prediction[0] if isinstance(prediction, (tuple, list)) else prediction
        calls.append((tuple(head.shape), conf, iou, kwargs["agnostic"], kwargs["max_det"]))
        return real(prediction, conf, iou, **kwargs)

    monkeypatch.setattr(module, "non_max_suppression", spy)
    det = load_detector(weights, device="cpu")
    settings = EvalSettings("w.pt", "0" * 64, "d", "0" * 64, "val", 3, imgsz=64, conf=0.01, nms_iou=0.6, max_det=40)
    out = predict_split(det, ds, settings, batch=2)
    assert sorted(out) == [1, 2, 3] and all(len(d) <= 40 for d in out.values())
    # 64 px: 8x8 + 4x4 + 2x2 = 84 anchors per image, each with 4 box values and 2 class scores
    assert calls == [((2, 6, 84), 0.01, 0.6, False, 40), ((1, 6, 84), 0.01, 0.6, False, 40)]
    calls.clear()
    predict_split(det, ds, dataclasses.replace(settings, imgsz=96, nms="class-agnostic"), batch=3)
    assert calls == [((3, 6, 144 + 36 + 9), 0.01, 0.6, True, 40)]
    assert det.imgsz == 64  # the detector itself is left as it was
    with pytest.raises(DataError, match="3 images"):
        predict_split(det, ds.subset([1, 2]), settings)
