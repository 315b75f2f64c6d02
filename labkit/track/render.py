"""Review videos: MP4 (H.264 through imageio-ffmpeg, which ships its own ffmpeg binary).

One video frame per sequence frame, drawn on the sequence image (or on a grey canvas when the
sequence has no frames). Each frame shows:

* output boxes with their track id and a short trail of past centres, coloured by lifecycle
  state (confirmed green, tentative yellow, lost red; lost tracks drawn as their dashed predicted
  box);
* the predicted box of each matched track (thin white) beside its detection box, so a lag of
  the motion model is visible;
* ID-switch events (:mod:`labkit.metrics.id_events`) flagged with a magenta ring and a label on
  the frame they happen;
* optionally the ground truth (thin cyan boxes with ``gt <id>``).

The ``states`` come from a run (:attr:`labkit.track.run.TrackRun.states`) or from an association
log (:func:`states_from_log`).
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from pathlib import Path
from typing import Iterable, Mapping

import cv2
import numpy as np

from labkit.data.annotations import Detections
from labkit.errors import DataError
from labkit.track.lifecycle import TrackState

VIDEO_SUFFIXES = (".mp4",)
COLOURS = {TrackState.CONFIRMED: (40, 200, 40), TrackState.TENTATIVE: (240, 200, 0), TrackState.LOST: (230, 40, 40)}
GT_COLOUR, PRED_COLOUR, SWITCH_COLOUR = (0, 200, 230), (255, 255, 255), (230, 0, 230)
TRAIL = 12


def check_video_target(path: str | Path) -> Path:
    """The output path must end in ``.mp4`` and must not be a folder (else a :class:`DataError`)."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise DataError(f"a review video must be an .mp4 file, got suffix {path.suffix or '(none)'!r}", source=str(path))
    if path.is_dir():
        raise DataError("is a folder, not a video file", source=str(path))
    return path


def states_from_log(path: str | Path) -> dict[int, Detections]:
    """Per-frame live tracks (state, predicted box) read back from an association log."""
    out: dict[int, Detections] = {}
    for line, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        try:
            rec = json.loads(raw)
            tracks = rec["tracks"]
            names = {s.label: s for s in TrackState}
            pred = np.array([t["predicted_xywh"] for t in tracks], dtype=np.float64).reshape(-1, 4)
            out[int(rec["frame"])] = Detections(
                pred, np.ones(len(tracks), dtype=np.int64), track_id=np.array([t["track_id"] for t in tracks], dtype=np.int64),
                data={"state": np.array([int(names[t["state_after"]]) for t in tracks], dtype=np.int64),
                      "detection": np.array([-1 if t["detection"] is None else t["detection"] for t in tracks], dtype=np.int64),
                      "predicted_xywh": pred})
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"not an association log record ({exc})", source=str(path), record=f"line {line}") from None
    return out


def _box(img, xywh, colour, thickness=2, dashed=False) -> None:
    x, y, w, h = (int(round(v)) for v in xywh)
    if not dashed:
        cv2.rectangle(img, (x, y), (x + w, y + h), colour, thickness, cv2.LINE_AA if thickness > 1 else cv2.LINE_8)
        return
    for x0, y0, x1, y1 in ((x, y, x + w, y), (x, y + h, x + w, y + h), (x, y, x, y + h), (x + w, y, x + w, y + h)):
        n = max(int(np.hypot(x1 - x0, y1 - y0) // 8), 1)
        for k in range(0, n, 2):
            a, b = k / n, min((k + 1) / n, 1)
            cv2.line(img, (int(x0 + a * (x1 - x0)), int(y0 + a * (y1 - y0))),
                     (int(x0 + b * (x1 - x0)), int(y0 + b * (y1 - y0))), colour, 1, cv2.LINE_8)


def _label(img, text, x, y, colour) -> None:
    cv2.putText(img, text, (int(x), max(int(y) - 3, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, (int(x), max(int(y) - 3, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)


def draw_frame(image: np.ndarray, frame: int, tracks: Detections, states: Detections | None = None,
               gt: Detections | None = None, switches: Iterable[dict] = (), trails: Mapping | None = None) -> np.ndarray:
    """One annotated RGB frame (see the module docstring)."""
    img = np.ascontiguousarray(image.copy())
    if gt is not None:
        for box, gid in zip(gt.xywh, gt.track_id if gt.track_id is not None else [-1] * len(gt)):
            _box(img, box, GT_COLOUR, 1)
            _label(img, f"gt {int(gid)}", box[0] + box[2] - 30, box[1] + box[3] + 12, GT_COLOUR)
    if states is not None:
        for tid, state, pred, det in zip(states.track_id, states.data["state"], states.data["predicted_xywh"],
                                         states.data.get("detection", np.full(len(states), -1))):
            if state == TrackState.LOST:
                _box(img, pred, COLOURS[TrackState.LOST], dashed=True)
                _label(img, f"{int(tid)} lost", pred[0], pred[1], COLOURS[TrackState.LOST])
            elif det >= 0:
                _box(img, pred, PRED_COLOUR, 1)
    if tracks.track_id is None:
        tracks = tracks.with_fields(track_id=np.zeros(len(tracks), dtype=np.int64))
    state_of = {} if states is None else dict(zip(states.track_id.tolist(), states.data["state"].tolist()))
    for box, tid in zip(tracks.xywh, tracks.track_id):
        colour = COLOURS[TrackState(state_of.get(int(tid), TrackState.CONFIRMED))]
        _box(img, box, colour)
        _label(img, str(int(tid)), box[0], box[1], colour)
        if trails is not None and len(trails.get(int(tid), ())) > 1:
            pts = np.array(trails[int(tid)], dtype=np.int32).reshape(-1, 1, 2)
            cv2.polylines(img, [pts], False, colour, 1, cv2.LINE_AA)
    for event in switches:
        box = tracks.xywh[tracks.track_id == event["new_track_id"]]
        if len(box):
            cx, cy = box[0][:2] + box[0][2:] / 2
            cv2.circle(img, (int(cx), int(cy)), int(max(box[0][2:]) / 2 + 6), SWITCH_COLOUR, 2, cv2.LINE_AA)
            _label(img, f"ID switch {event['previous_track_id']}->{event['new_track_id']}", box[0][0], box[0][1] - 12,
                   SWITCH_COLOUR)
    _label(img, f"frame {frame}", 4, 14, (255, 255, 255))
    return img


def render_video(out: str | Path, length: int, tracks: Mapping[int, Detections], *, read_frame=None,
                 size: tuple[int, int] = (480, 640), states: Mapping[int, Detections] | None = None,
                 gt: Mapping[int, Detections] | None = None, switches: Iterable[dict] = (), fps: int = 25) -> dict:
    """Write the review video of frames ``1..length``; returns ``{path, frames, fps, codec}``.

    ``read_frame(f)`` gives RGB frame ``f`` (else a grey canvas of ``size = (height, width)``);
    ``switches`` are ID events as dicts with ``frame``, ``previous_track_id``, ``new_track_id``.
    """
    import imageio.v2 as imageio

    out = check_video_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    by_frame = defaultdict(list)
    for e in switches:
        if e.get("switch", True):
            by_frame[int(e["frame"])].append(e)
    history: dict[int, deque] = defaultdict(lambda: deque(maxlen=TRAIL))
    tmp = out.with_name(out.stem + ".tmp.mp4")
    writer = imageio.get_writer(str(tmp), format="FFMPEG", fps=fps, codec="libx264", quality=7,
                                pixelformat="yuv420p", macro_block_size=2, ffmpeg_log_level="error")
    try:
        for f in range(1, length + 1):
            image = read_frame(f) if read_frame is not None else np.full(size + (3,), 96, dtype=np.uint8)
            det = tracks.get(f, Detections.empty())
            for box, tid in zip(det.xywh, det.track_id if det.track_id is not None else []):
                history[int(tid)].append((box[0] + box[2] / 2, box[1] + box[3] / 2))
            writer.append_data(draw_frame(image, f, det, None if states is None else states.get(f),
                                          None if gt is None else gt.get(f), by_frame.get(f, ()), history))
    finally:
        writer.close()
    tmp.replace(out)
    return {"path": str(out), "frames": length, "fps": fps, "codec": "h264"}
