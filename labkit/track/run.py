"""Run the tracker over a whole sequence: detections in, MOTChallenge results (and a log) out."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from labkit.data.annotations import Detections
from labkit.track.config import TrackConfig, load_config
from labkit.track.tracker import Tracker, concat_outputs


@dataclass
class TrackRun:
    """Results of one sequence: ``tracks`` (``{frame: Detections}`` with track ids, every frame
    present), ``states`` (``{frame: Detections}`` of every live track with its lifecycle state and
    predicted box, for review videos), ``log`` (one association record per frame) and ``stats``."""

    tracks: dict[int, Detections]
    states: dict[int, Detections]
    log: list[dict[str, Any]]
    stats: dict[str, Any] = field(default_factory=dict)


def track_frames(detections: Mapping[int, Detections], length: int, config: TrackConfig | Mapping | str | None = None, *,
                 read_frame: Callable[[int], np.ndarray] | None = None, embedder=None, record: bool = True) -> TrackRun:
    """Track frames ``1..length``. ``read_frame(f)`` gives RGB frame ``f`` when frames are used
    (camera motion, appearance); without it the run is motion-only. Missing frames in
    ``detections`` are empty (tracks coast). ``record=False`` skips the association log and the
    per-frame states (faster; ``log`` and ``states`` are then empty)."""
    config = load_config(config)
    tracker = Tracker(config, embedder=embedder, record=record)
    needs_frames = config.camera_motion != "none" or config.appearance != "none"
    use_frames = read_frame is not None and needs_frames
    out: dict[int, Detections] = {}
    states: dict[int, Detections] = {}
    log = []
    start = time.perf_counter()
    read_seconds = 0.0
    for f in range(1, length + 1):
        image = None
        if use_frames:
            t0 = time.perf_counter()
            image = read_frame(f)
            read_seconds += time.perf_counter() - t0
        result = tracker.step(detections.get(f, Detections.empty()), image, frame=f)
        out[f] = result.output
        states[f] = result.tracks
        for g, extra in result.backfill.items():
            out[g] = concat_outputs(out[g], extra) if len(out[g]) else extra
        log.append(result.log)
    seconds = time.perf_counter() - start
    ids = {int(i) for d in out.values() for i in d.track_id}
    stats = {
        "frames": length, "detections": int(sum(len(d) for d in detections.values())),
        "output_boxes": int(sum(len(d) for d in out.values())), "tracks": len(ids),
        "seconds": seconds, "frames_per_second": length / seconds if seconds > 0 else None,
        "seconds_reading_frames": read_seconds,
        "motion_only": not use_frames,
        "motion_only_reason": None if use_frames else (
            "config uses no frames (camera_motion: none, appearance: none)" if not needs_frames
            else "no frames available: camera motion compensation and appearance are off"),
    }
    return TrackRun(out, states, log, stats)


def write_log(log: list[dict[str, Any]], path: str | Path) -> Path:
    """The association log as JSON Lines (one frame per line), written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(rec, sort_keys=True) + "\n" for rec in log), encoding="utf-8")
    tmp.replace(path)
    return path
