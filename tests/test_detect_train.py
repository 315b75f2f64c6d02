"""Training from a YAML config on the small embedded dataset: interruption + resume, learning
curves, labkit COCO evaluation, the cached base detector, and no network access anywhere."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from labkit.detect import cli as detect_cli
from labkit.detect.config import DetectConfig
from labkit.detect.predict import predict
from labkit.detect.train import resumable, train
from labkit.metrics.detection import evaluate_coco
from labkit.errors import DataError
from labkit.models import build, cache_dir
from labkit.models.dataset import load_split
from labkit.repro import sha256_file

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "detect_tiny.yaml"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_root() -> Path:
    """The small embedded dataset (generated once, then reused)."""
    from labkit.data.synth import ensure_dataset

    return Path(ensure_dataset(size="small", seed=0))


def test_interrupted_run_resumes_with_nothing_lost(data_root: Path, tmp_path: Path, network_attempts: list,
                                                   capsys: pytest.CaptureFixture) -> None:
    cfg = DetectConfig.load(TINY).replace(epochs=3)
    config_file = tmp_path / "detect.yaml"
    config_file.write_text(yaml.safe_dump(cfg.to_dict()))
    run = tmp_path / "run"
    # Session 1 from the command line, interrupted after epoch 2; --json keeps stdout pure JSON.
    parser = argparse.ArgumentParser()
    detect_cli.register(parser.add_subparsers())
    args = parser.parse_args(["detect", "train", "--config", str(config_file), "--data-root", str(data_root),
                              "--run-dir", str(run), "--stop-after-epoch", "2", "--json"])
    capsys.readouterr()
    assert args.func(args) == 0
    captured = capsys.readouterr()
    first = json.loads(captured.out)
    # one progress bar ticks per epoch, on stderr, even with Ultralytics' own log off (the notebooks)
    assert f"{cfg.name} training" in captured.err and "2/3 [" in captured.err, captured.err[-500:]
    assert first["interrupted"] and first["epochs"] == 2 and resumable(run)
    logged = (run / "results.csv").read_text().splitlines()
    assert len(logged) == 1 + 2

    with pytest.raises(DataError, match="config differs"):
        train(cfg.replace(seed=1), run_dir=run, resume=True)
    second = train(cfg, data_root=tmp_path / "gone", run_dir=run, resume=True)  # the run has its own data copy
    assert not second.interrupted and second.epochs == 3 and not resumable(run)
    after = (run / "results.csv").read_text().splitlines()
    assert after[:3] == logged and len(after) == 1 + 3
    curves = pd.read_csv(second.curves_csv)
    assert curves["epoch"].tolist() == [1, 2, 3]
    assert curves["train_minutes"].is_monotonic_increasing
    for col in ("train/box_loss", "train/cls_loss", "metrics/mAP50(B)", "metrics/mAP50-95(B)", "lr/pg0",
                "coco/AP50", "coco/AP"):
        assert curves[col].notna().all(), col
    assert second.curves_png.stat().st_size > 10_000

    manifest = json.loads((run / "manifest.json").read_text())
    assert [s["resume"] for s in manifest["sessions"]] == [False, True]
    assert manifest["config"] == cfg.to_dict()
    assert manifest["ultralytics_args"]["plots"] is False and manifest["ultralytics_resolved_args"]["imgsz"] == 128
    assert set(manifest["dataset_sha256"]["sha256"]) == {"annotations/instances_train.json",
                                                          "annotations/instances_val.json"}

    # The reported COCO numbers are labkit's evaluation of boxes in original pixels.
    val = load_split(data_root, "val")
    preds = predict(second.weights, val, device="cpu", progress=False)
    for rec in val:
        d = preds[rec.id]
        assert len(d) == 0 or (d.xyxy[:, 2].max() <= rec.width and d.xyxy[:, 3].max() <= rec.height)
    report = evaluate_coco(val, preds)
    assert report.stats["AP50"] == pytest.approx(second.metrics["coco"]["AP50"], abs=1e-12)
    assert report.stats["AP"] == pytest.approx(second.metrics["coco"]["AP"], abs=1e-12)
    assert 0.0 <= second.metrics["ultralytics"]["metrics/mAP50(B)"] <= 1.0
    assert network_attempts == []


def test_registry_builds_the_detector_once_then_serves_it_from_cache(data_root: Path, tmp_path: Path,
                                                                      network_attempts: list) -> None:
    cfg = DetectConfig.load(TINY).replace(name="tiny-base", epochs=1)
    model = build("detect-tiny", config=cfg, data_root=data_root, cache_root=tmp_path, progress=False)
    folder = model.folder
    assert model.source == "built" and folder.parent == tmp_path and folder.name.startswith("detect-tiny-")
    info = model.info
    assert 0.0 <= info["metrics"]["AP50"] <= 1.0 and 0.0 <= info["metrics"]["AP50_95"] <= info["metrics"]["AP50"]
    assert info["epochs"] == 1 and info["train_minutes"] > 0 and info["device"] == "cpu"
    # 40 small train images in batches of 8: 5 optimisation steps in the one epoch
    assert len(load_split(data_root, "train")) == 40 and info["steps"] == 5
    assert info["weights_sha256"] == sha256_file(model.weights) and (folder / "categories.json").is_file()
    curve = json.loads((folder / "ap_vs_minutes.json").read_text())
    assert [p["epoch"] for p in curve] == [1] and curve[0]["AP50"] == pytest.approx(info["metrics"]["AP50"], abs=1e-9)

    files = {p: (p.stat().st_mtime_ns, sha256_file(p)) for p in folder.rglob("*") if p.is_file()}
    again = build("detect-tiny", config=cfg, data_root=data_root, cache_root=tmp_path)
    assert again.source == "cache" and again.weights == model.weights and again.info == info
    assert {p: (p.stat().st_mtime_ns, sha256_file(p)) for p in folder.rglob("*") if p.is_file()} == files
    assert cache_dir("detect-tiny", config=cfg.replace(seed=1), data_root=data_root, cache_root=tmp_path) != folder
    assert network_attempts == []
