"""Where a tracker's detections come from, and how their scores are put on [0, 1].

Three sources, all returning ``{frame: Detections}`` (frames 1-based, every frame present):

* :func:`public_detections`: a MOTChallenge ``det.txt`` (checked by
  :func:`labkit.track.sequence.read_sequence_file`).
* :func:`simulated_detections`: a detector simulated from the ground truth with
  :func:`labkit.detect.simulate.noisy_detector` (recall, duplicates, box jitter, false positives,
  score calibration), then greedy NMS, with the named presets of :data:`SIMULATE_PRESETS`.
  Objects less visible than ``min_visibility`` (the generator's visibility labels) are not
  detectable, as for a real detector.
* :func:`detector_detections`: a course detector run over the frames, cached as a ``det.txt``
  keyed by the weights' and frames' content; :func:`hog_detections` the same with OpenCV's HOG
  people detector (for pedestrian videos such as ``vtest.avi``).

Scores: MOT15's public ACF detections score up to ~130, ByteTrack-style thresholds expect
[0, 1]. :func:`normalise_scores` with ``"auto"`` divides by the sequence maximum only when some
score exceeds 1, ``"max"`` always divides by the maximum, ``"none"`` leaves them; negative scores
are clipped to 0. It reports what it did.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from labkit.data.annotations import Dataset, Detections, ImageRecord
from labkit.errors import DataError
from labkit.track.sequence import Sequence, read_sequence_file

SCORE_NORMS = ("auto", "none", "max")

#: Simulated-detector presets: ``noisy_detector`` knobs + ``min_visibility`` + ``nms_iou``.
SIMULATE_PRESETS: dict[str, dict[str, float]] = {
    "clean": {"recall": 0.97, "duplicates": 0.0, "jitter": 0.02, "score_decay": 0.9, "confusion": 0.0,
              "background": 0.1, "min_visibility": 0.3, "nms_iou": 0.7},
    "typical": {"recall": 0.9, "duplicates": 0.5, "jitter": 0.05, "score_decay": 0.8, "confusion": 0.0,
                "background": 0.5, "min_visibility": 0.4, "nms_iou": 0.6},
    "hard": {"recall": 0.75, "duplicates": 1.0, "jitter": 0.08, "score_decay": 0.8, "confusion": 0.05,
             "background": 1.5, "min_visibility": 0.5, "nms_iou": 0.6},
}


def empty_frames(length: int) -> dict[int, Detections]:
    return {f: Detections.empty() for f in range(1, length + 1)}


def normalise_scores(frames: Mapping[int, Detections], mode: str = "auto") -> tuple[dict[int, Detections], dict[str, Any]]:
    """Scores on [0, 1] (see the module docstring) and a report ``{mode, max_score, divided_by, clipped_negative}``."""
    if mode not in SCORE_NORMS:
        raise DataError(f"score normalisation must be one of {list(SCORE_NORMS)}, got {mode!r}")
    scores = [d.score for d in frames.values() if d.score is not None and len(d)]
    top = float(max(s.max() for s in scores)) if scores else 0.0
    negative = int(sum((s < 0).sum() for s in scores))
    divide = top if (mode == "max" or (mode == "auto" and top > 1.0)) and top > 0 else 1.0
    out = {}
    for f, d in frames.items():
        if d.score is None or not len(d) or mode == "none":
            out[f] = d
        else:
            out[f] = d.with_fields(score=np.clip(d.score, 0.0, None) / divide)
    report = {"mode": mode, "max_score": top, "divided_by": divide,
              "clipped_negative": negative if mode != "none" else 0,
              "action": (f"divided by the sequence maximum {top:g}" if divide != 1.0 else "unchanged")}
    return out, report


def public_detections(path: str | Path, length: int) -> dict[int, Detections]:
    """Every frame ``1..length`` of a MOTChallenge det file (frames without rows are empty)."""
    frames = read_sequence_file(path, "pred", length)
    out = empty_frames(length)
    out.update(frames)
    return out


def _nms(det: Detections, iou_threshold: float) -> Detections:
    from labkit.metrics.iou import box_iou

    order = np.argsort(-det.score, kind="stable")
    keep: list[int] = []
    iou = box_iou(det.xyxy, det.xyxy)
    for i in order:
        if all(iou[i, k] <= iou_threshold for k in keep):
            keep.append(i)
    return det[np.sort(np.asarray(keep, dtype=np.int64))]


def simulated_detections(gt: Mapping[int, Detections], length: int, width: int, height: int, *,
                         preset: str | Mapping[str, float] = "typical", seed: int = 0) -> dict[int, Detections]:
    """Detections simulated from ground truth ``gt`` (see the module docstring); class ids kept."""
    params = dict(SIMULATE_PRESETS[preset]) if isinstance(preset, str) and preset in SIMULATE_PRESETS else preset
    if isinstance(params, str):
        raise DataError(f"unknown simulate preset {preset!r}; known: {sorted(SIMULATE_PRESETS)}")
    params = dict(params)
    min_visibility, nms_iou = params.pop("min_visibility"), params.pop("nms_iou")
    from labkit.detect.simulate import noisy_detector

    classes = sorted({int(c) for d in gt.values() for c in d.class_id}) or [1]
    records = []
    for f in range(1, length + 1):
        d = gt.get(f, Detections.empty())
        if len(d):
            keep = d.get("visibility", np.ones(len(d))) >= min_visibility
            keep &= d.get("consider", np.ones(len(d), dtype=int)) > 0
            d = Detections(d[keep].xywh, d[keep].class_id)
        records.append(ImageRecord(f, f"{f:06d}", width, height, d))
    dataset = Dataset([{"id": c, "name": str(c)} for c in classes], records)
    raw = noisy_detector(dataset, seed, **params)
    return {f: _nms(d, nms_iou) if len(d) else d for f, d in raw.items()}


def _cached_detections(sequence: Sequence, cache_dir: str | Path, tag: str, key: bytes,
                       detect: Callable[[list[Path]], list[Detections]]) -> tuple[dict[int, Detections], dict[str, Any]]:
    """``detect(frame paths)`` once per (``key``, frame files), cached as ``<cache_dir>/<name>-<tag>-<hash>.txt``."""
    from labkit.data.mot import write_mot

    paths = sequence.frame_paths()
    if not paths:
        raise DataError("the detector needs frames, and the folder has none", source=str(sequence.root / "img1"))
    digest = hashlib.sha256(key)
    for p in paths:
        digest.update(p.name.encode())
        digest.update(p.read_bytes())
    cache = Path(cache_dir) / f"{sequence.name}-{tag}-{digest.hexdigest()[:16]}.txt"
    if cache.is_file():
        return public_detections(cache, sequence.length), {"cache": str(cache), "cached": True}
    write_mot(dict(enumerate(detect(paths), start=1)), cache, "pred")
    return public_detections(cache, sequence.length), {"cache": str(cache), "cached": False}


def detector_detections(weights: str | Path, sequence: Sequence, cache_dir: str | Path, *, conf: float = 0.05,
                        device: str = "cpu") -> tuple[dict[int, Detections], dict[str, Any]]:
    """Run a course detector over the sequence frames; cached (see :func:`_cached_detections`) by the
    weights' and frames' content (a second call reads the cache)."""
    from labkit.detect.predict import predict

    weights = Path(weights)
    if not weights.is_file():
        raise DataError("detector weights not found", source=str(weights))

    def detect(paths: list[Path]) -> list[Detections]:
        found = predict(weights, [str(p) for p in paths], conf=conf, device=device, progress=False)
        return [found[str(p)] for p in paths]

    return _cached_detections(sequence, cache_dir, "detector", weights.read_bytes() + f"conf={conf}".encode(), detect)


def hog_detections(sequence: Sequence, cache_dir: str | Path, *, max_side: int | None = None) -> tuple[dict[int, Detections], dict[str, Any]]:
    """OpenCV's HOG people detector (:mod:`labkit.detect.hog`) over the sequence frames at full size (its
    64x128 window misses people shorter than 128 pixels, so frames are not shrunk), cached the same way."""
    import cv2

    from labkit.data.images import load_image
    from labkit.detect.hog import detect_people, people_detector

    def detect(paths: list[Path]) -> list[Detections]:
        hog = people_detector()
        return [detect_people(load_image(p), hog=hog, max_side=max_side) for p in paths]

    return _cached_detections(sequence, cache_dir, "hog", f"hog opencv={cv2.__version__} max_side={max_side}".encode(), detect)
