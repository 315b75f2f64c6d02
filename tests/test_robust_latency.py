"""Latency: statistics and budget sheet on hand-made samples, stages adding up on a real run,
the CLI with a torch detector and an ONNX U-Net, bad inputs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from robust_helpers import untrained_detector
import torch

from labkit.cli import main
from labkit.configfile import config_path
from labkit.errors import DataError
from labkit.robust.latency import (DETECTOR_STAGES, END_TO_END, LatencyBudget, budget_sheet, measure_latency,
                                   summarise)
from labkit.robust.models import resolve_model



def test_summarise_hand_computed() -> None:
    rows = {r["stage"]: r for r in summarise({"a": [1.0, 2.0, 3.0, 4.0], "b": [1.0] * 4,
                                              END_TO_END: [2.0, 3.0, 4.0, 5.0]})}
    a = rows["a"]
    assert a["p50_ms"] == pytest.approx(2.5) and a["p95_ms"] == pytest.approx(3.85)  # 1 + 0.95 * 3 (linear)
    assert a["p99_ms"] == pytest.approx(3.97) and a["mean_ms"] == pytest.approx(2.5)
    assert a["share"] == pytest.approx(2.5 / 3.5) and a["fps"] is None
    assert rows[END_TO_END]["fps"] == pytest.approx(1000 / 3.5)


def test_budget_sheet_renormalises_shares_and_keeps_the_boundary() -> None:
    budget = LatencyBudget(fps_target=10, percentile="p95", shares={"decode": 0.1, "inference": 0.55, "render": 0.35})
    rows = [{"stage": "decode", "p50_ms": 1.0, "p95_ms": 100 * 0.1 / 0.65, "p99_ms": 20.0},
            {"stage": "inference", "p50_ms": 50.0, "p95_ms": 90.0, "p99_ms": 95.0},
            {"stage": END_TO_END, "p50_ms": 51.0, "p95_ms": 100.0, "p99_ms": 110.0}]
    sheet = {s["stage"]: s for s in budget_sheet(rows, budget)}
    # no render stage measured: 100 ms split 0.1 : 0.55 over decode and inference
    assert sheet["decode"]["target_ms"] == pytest.approx(100 * 0.1 / 0.65)
    assert sheet["decode"]["verdict"] == "within budget"  # p95 exactly on the target
    assert sheet["inference"]["target_ms"] == pytest.approx(100 * 0.55 / 0.65)
    assert sheet["inference"]["verdict"] == "over budget"  # 90 > 84.6
    assert sheet[END_TO_END]["target_ms"] == pytest.approx(100.0) and sheet[END_TO_END]["verdict"] == "within budget"


def test_budget_config_errors_name_the_file(tmp_path: Path) -> None:
    shipped = LatencyBudget.load(config_path("robust_latency.yaml"))
    assert shipped.fps_target == 10 and shipped.percentile == "p95"
    bad = tmp_path / "budget.yaml"
    bad.write_text("fps_target: 0\n")
    with pytest.raises(DataError, match=r"budget.yaml.*fps_target must be a positive number"):
        LatencyBudget.load(bad)
    bad.write_text("percentile: p90\n")
    with pytest.raises(DataError, match=r"budget.yaml.*percentile must be p50, p95 or p99"):
        LatencyBudget.load(bad)


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(0)
    for k in range(9):
        img = cv2.GaussianBlur(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8), (0, 0), 2)
        assert cv2.imwrite(str(folder / f"{k:06d}.jpg"), img)
    return folder


@pytest.fixture(scope="module")
def detector_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return untrained_detector(tmp_path_factory.mktemp("yolo"), imgsz=64)


def test_stages_add_up_to_end_to_end_and_warmup_is_left_out(detector_weights: Path, frames_dir: Path) -> None:
    model, _ = resolve_model(str(detector_weights))
    samples = measure_latency(model, frames_dir, max_frames=5, warmup=3)
    assert set(samples) == {*DETECTOR_STAGES, END_TO_END}
    assert all(len(v) == 5 for v in samples.values())
    total = np.sum([samples[s] for s in DETECTOR_STAGES], axis=0)
    np.testing.assert_allclose(total, samples[END_TO_END], rtol=1e-12)
    with pytest.raises(DataError, match="fewer than warmup"):
        measure_latency(model, frames_dir, max_frames=5, warmup=9)


def test_cli_latency_sheet_for_an_onnx_unet(frames_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("onnxruntime")
    from labkit.robust.export import export_segmenter
    from labkit.segment.semantic import SemanticConfig, build_model

    torch.manual_seed(0)
    config = SemanticConfig(size=64, encoder_weights=None, device="cpu")
    onnx_path = export_segmenter(build_model(config, pretrained=False), config, tmp_path / "unet.onnx")
    code = main(["bench", "latency", "--model", str(onnx_path), "--source", str(frames_dir), "--frames", "4",
                 "--warmup", "1", "--out", str(tmp_path / "sheet"), "--batches", "1", "4", "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 0 and payload["task"] == "segment"
    assert [(r["batch"], r["images"]) for r in payload["throughput"]] == [(1, 4), (4, 4)]
    assert all(r["images_per_s"] == pytest.approx(4 / r["seconds"]) for r in payload["throughput"])
    assert (tmp_path / "sheet" / "latency_throughput.csv").read_text().startswith("batch,images,seconds,images_per_s\n1,4,")
    with (tmp_path / "sheet" / "latency_budget.csv").open() as f:
        stages = [row["stage"] for row in csv.DictReader(f)]
    assert stages == ["decode", "preprocess", "inference", "postprocess", "render", "serialise", END_TO_END]
    assert "| end_to_end |" in (tmp_path / "sheet" / "latency_budget.md").read_text()


def test_cli_latency_bad_inputs(detector_weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["bench", "latency", "--model", str(detector_weights), "--source", str(tmp_path / "none"),
                 "--out", str(tmp_path / "o")])
    assert code == 2 and "none" in capsys.readouterr().err
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"RIFF0000AVI garbage" * 10)
    code = main(["bench", "latency", "--model", str(detector_weights), "--source", str(broken), "--out", str(tmp_path / "o")])
    assert code == 1 and str(broken) in capsys.readouterr().err
    code = main(["bench", "latency", "--model", "nope", "--source", str(broken), "--out", str(tmp_path / "o")])
    assert code == 2 and "unknown model 'nope'" in capsys.readouterr().err
