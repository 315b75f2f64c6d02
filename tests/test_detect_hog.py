"""The HOG people detector on real images shipped by packages (Ultralytics' bus.jpg, OpenCV's vtest.avi)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import require_debian_package
from labkit.data.images import load_image
from labkit.detect import cli as detect_cli
from labkit.detect.hog import detect_people, hog_predict, ultralytics_assets, vtest_video
from labkit.metrics.iou import box_iou

#: The four people in Ultralytics' bus.jpg (810x1080), boxes read off the image by hand (xyxy).
BUS_PEOPLE = [[48, 398, 245, 902], [670, 380, 810, 875], [221, 405, 345, 857], [0, 550, 63, 873]]


def _bus() -> np.ndarray:
    return load_image(ultralytics_assets() / "bus.jpg")


def test_hog_finds_a_person_in_bus_jpg() -> None:
    found = detect_people(_bus())
    assert len(found) >= 1 and set(found.class_id.tolist()) == {1}
    assert ((found.score > 0) & (found.score < 1)).all()
    np.testing.assert_allclose(found.score, 1 / (1 + np.exp(-found.get("svm_margin"))))
    iou = box_iou(found.xyxy, np.array(BUS_PEOPLE, dtype=float))
    assert iou.max() >= 0.4, f"no HOG box overlaps a person: best IoU {iou.max():.2f}"


def test_downscaling_maps_boxes_back_to_original_pixels() -> None:
    img = _bus()
    doubled = np.repeat(np.repeat(img, 2, axis=0), 2, axis=1)  # area-downscaling by 2 gives img back exactly
    direct = detect_people(img, max_side=None)
    via_shrink = detect_people(doubled, max_side=max(img.shape[:2]))
    assert len(direct) >= 1
    np.testing.assert_allclose(via_shrink.xywh, direct.xywh * 2.0, rtol=0, atol=1e-9)
    np.testing.assert_allclose(via_shrink.score, direct.score)


def test_hog_on_opencv_vtest_video(tmp_path: Path) -> None:
    video = vtest_video()
    require_debian_package("opencv-doc", video is not None, "OpenCV's sample video vtest.avi")
    out = hog_predict(video, max_frames=3, progress=False)
    assert list(out) == [f"{video}#1", f"{video}#2", f"{video}#3"]
    assert sum(len(d) for d in out.values()) >= 1  # pedestrians walk through every frame
    parser = argparse.ArgumentParser()
    detect_cli.register(parser.add_subparsers())
    args = parser.parse_args(["detect", "hog", "--source", str(video), "--max-frames", "2", "--out", str(tmp_path), "--json"])
    assert args.func(args) == 0
    assert len(json.loads((tmp_path / "images.json").read_text())) == 2
    assert sorted(p.name for p in (tmp_path / "overlays").iterdir()) == ["000001_vtest_000001.jpg", "000002_vtest_000002.jpg"]


def test_hog_beside_a_learned_detector_on_the_same_frames(tmp_path: Path) -> None:
    import torch

    from labkit.detect._ultralytics import ul
    from labkit.detect.hog import hog_beside
    from labkit.detect.predict import CATEGORY_FILE

    torch.manual_seed(0)
    model = ul("ultralytics.nn.tasks").DetectionModel("yolov8n.yaml", nc=1, verbose=False)
    model.names = {0: "thing"}
    torch.save({"model": model, "train_args": {"imgsz": 128}}, tmp_path / "weights.pt")
    (tmp_path / CATEGORY_FILE).write_text(json.dumps([{"id": 1, "name": "thing"}]))
    bus = ultralytics_assets() / "bus.jpg"
    table, found = hog_beside(tmp_path / "weights.pt", {"bus": [bus], "two": [bus, bus]},
                              max_frames={"two": 1}, conf=0.0)
    assert table.loc["bus", "frames"] == 1 and table.loc["two", "frames"] == 1  # the cap applies per name
    assert table.loc["bus", "HOG people"] == len(found["bus"]["HOG"][str(bus)]) >= 1
    assert table.loc["bus", "learned boxes"] == sum(len(d) for d in found["bus"]["learned"].values())
    assert (table[["HOG ms/frame", "learned ms/frame"]] > 0).all().all()
