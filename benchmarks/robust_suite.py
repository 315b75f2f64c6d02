"""Benchmark: wall time of the corruption suite (``labkit robust suite``) at default settings.

Target (issue 14): the suite for one model on the val split takes <= 90 s at default settings
(every kind, severities 1-5, the model's default seeded subset: 32 images for the detector, 16
for the U-Net; slices on). The peer measured in the same
run is one clean evaluation of the same images, so the ratio says what the 45 corrupted passes
cost. Both wall and process CPU seconds are recorded (one torch thread: CPU seconds are the time
on an idle core; on a shared machine the wall time also counts the waiting; the 1-minute load
average is recorded too).

Models: ``--detector`` / ``--segmenter`` take a model name or checkpoint (see
``labkit.robust.models.resolve_model``); by default untrained networks of the base
architectures at the base input sizes (YOLOv8n at 320 px, U-Net/ResNet-18 at 160 px), whose
cost per image is that of the trained ones (their metrics are meaningless and not reported).

Writes ``artifacts/bench_robustness.json`` (key ``suite``: seconds per model, per stage, the
clean-pass peer, images and conditions).

Run: ``.venv/bin/python benchmarks/robust_suite.py [--detector detect-base] [--segmenter segment-base]``
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from labkit.artifacts import artifacts_dir, write_json
from labkit.data.synth import ensure_dataset
from labkit.robust._moved import load_split
from labkit.repro import run_manifest
from labkit.robust.models import SuiteDetector, SuiteSegmenter, resolve_model
from labkit.robust.suite import run_suite

CATEGORIES = [{"id": i + 1, "name": n} for i, n in enumerate(["disc", "block", "cone", "rod", "star"])]


def untrained_detector(folder: Path) -> SuiteDetector:
    from labkit.detect._ultralytics import ul
    from labkit.detect.predict import load_detector

    torch.manual_seed(0)
    model = ul("ultralytics.nn.tasks").DetectionModel("yolov8n.yaml", nc=5, verbose=False)
    model.names = {i: c["name"] for i, c in enumerate(CATEGORIES)}
    torch.save({"model": model, "train_args": {"imgsz": 320}}, folder / "weights.pt")
    (folder / "categories.json").write_text(json.dumps(CATEGORIES))
    return SuiteDetector("untrained yolov8n @320", load_detector(folder / "weights.pt", device="cpu"))


def untrained_segmenter() -> SuiteSegmenter:
    from labkit.segment.semantic import SemanticConfig, build_model

    torch.manual_seed(0)
    config = SemanticConfig(size=160, encoder_weights=None, device="cpu")
    return SuiteSegmenter("untrained unet-resnet18 @160", build_model(config, pretrained=False).eval(), config)


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (ffmpeg encodes h264)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def time_suite(model, val, root: Path) -> dict:
    """Wall and CPU seconds of the clean pass alone (the peer) and of the default suite. With one
    torch thread the CPU seconds are what the run takes on an idle core, whatever else the
    machine runs; the wall seconds include the waiting on a shared machine."""
    wall, cpu = time.perf_counter(), _cpu()
    peer = run_suite(model, val, root, kinds=[])  # the clean pass alone, same default subset
    peer_wall, peer_cpu = time.perf_counter() - wall, _cpu() - cpu
    wall, cpu = time.perf_counter(), _cpu()
    result = run_suite(model, val, root)
    seconds, cpu_seconds = time.perf_counter() - wall, _cpu() - cpu
    return {"model": model.name, "wall_seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 2),
            "target_seconds": 90, "meets_target_cpu": cpu_seconds <= 90, "meets_target_wall": seconds <= 90,
            "stages_wall": result["seconds"], "images": len(result["images"]), "conditions": len(result["rows"]),
            "clean_pass_wall_seconds": round(peer_wall, 2), "clean_pass_cpu_seconds": round(peer_cpu, 2),
            "ratio_to_clean_pass_cpu": round(cpu_seconds / max(peer_cpu, 1e-9), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", default=None, help="model name or weights (default: untrained YOLOv8n @320)")
    parser.add_argument("--segmenter", default=None, help="model name or checkpoint (default: untrained U-Net @160)")
    parser.add_argument("--out", type=Path, default=artifacts_dir() / "bench_robustness.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    root = Path(ensure_dataset())
    val = load_split(root, "val")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        detector = resolve_model(args.detector)[0] if args.detector else untrained_detector(Path(tmp))
        segmenter = resolve_model(args.segmenter)[0] if args.segmenter else untrained_segmenter()
        runs = [time_suite(detector, val, root), time_suite(segmenter, val, root)]
    current = json.loads(args.out.read_text()) if args.out.is_file() else {}
    current["suite"] = {"runs": runs, "val_images": len(val), "load_average_1min": [load_before, os.getloadavg()[0]],
                        "torch_threads": torch.get_num_threads(),
                        "manifest": run_manifest(seed=0, config={k: str(v) for k, v in vars(args).items()})}
    write_json(args.out, current)
    for r in runs:
        print(f"{r['model']}: {r['cpu_seconds']} CPU s ({r['wall_seconds']} wall s) for {r['conditions']} conditions x "
              f"{r['images']} images (clean pass {r['clean_pass_cpu_seconds']} CPU s); target <= 90 s: "
              f"{'met' if r['meets_target_cpu'] else 'NOT met'} in CPU seconds")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
