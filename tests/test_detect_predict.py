"""Batched inference: letterbox exactness, batching, class mapping, sources, the CLI."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from labkit.data.annotations import Dataset, ImageRecord
from labkit.data.boxes import Letterbox, clip_xyxy
from labkit.data.coco import results_to_detections
from labkit.detect import cli as detect_cli
from labkit.detect.predict import CATEGORY_FILE, load_detector, predict
from labkit.errors import DataError

IMGSZ = 128
CATEGORIES = [{"id": 1, "name": "disc"}, {"id": 2, "name": "block"}, {"id": 3, "name": "cone"},
              {"id": 4, "name": "rod"}, {"id": 5, "name": "star"}]


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained 5-class YOLOv8n checkpoint (random init, seeded) with its categories.json."""
    from labkit.detect._ultralytics import ul

    torch.manual_seed(0)
    model = ul("ultralytics.nn.tasks").DetectionModel("yolov8n.yaml", nc=5, verbose=False)
    model.names = {i: c["name"] for i, c in enumerate(CATEGORIES)}
    folder = tmp_path_factory.mktemp("untrained")
    path = folder / "weights.pt"
    torch.save({"model": model, "train_args": {"imgsz": IMGSZ}}, path)
    (folder / CATEGORY_FILE).write_text(json.dumps(CATEGORIES))
    return path


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Random blobs on a smooth background: enough structure for many (random) detections."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), (0, 0), 3)
    for _ in range(6):
        c = tuple(int(v) for v in rng.integers(0, 255, 3))
        cv2.circle(img, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(5, 20)), c, -1)
    return img


def test_boxes_come_back_through_the_exact_letterbox_inverse(weights: Path) -> None:
    img = _image(50, 100)
    lb = Letterbox.fit(img.shape[:2], IMGSZ)
    assert (lb.scale, lb.pad_x, lb.pad_y) == (1.28, 0, 32)  # a non-trivial, known letterbox
    canvas = lb.image(img, pad_value=114)  # what the network sees; its own letterbox is the identity
    out = predict(weights, {"src": img, "canvas": canvas}, conf=0.0, batch=2, device="cpu", progress=False)
    src, seen = out["src"], out["canvas"]
    assert len(src) > 20
    np.testing.assert_array_equal(src.xyxy, clip_xyxy(lb.inverse_boxes(seen.xyxy), 100, 50))
    np.testing.assert_array_equal(src.score, seen.score)
    np.testing.assert_array_equal(src.class_id, seen.class_id)
    assert src.xyxy.min() >= 0 and src.xyxy[:, 2].max() <= 100 and src.xyxy[:, 3].max() <= 50


def test_batching_does_not_change_results(weights: Path) -> None:
    images = {i: _image(40 + 30 * i, 90 - 10 * i, seed=i) for i in range(3)}
    one = predict(weights, images, conf=0.0, batch=1, device="cpu", progress=False)
    three = predict(weights, images, conf=0.0, batch=3, device="cpu", progress=False)
    assert list(one) == list(three) == [0, 1, 2]
    for k in images:
        assert len(one[k]) == len(three[k])
        np.testing.assert_allclose(one[k].xyxy, three[k].xyxy, atol=1e-3)


def test_classes_are_dataset_category_ids_and_filter(weights: Path) -> None:
    det = load_detector(weights, device="cpu")
    assert det.imgsz == IMGSZ and det.class_ids.tolist() == [1, 2, 3, 4, 5] and not det.half
    assert det.class_names[5] == "star"
    img = _image(64, 64)
    every = predict(det, {"a": img}, conf=0.0, progress=False)["a"]
    assert set(every.class_id.tolist()) <= {1, 2, 3, 4, 5}
    only = predict(det, {"a": img}, conf=0.0, classes=[2, 4], progress=False)["a"]
    assert len(only) > 0 and set(only.class_id.tolist()) <= {2, 4}
    with pytest.raises(DataError, match="not among"):
        predict(det, {"a": img}, classes=[9], progress=False)


def test_sources_folder_video_dataset_and_errors(weights: Path, tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "b.png"), _image(60, 80))
    cv2.imwrite(str(folder / "a.jpg"), cv2.cvtColor(_image(70, 50), cv2.COLOR_RGB2GRAY))
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (96, 64))
    for k in range(4):
        writer.write(_image(64, 96, seed=k))
    writer.release()
    out = predict(weights, [folder, video], batch=3, device="cpu", progress=False, max_frames=5)
    assert list(out) == [str(folder / "a.jpg"), str(folder / "b.png"), f"{video}#1", f"{video}#2", f"{video}#3"]
    ds = Dataset(CATEGORIES, [ImageRecord(7, "b.png", 80, 60), ImageRecord(8, "a.jpg", 50, 70)], root=folder)
    by_id = predict(weights, ds, conf=0.0, device="cpu", progress=False)
    assert list(by_id) == [7, 8] and by_id[7].xyxy[:, 2].max() <= 80 and by_id[8].xyxy[:, 3].max() <= 70
    wrong = Dataset(CATEGORIES, [ImageRecord(9, "b.png", 81, 60)], root=folder)
    with pytest.raises(DataError, match="record 9"):
        predict(weights, wrong, progress=False)
    with pytest.raises(DataError, match="no such file"):
        predict(weights, tmp_path / "missing.jpg", progress=False)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="garbage.pt: not a loadable Ultralytics checkpoint"):
        load_detector(garbage)


def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    detect_cli.register(parser.add_subparsers())
    args = parser.parse_args(["detect", *argv])
    return args.func(args)


def test_cli_predict_writes_coco_results_and_overlays(weights: Path, tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "x.jpg"), _image(48, 72))
    out = tmp_path / "out"
    assert _run_cli(["predict", "--weights", str(weights), "--source", str(tmp_path / "x.jpg"), "--conf", "0",
                     "--overlay-conf", "0", "--device", "cpu", "--out", str(out), "--json"]) == 0
    images = json.loads((out / "images.json").read_text())
    assert images == [{"id": 1, "file_name": str(tmp_path / "x.jpg"), "width": 72, "height": 48}]
    dets = results_to_detections(json.loads((out / "predictions.json").read_text()), [1])[1]
    assert len(dets) > 0 and dets.xyxy[:, 2].max() <= 72
    assert [p.name for p in (out / "overlays").iterdir()] == ["000001_x.jpg"]
    with pytest.raises(detect_cli.UsageError, match="weights not found"):
        _run_cli(["predict", "--weights", str(tmp_path / "nope.pt"), "--source", str(tmp_path), "--out", str(out)])
