"""ONNX export and ONNX Runtime parity on the tiny models: raw outputs, post-NMS boxes, AP and
mIoU through the same pre- and post-processing, and files from the wrong model refused."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from robust_helpers import CATEGORIES, untrained_detector
import torch

pytest.importorskip("onnxruntime")

from labkit.models.dataset import load_split  # noqa: E402
from labkit.detect.predict import load_detector, predict  # noqa: E402
from labkit.errors import DataError  # noqa: E402
from labkit.robust.export import (box_set_distance, export_detector, export_segmenter, max_abs_diff,  # noqa: E402
                                  onnx_detector, onnx_segmenter)
from labkit.robust.models import SuiteDetector, SuiteSegmenter  # noqa: E402
from labkit.robust.suite import run_suite  # noqa: E402

RAW_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from labkit.data.synth import generate_dataset

    root = tmp_path_factory.mktemp("export") / "small"
    generate_dataset(root, seed=0, size="small")
    return root


@pytest.fixture(scope="module")
def unet(tmp_path_factory: pytest.TempPathFactory):
    from labkit.segment.semantic import SemanticConfig, build_model

    torch.manual_seed(0)
    config = SemanticConfig(size=64, encoder_weights=None, device="cpu")
    model = build_model(config, pretrained=False).eval()
    path = export_segmenter(model, config, tmp_path_factory.mktemp("unet") / "unet.onnx")
    return model, config, path


@pytest.fixture(scope="module")
def yolo(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("yolo")
    untrained_detector(folder, imgsz=96)
    path = export_detector(folder / "weights.pt", folder / "yolo.onnx")
    return load_detector(folder / "weights.pt", device="cpu"), onnx_detector(path, CATEGORIES), path


def test_box_set_distance_ignores_order_and_finds_the_worst_box() -> None:
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    assert box_set_distance(a, a[::-1]) == 0.0  # the same boxes swapped: no difference (by index: 20 px)
    b = np.array([[20, 20, 30, 30.5], [0, 0.25, 10, 10]])  # worst coordinate gap 0.5 (y2 of the second box)
    assert box_set_distance(a, b) == box_set_distance(b, a) == 0.5
    # a box far from everything in one set counts even when the other set's boxes all have a near twin
    c = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [100, 100, 110, 110]], float)
    assert box_set_distance(a[:1], c) == 100.0 and box_set_distance(c, a[:1]) == 100.0
    assert box_set_distance(np.zeros((0, 4)), []) == 0.0
    with pytest.raises(DataError, match="one set of boxes is empty and the other has 2"):
        box_set_distance(a, np.zeros((0, 4)))


def test_unet_raw_logits_match(unet) -> None:
    model, config, path = unet
    ort = onnx_segmenter(path, config)
    torch.manual_seed(1)
    for shape in ((2, 3, 64, 64), (1, 3, 48, 80)):  # the batch and the size are dynamic
        x = torch.randn(*shape)
        with torch.no_grad():
            reference = model(x)
        assert max_abs_diff(reference, ort(x)) <= RAW_TOLERANCE


def test_unet_miou_matches_through_the_same_pipeline(unet, data_root: Path) -> None:
    model, config, path = unet
    val = load_split(data_root, "val")
    scores = [run_suite(SuiteSegmenter(name, net, config), val, data_root, kinds=[], max_images=None)["rows"][0]
              for name, net in (("torch", model), ("onnx", onnx_segmenter(path, config)))]
    assert abs(scores[0]["mean_iou"] - scores[1]["mean_iou"]) <= 0.002
    assert abs(scores[0]["mean_boundary_f"] - scores[1]["mean_boundary_f"]) <= 0.002


def test_detector_raw_head_output_matches(yolo) -> None:
    torch_det, onnx_det, _ = yolo
    assert onnx_det.imgsz == torch_det.imgsz == 96 and onnx_det.class_ids.tolist() == [1, 2, 3, 4, 5]
    torch.manual_seed(2)
    x = torch.rand(3, 3, 96, 96)
    with torch.no_grad():
        reference = torch_det.model(x)
    assert max_abs_diff(reference, onnx_det.model(x)) <= RAW_TOLERANCE


def test_detector_boxes_and_ap_match(yolo, data_root: Path) -> None:
    torch_det, onnx_det, _ = yolo
    val = load_split(data_root, "val")
    a = predict(torch_det, val, conf=0.001, batch=4, progress=False)
    b = predict(onnx_det, val, conf=0.001, batch=4, progress=False)
    for k in a:
        assert len(a[k]) == len(b[k])
        assert box_set_distance(a[k].xyxy, b[k].xyxy) <= 1e-3  # post-NMS boxes within 1e-3 px, in any order
    ap = [run_suite(SuiteDetector(name, det), val, data_root, kinds=[], max_images=None)["rows"][0]["AP"]
          for name, det in (("torch", torch_det), ("onnx", onnx_det))]
    assert abs(ap[0] - ap[1]) <= 0.002


def test_an_onnx_file_from_another_model_is_refused(unet, yolo, tmp_path: Path) -> None:
    _, config, unet_path = unet
    _, _, yolo_path = yolo
    with pytest.raises(DataError, match=r"unet.onnx: not an Ultralytics detection export"):
        onnx_detector(unet_path, CATEGORIES)
    with pytest.raises(DataError, match=r"yolo.onnx: not a labkit segmentation export"):
        onnx_segmenter(yolo_path, config)
    with pytest.raises(DataError, match=r"unet.onnx: exported for 6 classes at 64 px"):
        onnx_segmenter(unet_path, config.__class__(**{**asdict(config), "size": 96}))
    with pytest.raises(DataError, match="4 categories for an export with 5 classes"):
        onnx_detector(yolo_path, CATEGORIES[:4])
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a protobuf")
    with pytest.raises(DataError, match=r"garbage.onnx: ONNX Runtime cannot load"):
        onnx_detector(garbage)
