"""Benchmark: labkit's default tracker vs peer trackers with their library defaults, same detections.

Peers (installed by the ``bench`` extra; BoxMOT with ``pip install --no-deps boxmot`` plus ``lap``):

* Ultralytics ``BYTETracker`` and ``BOTSORT`` (``ultralytics/cfg/trackers/{bytetrack,botsort}.yaml``
  defaults; BoT-SORT gets the frames for its default sparse-optical-flow camera compensation),
* Roboflow ``trackers``: ``SORTTracker``, ``ByteTrackTracker`` (constructor defaults),
* BoxMOT: ``ByteTrack``, ``OcSort`` (constructor defaults).

Data: TUD-Campus public detections (``../shared/data/motchallenge-tud-campus``, see its SOURCE.md),
scores divided by the sequence maximum (the ACF scores reach ~130), scored with TrackEval
(:mod:`labkit.metrics.tracking`, MOT15 preprocessing) against the official ground truth; and
TUD-Stadtmitte, whose ground truth is there but not its frames or detections, with detections
simulated from its ground truth (the same for every tracker). labkit runs
``configs/track_default.yaml`` (the library default, not tuned per sequence).

Also measured: frames/s of each update loop on the same detections (best of ``--repeats``; labkit
motion-only), and, when the embedded dataset is there, labkit's HOTA/MOTA/IDF1 on its val
sequences with the simulated detector (``typical`` preset) and with the course base detector, each
beside that detector's AP50 on the same frames (``embedded_val.by_detector``), and the ReID's ms per crop.

Writes ``artifacts/bench_tracking.json``, with the machine's 1/5/15-minute load averages at the start
and the end (the frames/s are only comparable within one run).
A peer whose package is not installed is a row saying so (the run goes on), as is a section whose
data is not here.
Run: ``.venv/bin/python benchmarks/tracking.py [--repeats 5] [--sections embedded_val ...]``; copied to
``benchmarks/results/bench_tracking.json``, ``scripts/tracking_table.py`` writes its tables into
``notebooks/04_tracking/README.md`` and ``README.md``.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

from labkit.artifacts import artifacts_dir, project_root, shown_path, write_json
from labkit.data.annotations import Detections
from labkit.data.mot import read_mot
from labkit.metrics.tracking import TrackingSequence, evaluate_sequences
from labkit.repro import run_manifest
from labkit.track.run import track_frames
from labkit.track.sequence import open_sequence
from labkit.track.sources import normalise_scores, public_detections
from labkit.track.tracker import concat_outputs

TUD = project_root().parent / "shared" / "data" / "motchallenge-tud-campus"
SUMMARY = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "FP", "FN")


class _UltralyticsBoxes:
    """The slice of Ultralytics' ``Boxes`` its trackers read: ``conf``, ``cls``, ``xywh`` (centre form)."""

    def __init__(self, det: Detections) -> None:
        self.conf = det.score.astype(np.float32) if len(det) else np.zeros(0, np.float32)
        self.cls = np.zeros(len(det), np.float32)
        xywh = det.xywh
        self.xywh = np.concatenate([xywh[:, :2] + xywh[:, 2:] / 2, xywh[:, 2:]], axis=1).astype(np.float32)
        self.xyxy = det.xyxy.astype(np.float32)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, index):
        out = object.__new__(_UltralyticsBoxes)
        out.conf, out.cls, out.xywh, out.xyxy = self.conf[index], self.cls[index], self.xywh[index], self.xyxy[index]
        return out


def _rows_xyxy_id(rows: np.ndarray, id_col: int, score_col: int) -> Detections:
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, rows.shape[-1] if np.ndim(rows) == 2 else 8)
    if not len(rows):
        return Detections.empty().with_fields(score=np.zeros(0), track_id=np.zeros(0, np.int64))
    return Detections.from_xyxy(rows[:, :4], np.ones(len(rows), np.int64), score=rows[:, score_col],
                                track_id=rows[:, id_col].astype(np.int64))


def _ultralytics(kind: str) -> Callable:
    import yaml
    from ultralytics.trackers import BOTSORT, BYTETracker
    from ultralytics.utils import ROOT

    args = SimpleNamespace(**yaml.safe_load((ROOT / "cfg" / "trackers" / f"{kind}.yaml").read_text()))
    tracker = (BYTETracker if kind == "bytetrack" else BOTSORT)(args)

    def step(det: Detections, image: np.ndarray | None) -> Detections:
        bgr = None if image is None else np.ascontiguousarray(image[..., ::-1])
        return _rows_xyxy_id(tracker.update(_UltralyticsBoxes(det), bgr), 4, 5)
    return step


def _roboflow(kind: str) -> Callable:
    import supervision as sv
    import trackers

    tracker = trackers.SORTTracker() if kind == "sort" else trackers.ByteTrackTracker()

    def step(det: Detections, image: np.ndarray | None) -> Detections:
        out = tracker.update(sv.Detections(xyxy=det.xyxy.reshape(-1, 4).astype(np.float32),
                                           confidence=(det.score if len(det) else np.zeros(0)).astype(np.float32),
                                           class_id=np.zeros(len(det), int)))
        keep = out.tracker_id >= 0 if out.tracker_id is not None else np.zeros(len(out), bool)
        return Detections.from_xyxy(out.xyxy[keep], np.ones(int(keep.sum()), np.int64), score=out.confidence[keep],
                                    track_id=out.tracker_id[keep].astype(np.int64))
    return step


def _boxmot(kind: str, size: tuple[int, int]) -> Callable:
    import boxmot

    tracker = boxmot.ByteTrack() if kind == "bytetrack" else boxmot.OcSort()
    blank = np.zeros(size + (3,), np.uint8)

    def step(det: Detections, image: np.ndarray | None) -> Detections:
        rows = np.concatenate([det.xyxy, (det.score if len(det) else np.zeros(0))[:, None], np.zeros((len(det), 1))],
                              axis=1).astype(np.float32).reshape(-1, 6)
        out = tracker.update(rows, blank if image is None else image)
        return _rows_xyxy_id(np.asarray(out), 4, 5)
    return step


def _labkit(config: Any = None, record: bool = True) -> Callable:
    from labkit.track.tracker import Tracker

    tracker = Tracker(config, record=record)
    outputs: dict = {}

    def step(det: Detections, image: np.ndarray | None) -> Detections:
        result = tracker.step(det, image)
        for frame, extra in result.backfill.items():
            outputs.setdefault(frame, []).append(extra)
        return result.output
    step.backfill = outputs  # type: ignore[attr-defined]
    return step


def run_peer(make: Callable[[], Callable], dets: dict, length: int, read_frame=None, repeats: int = 1) -> tuple[dict, float]:
    """Tracks of one peer (fresh tracker) and the best frames/s of ``repeats`` runs of its update loop."""
    images = {f: read_frame(f) for f in range(1, length + 1)} if read_frame else {}
    best, tracks = float("inf"), {}
    for _ in range(repeats):
        step = make()
        start = time.perf_counter()
        out = {f: step(dets[f], images.get(f)) for f in range(1, length + 1)}
        best = min(best, time.perf_counter() - start)
        for frame, extras in getattr(step, "backfill", {}).items():
            for extra in extras:
                out[frame] = concat_outputs(out[frame], extra) if len(out[frame]) else extra
        tracks = out
    return tracks, length / best


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def compare(dets: dict, gt: dict, length: int, size: tuple[int, int], read_frame, repeats: int) -> dict[str, Any]:
    """Every tracker on the same detections: TrackEval scores (MOT15 preprocessing) and frames/s."""
    blank = np.full(size + (3,), 114, np.uint8)
    peers: dict[str, tuple[Callable, bool, str]] = {
        "labkit default (motion-only)": (lambda: _labkit(record=False), False, "labkit"),
        "ultralytics BYTETracker": (lambda: _ultralytics("bytetrack"), False, "ultralytics"),
        "ultralytics BOTSORT": (lambda: _ultralytics("botsort"), True, "ultralytics"),
        "trackers SORT": (lambda: _roboflow("sort"), False, "trackers"),
        "trackers ByteTrack": (lambda: _roboflow("bytetrack"), False, "trackers"),
        "boxmot ByteTrack": (lambda: _boxmot("bytetrack", size), False, "boxmot"),
        "boxmot OC-SORT": (lambda: _boxmot("ocsort", size), False, "boxmot"),
    }
    rows: dict[str, Any] = {}
    for name, (make, frames, dist) in peers.items():
        reader = (read_frame or (lambda f: blank)) if frames else None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tracks, fps = run_peer(make, dets, length, reader, repeats)
        except ImportError as exc:
            rows[name] = {"error": f"not installed ({exc}); pip install -e '.[bench]'"}
            continue
        summary = evaluate_sequences({"seq": TrackingSequence(gt, tracks, length)}, preprocess="mot15").summary()
        rows[name] = {**{k: summary[k] for k in SUMMARY}, "frames_per_second": fps,
                      "uses_frames": frames and read_frame is not None, "package": dist, "version": _version(dist)}
    scored = {k: v for k, v in rows.items() if "HOTA" in v}
    others = [k for k in scored if not k.startswith("labkit")]
    best_peer = max(others, key=lambda k: scored[k]["HOTA"], default=None)
    fastest = max(others, key=lambda k: scored[k]["frames_per_second"], default=None)
    ours = scored.get("labkit default (motion-only)", {})
    return {
        "frames": length, "detections": int(sum(len(d) for d in dets.values())), "preprocess": "mot15",
        "results": rows, "best_peer": best_peer, "fastest_peer": fastest,
        "labkit_highest_hota": bool(best_peer and ours and ours["HOTA"] > scored[best_peer]["HOTA"]),
        "labkit_at_least_as_fast": bool(fastest and ours and ours["frames_per_second"] >= scored[fastest]["frames_per_second"]),
    }


def tud_campus(repeats: int) -> dict[str, Any]:
    """TUD-Campus public (ACF) detections, scores divided by the sequence maximum."""
    seq = open_sequence(TUD / "dctracking" / "data" / "TUD-Campus")
    dets, norm = normalise_scores(public_detections(seq.det_file, seq.length), "max")
    gt = read_mot(TUD / "py-motmetrics" / "motmetrics" / "data" / "TUD-Campus" / "gt.txt", "gt", layout="mot15")
    out = compare(dets, gt, seq.length, (seq.height, seq.width), seq.read_frame, repeats)
    return {"sequence": "TUD-Campus (MOT15), public ACF detections", "score_normalisation": norm, **out}


def tud_stadtmitte_simulated(repeats: int, seed: int) -> dict[str, Any]:
    """TUD-Stadtmitte has ground truth but neither frames nor public detections here: every tracker
    gets the same detections simulated from its ground truth (``typical`` preset), a check of the
    default config on a real sequence it was not chosen on."""
    from labkit.track.sources import simulated_detections

    gt = read_mot(TUD / "py-motmetrics" / "motmetrics" / "data" / "TUD-Stadtmitte" / "gt.txt", "gt", layout="mot15")
    length, size = 179, (480, 640)
    dets = simulated_detections(gt, length, size[1], size[0], preset="typical", seed=seed)
    out = compare(dets, gt, length, size, None, repeats)
    return {"sequence": "TUD-Stadtmitte (MOT15) ground truth, simulated detector (typical, seed %d)" % seed,
            "frames_available": False, **out}


def analysis(seed: int) -> dict[str, Any]:
    """The detector-threshold trade-off on TUD-Campus (public detections) and the ID switches of the
    default config on the embedded val sequences, by cause and occlusion level."""
    from labkit.data.synth import default_root
    from labkit.track.analysis import analyse_switches, camera_shifts, threshold_tradeoff
    from labkit.track.sources import simulated_detections

    out: dict[str, Any] = {}
    if TUD.is_dir():
        seq = open_sequence(TUD / "dctracking" / "data" / "TUD-Campus")
        dets, _ = normalise_scores(public_detections(seq.det_file, seq.length), "max")
        gt = read_mot(TUD / "py-motmetrics" / "motmetrics" / "data" / "TUD-Campus" / "gt.txt", "gt", layout="mot15")
        out["threshold_tradeoff_tud_campus"] = threshold_tradeoff(gt, dets, seq.length, [0.0, 0.1, 0.2, 0.3, 0.4, 0.5],
                                                                  preprocess="mot15")
    switches = {}
    for info in sorted((default_root() / "sequences" / "val").glob("*/seqinfo.ini")):
        seq = open_sequence(info.parent)
        gt = read_mot(seq.gt_file, "gt")
        dets = simulated_detections(gt, seq.length, seq.width, seq.height, preset="typical", seed=seed)
        run = track_frames(dets, seq.length, record=False)
        shifts = camera_shifts(seq.read_frame, seq.length, "ecc")
        result = analyse_switches(gt, run.tracks, seq.length, camera_shift=shifts)
        switches[seq.name] = {k: result[k] for k in ("total", "by_cause", "by_occlusion_level")}
    if switches:
        out["id_switches_embedded_val"] = switches
    return out


def _reid_weights() -> Path | None:
    """The course ReID (registry ``track-reid``) for the default dataset: its finished build here,
    else the verified shipped checkpoint (never trained nor pulled here); None without either."""
    from labkit.data.synth import default_root
    from labkit.models import find

    if not (default_root() / "manifest.json").is_file():
        return None
    model = find("track-reid", data_root=default_root(), progress=False, pull=False)
    return None if model is None else model.weights


def detections_ap(loaded: list[tuple[Any, dict, dict]]) -> dict[str, float | None]:
    """COCO AP and AP50 (``labkit.detect.evaluate.coco_summary``) of the per-frame detections against the
    ground-truth boxes of every frame of the sequences: the detector's quality beside the tracking scores."""
    from labkit.data.annotations import Dataset, ImageRecord
    from labkit.detect.evaluate import coco_summary

    records, predictions = [], {}
    for k, (seq, gt, dets) in enumerate(loaded):
        for f in range(1, seq.length + 1):
            image_id = (k + 1) * 100_000 + f
            truth = gt.get(f, Detections.empty())
            records.append(ImageRecord(image_id, f"{seq.name}/{f:06d}.jpg", seq.width, seq.height,
                                       Detections(truth.xywh, truth.class_id)))
            predictions[image_id] = dets.get(f, Detections.empty(with_score=True))
    classes = sorted({int(c) for r in records for c in r.detections.class_id})
    summary = coco_summary(Dataset([{"id": c, "name": str(c)} for c in classes], records), predictions)
    return {"AP": summary.get("AP"), "AP50": summary.get("AP50")}


def _score(loaded: list[tuple[Any, dict, dict]], config: Any) -> dict[str, Any]:
    sequences, fps = {}, []
    for seq, gt, dets in loaded:
        run = track_frames(dets, seq.length, config, read_frame=seq.read_frame)
        fps.append(run.stats["frames_per_second"])
        sequences[seq.name] = TrackingSequence(gt, run.tracks, seq.length)
    report = evaluate_sequences(sequences, preprocess="none")
    return {"per_sequence": {n: {k: report.summary(n)[k] for k in ("HOTA", "MOTA", "IDF1", "IDSW")} for n in sequences},
            "combined": {k: report.summary()[k] for k in ("HOTA", "MOTA", "IDF1", "IDSW")},
            "frames_per_second_mean": float(np.mean(fps))}


def embedded_val(preset: str, seed: int) -> dict[str, Any] | None:
    """labkit on the embedded val sequences (None when no dataset): with the simulated detector, the
    default config, the DeepSORT-like preset with the colour histogram, and with the course ReID; then
    the default config fed by each detector, the simulated one and the course base detector
    (``labkit.models.load("detect-base")``, its detections at confidence >= 0.05 cached under
    ``artifacts/track_detections``), each with its AP50 on the same frames."""
    from labkit.data.synth import default_root
    from labkit.models import load
    from labkit.track.config import load_config
    from labkit.track.sources import detector_detections, simulated_detections

    root = default_root()
    seq_dirs = sorted((root / "sequences" / "val").glob("*/seqinfo.ini"))
    if not seq_dirs:
        return None
    deepsort = load_config(project_root() / "configs" / "track_deepsort.yaml")
    configs: dict[str, Any] = {"default": None, "deepsort preset (histogram)": deepsort}
    weights = _reid_weights()
    if weights is not None:
        configs["deepsort preset + course ReID"] = deepsort.replace(appearance="reid", reid_weights=str(weights))
    sequences = [open_sequence(info.parent) for info in seq_dirs]
    truths = [read_mot(seq.gt_file, "gt") for seq in sequences]
    simulated = [(seq, gt, simulated_detections(gt, seq.length, seq.width, seq.height, preset=preset, seed=seed))
                 for seq, gt in zip(sequences, truths)]
    detector = load("detect-base", progress=False, follow_budget=False).weights
    base = [(seq, gt, detector_detections(detector, seq, artifacts_dir() / "track_detections")[0])
            for seq, gt in zip(sequences, truths)]
    simulated_name = f"simulated ({preset}, seed {seed})"
    by_detector = {simulated_name: {"detections": detections_ap(simulated), **_score(simulated, None)},
                   "course base detector (detect-base)": {"detections": detections_ap(base), **_score(base, None),
                                                          "weights": shown_path(detector), "conf": 0.05}}
    return {"data": shown_path(root), "detector": simulated_name, "preprocess": "none",
            "results": {name: _score(simulated, config) for name, config in configs.items()},
            "by_detector": by_detector}


def reid_section() -> dict[str, Any]:
    """Retrieval scores of the built course ReID (its metrics.json) and ms per crop measured here."""
    from labkit.data.synth import default_root
    from labkit.track.appearance import HistogramEmbedder
    from labkit.track.reid import load_reid, reid_metrics, sequence_crops

    weights = _reid_weights()
    if weights is None:
        return {"skipped": "the course ReID is neither built nor shipped here (labkit models load track-reid)"}
    embedder = load_reid(weights)
    val = sequence_crops(default_root(), "val", embedder.config)
    timings = {}
    for name, embed in (("reid", embedder.embed_crops), ("histogram", HistogramEmbedder().embed_crops)):
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            embed(val.images)
            best = min(best, time.perf_counter() - start)
        timings[name] = 1000 * best / len(val.labels)
    metrics = reid_metrics(weights)
    return {"weights": shown_path(weights), "retrieval": metrics["details"]["retrieval"],
            "training": {k: metrics[k] for k in ("epochs", "steps", "train_minutes")},
            "val_crops": int(len(val.labels)), "ms_per_crop": timings["reid"],
            "histogram_ms_per_crop": timings["histogram"]}


SECTIONS = ("tud", "embedded_val", "reid", "analysis")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timing runs per tracker (best counts)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated detector")
    parser.add_argument("--out", type=Path, default=None, help="output JSON (default artifacts/bench_tracking.json)")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                        help="run only these parts (tud: TUD-Campus and TUD-Stadtmitte against the peers); default all")
    args = parser.parse_args()
    out = args.out or artifacts_dir() / "bench_tracking.json"
    payload: dict[str, Any] = {"what": __doc__.splitlines()[0], "sections": args.sections,
                               "load_average": {"start": list(os.getloadavg())}, "cpus": os.cpu_count()}
    if "tud" in args.sections and TUD.is_dir():
        payload["tud_campus"] = tud_campus(args.repeats)
        payload["tud_stadtmitte_simulated"] = tud_stadtmitte_simulated(args.repeats, args.seed)
    elif "tud" in args.sections:
        skipped = {"skipped": f"../shared/data/{TUD.name} not found (../shared is only beside CI and dev checkouts)"}
        payload["tud_campus"] = payload["tud_stadtmitte_simulated"] = skipped
    if "embedded_val" in args.sections:
        payload["embedded_val"] = embedded_val("typical", args.seed) or {"skipped": "embedded dataset not generated (make data)"}
    if "reid" in args.sections:
        payload["reid"] = reid_section()
    if "analysis" in args.sections:
        payload["analysis"] = analysis(args.seed)
    payload["manifest"] = run_manifest(seed=args.seed, config={"repeats": args.repeats, "out": shown_path(out),
                                                               "sections": args.sections})
    payload["load_average"]["end"] = list(os.getloadavg())
    write_json(out, payload)
    for section in ("tud_campus", "tud_stadtmitte_simulated"):
        if section not in payload:
            continue
        print(section)
        for name, row in payload[section].get("results", {}).items():
            print(f"  {name:30s} " + ("  ".join(f"{k} {row[k]:.3f}" if isinstance(row[k], float) else f"{k} {row[k]}"
                                                for k in SUMMARY + ("frames_per_second",)) if "HOTA" in row else row["error"]))
    for name, row in payload.get("embedded_val", {}).get("by_detector", {}).items():
        print(f"embedded val, {name}: AP50 {row['detections']['AP50']:.3f}, HOTA {row['combined']['HOTA']:.3f}, "
              f"IDF1 {row['combined']['IDF1']:.3f}")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
