"""ID-switch causes and occlusion strata on hand-built scenes; the detector-threshold trade-off."""

from __future__ import annotations

import numpy as np
import pytest

from labkit.data.annotations import Detections
from labkit.metrics.id_events import IdEvent
from labkit.track.analysis import analyse_switches, switch_cause, threshold_tradeoff


def _frame(boxes, ids, vis=None) -> Detections:
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    data = {"visibility": np.asarray(vis if vis is not None else np.ones(len(boxes)), dtype=float)}
    return Detections(boxes, np.ones(len(boxes), int), score=np.ones(len(boxes)),
                      track_id=np.asarray(ids, dtype=np.int64), data=data)


def _walk(frames, x0=10.0, y=50.0):
    return {f: [x0 + 3 * f, y, 20.0, 40.0] for f in frames}


def test_reentry():
    path = _walk(list(range(1, 6)) + list(range(11, 16)))
    gt = {f: _frame([b], [1]) for f, b in path.items()}
    pred = {f: _frame([b], [1 if f <= 5 else 2]) for f, b in path.items()}
    result = analyse_switches(gt, pred, 15)
    assert result["total"] == 1
    s = result["switches"][0]
    assert (s["frame"], s["gap"], s["cause"], s["frames_absent"]) == (11, 6, "re-entry", 5)


def test_occlusion_and_its_level():
    path = _walk(range(1, 13))
    vis = {f: 0.2 if 6 <= f <= 8 else 1.0 for f in path}
    gt = {f: _frame([b], [1], [vis[f]]) for f, b in path.items()}
    pred = {f: _frame([b], [1 if f < 6 else 2]) for f, b in path.items() if not 6 <= f <= 8}
    result = analyse_switches(gt, pred, 12)
    assert result["by_cause"]["occlusion"] == 1 and result["total"] == 1
    assert result["switches"][0]["occlusion_level"] == "0.00-0.25"
    levels = result["by_occlusion_level"]
    assert levels["0.00-0.25"] == {"switches": 1, "gt_boxes": 3}
    assert levels["0.75-1.00"] == {"switches": 0, "gt_boxes": 9}


def test_crossing():
    gt, pred = {}, {}
    for f in range(1, 11):
        a, b = [10.0 + 10 * f, 50.0, 20.0, 40.0], [120.0 - 10 * f, 52.0, 20.0, 40.0]
        gt[f] = _frame([a, b], [1, 2])
        swapped = f >= 6  # the tracker swaps the two ids as they pass each other (overlap at f 5-6)
        pred[f] = _frame([a, b], [2, 1] if swapped else [1, 2])
    result = analyse_switches(gt, pred, 10)
    assert result["total"] == 2 and result["by_cause"]["crossing"] == 2
    assert result["switches"][0]["crossed_by"] in ([1], [2])


@pytest.mark.parametrize("shift, cause", [(3.0, "camera pan"), (0.0, "other")])
def test_camera_pan_or_other(shift: float, cause: str):
    path = _walk(range(1, 11))
    gt = {f: _frame([b], [1]) for f, b in path.items()}
    pred = {f: _frame([b], [1 if f < 6 else 2]) for f, b in path.items()}
    result = analyse_switches(gt, pred, 10, camera_shift={f: shift for f in path})
    assert [s["cause"] for s in result["switches"]] == [cause]


def test_threshold_tradeoff_counts_recall_and_false_positives():
    gt, dets = {}, {}
    for f in range(1, 11):
        box = [10.0 + 3 * f, 50.0, 20.0, 40.0]
        gt[f] = _frame([box], [1])
        # the object at score 0.9 and a far false positive at 0.3 in every frame
        dets[f] = Detections(np.array([box, [200.0, 150.0, 20.0, 40.0]]), np.ones(2, int), score=np.array([0.9, 0.3]))
    rows = threshold_tradeoff(gt, dets, 10, [0.0, 0.5, 0.95])
    assert [r["detections"] for r in rows] == [20, 10, 0]
    assert [r["detection_recall"] for r in rows] == [1.0, 1.0, 0.0]
    assert [r["detection_false_positives"] for r in rows] == [10, 0, 0]
    assert rows[1]["IDSW"] == 0 and rows[2]["HOTA"] == 0.0


# --------------------------------------------------------------------------- each cause at its threshold
def _event(frame: int = 10, gap: int = 4) -> IdEvent:
    return IdEvent(frame=frame, gt_id=1, previous_track_id=5, new_track_id=6, iou=0.8, switch=True,
                   fragmentation=gap > 1, gap=gap)


def test_reentry_needs_exactly_reentry_frames_absent():
    """Window frames 6..10 (gap 4): absent in 3 of them -> re-entry; in 2 -> the next rule (other)."""
    present = {f: _frame([[10.0, 50.0, 20.0, 40.0]], [1]) for f in (6, 10)}
    s = switch_cause(_event(), present)
    assert (s["cause"], s["frames_absent"]) == ("re-entry", 3)
    present[7] = present[6]
    s = switch_cause(_event(), present)
    assert (s["cause"], s["frames_absent"], s["crossed_by"], s["camera_shift_per_frame"]) == ("other", 2, [], 0.0)
    assert (s["frame"], s["gt_id"], s["previous_track_id"], s["new_track_id"], s["gap"]) == (10, 1, 5, 6, 4)


def test_occlusion_is_strictly_below_the_visibility_threshold():
    box = [10.0, 50.0, 20.0, 40.0]
    for vis, cause, level in ((0.5, "other", "0.50-0.75"), (0.4999, "occlusion", "0.25-0.50"),
                              (0.25, "occlusion", "0.25-0.50"), (1.0, "other", "0.75-1.00")):
        gt = {f: _frame([box], [1], [vis if f == 8 else 1.0]) for f in range(6, 11)}
        s = switch_cause(_event(), gt)
        assert (s["cause"], s["min_visibility"], s["occlusion_level"]) == (cause, vis, level)


def test_crossing_iou_is_inclusive_and_pan_is_strictly_above():
    """g = x 0..20, the other box x 18..38 (same rows): IoU 2 / 38 = 0.0526."""
    gt = {f: _frame([[0.0, 0.0, 20.0, 10.0], [18.0, 0.0, 20.0, 10.0]], [1, 2]) for f in range(6, 11)}
    assert switch_cause(_event(), gt, crossing_iou=2 / 38)["crossed_by"] == [2]
    assert switch_cause(_event(), gt, crossing_iou=0.06)["cause"] == "other"
    shift = {f: 1.0 for f in range(6, 11)}
    assert switch_cause(_event(), gt, crossing_iou=0.06, camera_shift=shift)["cause"] == "other"  # 1.0 is not > 1.0
    shift[6] = 1.5  # mean 1.1 over the window's 5 frames
    s = switch_cause(_event(), gt, crossing_iou=0.06, camera_shift=shift)
    assert s["cause"] == "camera pan" and s["camera_shift_per_frame"] == pytest.approx(1.1)


def test_visibility_outside_zero_to_one_is_an_error():
    gt = {f: _frame([[0.0, 0.0, 20.0, 10.0]], [1], [-0.1]) for f in range(6, 11)}
    with pytest.raises(ValueError, match=r"visibility -0.1 is outside \[0, 1\]"):
        switch_cause(_event(), gt)
