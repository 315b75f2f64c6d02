"""Per-stage latency of a detector or segmenter on a video or frame sequence, and the latency
budget sheet that compares it with targets.

One frame at a time (batch 1, what a live camera gives), each stage is timed with
``time.perf_counter`` back to back, so the stages of a frame add up to its end-to-end time:

- detector: ``decode`` (next frame from the video or file), ``preprocess`` (letterbox + tensor),
  ``inference`` (network forward pass, torch or ONNX Runtime), ``postprocess`` (NMS and boxes
  back to original pixels), ``serialise`` (the frame's detections as a JSON line);
- segmenter: ``decode``, ``preprocess`` (letterbox + normalise), ``inference``, ``postprocess``
  (logits back to the original size, arg-max), ``render`` (colour overlay of the label map),
  ``serialise`` (the label map as PNG bytes).

The first ``warmup`` frames are run but not recorded (allocations, lazy initialisation).
Statistics per stage: p50 / p95 / p99 (``numpy.percentile``, linear interpolation) and mean in
milliseconds; FPS = 1000 / mean end-to-end ms.

**Throughput** (:func:`throughput_curve`): images per second of whole batches of 1 ... 16
frames through the model (decoding excluded), the batching trade-off between latency and
throughput.

**Budget sheet**: a frame budget of ``1000 / fps_target`` ms is split into per-stage targets by
the shares of a budget config (``configs/robust_latency.yaml``); a stage is *within budget* when
its measured percentile (default p95) is at most its target.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Iterator, Mapping

import numpy as np

from labkit.configfile import YamlConfig
from labkit.errors import DataError

DETECTOR_STAGES = ("decode", "preprocess", "inference", "postprocess", "serialise")
SEGMENTER_STAGES = ("decode", "preprocess", "inference", "postprocess", "render", "serialise")
END_TO_END = "end_to_end"


def _timed_frames(frames: Iterable[tuple[Any, np.ndarray]]) -> Iterator[tuple[float, Any, np.ndarray]]:
    """``(seconds the frame took to arrive, key, frame)``: decoding happens inside ``next``."""
    it = iter(frames)
    while True:
        start = time.perf_counter()
        try:
            key, frame = next(it)
        except StopIteration:
            return
        yield time.perf_counter() - start, key, frame


def _detector_steps(detector: Any, conf: float, iou: float) -> Callable[[np.ndarray], dict[str, float]]:
    from labkit.detect._ultralytics import ul
    from labkit.detect.predict import PAD_VALUE

    nms = ul("ultralytics.utils.nms").non_max_suppression

    def run(image: np.ndarray) -> dict[str, float]:
        import torch

        t0 = time.perf_counter()
        lb = detector.letterbox(image)
        x = detector._batch_tensor([lb.image(image, pad_value=PAD_VALUE)])
        t1 = time.perf_counter()
        with torch.inference_mode():
            raw = detector.model(x)
        t2 = time.perf_counter()
        out = nms(raw, conf, iou, max_det=300, nc=len(detector.names), end2end=detector.end2end)[0]
        found = detector._to_detections(out.float().cpu().numpy().astype(np.float64), lb)
        t3 = time.perf_counter()
        json.dumps({"boxes": found.xyxy.round(2).tolist(), "scores": found.score.round(4).tolist(),
                    "classes": found.class_id.tolist()})
        t4 = time.perf_counter()
        return {"preprocess": t1 - t0, "inference": t2 - t1, "postprocess": t3 - t2, "serialise": t4 - t3}

    return run


def _segmenter_steps(model: Any, config: Any) -> Callable[[np.ndarray], dict[str, float]]:
    import cv2
    import torch

    from labkit.segment.predict import _logits, _undo_letterbox, network_input, overlay_labels

    device = torch.device("cpu")

    def run(image: np.ndarray) -> dict[str, float]:
        t0 = time.perf_counter()
        x, lb = network_input(image, config.preprocessing)
        t1 = time.perf_counter()
        logits = _logits(model, [x], device)
        t2 = time.perf_counter()
        labels = _undo_letterbox(logits[0], lb, "bilinear").argmax(0).astype(np.uint8)
        t3 = time.perf_counter()
        overlay_labels(image, labels)
        t4 = time.perf_counter()
        cv2.imencode(".png", labels)
        t5 = time.perf_counter()
        return {"preprocess": t1 - t0, "inference": t2 - t1, "postprocess": t3 - t2, "render": t4 - t3,
                "serialise": t5 - t4}

    return run


def measure_latency(model: Any, source: Any, *, max_frames: int = 100, warmup: int = 5, conf: float = 0.25,
                    iou: float = 0.7) -> dict[str, list[float]]:
    """Per-frame stage times (ms) of ``model`` (a :class:`labkit.robust.models.SuiteDetector` /
    ``SuiteSegmenter``) over the first ``warmup + max_frames`` frames of ``source`` (anything
    :func:`labkit.data.sources.iter_frames` reads); ``{stage: [ms per frame]}`` with
    ``end_to_end`` their sum. Fewer frames than ``warmup + 1`` is a :class:`DataError`."""
    from labkit.data.sources import iter_frames

    if max_frames < 1 or warmup < 0:
        raise DataError(f"need max_frames >= 1 and warmup >= 0, got {max_frames} and {warmup}")
    if model.task == "detect":
        steps, stages = _detector_steps(model.detector, conf, iou), DETECTOR_STAGES
    else:
        steps, stages = _segmenter_steps(model.model.eval(), model.config), SEGMENTER_STAGES
    samples: dict[str, list[float]] = {s: [] for s in (*stages, END_TO_END)}
    seen = 0
    for decode, _, frame in islice(_timed_frames(iter_frames(source)), warmup + max_frames):
        times = {"decode": decode, **steps(frame)}
        seen += 1
        if seen <= warmup:
            continue
        for stage in stages:
            samples[stage].append(1000.0 * times[stage])
        samples[END_TO_END].append(1000.0 * sum(times[s] for s in stages))
    if seen <= warmup:
        raise DataError(f"the source gave {seen} frames, fewer than warmup + 1 = {warmup + 1}", source=str(source))
    return samples


def summarise(samples: Mapping[str, list[float]]) -> list[dict[str, Any]]:
    """One row per stage: ``stage``, ``frames``, ``p50_ms``, ``p95_ms``, ``p99_ms``, ``mean_ms``,
    ``share`` (of the mean end-to-end time); the end-to-end row also has ``fps``."""
    total = float(np.mean(samples[END_TO_END]))
    rows = []
    for stage, values in samples.items():
        v = np.asarray(values, dtype=np.float64)
        p50, p95, p99 = np.percentile(v, [50, 95, 99])
        rows.append({"stage": stage, "frames": int(v.size), "p50_ms": float(p50), "p95_ms": float(p95),
                     "p99_ms": float(p99), "mean_ms": float(v.mean()), "share": float(v.mean() / total) if total else None,
                     "fps": 1000.0 / float(v.mean()) if stage == END_TO_END and v.mean() > 0 else None})
    return rows


@dataclass(frozen=True)
class LatencyBudget(YamlConfig):
    """Frame-rate target and its split over the stages (``configs/robust_latency.yaml``)."""

    KIND: ClassVar[str] = "latency-budget"

    fps_target: float = 10.0
    percentile: str = "p95"
    shares: Mapping[str, float] = field(default_factory=lambda: {
        "decode": 0.1, "preprocess": 0.1, "inference": 0.55, "postprocess": 0.1, "render": 0.05, "serialise": 0.1})

    def __post_init__(self) -> None:
        if isinstance(self.fps_target, bool) or not isinstance(self.fps_target, (int, float)) or self.fps_target <= 0:
            raise DataError(f"fps_target must be a positive number, got {self.fps_target!r}")
        if self.percentile not in ("p50", "p95", "p99"):
            raise DataError(f"percentile must be p50, p95 or p99, got {self.percentile!r}")
        if not isinstance(self.shares, Mapping) or any(
                isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 for v in self.shares.values()):
            raise DataError(f"shares must map stages to non-negative numbers, got {self.shares!r}")

    @property
    def frame_ms(self) -> float:
        return 1000.0 / float(self.fps_target)


def budget_sheet(rows: list[dict[str, Any]], budget: LatencyBudget) -> list[dict[str, Any]]:
    """Rows ``stage``, ``target_ms``, ``p50_ms``, ``p95_ms``, ``verdict`` for the measured stages
    (shares renormalised over them) and the end-to-end frame budget."""
    key = f"{budget.percentile}_ms"
    measured = [r["stage"] for r in rows if r["stage"] != END_TO_END]
    total_share = sum(budget.shares.get(s, 0.0) for s in measured)
    sheet = []
    for r in rows:
        if r["stage"] == END_TO_END:
            target = budget.frame_ms
        else:
            target = budget.frame_ms * budget.shares.get(r["stage"], 0.0) / total_share if total_share else 0.0
        sheet.append({"stage": r["stage"], "target_ms": target, "p50_ms": r["p50_ms"], "p95_ms": r["p95_ms"],
                      "p99_ms": r["p99_ms"], "measured": budget.percentile,
                      "verdict": "within budget" if r[key] <= target else "over budget"})
    return sheet


def write_sheet(sheet: list[dict[str, Any]], rows: list[dict[str, Any]], out_dir: str | Path, *,
                title: str) -> dict[str, str]:
    """``latency_budget.md`` + ``latency_budget.csv`` (the sheet) and ``latency_stages.csv`` (all statistics)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, table in (("latency_budget.csv", sheet), ("latency_stages.csv", rows)):
        with (out / name).open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(table[0]))
            writer.writeheader()
            writer.writerows(table)
    fps = next(r["fps"] for r in rows if r["stage"] == END_TO_END)
    lines = [f"# Latency budget: {title}", "", f"Measured {rows[0]['frames']} frames at batch 1; "
             f"end-to-end {fps:.1f} FPS (mean).", "",
             "| stage | target ms | p50 ms | p95 ms | p99 ms | verdict |", "|---|---:|---:|---:|---:|---|"]
    lines += [f"| {s['stage']} | {s['target_ms']:.1f} | {s['p50_ms']:.1f} | {s['p95_ms']:.1f} | {s['p99_ms']:.1f} | "
              f"{s['verdict']} ({s['measured']}) |" for s in sheet]
    (out / "latency_budget.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {name: str(out / name) for name in ("latency_budget.md", "latency_budget.csv", "latency_stages.csv")}


def throughput_curve(model: Any, source: Any, batches: Iterable[int] = (1, 2, 4, 8, 16), *, frames: int = 32,
                     repeats: int = 2) -> list[dict[str, Any]]:
    """Images per second of ``model.predict`` (decode excluded: the frames are read first) at
    each batch size, on the first ``frames`` frames of ``source``; the best of ``repeats`` runs
    (the least disturbed by other work on the machine). Rows ``batch``, ``images``, ``seconds``,
    ``images_per_s``."""
    from labkit.data.sources import iter_frames

    images = dict(enumerate(frame for _, frame in islice(iter_frames(source), frames)))
    if not images:
        raise DataError("the source gave no frame", source=str(source))
    rows = []
    for batch in batches:
        if batch < 1:
            raise DataError(f"batch sizes must be >= 1, got {batch}")
        model.batch = int(batch)
        best = float("inf")
        for _ in range(max(1, repeats)):
            start = time.perf_counter()
            model.predict(images)
            best = min(best, time.perf_counter() - start)
        rows.append({"batch": int(batch), "images": len(images), "seconds": best, "images_per_s": len(images) / best})
    return rows
