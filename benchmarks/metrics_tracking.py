"""Benchmark: labkit's in-memory tracking evaluation vs TrackEval's own file-based path.

Seeded synthetic sequences (default 2 x 1,000 frames x 30 objects, with missed detections,
jitter, ID switches and false positives) are written as MOTChallenge files; then

1. labkit from memory: ``evaluate_sequences`` on the ``{frame: Detections}`` dicts,
2. labkit from files: ``read_mot`` + ``evaluate_sequences``,
3. TrackEval: ``trackeval.Evaluator`` + ``trackeval.datasets.MotChallenge2DBox`` on the files,

each with HOTA, CLEAR and Identity. Writes ``artifacts/bench_metrics_tracking.json``: seconds of
each path (fastest of ``--repeats`` runs), and whether every field of every metric agrees to 1e-9
(``identical``).

Run: ``.venv/bin/python benchmarks/metrics_tracking.py [--frames 1000 --objects 30 --sequences 2]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import trackeval
from tqdm import tqdm

from labkit.artifacts import artifacts_dir, write_json
from labkit.data.annotations import Detections
from labkit.data.mot import read_mot, write_mot, write_seqinfo
from labkit.metrics.tracking import TrackingReport, TrackingSequence, evaluate_sequences
from labkit.repro import run_manifest

TOLERANCE = 1e-9


def synthetic_sequence(seed: int, num_frames: int, num_objects: int) -> tuple[dict, dict]:
    """``(gt, pred)`` frame dicts: objects drifting on a 1920x1080 canvas; the tracker misses 10 % of
    boxes, jitters the rest, switches an identity with probability 0.3 % per object and frame, and adds
    on average 2 false positives per frame."""
    rng = np.random.default_rng(seed)
    pos = rng.uniform([0, 0], [1800, 900], size=(num_objects, 2))
    vel = rng.normal(0, 2, size=(num_objects, 2))
    size = rng.uniform([30, 60], [80, 180], size=(num_objects, 2))
    track_of = np.arange(num_objects) + 1
    next_track = num_objects + 1
    gt, pred = {}, {}
    for frame in tqdm(range(1, num_frames + 1), desc=f"sequence {seed}", unit="frame", leave=False):
        vel += rng.normal(0, 0.3, size=vel.shape)
        pos = np.clip(pos + vel, 0, [1840, 900])
        boxes = np.hstack([pos, size])
        gt[frame] = Detections(boxes, np.ones(num_objects, int), track_id=np.arange(num_objects) + 1,
                               data={"consider": np.ones(num_objects, int), "visibility": np.ones(num_objects)})
        switch = rng.random(num_objects) < 0.003
        track_of[switch] = next_track + np.arange(switch.sum())
        next_track += int(switch.sum())
        seen = rng.random(num_objects) > 0.1
        jitter = rng.normal(0, 0.08, size=(num_objects, 4)) * np.hstack([size, size])
        n_fp = rng.poisson(2)
        fp = np.hstack([rng.uniform([0, 0], [1800, 900], size=(n_fp, 2)), rng.uniform([30, 60], [80, 180], size=(n_fp, 2))])
        fp_ids = next_track + np.arange(n_fp)
        next_track += n_fp
        pred_boxes = np.vstack([(boxes + jitter)[seen], fp])
        pred[frame] = Detections(pred_boxes, np.ones(len(pred_boxes), int), score=np.ones(len(pred_boxes)),
                                 track_id=np.concatenate([track_of[seen], fp_ids]))
    return gt, pred


def write_layout(root: Path, sequences: dict[str, tuple[dict, dict]], num_frames: int) -> None:
    """MotChallenge2DBox layout: ``gt/<seq>/gt/gt.txt`` + ``seqinfo.ini``, ``trackers/labkit/data/<seq>.txt``."""
    for name, (gt, pred) in sequences.items():
        write_mot(gt, root / "gt" / name / "gt" / "gt.txt", "gt")
        write_seqinfo(root / "gt" / name / "seqinfo.ini", name=name, length=num_frames, fps=30, width=1920, height=1080)
        write_mot(pred, root / "trackers" / "labkit" / "data" / f"{name}.txt", "pred")


def trackeval_evaluate(root: Path, names: list[str], num_frames: int) -> dict:
    """TrackEval's file-based evaluation (MOT17 preprocessing), results keyed like labkit's report."""
    evaluator = trackeval.Evaluator({
        "USE_PARALLEL": False, "PRINT_RESULTS": False, "PRINT_CONFIG": False, "TIME_PROGRESS": False,
        "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False, "PLOT_CURVES": False, "LOG_ON_ERROR": None})
    dataset = trackeval.datasets.MotChallenge2DBox({
        "GT_FOLDER": str(root / "gt"), "TRACKERS_FOLDER": str(root / "trackers"), "OUTPUT_FOLDER": str(root / "out"),
        "TRACKERS_TO_EVAL": ["labkit"], "BENCHMARK": "MOT17", "SKIP_SPLIT_FOL": True, "PRINT_CONFIG": False,
        "SEQ_INFO": {n: num_frames for n in names}})
    config = {"THRESHOLD": 0.5, "PRINT_CONFIG": False}
    metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR(config), trackeval.metrics.Identity(config)]
    res, _ = evaluator.evaluate([dataset], metrics)
    return {("COMBINED" if k == "COMBINED_SEQ" else k): v["pedestrian"]
            for k, v in res["MotChallenge2DBox"]["labkit"].items()}


def max_difference(report: TrackingReport, theirs: dict) -> float:
    """Largest absolute difference over every field of HOTA / CLEAR / Identity, all sequences."""
    worst = 0.0
    for name, per_metric in theirs.items():
        for metric in ("HOTA", "CLEAR", "Identity"):
            for key, value in per_metric[metric].items():
                diff = np.abs(np.asarray(report.results[name][metric][key], float) - np.asarray(value, float))
                worst = max(worst, float(np.max(diff)))
    return worst


def _timed(repeats: int, fn, *args, **kwargs):
    """``(result, best wall-clock seconds of `repeats` runs)`` (the minimum is the least noisy figure)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return out, best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--objects", type=int, default=30)
    parser.add_argument("--sequences", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per path; the fastest is reported")
    parser.add_argument("--out", type=Path, default=artifacts_dir() / "bench_metrics_tracking.json")
    args = parser.parse_args(argv)
    sequences = {f"SYN-{args.seed + i:02d}": synthetic_sequence(args.seed + i, args.frames, args.objects)
                 for i in range(args.sequences)}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_layout(root, sequences, args.frames)
        in_memory = {n: TrackingSequence(gt, pred, args.frames) for n, (gt, pred) in sequences.items()}
        report, t_memory = _timed(args.repeats, evaluate_sequences, in_memory, preprocess="mot17")

        def from_files() -> TrackingReport:
            loaded = {n: TrackingSequence(read_mot(root / "gt" / n / "gt" / "gt.txt", "gt"),
                                          read_mot(root / "trackers" / "labkit" / "data" / f"{n}.txt", "pred"),
                                          args.frames) for n in sequences}
            return evaluate_sequences(loaded, preprocess="mot17")

        report_files, t_files = _timed(args.repeats, from_files)
        theirs, t_trackeval = _timed(args.repeats, trackeval_evaluate, root, list(sequences), args.frames)
    diff = max(max_difference(report, theirs), max_difference(report_files, theirs))
    summary = report.summary()
    payload = {
        "what": "labkit in-memory tracking evaluation vs TrackEval file-based (HOTA + CLEAR + Identity, MOT17 preprocessing)",
        "sequences": args.sequences, "frames_per_sequence": args.frames, "objects_per_frame": args.objects,
        "gt_boxes": sum(c["num_gt_dets"] for c in report.counts.values()),
        "pred_boxes": sum(c["num_tracker_dets"] for c in report.counts.values()),
        "seconds_note": f"fastest of {args.repeats} runs each",
        "seconds": {"labkit_in_memory": round(t_memory, 3), "labkit_from_files": round(t_files, 3),
                    "trackeval_file_based": round(t_trackeval, 3)},
        "identical": diff <= TOLERANCE, "max_abs_difference": diff, "tolerance": TOLERANCE,
        "combined": {k: summary[k] for k in ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "Frag")},
        "manifest": run_manifest(seed=args.seed, config=vars(args) | {"out": str(args.out)}),
    }
    write_json(args.out, payload)
    print(f"labkit in memory {t_memory:.2f} s, labkit from files {t_files:.2f} s, TrackEval {t_trackeval:.2f} s; "
          f"identical: {payload['identical']} (max |diff| {diff:.2e}) -> {args.out}")
    return 0 if payload["identical"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
