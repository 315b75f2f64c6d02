"""Faster R-CNN, the two-stage comparison path: config checks, an interrupted build that resumes
through the cache, boxes back in original pixels, and scores equal to labkit's COCO evaluation."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pytest
import torch

from labkit.data.boxes import Letterbox
from labkit.data.images import load_image
from labkit.cli import main
from labkit.detect.evaluate import coco_summary
from labkit.detect.twostage import (FrcnnConfig, FrcnnDetector, FrcnnTrainSet, build_model, count_parameters,
                                    evaluate_frcnn, label_categories, learning_rate, load_frcnn, ms_per_image,
                                    predict_frcnn, resumable_frcnn, size_counts, train_frcnn)
from labkit.errors import DataError
from labkit.metrics.detection import evaluate_coco
from labkit import models
from labkit.models.dataset import load_split
from labkit.weights import PretrainedUnavailable

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "detect_frcnn_tiny.yaml"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: these tiny networks gain nothing from more, and on a shared 2-core runner
    two spinning OpenMP threads per process made the file four times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data_root() -> Path:
    from labkit.data.synth import ensure_dataset

    return Path(ensure_dataset(size="small", seed=0))


@pytest.fixture(scope="module")
def build(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A tiny build interrupted after epoch 1 (as a killed session would leave it), then finished by
    the registry's build (``detect-frcnn-tiny``), all with the network refused."""
    attempts: list = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network access is disabled in this test")

    cfg = FrcnnConfig.load(TINY)
    cache_root = tmp_path_factory.mktemp("artifacts") / "models"
    run = models.cache_dir("detect-frcnn-tiny", data_root=data_root, cache_root=cache_root) / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "getaddrinfo", refuse)
        mp.setattr(socket.socket, "connect", refuse)
        first = train_frcnn(cfg, data_root=data_root, run_dir=run, stop_after_epoch=1, progress=False)
        rows_after_first = pd.read_csv(run / "learning_curves.csv")
        with pytest.raises(DataError, match="config differs"):
            train_frcnn(cfg.replace(lr=0.02), data_root=data_root, run_dir=run, resume=True, progress=False)
        weights = models.build("detect-frcnn-tiny", data_root=data_root, cache_root=cache_root, progress=False).weights
    yield {"cfg": cfg, "first": first, "rows_after_first": rows_after_first, "run": run, "weights": weights,
           "cache_root": cache_root, "attempts": attempts, "val": load_split(data_root, "val")}


def test_bad_configs_are_clear_errors(tmp_path: Path) -> None:
    good = FrcnnConfig.load(TINY)
    assert good.imgsz == 128 and good.arch == "fasterrcnn_mobilenet_v3_large_320_fpn"
    with pytest.raises(DataError, match=r"unknown config keys \['epoch'\]"):
        FrcnnConfig.load({**good.to_dict(), "epoch": 3})
    with pytest.raises(DataError, match="arch must be one of"):
        good.replace(arch="fasterrcnn_resnet50_fpn")
    with pytest.raises(DataError, match="multiple of 32"):
        good.replace(imgsz=100)
    with pytest.raises(DataError, match="anchor_sizes must be 5"):
        good.replace(anchor_sizes=[16, 32])
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nbatch: [8\n")
    with pytest.raises(DataError, match="not valid YAML") as info:
        FrcnnConfig.load(bad)
    assert str(bad) in str(info.value)
    with pytest.raises(DataError, match="cannot read config"):
        FrcnnConfig.load(tmp_path / "missing.yaml")


def test_pretrained_backbone_offline_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network access is disabled in this test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr("labkit.weights._candidates", lambda filename: [])  # no local copy anywhere
    with pytest.raises(PretrainedUnavailable, match="not available offline"):
        build_model(FrcnnConfig.load(TINY).replace(pretrained_backbone=True), 5)


def test_interrupted_build_resumes_and_is_then_cached(build: dict, data_root: Path) -> None:
    first, run = build["first"], build["run"]
    assert first.interrupted and first.epochs == 1 and first.weights.name == "last.pt"
    assert len(build["rows_after_first"]) == 1
    assert not resumable_frcnn(run) and build["attempts"] == []
    log = pd.read_csv(run / "learning_curves.csv")
    assert log["epoch"].tolist() == [1, 2] and log["train_minutes"].is_monotonic_increasing
    pd.testing.assert_frame_equal(log.iloc[:1], build["rows_after_first"])  # nothing of session 1 lost
    assert log["coco/AP50"].notna().all() and np.isfinite(log["train/loss"]).all()
    manifest = json.loads((run / "manifest.json").read_text())
    assert [s["resume"] for s in manifest["sessions"]] == [False, True]
    assert manifest["config"] == build["cfg"].to_dict() and manifest["result"]["epochs"] == 2

    weights = build["weights"]
    info = json.loads((weights.parent / "metrics.json").read_text())
    assert weights.parent.name.startswith("detect-frcnn-tiny-") and info["epochs"] == 2
    # 40 small train images in batches of 8: 5 steps per epoch, 10 in the two epochs
    assert info["steps"] == 10 and manifest["result"]["steps"] == 10
    assert 0.0 <= info["metrics"]["AP50_95"] <= info["metrics"]["AP50"] <= 1.0
    assert info["build_minutes"] >= info["train_minutes"]
    assert info["details"]["parameters"] == count_parameters(load_frcnn(weights, device="cpu").model)
    stamp = (weights.stat().st_mtime_ns, (weights.parent / "metrics.json").stat().st_mtime_ns)
    again = models.build("detect-frcnn-tiny", data_root=data_root, cache_root=build["cache_root"])
    assert again.source == "cache" and again.weights == weights
    assert (weights.stat().st_mtime_ns, (weights.parent / "metrics.json").stat().st_mtime_ns) == stamp
    with pytest.raises(DataError, match="nothing to resume"):
        train_frcnn(build["cfg"], data_root=data_root, run_dir=run, resume=True)


def test_boxes_come_back_in_original_pixels(build: dict, data_root: Path) -> None:
    det = load_frcnn(build["weights"], device="cpu")
    rec = build["val"].images[0]
    full = load_image(build["val"].image_path(rec))
    for image in (full, np.ascontiguousarray(full[:150, :90])):  # landscape, and a tall crop
        lb = Letterbox.fit(image.shape[:2], det.imgsz)
        canvas = lb.image(image, pad_value=114)
        x = torch.from_numpy(canvas).permute(2, 0, 1).float() / 255
        batch, _ = det.model.transform([x])
        assert batch.image_sizes == [(det.imgsz, det.imgsz)]  # torchvision's resize leaves the canvas alone
        raw = det.raw([canvas])[0]
        got = det([image])[0]
        assert len(got) == len(raw["boxes"]) > 0
        expected = np.clip(lb.inverse_boxes(raw["boxes"].numpy().astype(np.float64)), 0,
                           [image.shape[1], image.shape[0]] * 2)
        np.testing.assert_allclose(got.xyxy, expected, atol=1e-9)
        assert set(got.class_id) <= {c["id"] for c in det.categories}


def test_perfect_canvas_predictions_score_ap_one(build: dict) -> None:
    """Training targets are the ground truth on the canvas; mapped back by the detector's own
    inverse they are the ground truth again, so COCO AP is exactly 1."""
    val = build["val"]
    data = FrcnnTrainSet(val, 320)
    rows = {rec.id: data.target(i) for i, rec in enumerate(val.images)}

    class Echo(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.roi_heads = torch.nn.Module()
            self.calls: list[int] = []

        def forward(self, x: list) -> list:
            ids = self.calls[:len(x)]
            del self.calls[:len(x)]
            return [{"boxes": torch.as_tensor(rows[i][1]), "labels": torch.as_tensor(rows[i][2]),
                     "scores": torch.ones(len(rows[i][2]))} for i in ids]

    echo = Echo()
    det = FrcnnDetector(echo, torch.device("cpu"), 320, label_categories(val))
    echo.calls = [rec.id for rec in val.images]
    preds = predict_frcnn(det, val, batch=3, progress=False)
    for rec in val.images:
        keep = [not bool(c) for c in rec.detections.get("iscrowd")]
        np.testing.assert_allclose(preds[rec.id].xyxy, rec.detections.xyxy[keep], atol=1e-9)
    assert coco_summary(val, preds)["AP"] == pytest.approx(1.0)


def test_evaluation_is_labkit_coco_on_the_same_predictions(build: dict) -> None:
    val, det = build["val"], load_frcnn(build["weights"], device="cpu")
    preds = predict_frcnn(det, val, batch=8, progress=False)  # the batch size training evaluated with
    report = evaluate_coco(val, preds)
    scores = evaluate_frcnn(det, val, batch=8)
    assert coco_summary(val, preds) == scores
    for key in ("AP", "AP50", "AP75", "APs", "APm", "AR100"):
        assert scores[key] == pytest.approx(report.stats[key], abs=1e-12), key
    assert scores["images"] == len(val) and scores["detections"] == sum(len(d) for d in preds.values())
    info = json.loads((build["weights"].parent / "metrics.json").read_text())
    assert info["details"]["coco"] == scores  # what the build reported, reproduced


def test_cli_serves_the_cached_model(build: dict, data_root: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("LABKIT_ARTIFACTS", str(build["cache_root"].parent))  # default cache: <artifacts>/models
    capsys.readouterr()
    assert main(["models", "build", "detect-frcnn-tiny", "--data-root", str(data_root), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert Path(payload[0]["weights"]).resolve() == build["weights"].resolve()
    assert payload[0]["epochs"] == 2 and payload[0]["source"] == "cache"


def test_schedule_timing_and_size_helpers(build: dict) -> None:
    cfg = build["cfg"].replace(warmup_iters=10)
    assert learning_rate(cfg, 0, 100) == pytest.approx(cfg.lr / 10)  # warm-up: step 1 of 10
    # cosine from lr to 5% of lr over the planned steps: half way, 0.05 + 0.95 * 0.5 * (1 + cos(pi / 2)) = 0.525
    assert learning_rate(cfg, 50, 100) == pytest.approx(0.525 * cfg.lr)
    assert learning_rate(cfg, 100, 100) == pytest.approx(0.05 * cfg.lr)
    calls: list[int] = []
    images = [np.zeros((8, 8, 3), np.uint8)] * 5
    assert ms_per_image(lambda batch: calls.append(len(batch)), images, batch=2) >= 0.0
    assert calls == [2, 2, 2, 1]  # one warm-up call, then every image once
    counts = size_counts(build["val"])
    assert counts["small"] > 0 and sum(counts.values()) == sum(
        int(sum(not bool(c) for c in r.detections.get("iscrowd"))) for r in build["val"].images)
