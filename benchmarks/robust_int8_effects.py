"""Benchmark: what INT8 post-training static quantization does to tracking and to segmentation, clean and corrupted.

``benchmarks/robust_int8.py`` measures the detector's AP and speed under INT8; this one measures
the syllabus' point that an INT8 model can keep its mAP and still add ID switches, and the U-Net's
mIoU under INT8. Each model is exported to ONNX fp32 (``labkit.robust.export``) and quantized
with ``quantize_int8`` (QDQ, ONNX Runtime ``quantize_static``), calibrated on ``--calibration``
*train* images (the first ones of the still-image train split, never a scored image); fp32 and
INT8 then see the very same inputs, and every runtime runs on one thread (ONNX Runtime's
intra-op threads and ``torch.set_num_threads``).

* **Tracking**: the base detector (``--detector``, default ``detect-base``) at confidence >=
  ``--conf`` feeds labkit's tracker with its one default config (``configs/track_default.yaml``)
  on the first ``--frames`` frames of the first ``--sequences`` embedded val sequences, clean and
  with each ``--corruptions`` kind:severity applied to every frame (one parameter draw per
  sequence, seeded by ``--seed`` and the sequence's index: :meth:`Corruption.apply_frames`).
  Scored with TrackEval (:func:`labkit.metrics.tracking.evaluate_sequences`, all sequences
  combined): HOTA, IDF1, MOTA, ID switches (IDSW); beside them the detector's AP / AP50 on the
  same frames (``benchmarks/tracking.py``'s ``detections_ap``).
* **Segmentation**: the shipped U-Net (``--segmenter``, default ``segment-base``) on a seeded
  subset of ``--images`` val images, clean and under the same corruptions (one draw per image, as
  the robustness suite draws them: ``labkit.robust.suite.corrupt_split``): mIoU and mean boundary
  F, and images/s of each runtime at batch 1 (best of ``--repeats`` round-robin passes:
  ``benchmarks/robust_int8.py``'s timer).

Every change is INT8 minus fp32 under the same condition. Writes
``artifacts/bench_robust_int8_effects.json`` with every setting, the file sizes, the load
average before and after, and the run manifest.

Run: ``.venv/bin/python benchmarks/robust_int8_effects.py [--frames N] [--sequences N] [--images N]``
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import tempfile
import time
from itertools import islice
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from labkit.artifacts import artifacts_dir, shown_path, write_json
from labkit.data.annotations import Detections
from labkit.data.mot import read_mot
from labkit.data.sources import iter_frames
from labkit.data.synth import ensure_dataset
from labkit.errors import DataError
from labkit.metrics.tracking import TrackingSequence, evaluate_sequences
from labkit.models.dataset import load_split
from labkit.repro import run_manifest
from labkit.robust.corruptions import check_kind, check_severity, make_corruption
from labkit.robust.export import (calibration_batches, export_detector, export_segmenter, onnx_detector,
                                  onnx_segmenter, quantize_int8, segmenter_calibration_batches)
from labkit.robust.models import SuiteSegmenter, model_weights
from labkit.robust.suite import choose_images, corrupt_split
from labkit.track.run import track_frames
from labkit.track.sequence import open_sequence

RUNTIMES = ("onnx_fp32", "onnx_int8")
TRACK_METRICS = ("HOTA", "IDF1", "MOTA", "IDSW")


def _sibling(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` imported as a module (the benchmarks folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_conditions(values: list[str]) -> list[tuple[str, int]]:
    """``["gaussian_noise:3", ...]`` as ``[(kind, severity), ...]``; an unknown kind or a
    severity outside 1..5 is a :class:`DataError` naming it."""
    out = []
    for value in values:
        kind, sep, severity = value.partition(":")
        if not sep or not severity.strip().isdigit():
            raise DataError(f"a corruption is KIND:SEVERITY (e.g. gaussian_noise:3), got {value!r}")
        out.append((check_kind(kind.strip()), check_severity(int(severity))))
    return out


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def condition_name(kind: str, severity: int) -> str:
    return f"{kind}_s{severity}"


def changes(scores: dict[str, dict[str, dict[str, Any]]], metrics: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """INT8 minus fp32 for every condition and metric (None where either score is undefined)."""
    fp32, int8 = scores["onnx_fp32"], scores["onnx_int8"]
    return {cond: {m: None if int8[cond][m] is None or fp32[cond][m] is None else int8[cond][m] - fp32[cond][m]
                   for m in metrics} for cond in fp32}


# ------------------------------------------------------------------------------- tracking
def val_sequences(root: Path, count: int | None, frames: int | None) -> list[tuple[Any, dict[int, Detections]]]:
    """The first ``count`` val sequences cut to their first ``frames`` frames (the ``Sequence``'s
    length says so), each with its ground truth on those frames."""
    infos = sorted((root / "sequences" / "val").glob("*/seqinfo.ini"))
    if not infos:
        raise DataError("no val sequences (*/seqinfo.ini) in the dataset", source=str(root / "sequences" / "val"))
    out = []
    for info in infos[:count]:
        seq = open_sequence(info.parent, require_frames=True)
        seq = dataclasses.replace(seq, length=min(seq.length, frames or seq.length))
        gt = {f: d for f, d in read_mot(seq.gt_file, "gt").items() if f <= seq.length}
        out.append((seq, gt))
    return out


def condition_frames(seq: Any, index: int, condition: tuple[str, int] | None,
                     seed: int) -> tuple[list[np.ndarray], Any]:
    """The sequence's frames, clean (``condition`` None) or corrupted with one parameter draw for
    the whole sequence, seeded by ``seed`` and the sequence's ``index``; and the corruption's record."""
    frames = [seq.read_frame(f) for f in range(1, seq.length + 1)]
    if condition is None:
        return frames, None
    draw_seed = int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])
    corruption = make_corruption(*condition, seed=draw_seed)
    return corruption.apply_frames(frames), corruption.record()


def track_scores(detector: Any, sequences: list, conditions: dict, seed: int, conf: float,
                 detections_ap: Any) -> tuple[dict[str, dict[str, Any]], dict[str, list]]:
    """HOTA / IDF1 / MOTA / IDSW (all sequences combined) and the detections' AP / AP50 of the
    tracker fed by ``detector`` (a :class:`labkit.detect.predict.Detector`, batch 1, confidence >=
    ``conf``), per condition; and the corruption records applied."""
    from labkit.detect.predict import predict

    scores, records = {}, {}
    for name, condition in conditions.items():
        runs, loaded, records[name] = {}, [], []
        for index, (seq, gt) in enumerate(sequences):
            frames, record = condition_frames(seq, index, condition, seed)
            records[name].append(record)
            found = predict(detector, dict(enumerate(frames, start=1)), conf=conf, batch=1, progress=False)
            run = track_frames(found, seq.length, None, read_frame=lambda f, fr=frames: fr[f - 1], record=False)
            runs[seq.name] = TrackingSequence(gt, run.tracks, seq.length)
            loaded.append((seq, gt, found))
        summary = evaluate_sequences(runs, preprocess="none").summary()
        scores[name] = {**{k: summary[k] for k in TRACK_METRICS}, **detections_ap(loaded),
                        "detections": int(sum(len(d) for _, _, dets in loaded for d in dets.values()))}
    return scores, records


def tracking_section(args: argparse.Namespace, root: Path, train: list, conditions: dict, folder: Path) -> dict:
    from labkit.detect.predict import find_categories

    weights = model_weights(args.detector)
    sequences = val_sequences(root, args.sequences, args.frames)
    fp32 = export_detector(weights, folder / "detector-fp32.onnx")
    cats = find_categories(weights)
    onnx_fp32 = onnx_detector(fp32, cats, threads=1)
    start = time.perf_counter()
    int8 = quantize_int8(fp32, folder / "detector-int8.onnx", calibration_batches(onnx_fp32, train))
    quantize_seconds = time.perf_counter() - start
    detectors = {"onnx_fp32": onnx_fp32, "onnx_int8": onnx_detector(int8, cats, threads=1)}
    detections_ap = _sibling("tracking").detections_ap
    scores, records = {}, {}
    for name, detector in detectors.items():
        scores[name], records = track_scores(detector, sequences, conditions, args.seed, args.conf,
                                             detections_ap)
    return {"model": args.detector, "weights": shown_path(weights), "conf": args.conf, "tracker_config": "default",
            "preprocess": "none", "sequences": [seq.name for seq, _ in sequences],
            "frames_per_sequence": [seq.length for seq, _ in sequences], "corruptions": records,
            "scores": scores, "change_int8_minus_fp32": changes(scores, TRACK_METRICS + ("AP", "AP50")),
            "file_bytes": {"onnx_fp32": fp32.stat().st_size, "onnx_int8": int8.stat().st_size},
            "quantize_seconds": round(quantize_seconds, 2)}


# --------------------------------------------------------------------------- segmentation
def segmentation_section(args: argparse.Namespace, root: Path, train: list, conditions: dict, folder: Path) -> dict:
    from labkit.segment.semantic import load_checkpoint

    weights = model_weights(args.segmenter)
    model, config = load_checkpoint(weights, device="cpu")
    fp32 = export_segmenter(model, config, folder / "segmenter-fp32.onnx")
    start = time.perf_counter()
    int8 = quantize_int8(fp32, folder / "segmenter-int8.onnx", segmenter_calibration_batches(config, train))
    quantize_seconds = time.perf_counter() - start
    models = {name: SuiteSegmenter(name, onnx_segmenter(path, config, threads=1), config, batch=1)
              for name, path in (("onnx_fp32", fp32), ("onnx_int8", int8))}
    val = load_split(root, "val")
    subset = choose_images(val, args.images, args.seed)
    clean = dict(iter_frames(subset))
    speed = _sibling("robust_int8").images_per_second(models, clean, args.repeats)
    scores: dict[str, dict[str, Any]] = {name: {} for name in models}
    for cond, condition in conditions.items():
        images = clean if condition is None else corrupt_split(clean, *condition, args.seed)
        for name, segmenter in models.items():
            scores[name][cond] = segmenter.score(subset, segmenter.predict(images), root)
    return {"model": args.segmenter, "weights": shown_path(weights), "val_images": sorted(clean),
            "input_size": config.preprocessing.size,
            "scores": scores, "change_int8_minus_fp32": changes(scores, ("mean_iou", "mean_boundary_f")),
            "batch": 1, "throughput": speed,
            "int8_vs_fp32_speed": round(speed["onnx_int8"]["images_per_s"] / speed["onnx_fp32"]["images_per_s"], 3),
            "file_bytes": {"onnx_fp32": fp32.stat().st_size, "onnx_int8": int8.stat().st_size},
            "quantize_seconds": round(quantize_seconds, 2)}


# ----------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, dict[str, tuple[str, int] | None]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", default="detect-base", help="model name or Ultralytics weights")
    parser.add_argument("--segmenter", default="segment-base", help="model name or U-Net checkpoint")
    parser.add_argument("--frames", type=int, default=None, help="first frames of each val sequence (default: all)")
    parser.add_argument("--sequences", type=int, default=None, help="first val sequences (default: all)")
    parser.add_argument("--images", type=int, default=32, help="val images the U-Net is scored and timed on (seeded)")
    parser.add_argument("--calibration", type=int, default=32, help="train images for each INT8 calibration")
    parser.add_argument("--corruptions", nargs="+", default=["gaussian_noise:3", "low_light:3"],
                        help="KIND:SEVERITY conditions besides clean (labkit.robust.corruptions)")
    parser.add_argument("--conf", type=float, default=0.05, help="detector confidence fed to the tracker")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes of the U-Net (best counts)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in ("frames", "sequences", "images", "calibration", "repeats"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be >= 1, got {value}")
    if not 0.0 <= args.conf <= 1.0:
        parser.error(f"--conf must be in [0, 1], got {args.conf}")
    try:
        parsed = parse_conditions(args.corruptions)
    except DataError as exc:
        parser.error(f"--corruptions: {exc}")
    return args, {"clean": None, **{condition_name(*c): c for c in parsed}}


def main(argv: list[str] | None = None) -> int:
    args, conditions = parse_args(argv)
    torch.set_num_threads(1)
    root = Path(ensure_dataset())
    train = [img for _, img in islice(iter_frames(load_split(root, "train")), args.calibration)]
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tracking = tracking_section(args, root, train, conditions, Path(tmp))
        segmentation = segmentation_section(args, root, train, conditions, Path(tmp))
    payload = {"what": __doc__.splitlines()[0], "data": shown_path(root), "conditions": list(conditions),
               "calibration_images": len(train), "calibration_split": "train", "threads": 1,
               "tracking": tracking, "segmentation": segmentation, "seconds": round(time.perf_counter() - start, 1),
               "load_average_1min": [load_before, os.getloadavg()[0]],
               "manifest": run_manifest(seed=args.seed, config={k: str(v) for k, v in vars(args).items()})}
    out = write_json(artifacts_dir() / "bench_robust_int8_effects.json", payload)
    for name in RUNTIMES:
        print(f"tracking {name}: " + "  ".join(
            f"{c} HOTA {s['HOTA']:.3f} IDF1 {s['IDF1']:.3f} IDSW {s['IDSW']} AP50 {_number(s['AP50'])}"
            for c, s in tracking["scores"][name].items()))
        print(f"segment  {name}: {segmentation['throughput'][name]['images_per_s']} img/s  " + "  ".join(
            f"{c} mIoU {s['mean_iou']:.4f}" for c, s in segmentation["scores"][name].items()))
    for cond, change in tracking["change_int8_minus_fp32"].items():
        print(f"INT8 - fp32, {cond}: HOTA {change['HOTA']:+.4f}  IDSW {change['IDSW']:+d}  "
              f"mIoU {segmentation['change_int8_minus_fp32'][cond]['mean_iou']:+.4f}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
