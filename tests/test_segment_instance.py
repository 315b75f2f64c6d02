"""Instance segmentation: YOLACT-style mask decoding back to original pixels, label maps <->
instances, the semantic model scored as instances, and a 1-epoch YOLO-seg run end to end (offline)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from labkit.data.annotations import Dataset, Detections, ImageRecord
from labkit.errors import DataError
from labkit.models import build
from labkit.segment.base import load_split
from labkit.segment.instance import (Comparison, InstanceSegmenter, compare_semantic_instance, instances_to_label_map,
                                     label_map_to_instances, score_semantic_instances, train_instance)
from test_segment_predict import GREEN, GREY, RED, ColourModel, _config

REPO = Path(__file__).resolve().parents[1]


def test_masks_are_decoded_into_original_pixels_and_cut_to_their_box():
    seg = InstanceSegmenter(model=None, device=torch.device("cpu"), half=False, imgsz=128,
                            class_ids=np.array([1, 2, 3]), end2end=False)
    from labkit.data.boxes import Letterbox

    lb = Letterbox.fit((64, 128), 128)  # scale 1, 32 rows of padding above
    protos = -torch.ones(2, 32, 32)
    protos[0, 12:20, 8:24] = 1  # canvas rows 48..80, cols 32..96 -> original rows 16..48
    rows = torch.tensor([[24.0, 40, 100, 88, 0.9, 1, 1, 0],   # box around the whole blob
                         [40.0, 40, 60, 88, 0.8, 0, 1, 0],    # a box that cuts it to cols 40..60
                         [0.0, 32, 20, 50, 0.7, 2, -1, 1]])   # logits -2 everywhere: empty mask, dropped
    det = seg._decode(rows, protos, lb)
    assert len(det) == 2 and det.class_id.tolist() == [2, 1] and np.allclose(det.score, [0.9, 0.8])
    assert np.allclose(det.xyxy, [[24, 8, 100, 56], [40, 8, 60, 56]])
    masks = det.masks(64, 128)
    expected = np.zeros((64, 128), bool)
    expected[16:48, 32:96] = True
    assert not (masks[0] & ~expected).any() and (expected & ~masks[0]).sum() == 4  # bilinear rounds 4 corners
    cut = expected.copy()
    cut[:, :40] = cut[:, 60:] = False
    assert np.array_equal(masks[1], cut)  # the rounded corners lie outside this box


def test_label_maps_and_instances_convert_both_ways():
    labels = np.zeros((40, 60), np.uint8)
    labels[2:12, 2:12] = 1
    labels[20:30, 2:12] = 1
    labels[5:35, 40:44] = 2
    labels[38, 58] = 2  # a 1-pixel speck: below min_area
    confidence = np.full(labels.shape, 0.6, np.float32)
    confidence[20:30, 2:12] = 0.9
    det = label_map_to_instances(labels, confidence, num_classes=3, min_area=4)
    assert sorted(det.class_id.tolist()) == [1, 1, 2] and sorted(np.round(det.score, 3).tolist()) == [0.6, 0.6, 0.9]
    painted = instances_to_label_map(det, 40, 60, min_score=0.0)
    labels[38, 58] = 0
    assert np.array_equal(painted, labels)
    assert (instances_to_label_map(det, 40, 60, min_score=0.7) > 0).sum() == 100
    overlap = Detections.from_masks(np.stack([np.ones((4, 4), bool), np.eye(4, dtype=bool)]), [1, 2], score=[0.9, 0.3])
    assert (instances_to_label_map(overlap, 4, 4, min_score=0) == 1).all()  # the higher score wins
    assert len(label_map_to_instances(np.zeros((5, 5), np.uint8), np.ones((5, 5)), 3)) == 0


def _grid_dataset(root: Path, n: int = 2) -> Dataset:
    """Images with separated red/green rectangles on grey, their COCO instances and semantic masks."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    records = []
    for i in range(n):
        image = np.full((96, 128, 3), GREY, np.uint8)
        labels = np.zeros((96, 128), np.uint8)
        masks, classes = [], []
        for k, (y, x) in enumerate([(8, 8), (8, 70), (56, 20), (50, 90)]):
            cls = 1 + (k + i) % 2
            h, w = 20 + 4 * k, 24 - 2 * k
            image[y:y + h, x:x + w] = RED if cls == 1 else GREEN
            labels[y:y + h, x:x + w] = cls
            m = np.zeros((96, 128), bool)
            m[y:y + h, x:x + w] = True
            masks.append(m)
            classes.append(cls)
        Image.fromarray(image).save(root / "images" / f"{i}.png")
        Image.fromarray(labels).save(root / "masks" / f"{i}.png")
        det = Detections.from_masks(np.stack(masks), classes)
        det = det.with_fields(id=np.arange(1, 5) + 4 * i, iscrowd=np.zeros(4, int),
                              area=np.array([m.sum() for m in masks], float))
        records.append(ImageRecord(i + 1, f"{i}.png", 128, 96, det, extra={"semantic_mask": f"masks/{i}.png"}))
    return Dataset([{"id": 1, "name": "red"}, {"id": 2, "name": "green"}], records, root=root / "images")


def test_a_perfect_semantic_model_scores_perfectly_as_instances(tmp_path: Path):
    dataset = _grid_dataset(tmp_path)
    config = _config(256)  # 128 -> 256: scale 2
    scored = score_semantic_instances(ColourModel(config), config, dataset, tmp_path, device="cpu")
    scores = scored.row
    assert scores["mask_AP"] == pytest.approx(1.0) and scores["mIoU"] == pytest.approx(1.0)
    assert scores["boundary_F"] == pytest.approx(1.0) and scores["instances"] == 8 and scores["ms_per_image"] > 0
    assert sorted(scored.predictions) == [1, 2]
    comparison = Comparison(None, {"perfect": scored})
    per_class = comparison.per_class_ap()
    assert per_class["perfect"].tolist() == pytest.approx([1.0, 1.0]) and per_class["objects"].sum() == 8
    errors = comparison.count_errors(dataset)
    truth = {name: np.mean([int((rec.detections.class_id == cls).sum()) for rec in dataset.images])
             for cls, name in dataset.category_names.items()}
    assert errors["perfect"].tolist() == [0.0, 0.0]
    assert errors["predict nothing"].to_dict() == pytest.approx(truth)


def test_count_errors_count_missed_and_extra_objects_and_honour_the_score_threshold(tmp_path: Path):
    dataset = _grid_dataset(tmp_path)
    config = _config(256)
    scored = score_semantic_instances(ColourModel(config), config, dataset, tmp_path, device="cpu")
    first = dataset.images[0].id
    det = scored.predictions[first]
    scored.predictions[first] = Detections.concat([det, det[:1]]).with_fields(
        score=np.r_[np.ones(len(det)), 0.9])  # one duplicate of the first object
    errors = Comparison(None, {"m": scored}).count_errors(dataset)
    name = dataset.category_names[int(det.class_id[0])]
    assert errors.loc[name, "m"] == pytest.approx(0.5)  # one image of two is off by one
    assert Comparison(None, {"m": scored}).count_errors(dataset, min_score=0.95).loc[name, "m"] == 0.0
    del scored.predictions[first]
    with pytest.raises(DataError, match=f"no prediction from 'm' \\(first id {first}\\)"):
        Comparison(None, {"m": scored}).count_errors(dataset)


def test_a_detection_model_is_refused():
    with pytest.raises(DataError, match="not a segmentation model"):
        train_instance({"name": "x", "model": "yolov8n.yaml"}, data_root=REPO)


@pytest.mark.slow
def test_tiny_yolo_seg_and_unet_compare_end_to_end(tmp_path: Path, network_attempts: list):
    from labkit.data.synth import ensure_dataset

    root = Path(ensure_dataset(size="small", seed=0))
    weights = train_instance(REPO / "configs" / "segment_instance_tiny.yaml", data_root=root, run_dir=tmp_path / "run")
    assert weights.is_file() and (tmp_path / "run" / "categories.json").is_file()
    labels = (tmp_path / "run" / "yolo" / "labels" / "train").glob("*.txt")
    assert all(len(line.split()) >= 7 for f in labels for line in f.read_text().splitlines())  # polygons, not boxes
    unet = build("segment-tiny", data_root=root, cache_root=tmp_path / "models", progress=False).weights
    comparison = compare_semantic_instance(unet, weights, load_split(root, "val"), root, device="cpu")
    table = comparison.table
    assert list(table.index) == ["semantic U-Net + components", "instance YOLO-seg"]
    for column in ("mask_AP", "mask_AP50", "boundary_F", "boundary_IoU", "mIoU", "ms_per_image"):
        assert all(math.isfinite(v) for v in table[column]), (column, table[column].tolist())
    assert (table["images"] == 10).all() and not network_attempts
    per_class, errors = comparison.per_class_ap(), comparison.count_errors(load_split(root, "val"))
    assert list(per_class.columns) == list(table.index) + ["objects"]
    assert list(errors.columns) == ["predict nothing"] + list(table.index) and (errors >= 0).all().all()


def test_an_interrupted_yolo_seg_build_resumes_through_the_registry(tmp_path: Path, network_attempts: list):
    """Interrupted after epoch 1 of 2 (as a killed ``make models-rebuild`` leaves it), the registry's
    build continues from ``last.pt`` with its optimizer state instead of starting again."""
    import pandas as pd

    from labkit.detect.config import DetectConfig
    from labkit.detect.train import resumable
    from labkit.models import build, cache_dir
    from labkit.data.synth import ensure_dataset

    root = Path(ensure_dataset(size="small", seed=0))
    cfg = DetectConfig.load(REPO / "configs" / "segment_instance_tiny.yaml").replace(epochs=2)
    run = cache_dir("segment-instance-tiny", config=cfg, data_root=root, cache_root=tmp_path) / "run"
    last = train_instance(cfg, data_root=root, run_dir=run, stop_after_epoch=1)
    assert last == run / "weights" / "last.pt" and resumable(run)
    manifest = (run / "manifest.json").read_text()
    model = build("segment-instance-tiny", config=cfg, data_root=root, cache_root=tmp_path, progress=False)
    log = pd.read_csv(run / "results.csv").rename(columns=str.strip)
    assert log["epoch"].tolist() == [1, 2] and model.info["epochs"] == 2 and model.info["steps"] == 10
    assert (run / "manifest.json").read_text() == manifest  # the run was continued, not started over
    assert not resumable(run) and not network_attempts


def test_models_command_builds_yolo_seg_once_then_reuses_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture,
                                                                    network_attempts: list):
    import json

    from labkit.cli import main

    monkeypatch.setenv("LABKIT_ARTIFACTS", str(tmp_path))
    assert main(["models", "build", "segment-instance-tiny", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)[0]
    assert Path(first["weights"]).is_file() and Path(first["weights"]).is_relative_to(tmp_path)
    assert first["metrics"]["mask_AP50"] is None or 0.0 <= first["metrics"]["mask_AP50"] <= 1.0
    # 40 small train images in batches of 8, one epoch: 5 steps
    assert first["epochs"] == 1 and first["steps"] == 5 and first["train_minutes"] > 0 and first["source"] == "built"
    stamp = Path(first["weights"]).stat().st_mtime_ns
    assert main(["models", "build", "segment-instance-tiny"]) == 0
    assert "mask_AP50" in capsys.readouterr().out and Path(first["weights"]).stat().st_mtime_ns == stamp
    assert main(["models", "build", "segment-instanse"]) == 2
    assert "known models" in capsys.readouterr().err
    assert not network_attempts


def test_run_time_reads_the_ultralytics_log_and_names_a_broken_one(tmp_path: Path):
    from labkit.segment.instance import run_time

    (tmp_path / "results.csv").write_text("epoch,  time, train/box_loss\n1, 61.5, 2.0\n2, 120.0, 1.5\n")
    assert run_time(tmp_path) == {"epochs": 2, "train_minutes": 2.0}
    (tmp_path / "results.csv").write_text("epoch,train/box_loss\n")
    with pytest.raises(DataError, match="results.csv"):
        run_time(tmp_path)
    with pytest.raises(DataError, match="results.csv"):
        run_time(tmp_path / "missing")
