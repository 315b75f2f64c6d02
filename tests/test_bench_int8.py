"""benchmarks/robust_int8.py end to end at tiny size: an untrained YOLOv8n at 64 px, two val
images, two calibration images; both records are written with every runtime and condition, and
PyTorch and ONNX fp32 score the same AP50 (parity), so the INT8 change is measured against a sound
baseline."""

from __future__ import annotations

import json

from conftest import load_script
from robust_helpers import untrained_detector


def test_int8_benchmark_writes_both_records(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_ARTIFACTS", str(tmp_path / "artifacts"))
    weights = untrained_detector(tmp_path, imgsz=64)
    bench = load_script("robust_int8", folder="benchmarks")
    assert bench.main(["--detector", str(weights), "--images", "2", "--calibration", "2", "--repeats", "1"]) == 0
    robustness = json.loads((tmp_path / "artifacts" / "bench_robustness.json").read_text())["int8"]
    latency = json.loads((tmp_path / "artifacts" / "bench_latency.json").read_text())["runtimes"]
    runtimes, conditions = {"pytorch", "onnx_fp32", "onnx_int8"}, {"clean", "gaussian_noise_s3", "low_light_s3"}
    assert set(robustness["scores"]) == runtimes and all(set(v) == conditions for v in robustness["scores"].values())
    assert len(robustness["val_images"]) == 2 and robustness["calibration_images"] == 2
    for cond, change in robustness["AP50_change_vs_onnx_fp32"].items():
        assert change["pytorch"] is None or abs(change["pytorch"]) <= 0.002, (cond, change)
    assert set(latency["throughput"]) == runtimes
    assert all(v["images"] == 2 and v["images_per_s"] > 0 for v in latency["throughput"].values())
    assert latency["file_bytes"]["onnx_int8"] < latency["file_bytes"]["onnx_fp32"]
    assert latency["onnx_int8_vs_onnx_fp32"] > 0 and latency["manifest"]["config"]["images"] == "2"
