"""Why identities break: ID switches grouped by cause and by occlusion level, and the
detector-threshold trade-off.

The events are CLEAR's ID switches (:func:`labkit.metrics.id_events.id_events`, the same matching
as TrackEval, so their count equals IDSW). Each switch of gt object ``g`` at frame ``f``, whose
previous match was at frame ``f - gap``, gets the first cause that applies, in this order:

1. ``re-entry``: ``g`` was absent from the ground truth (left the view) for at least
   ``reentry_frames`` of the frames in between;
2. ``occlusion``: ``g``'s visibility (the generator's / MOTChallenge's visibility label, column 9)
   fell below ``occluded_below`` in the window ``[f - gap, f]``;
3. ``crossing``: another gt object overlapped ``g`` (IoU >= ``crossing_iou``) in that window;
4. ``camera pan``: the camera moved more than ``pan_pixels`` per frame on average in that window
   (``camera_shift``: per-frame image motion in pixels, e.g. from :func:`camera_shifts`);
5. ``other``.

Switches are also stratified by occlusion level: the lowest visibility of ``g`` in the window,
binned by :data:`OCCLUSION_BINS`, beside the number of gt boxes in each bin (so a rate per box
can be read).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Mapping

import numpy as np

from labkit.data.annotations import Detections
from labkit.metrics.id_events import IdEvent, id_events
from labkit.track.association import iou_xywh

CAUSES = ("re-entry", "occlusion", "crossing", "camera pan", "other")
#: Lowest-visibility bins ``[low, high)`` (the last one includes 1.0).
OCCLUSION_BINS = ((0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0))


def _bin(visibility: float) -> str:
    for low, high in OCCLUSION_BINS:
        if low <= visibility < high or (high == 1.0 and visibility == 1.0):
            return f"{low:.2f}-{high:.2f}"
    raise ValueError(f"visibility {visibility} is outside [0, 1]")


def switch_cause(event: IdEvent, gt: Mapping[int, Detections], *, camera_shift: Mapping[int, float] | None = None,
                 reentry_frames: int = 3, occluded_below: float = 0.5, crossing_iou: float = 0.1,
                 pan_pixels: float = 1.0) -> dict[str, Any]:
    """The cause of one switch and the evidence behind it (see the module docstring)."""
    window = range(event.frame - event.gap, event.frame + 1)
    absent, min_vis, crossing = 0, 1.0, []
    for f in window:
        det = gt.get(f)
        rows = [] if det is None or not len(det) else np.nonzero(det.track_id == event.gt_id)[0]
        if len(rows) == 0:
            absent += 1
            continue
        r = int(rows[0])
        vis = det.get("visibility")
        if vis is not None:
            min_vis = min(min_vis, float(vis[r]))
        others = np.nonzero(det.track_id != event.gt_id)[0]
        if len(others):
            iou = iou_xywh(det.xywh[r:r + 1], det.xywh[others])[0]
            crossing += [int(det.track_id[o]) for o in others[iou >= crossing_iou]]
    shifts = [camera_shift.get(f, 0.0) for f in window] if camera_shift else [0.0]
    pan = float(np.mean(shifts))
    if absent >= reentry_frames:
        cause = "re-entry"
    elif min_vis < occluded_below:
        cause = "occlusion"
    elif crossing:
        cause = "crossing"
    elif pan > pan_pixels:
        cause = "camera pan"
    else:
        cause = "other"
    return {"frame": event.frame, "gt_id": event.gt_id, "previous_track_id": event.previous_track_id,
            "new_track_id": event.new_track_id, "gap": event.gap, "cause": cause, "frames_absent": absent,
            "min_visibility": min_vis, "occlusion_level": _bin(min_vis), "crossed_by": sorted(set(crossing)),
            "camera_shift_per_frame": pan}


def analyse_switches(gt: Mapping[int, Detections], pred: Mapping[int, Detections], num_frames: int, *,
                     camera_shift: Mapping[int, float] | None = None, preprocess: str = "none",
                     **thresholds: float) -> dict[str, Any]:
    """Every ID switch with its cause, counts per cause and per occlusion level (with gt boxes per level)."""
    events = [e for e in id_events(gt, pred, num_frames=num_frames, preprocess=preprocess) if e.switch]
    switches = [switch_cause(e, gt, camera_shift=camera_shift, **thresholds) for e in events]
    boxes = Counter(_bin(float(v)) for d in gt.values() for v in d.get("visibility", np.ones(len(d))))
    levels = {f"{low:.2f}-{high:.2f}": {"switches": 0, "gt_boxes": boxes.get(f"{low:.2f}-{high:.2f}", 0)}
              for low, high in OCCLUSION_BINS}
    for s in switches:
        levels[s["occlusion_level"]]["switches"] += 1
    return {"switches": switches, "by_cause": {c: sum(s["cause"] == c for s in switches) for c in CAUSES},
            "by_occlusion_level": levels, "total": len(switches)}


def camera_shifts(read_frame, length: int, method: str = "orb") -> dict[int, float]:
    """Per-frame camera motion in pixels (translation of the frame-to-frame affine), frames 1..length."""
    from labkit.track.camera import CameraMotion

    camera = CameraMotion(method)
    return {f: float(np.hypot(*camera.estimate(read_frame(f))[:, 2])) for f in range(1, length + 1)}


def threshold_tradeoff(gt: Mapping[int, Detections], detections: Mapping[int, Detections], num_frames: int,
                       thresholds: Iterable[float], config: Any = None, *, preprocess: str = "none") -> list[dict[str, Any]]:
    """Detector score threshold vs recall, false positives and tracking scores.

    For each threshold ``t`` the detections scoring ``>= t`` are (a) scored as if they were a
    tracker output with one id per box (detection recall and false positives at IoU 0.5, CLEAR's
    matching) and (b) tracked with ``config``, whose HOTA / MOTA / IDF1 / IDSW are reported.
    """
    from labkit.metrics.tracking import evaluate_tracking
    from labkit.track.run import track_frames

    rows = []
    for t in thresholds:
        kept = {f: d[d.score >= t] if len(d) else d for f, d in detections.items()}
        next_id, as_tracks = 1, {}
        for f, d in kept.items():
            as_tracks[f] = d.with_fields(track_id=np.arange(next_id, next_id + len(d), dtype=np.int64))
            next_id += len(d)
        det_scores = evaluate_tracking(gt, as_tracks, num_frames=num_frames, preprocess=preprocess).summary()
        run = track_frames(kept, num_frames, config)
        s = evaluate_tracking(gt, run.tracks, num_frames=num_frames, preprocess=preprocess).summary()
        rows.append({"threshold": float(t), "detections": int(sum(len(d) for d in kept.values())),
                     "detection_recall": det_scores["Recall"], "detection_false_positives": det_scores["FP"],
                     "HOTA": s["HOTA"], "MOTA": s["MOTA"], "IDF1": s["IDF1"], "IDSW": s["IDSW"]})
    return rows
