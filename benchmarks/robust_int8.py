"""Benchmark: the base detector in PyTorch, ONNX Runtime fp32 and ONNX Runtime INT8, measured in one run.

Targets (issue 14): ONNX Runtime fp32 >= 1.2x PyTorch CPU images/s at batch 1; INT8 >= 1.5x ONNX
fp32 with an AP50 drop <= 0.02 -- reported as measured, with the same images and settings for
each runtime: the same seeded val subset, batch 1, conf 0.001 / NMS IoU 0.7 for AP, one thread
for every runtime (torch.set_num_threads and ONNX Runtime's intra-op threads), best of
``--repeats`` timed passes taken round-robin (a change of load on a shared machine hits all
alike). AP and AP50 are scored clean and on two corrupted copies of the same
images (sensor noise and low light at severity 3, ``labkit.robust.suite.run_suite``), because an
INT8 model can keep its clean AP and lose more under a corruption. The INT8 model is calibrated
on ``--calibration`` *train* images (never the scored ones).

Writes ``artifacts/bench_robustness.json`` (key ``int8``: AP / AP50 per runtime and condition and
the changes against fp32) and ``artifacts/bench_latency.json`` (key ``runtimes``: images/s and ms
per image per runtime, the speed-ups, the file sizes).

Run: ``.venv/bin/python benchmarks/robust_int8.py [--detector detect-base] [--images 32]``
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from itertools import islice
from pathlib import Path

import numpy as np
import torch

from labkit.artifacts import artifacts_dir, write_json
from labkit.data.sources import iter_frames
from labkit.data.synth import ensure_dataset
from labkit.detect.predict import find_categories, load_detector
from labkit.models.dataset import load_split
from labkit.repro import run_manifest
from labkit.robust.export import calibration_batches, export_detector, onnx_detector, quantize_int8
from labkit.robust.models import SuiteDetector, model_weights
from labkit.robust.suite import choose_images, run_suite

CONDITIONS = (("gaussian_noise", 3), ("low_light", 3))


def images_per_second(models: dict[str, SuiteDetector], images: dict, repeats: int) -> dict:
    """Batch-1 throughput of each model's ``predict`` over ``images`` (decoded beforehand): best of
    ``repeats`` passes, taken round-robin (one pass of each model in turn), so that a change in
    the machine's load hits every runtime alike."""
    best = {name: float("inf") for name in models}
    for _ in range(max(1, repeats)):
        for name, model in models.items():
            model.batch = 1
            start = time.perf_counter()
            model.predict(images)
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: {"images": len(images), "seconds": round(t, 3), "images_per_s": round(len(images) / t, 2),
                   "ms_per_image": round(1000.0 * t / len(images), 2)} for name, t in best.items()}


def scores(model: SuiteDetector, val, root: Path, ids: list[int], seed: int) -> dict:
    result = run_suite(model, val.subset(ids), root, kinds=[k for k, _ in CONDITIONS],
                       severities=sorted({s for _, s in CONDITIONS}), seed=seed, max_images=None, with_slices=False)
    return {f"{r['kind']}_s{r['severity']}" if r["kind"] != "clean" else "clean": {"AP": r["AP"], "AP50": r["AP50"]}
            for r in result["rows"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", default="detect-base", help="model name or Ultralytics weights")
    parser.add_argument("--images", type=int, default=32, help="val images scored and timed (seeded subset)")
    parser.add_argument("--calibration", type=int, default=32, help="train images for the INT8 calibration")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    weights = model_weights(args.detector)
    root = Path(ensure_dataset())
    val = load_split(root, "val")
    ids = [r.id for r in choose_images(val, args.images, args.seed).images]
    images = dict(iter_frames(val.subset(ids)))
    train = [img for _, img in islice(iter_frames(load_split(root, "train")), args.calibration)]
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_detector(weights, Path(tmp) / "fp32.onnx")
        cats = find_categories(weights)
        onnx_fp32 = onnx_detector(fp32, cats, threads=1)
        start = time.perf_counter()
        int8 = quantize_int8(fp32, Path(tmp) / "int8.onnx", calibration_batches(onnx_fp32, train))
        quantize_seconds = time.perf_counter() - start
        models = {"pytorch": SuiteDetector("pytorch", load_detector(weights, device="cpu")),
                  "onnx_fp32": SuiteDetector("onnx_fp32", onnx_fp32),
                  "onnx_int8": SuiteDetector("onnx_int8", onnx_detector(int8, cats, threads=1))}
        speed = images_per_second(models, images, args.repeats)
        accuracy = {name: scores(m, val, root, ids, args.seed) for name, m in models.items()}
        sizes = {"onnx_fp32": fp32.stat().st_size, "onnx_int8": int8.stat().st_size, "pytorch": weights.stat().st_size}
    ratio = lambda a, b: round(speed[a]["images_per_s"] / speed[b]["images_per_s"], 3)  # noqa: E731
    changes = {cond: {m: (None if accuracy[m][cond]["AP50"] is None or accuracy["onnx_fp32"][cond]["AP50"] is None
                          else round(accuracy[m][cond]["AP50"] - accuracy["onnx_fp32"][cond]["AP50"], 4))
                      for m in ("pytorch", "onnx_int8")} for cond in accuracy["onnx_fp32"]}
    int8_drop = changes["clean"]["onnx_int8"]
    manifest = run_manifest(seed=args.seed, config={k: str(v) for k, v in vars(args).items()})
    common = {"model": args.detector, "val_images": ids, "calibration_images": len(train), "threads": 1,
              "load_average_1min": [load_before, os.getloadavg()[0]], "manifest": manifest}
    robustness = artifacts_dir() / "bench_robustness.json"
    current = json.loads(robustness.read_text()) if robustness.is_file() else {}
    current["int8"] = {**common, "scores": accuracy, "AP50_change_vs_onnx_fp32": changes,
                       "target_int8_AP50_drop": 0.02,
                       "meets_int8_AP50_target": None if int8_drop is None else -int8_drop <= 0.02,
                       "quantize_seconds": round(quantize_seconds, 2)}
    write_json(robustness, current)
    latency = artifacts_dir() / "bench_latency.json"
    current = json.loads(latency.read_text()) if latency.is_file() else {}
    current["runtimes"] = {**common, "batch": 1, "throughput": speed, "file_bytes": sizes,
                           "onnx_fp32_vs_pytorch": ratio("onnx_fp32", "pytorch"),
                           "onnx_int8_vs_onnx_fp32": ratio("onnx_int8", "onnx_fp32"),
                           "targets": {"onnx_fp32_vs_pytorch": 1.2, "onnx_int8_vs_onnx_fp32": 1.5}}
    write_json(latency, current)
    for name in models:
        print(f"{name:10s} {speed[name]['images_per_s']:7.2f} img/s  "
              + "  ".join(f"{c} AP50 {v['AP50']:.3f}" for c, v in accuracy[name].items() if v["AP50"] is not None))
    print(f"ONNX fp32 / PyTorch {ratio('onnx_fp32', 'pytorch')}x (target 1.2x); INT8 / fp32 "
          f"{ratio('onnx_int8', 'onnx_fp32')}x (target 1.5x); INT8 clean AP50 change {int8_drop} (target >= -0.02)")
    print(f"wrote {robustness} and {latency}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
