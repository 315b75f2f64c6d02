"""``labkit run``: one command from a source to every deliverable of the capstone pipeline.

Stages, in order, for each batch of frames: loader -> detector -> segmenter (optional) ->
tracker (optional, :class:`labkit.track.tracker.Tracker`) -> exporter (one :mod:`~labkit.pipeline.records` record per frame) -> renderer. The run folder
receives::

    predictions.jsonl     the frame records (schema labkit.pipeline.records.SCHEMA)
    results_coco.json     the same boxes (and masks) as a COCO results list, image_id = frame_id
    results_mot.txt       MOTChallenge tracker results: the confirmed tracks (only with a tracker)
    demo.mp4              the rendered overlays (H.264)
    metrics.json          scores against the ground truth (only when there is ground truth)
    failures/             crops of the worst frames, for the report's failure gallery (idem)
    latency.json          per-stage wall time per frame (p50 / p95, ms) and frames per second
    report.md, report.html
    manifest.json         git commit, command, config, versions, models with checkpoint sha256
    frames/               the frames of a camera source (the records point at them)

Predictions and metrics depend only on the inputs, the config and the library versions: the
same command twice writes byte-identical ``predictions.jsonl``, ``results_coco.json`` and
``metrics.json`` (torch runs single-threaded on the CPU here, seeded). Timings are not
reproducible by nature, so they live in ``latency.json`` and the report, not in the metrics.
"""

from __future__ import annotations

import sys
import time
from itertools import islice
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from labkit.artifacts import fresh_dir, write_json
from labkit.data.coco import detections_to_results
from labkit.data.mot import write_mot
from labkit.pipeline.config import PipelineConfig, load_config, resolve_weights
from labkit.pipeline.loader import Frame, iter_source, open_source
from labkit.pipeline.models import DetectorStage, SegmenterStage, attach_masks, attach_tracks, build_tracker
from labkit.pipeline.records import confirmed_tracks, detections_to_record, record_to_detections, write_jsonl
from labkit.pipeline.render import VideoWriter, draw_record

MANIFEST = "manifest.json"
PREDICTIONS, COCO_RESULTS, MOT_RESULTS = "predictions.jsonl", "results_coco.json", "results_mot.txt"
VIDEO, METRICS, LATENCY, FAILURES = "demo.mp4", "metrics.json", "latency.json", "failures"
STAGES = ("load", "detect", "segment", "track", "export", "render")


class Pipeline:
    """The loaded model stages of a config (loading is the slow part: do it once)."""

    def __init__(self, config: PipelineConfig):
        import torch

        from labkit.repro import seed_everything

        seed_everything(config.seed)
        torch.set_num_threads(1)  # one thread: reproducible float sums, and fair on shared CPUs
        self.config = config
        d = config.detector
        self.detector = DetectorStage.load(d.name, weights=resolve_weights(config, d.weights), device=config.device,
                                           conf=d.conf, iou=d.iou, max_det=d.max_det, agnostic=d.agnostic)
        s = config.segmenter
        self.segmenter = None if s is None else SegmenterStage.load(
            s.name, weights=resolve_weights(config, s.weights), device=config.device)

    def new_tracker(self) -> Any:
        """A fresh tracker for one sequence, or ``None`` when the config has no tracker."""
        return None if self.config.tracker is None else build_tracker(self.config.tracker)

    def models(self) -> dict[str, Any]:
        """What each stage runs: model names, checkpoint sha256, preprocessing; the tracker's settings."""
        out = {"detector": self.detector.describe()}
        if self.segmenter is not None:
            out["segmenter"] = self.segmenter.describe()
        if self.config.tracker is not None:
            out["tracker"] = dict(self.config.tracker)
        return out

    def process(self, frames: list[Frame], timings: dict[str, list[float]] | None = None, *,
                segment: bool = True, tracker: Any = None) -> list[dict[str, Any]]:
        """Records of a batch of consecutive frames (masks only when ``segment`` and there is a
        segmenter; track ids when a ``tracker`` from :meth:`new_tracker` is given); per-stage
        seconds per frame appended to ``timings``."""
        def clock(stage: str, start: float) -> float:
            now = time.perf_counter()
            if timings is not None:
                timings[stage].extend([(now - start) / len(frames)] * len(frames))
            return now

        t = time.perf_counter()
        found = self.detector(frames)
        t = clock("detect", t)
        semantic: list[dict | None] = [None] * len(frames)
        if segment and self.segmenter is not None:
            for i, labels in enumerate(self.segmenter(frames)):
                found[i], semantic[i] = attach_masks(found[i], labels, self.segmenter.class_names,
                                                     self.detector.class_names)
            t = clock("segment", t)
        if tracker is not None:
            for i, frame in enumerate(frames):
                found[i] = attach_tracks(found[i], tracker.step(found[i], frame.image, frame.frame_id))
            t = clock("track", t)
        records = [detections_to_record(det, frame_id=f.frame_id, timestamp_s=f.timestamp_s, source=f.source,
                                        width=f.width, height=f.height, class_names=self.detector.class_names,
                                        semantic=sem) for f, det, sem in zip(frames, found, semantic)]
        clock("export", t)
        return records


def _batches(frames: Iterator[Frame], size: int, timings: dict[str, list[float]]) -> Iterator[list[Frame]]:
    while True:
        t = time.perf_counter()
        chunk = list(islice(frames, size))
        if not chunk:
            return
        timings["load"].extend([(time.perf_counter() - t) / len(chunk)] * len(chunk))
        yield chunk


def save_frame(folder: Path, frame: Frame) -> Path:
    """Write a frame as ``<folder>/<frame id, 6 digits>.png`` (lossless) and return the path."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{frame.frame_id:06d}.png"
    cv2.imwrite(str(path), cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
    return path


def latency_summary(timings: Mapping[str, list[float]], wall_s: float, frames: int) -> dict[str, Any]:
    """Per stage p50 / p95 / mean in ms per frame (NumPy's linear-interpolation percentiles)."""
    stages = {}
    for stage, values in timings.items():
        if values:
            ms = 1000.0 * np.asarray(values)
            stages[stage] = {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
                             "mean_ms": float(ms.mean()), "frames": len(values)}
    return {"stages": stages, "frames": frames, "wall_s": wall_s, "fps": frames / wall_s if wall_s > 0 else None}


def run(config: str | Path | Mapping[str, Any], source: str | Path, out_dir: str | Path, *,
        gt: str | Path | None = None, max_frames: int | None = None, command: str | None = None,
        spec: str | Path | Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Run the pipeline of ``config`` on ``source`` into ``out_dir`` (see the module docstring).

    ``gt``: a COCO instances file with the frames' ground truth (else a MOTChallenge sequence's
    own ``gt/gt.txt`` is used when present); with ground truth the report gets slices and a
    failure gallery (``failures/``, :mod:`labkit.pipeline.diagnose`). ``spec``: a capstone spec
    (:mod:`labkit.pipeline.spec`), checked before any frame runs; the report then opens with it
    and states each requirement's measured value. Returns the summary that ``report.md`` shows.
    """
    from labkit.pipeline import evaluate
    from labkit.pipeline.diagnose import failure_gallery, slice_table
    from labkit.pipeline.report import write_report
    from labkit.pipeline.spec import load_spec
    from labkit.repro import run_manifest

    cfg = load_config(config)
    capstone = None if spec is None else load_spec(spec)
    src = open_source(source, fps=cfg.fps)
    out = fresh_dir(out_dir, marker=MANIFEST, what="pipeline run folder")
    command = command if command is not None else " ".join(["labkit", *sys.argv[1:]])
    base = {"seed": cfg.seed, "config": cfg.to_dict(), "command": command}
    write_json(out / MANIFEST, run_manifest(**base, extra={"status": "running"}))
    pipe = Pipeline(cfg)
    timings: dict[str, list[float]] = {s: [] for s in STAGES}
    records: list[dict[str, Any]] = []
    brightness: dict[int, float] = {}  # mean intensity per frame: the lighting slice
    tracker = pipe.new_tracker()
    start = time.perf_counter()
    with VideoWriter(out / VIDEO, src.fps) as video:
        for frames in _batches(iter_source(src, max_frames), cfg.batch, timings):
            if src.kind == "camera":  # keep the pixels: render and scores must be repeatable without the camera
                for frame in frames:
                    frame.source = str(save_frame(out / "frames", frame))
            batch = pipe.process(frames, timings, tracker=tracker)
            brightness.update((f.frame_id, float(f.image.mean())) for f in frames)
            for frame, record in zip(frames, batch):
                t = time.perf_counter()
                video.write(draw_record(frame.image, record, show_masks=cfg.render.show_masks,
                                        show_ids=cfg.render.show_ids))
                timings["render"].append(time.perf_counter() - t)
            records.extend(batch)
    wall = time.perf_counter() - start
    write_jsonl(out / PREDICTIONS, records)
    preds = {r["frame_id"]: record_to_detections(r) for r in records}
    with_masks = bool(records) and all(all(o["mask"] is not None for o in r["objects"]) for r in records)
    write_json(out / COCO_RESULTS, detections_to_results(preds, with_masks=with_masks))
    outputs = [PREDICTIONS, COCO_RESULTS, VIDEO]
    if tracker is not None:
        write_mot({r["frame_id"]: confirmed_tracks(r) for r in records}, out / MOT_RESULTS, "pred")
        outputs.append(MOT_RESULTS)
    truth = None
    if gt is not None:
        truth = evaluate.truth_from_coco(gt, records)
    elif src.gt_file is not None:
        truth = evaluate.truth_from_mot(src.gt_file, records, pipe.detector.class_names)
    metrics, diagnosis = None, {}
    if truth is not None:
        metrics = evaluate.evaluate_records(records, truth, tracked=tracker is not None)
        write_json(out / METRICS, metrics)
        outputs.append(METRICS)
        aware = True if capstone is None else capstone.protocol["class_aware"]
        diagnosis = {"slices": slice_table(records, truth.frames, brightness, class_aware=aware),
                     "failures": failure_gallery(records, truth.frames, out / FAILURES, class_aware=aware),
                     "diagnosis": {"folder": FAILURES, "iou": 0.5, "class_aware": aware}}
        outputs.append(FAILURES + "/")
    latency = latency_summary(timings, wall, len(records))
    write_json(out / LATENCY, latency)
    summary = {"source": src.describe(), "frames": len(records), "objects": sum(len(r["objects"]) for r in records),
               "models": pipe.models(), "metrics": metrics, "latency": latency, "command": command, **diagnosis,
               "outputs": outputs + [LATENCY, "report.md", "report.html", MANIFEST]}
    write_report(out, summary, capstone)
    write_json(out / MANIFEST, run_manifest(**base, extra={"status": "finished", "source": src.describe(),
                                                           "models": summary["models"], "outputs": summary["outputs"]}))
    return summary

