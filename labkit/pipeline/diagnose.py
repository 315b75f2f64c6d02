"""Where a pipeline run fails: recall by slice, and a gallery of the worst frames.

Both match each frame's predictions to its ground truth greedily, highest score first, at
IoU >= ``iou`` (0.5 by default; class-aware unless ``class_aware=False``), the way COCO's matcher
does at one threshold. Crowd ground truth (``iscrowd = 1``) is never a miss, and a prediction
whose best match is a crowd region is neither a hit nor a false positive.

Slices (:func:`slice_table`), each bucket with its ground-truth objects, hits and recall:

* ``size``: the ground-truth box area in COCO's ranges (small < 32^2 <= medium < 96^2 <= large);
* ``occlusion``: the ground truth's ``visibility`` (none >= 0.9 > partial >= 0.5 > heavy), the
  buckets of :data:`labkit.robust.suite.OCCLUSION_BUCKETS`; absent when the truth has none;
* ``motion``: the object's centre displacement since the previous frame, same track id
  (static < 1 px/frame <= moderate < 4 <= fast); objects seen for the first time are ``new``;
  absent when the truth has no track ids;
* ``lighting``: the frame's mean intensity, 0-255 (dark < 70 <= normal < 180 <= bright), a
  frame-level slice, so it also counts false positives per bucket.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from labkit.data.annotations import Detections
from labkit.errors import DataError
from labkit.metrics.iou import box_iou
from labkit.pipeline.records import record_to_detections

SIZE_BUCKETS = {"small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, np.inf)}
MOTION_BUCKETS = {"static": (0.0, 1.0), "moderate": (1.0, 4.0), "fast": (4.0, np.inf)}
LIGHTING_BUCKETS = {"dark": (0.0, 70.0), "normal": (70.0, 180.0), "bright": (180.0, 256.0)}


def match_frame(pred: Detections, gt: Detections, *, iou: float = 0.5, class_aware: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(gt_hit, pred_status)``: per ground-truth object whether a prediction matched it, per
    prediction ``1`` hit, ``0`` false positive, ``-1`` ignored (its best match is a crowd region)."""
    crowd = np.asarray(gt.data.get("iscrowd", np.zeros(len(gt))), dtype=bool)
    hit, status = np.zeros(len(gt), dtype=bool), np.zeros(len(pred), dtype=np.int64)
    if not len(pred) or not len(gt):
        return hit, status
    overlap = box_iou(pred.xyxy, gt.xyxy)
    if class_aware:
        overlap = np.where(pred.class_id[:, None] == gt.class_id[None, :], overlap, 0.0)
    scores = pred.score if pred.score is not None else np.ones(len(pred))
    for p in np.argsort(-scores, kind="stable"):
        free = np.where(~hit & ~crowd & (overlap[p] >= iou), overlap[p], -1.0)
        if free.max() >= iou:
            hit[int(free.argmax())], status[p] = True, 1
        elif (overlap[p][crowd] >= iou).any():
            status[p] = -1
    return hit, status


def _bucket(value: float, buckets: Mapping[str, tuple[float, float]]) -> str:
    return next(name for name, (low, high) in buckets.items() if low <= value < high)


def _check_truth(records: Sequence[Mapping[str, Any]], truth: Mapping[int, Detections], what: str) -> None:
    missing = [r["frame_id"] for r in records if r["frame_id"] not in truth]
    if missing:
        raise DataError(f"{what}: no ground truth for frames {missing[:5]}{' ...' if len(missing) > 5 else ''}")


def _speeds(truth: Mapping[int, Detections]) -> dict[tuple[int, int], float]:
    """Centre displacement (px) since the previous frame of each (frame, track id)."""
    out, last = {}, {}
    for f in sorted(truth):
        gt = truth[f]
        if gt.track_id is None:
            return {}
        centres = gt.xywh[:, :2] + gt.xywh[:, 2:] / 2
        for tid, c in zip(gt.track_id.tolist(), centres):
            if (f - 1, tid) in last:
                out[(f, tid)] = float(np.hypot(*(c - last[(f - 1, tid)])))
            last[(f, tid)] = c
    return out


def slice_table(records: Sequence[Mapping[str, Any]], truth: Mapping[int, Detections],
                brightness: Mapping[int, float], *, iou: float = 0.5, class_aware: bool = True) -> list[dict[str, Any]]:
    """Rows ``{slice, bucket, frames, objects, hits, recall, false_positives}`` (see the module
    docstring; ``frames`` and ``false_positives`` only for the frame-level lighting slice,
    ``recall`` ``None`` for a bucket without objects). ``brightness``: mean intensity per frame id."""
    from labkit.robust.suite import OCCLUSION_BUCKETS

    _check_truth(records, truth, "slices")
    absent = [r["frame_id"] for r in records if r["frame_id"] not in brightness]
    if absent:
        raise DataError(f"slices: no brightness for frames {absent[:5]}")
    occlusion = dict(sorted(OCCLUSION_BUCKETS.items(), key=lambda kv: -kv[1][0]))
    speeds = _speeds({r["frame_id"]: truth[r["frame_id"]] for r in records})
    tracked = all(truth[r["frame_id"]].track_id is not None for r in records if len(truth[r["frame_id"]]))
    counts: dict[tuple[str, str], list[int]] = {}  # (slice, bucket) -> [frames, objects, hits, false positives]

    def add(key: tuple[str, str], frames: int = 0, objects: int = 0, hits: int = 0, fps: int = 0) -> None:
        c = counts.setdefault(key, [0, 0, 0, 0])
        for i, v in enumerate((frames, objects, hits, fps)):
            c[i] += v

    for name, buckets in (("size", SIZE_BUCKETS), ("occlusion", occlusion), ("motion", {"new": 0, **MOTION_BUCKETS}),
                          ("lighting", LIGHTING_BUCKETS)):
        for bucket in buckets:
            if (name != "occlusion" or all("visibility" in truth[r["frame_id"]].data for r in records
                                           if len(truth[r["frame_id"]]))) and (name != "motion" or tracked):
                add((name, bucket))
    for r in records:
        gt, pred = truth[r["frame_id"]], record_to_detections(r)
        hit, status = match_frame(pred, gt, iou=iou, class_aware=class_aware)
        keep = ~np.asarray(gt.data.get("iscrowd", np.zeros(len(gt))), dtype=bool)
        light = _bucket(float(brightness[r["frame_id"]]), LIGHTING_BUCKETS)
        add(("lighting", light), frames=1, objects=int(keep.sum()), hits=int(hit[keep].sum()), fps=int((status == 0).sum()))
        for i in np.flatnonzero(keep):
            add(("size", _bucket(float(gt.box_area[i]), SIZE_BUCKETS)), objects=1, hits=int(hit[i]))
            if ("occlusion", "none") in counts:
                add(("occlusion", _bucket(float(gt.data["visibility"][i]), occlusion)), objects=1, hits=int(hit[i]))
            if ("motion", "new") in counts:
                speed = speeds.get((r["frame_id"], int(gt.track_id[i])))
                add(("motion", "new" if speed is None else _bucket(speed, MOTION_BUCKETS)), objects=1, hits=int(hit[i]))
    return [{"slice": s, "bucket": b, "frames": c[0] if s == "lighting" else None, "objects": c[1], "hits": c[2],
             "recall": c[2] / c[1] if c[1] else None, "false_positives": c[3] if s == "lighting" else None}
            for (s, b), c in counts.items()]


def failure_gallery(records: Sequence[Mapping[str, Any]], truth: Mapping[int, Detections], out_dir: str | Path, *,
                    count: int = 4, iou: float = 0.5, class_aware: bool = True, pad: int = 12) -> list[dict[str, Any]]:
    """Crops of the ``count`` frames with the most errors (misses + false positives; ties: the
    earlier frame), written as ``out_dir/frame_<id>.png``: the predictions drawn as in the demo
    video, missed ground truth outlined in red, cropped to the errors' union box plus ``pad`` px.
    Returns ``{frame_id, misses, false_positives, file}`` per crop, worst first; frames without an
    error are never shown."""
    import cv2

    from labkit.pipeline.loader import read_frame
    from labkit.pipeline.render import draw_record

    _check_truth(records, truth, "failure gallery")
    scored = []
    for r in records:
        gt, pred = truth[r["frame_id"]], record_to_detections(r)
        hit, status = match_frame(pred, gt, iou=iou, class_aware=class_aware)
        crowd = np.asarray(gt.data.get("iscrowd", np.zeros(len(gt))), dtype=bool)
        missed, false = gt.xyxy[~hit & ~crowd], pred.xyxy[status == 0]
        if len(missed) + len(false):
            scored.append((-(len(missed) + len(false)), r["frame_id"], r, missed, false))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for _, frame_id, r, missed, false in sorted(scored, key=lambda s: s[:2])[:count]:
        image = draw_record(read_frame(r["source"]), r)
        for x1, y1, x2, y2 in missed.round().astype(int):
            cv2.rectangle(image, (x1, y1), (x2, y2), (255, 0, 0), 2)
        boxes = np.concatenate([missed, false])
        x1, y1 = np.maximum(boxes[:, :2].min(0) - pad, 0).astype(int)
        x2, y2 = np.minimum(boxes[:, 2:].max(0) + pad, [r["width"], r["height"]]).astype(int)
        path = out / f"frame_{frame_id:06d}.png"
        cv2.imwrite(str(path), cv2.cvtColor(image[y1:max(y2, y1 + 1), x1:max(x2, x1 + 1)], cv2.COLOR_RGB2BGR))
        rows.append({"frame_id": frame_id, "misses": len(missed), "false_positives": len(false), "file": path.name})
    return rows


def diagnosis_sections(slices: Sequence[Mapping[str, Any]], gallery: Sequence[Mapping[str, Any]], folder: str,
                       *, iou: float, class_aware: bool) -> list[str]:
    """Markdown lines: the slices table and the failure gallery (images under ``folder``)."""
    kind = "class-aware" if class_aware else "class-agnostic"
    lines = ["## Slices", "", f"Recall at IoU >= {iou:g} ({kind}) by object size, occlusion, motion and lighting.", "",
             "| slice | bucket | frames | objects | hits | recall | false positives |", "|---|---|---|---|---|---|---|"]
    for s in slices:
        cells = [s["frames"], s["objects"], s["hits"], s["recall"], s["false_positives"]]
        lines.append(f"| {s['slice']} | {s['bucket']} | " + " | ".join(
            "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v) for v in cells) + " |")
    lines += ["", "## Failure gallery", ""]
    if not gallery:
        return lines + ["No frame with a miss or a false positive.", ""]
    lines += ["The frames with the most errors, cropped to them (red: missed ground truth).", ""]
    for g in gallery:
        lines += [f"- frame {g['frame_id']}: {g['misses']} missed, {g['false_positives']} false positives",
                  "", f"![frame {g['frame_id']}]({folder}/{g['file']})", ""]
    return lines
