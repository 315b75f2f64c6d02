"""Grading spec of the Chapter 4 lab (``source/ch04_tracker``): gated cost, assignment, lifecycle,
the whole tracker on a hidden sequence and on a crossing, the review video, quiz.

Every check runs in the grader's process. Hidden cases come from ``_SEED`` (not in the student
copy). References, written here independently of the notebook:

* cost: ``1 - IoU`` of xywh boxes with ``labkit.metrics.iou.box_iou`` (on xyxy), gated out where
  ``IoU < min_iou`` or ``d2 > max_d2`` (pairs at the thresholds kept);
* assignment: SciPy's ``linear_sum_assignment`` on the allowed pairs (``cost <= max_cost``) with a
  forbidden constant elsewhere, which maximises the number of matches, then minimises their total
  cost; a submission is compared on the number of matches and the total cost (any optimal answer
  passes, ties included), and checked to be one-to-one on allowed pairs;
* lifecycle: the table of the notebook (tentative/confirmed/lost/deleted; DeepSORT's states with
  ByteTrack's lost state), enumerated;
* tracking: HOTA and ID switches from TrackEval through ``labkit.metrics.tracking`` on the
  student's ``track_sequence`` output (the student's kernel runs it; the score is computed here);
* video: decoded here with OpenCV; one frame per sequence frame, of the sequence's size, and every
  track id given drawn: its box outline stands out from the sequence image (beyond the codec's
  error around it) in at least half of the frames where it appears.

``labkit.track`` is blocked in the student's kernel: it holds the course's own tracker.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from labkit.grading.labspec import Item, LabSpec, StudentRaised, quiz_items

_SEED = 61907
HOTA_TARGET, CROSSING_MAX_SWITCHES = 0.55, 1
_HIDDEN_FRAMES, _VIDEO_FRAMES = 100, 24
#: Grey levels by which a drawn box outline must stand out from the codec's error around it (measured on the
#: video case: the outlines of the instructor's and the OpenCV-writer solutions stand out by about 10 or more in
#: 9 boxes of 10, undrawn outlines by at most 5).
DRAWN_CONTRAST = 6.0
STATES = ("tentative", "confirmed", "lost")


def _array(value, name: str) -> np.ndarray:
    if isinstance(value, StudentRaised):
        raise value
    assert isinstance(value, np.ndarray), f"{name} must return a NumPy array, got {type(value).__name__}"
    return value


def _reference_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from labkit.metrics.iou import box_iou

    to_xyxy = lambda x: np.concatenate([x[:, :2], x[:, :2] + x[:, 2:]], axis=1)  # noqa: E731
    return np.asarray(box_iou(to_xyxy(a), to_xyxy(b)), dtype=np.float64).reshape(len(a), len(b))


def _reference_cost(a, b, d2, min_iou, max_d2) -> np.ndarray:
    iou = _reference_iou(a, b)
    return np.where((iou < min_iou) | (d2 > max_d2), np.inf, 1.0 - iou)


def _boxes(rng: np.random.Generator, n: int, size: float = 200.0) -> np.ndarray:
    return np.concatenate([rng.uniform(0, size * 0.8, (n, 2)), rng.uniform(4, size * 0.3, (n, 2))], axis=1)


def _near(rng: np.random.Generator, boxes: np.ndarray, m: int) -> np.ndarray:
    """m boxes, most of them jittered copies of ``boxes`` (so that IoUs spread over (0, 1))."""
    picks = boxes[rng.integers(len(boxes), size=m)] if len(boxes) else _boxes(rng, m)
    return picks + rng.normal(0, 1, (m, 4)) * np.concatenate([picks[:, 2:], picks[:, 2:]], axis=1) * 0.15 * [1, 1, 0.5, 0.5]


def _cost_cases() -> list[tuple]:
    rng = np.random.default_rng(_SEED)
    cases = []
    for t, d, min_iou, max_d2 in [(1, 1, 0.0, 9.4877), (5, 7, 0.1, 9.4877), (12, 9, 0.3, 5.0), (20, 25, 0.05, 13.28)]:
        a = _boxes(rng, t)
        b = _near(rng, a, d)
        cases.append((a, b, rng.chisquare(4, (t, d)), min_iou, max_d2))
    # exact thresholds: IoU 0.5 and 0.25 (representable), d2 exactly at the gate
    a = np.array([[0.0, 0.0, 10.0, 10.0], [50.0, 50.0, 8.0, 8.0]])
    b = np.array([[0.0, 0.0, 10.0, 20.0], [0.0, 0.0, 10.0, 40.0], [50.0, 50.0, 8.0, 8.0]])
    cases.append((a, b, np.array([[1.0, 2.0, 3.0], [9.4877, 9.4877, 9.4877]]), 0.25, 9.4877))
    cases.append((a, b, np.zeros((2, 3)), 0.5, 9.4877))
    return cases


def check_cost(probe) -> None:
    cases = _cost_cases()
    for (a, b, d2, min_iou, max_d2), got in zip(cases, probe.map("gated_cost", [(c, {}) for c in cases])):
        got = _array(got, "gated_cost")
        ref = _reference_cost(a, b, d2, min_iou, max_d2)
        assert got.shape == ref.shape, f"gated_cost of {len(a)} tracks and {len(b)} detections has shape {got.shape}"
        assert np.array_equal(np.isinf(got), np.isinf(ref)), \
            f"gated_cost gates other pairs than IoU < {min_iou} or d2 > {max_d2} on a hidden case (pairs at the thresholds stay)"
        finite = np.isfinite(ref)
        assert np.allclose(got[finite], ref[finite], atol=1e-9), "gated_cost: 1 - IoU differs on a hidden case"


def check_gated_out(probe) -> None:
    rng = np.random.default_rng(_SEED + 1)
    a = _boxes(rng, 4)
    b = _near(rng, a, 5)
    cases = [(a, b, np.full((4, 5), 50.0), 0.0, 9.4877),     # every pair beyond the Mahalanobis gate
             (a, b + [500.0, 500.0, 0, 0], np.zeros((4, 5)), 0.1, 9.4877),  # no overlap anywhere
             (np.zeros((0, 4)), b, np.zeros((0, 5)), 0.1, 9.4877), (a, np.zeros((0, 4)), np.zeros((4, 0)), 0.1, 9.4877)]
    for (a, b, d2, min_iou, max_d2), got in zip(cases, probe.map("gated_cost", [(c, {}) for c in cases])):
        got = _array(got, "gated_cost")
        assert got.shape == (len(a), len(b)), f"gated_cost of {len(a)} tracks and {len(b)} detections has shape {got.shape}"
        assert np.isinf(got).all(), "when every pair is gated out (or there are none), every cost must be inf"


def _reference_assignment(cost: np.ndarray, max_cost: float) -> tuple[int, float]:
    allowed = cost <= max_cost
    if not allowed.any():
        return 0, 0.0
    rows, cols = linear_sum_assignment(np.where(allowed, cost, 1e6))
    keep = allowed[rows, cols]
    return int(keep.sum()), float(cost[rows[keep], cols[keep]].sum())


def _check_assignment_result(cost: np.ndarray, max_cost: float, got, where: str) -> None:
    if isinstance(got, StudentRaised):
        raise got
    assert isinstance(got, (tuple, list)) and len(got) == 3, "assign returns (matches, unmatched_tracks, unmatched_detections)"
    matches, ut, ud = (_array(x, "assign") for x in got)
    assert matches.ndim == 2 and matches.shape[1] == 2 and matches.dtype == np.int64, \
        f"matches must be a (K, 2) int64 array, got shape {matches.shape} {matches.dtype} ({where})"
    rows, cols = matches[:, 0], matches[:, 1]
    assert len(set(rows.tolist())) == len(rows) and len(set(cols.tolist())) == len(cols), \
        f"a track or a detection is matched twice ({where})"
    assert ((rows >= 0) & (rows < cost.shape[0]) & (cols >= 0) & (cols < cost.shape[1])).all(), f"index out of range ({where})"
    assert (cost[rows, cols] <= max_cost).all(), f"a pair above max_cost or gated out was matched ({where})"
    assert rows.tolist() == sorted(rows.tolist()), f"matches must be sorted by track row ({where})"
    assert ut.tolist() == sorted(set(range(cost.shape[0])) - set(rows.tolist())), f"unmatched_tracks are wrong ({where})"
    assert ud.tolist() == sorted(set(range(cost.shape[1])) - set(cols.tolist())), f"unmatched_detections are wrong ({where})"
    count, total = _reference_assignment(cost, max_cost)
    assert len(rows) == count, f"{len(rows)} matches where {count} are possible ({where})"
    assert abs(float(cost[rows, cols].sum()) - total) < 1e-9, f"the total cost is not the minimum ({where})"


def check_assignment(probe) -> None:
    rng = np.random.default_rng(_SEED + 2)
    cases = []
    for t, d, max_cost, gated in [(3, 3, 0.9, 0.0), (6, 6, 0.9, 0.7), (6, 7, 0.7, 0.3), (9, 5, 0.8, 0.2), (15, 15, 0.6, 0.5), (25, 30, 0.9, 0.4)]:
        cost = rng.uniform(0, 1, (t, d))
        cost[rng.random((t, d)) < gated] = np.inf
        cases.append((cost, max_cost))
    cases.append((np.array([[0.3, 0.7], [0.7, 0.71]]), 0.7))  # a pair exactly at max_cost is allowed
    for k, ((cost, max_cost), got) in enumerate(zip(cases, probe.map("assign", [(c, {}) for c in cases]))):
        _check_assignment_result(cost, max_cost, got, f"hidden case {k + 1}, {cost.shape[0]} x {cost.shape[1]}")


def check_empty_and_ties(probe) -> None:
    cases = [(np.zeros((0, 4)), 0.5), (np.zeros((3, 0)), 0.5), (np.zeros((0, 0)), 0.5),
             (np.full((3, 4), np.inf), 0.9),                   # everything gated out
             (np.full((3, 3), 0.95), 0.9),                      # everything above the threshold
             (np.array([[0.1, np.inf], [np.inf, np.inf]]), 0.9),  # one allowed pair among gated ones
             (np.full((2, 3), 0.4), 0.9),                       # ties everywhere
             (np.array([[0.2, 0.2, 0.9], [0.2, 0.2, 0.9]]), 0.5)]  # two tracks, two equally good detections
    names = ["no tracks", "no detections", "nothing at all", "every pair gated out", "every pair above max_cost",
             "one allowed pair", "tied costs", "tied costs with two candidates"]
    for name, (cost, max_cost), got in zip(names, cases, probe.map("assign", [(c, {}) for c in cases])):
        _check_assignment_result(cost, max_cost, got, name)


def _reference_state(state, matched, hits, misses, min_hits, max_misses) -> str:
    if matched:
        return "tentative" if state == "tentative" and hits < min_hits else "confirmed"
    return "deleted" if state == "tentative" or misses > max_misses else "lost"


def check_lifecycle(probe) -> None:
    calls = []
    for state in STATES:
        for min_hits in (1, 2, 3):
            for max_misses in (0, 1, 4):
                for hits in range(1, 6):
                    calls.append((state, True, hits, 0, min_hits, max_misses))
                    calls += [(state, False, hits, misses, min_hits, max_misses) for misses in range(1, 7)]
    for args, got in zip(calls, probe.map("next_state", [(c, {}) for c in calls])):
        if isinstance(got, StudentRaised):
            raise got
        ref = _reference_state(*args)
        state, matched, hits, misses, min_hits, max_misses = args
        assert got == ref, (f"next_state({state!r}, matched={matched}, hits={hits}, misses={misses}, min_hits={min_hits}, "
                            f"max_misses={max_misses}) returned {got!r}")


def _hidden_sequence(root: str, frames: int, seed: int) -> Path:
    """A sequence rendered by the course generator with a seed the student copy does not hold."""
    from labkit.data.synth.sequences import SequenceTask, render_sequence

    render_sequence(SequenceTask(0, "hidden", np.random.SeedSequence(seed), frames, False, Path(root)))
    return Path(root) / "sequences" / "hidden" / "seq01"


def _gt_rows(seq: Path) -> np.ndarray:
    from labkit.data.mot import read_mot

    rows = [[f, tid, *box, v] for f, det in read_mot(seq / "gt" / "gt.txt", "gt").items()
            for box, tid, v in zip(det.xywh, det.track_id, det.get("visibility"))]
    return np.asarray(rows, dtype=np.float64).reshape(-1, 7)


def _detections(gt: np.ndarray, length: int, seed: int, size=(320, 240)) -> np.ndarray:
    """The notebook's detector model (recall 0.9, jitter 0.05, 0.3 false positives a frame,
    visibility >= 0.3), re-implemented here with its own random stream."""
    rng = np.random.default_rng(seed)
    out = []
    for f in range(1, length + 1):
        for _, _, x, y, w, h, vis in gt[gt[:, 0] == f]:
            if vis < 0.3 or rng.random() > 0.9:
                continue
            dx, dy, dw, dh = rng.normal(0.0, 0.05, 4)
            out.append([f, x + dx * w, y + dy * h, w * (1 + dw), h * (1 + dh), rng.uniform(0.5, 1.0)])
        for _ in range(rng.poisson(0.3)):
            w, h = rng.uniform(10, 40, 2)
            out.append([f, rng.uniform(0, size[0] - w), rng.uniform(0, size[1] - h), w, h, rng.uniform(0.1, 0.6)])
    return np.asarray(out, dtype=np.float64).reshape(-1, 6)


def _frames(rows: np.ndarray, with_ids: bool) -> dict:
    from labkit.data.annotations import Detections

    out = {}
    for f in np.unique(rows[:, 0]).astype(int):
        r = rows[rows[:, 0] == f]
        out[int(f)] = Detections(r[:, 2:6], np.ones(len(r), dtype=np.int64), track_id=r[:, 1].astype(np.int64))
    return out


def _score_tracks(gt: np.ndarray, got, length: int) -> dict:
    from labkit.metrics.tracking import evaluate_tracking

    pred = _array(got, "track_sequence")
    assert pred.ndim == 2 and pred.shape[1] == 6, f"track_sequence must return rows [frame, id, x, y, w, h], got shape {pred.shape}"
    assert np.isfinite(pred).all(), "track_sequence returned NaN or inf"
    frames = pred[:, 0].astype(int)
    assert ((frames >= 1) & (frames <= length)).all(), "track_sequence returned frames outside the sequence"
    for f in np.unique(frames):
        ids = pred[frames == f, 1]
        assert len(np.unique(ids)) == len(ids), f"track_sequence output has an id twice in frame {f}"
    return evaluate_tracking(_frames(gt, True), _frames(pred, True), num_frames=length).summary()


@lru_cache(maxsize=1)
def hidden_case() -> tuple[np.ndarray, np.ndarray]:
    """Ground truth and detections of the hidden sequence, built once per grading run (the LAB's
    ``prepare``); the rendered frames are not needed afterwards and are removed."""
    import shutil
    import tempfile

    root = tempfile.mkdtemp(prefix="ch04-hidden-")
    try:
        gt = _gt_rows(_hidden_sequence(root, _HIDDEN_FRAMES, _SEED))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return gt, _detections(gt, _HIDDEN_FRAMES, _SEED + 3)


def check_hota(probe) -> None:
    gt, detections = hidden_case()
    scores = _score_tracks(gt, probe.call("track_sequence", detections, _HIDDEN_FRAMES), _HIDDEN_FRAMES)
    assert scores["HOTA"] >= HOTA_TARGET, \
        f"HOTA {scores['HOTA']:.3f} on the hidden sequence is below the target {HOTA_TARGET} (AssA {scores['AssA']:.3f}, " \
        f"DetA {scores['DetA']:.3f}, {scores['IDSW']} ID switches)"


def crossing(length: int = 60, seed: int = _SEED + 4) -> tuple[np.ndarray, np.ndarray]:
    """Two 24 x 24 objects on straight paths that cross at an angle at frame 30: (gt rows, detections)."""
    rng = np.random.default_rng(seed)
    gt, det = [], []
    for f in range(1, length + 1):
        for tid, (x, y) in ((1, (10 + 3.0 * f, 40 + 1.5 * f)), (2, (190 - 3.0 * f, 40 + 1.5 * f))):
            gt.append([f, tid, x, y, 24.0, 24.0, 1.0])
            jitter = rng.normal(0, 0.5, 4)
            det.append([f, x + jitter[0], y + jitter[1], 24.0 + jitter[2], 24.0 + jitter[3], 0.9])
    return np.asarray(gt), np.asarray(det)


def check_crossing(probe) -> None:
    gt, det = crossing()
    scores = _score_tracks(gt, probe.call("track_sequence", det, 60), 60)
    assert scores["IDSW"] <= CROSSING_MAX_SWITCHES, \
        f"{scores['IDSW']} ID switches on two objects crossing (at most {CROSSING_MAX_SWITCHES} allowed)"


def box_drawn(decoded: np.ndarray, source: np.ndarray, box) -> bool | None:
    """Whether the outline of ``box`` (xywh) was drawn into ``decoded`` over ``source`` (both BGR):
    along the outline (a 5-pixel band) the frame must differ from the sequence image by at least
    :data:`DRAWN_CONTRAST` grey levels more than just around it (a 6-pixel ring each side), which
    discounts the codec's own error. ``None`` when no part of the outline lies in the frame."""
    import cv2

    x, y, w, h = (int(round(v)) for v in box)
    diff = np.abs(decoded.astype(np.int16) - source.astype(np.int16)).max(axis=2)
    band, ring = np.zeros(diff.shape, np.uint8), np.zeros(diff.shape, np.uint8)
    cv2.rectangle(band, (x, y), (x + w, y + h), 1, 5)
    cv2.rectangle(ring, (x, y), (x + w, y + h), 1, 17)
    ring[band > 0] = 0
    if not band.any() or not ring.any():
        return None
    return float(diff[band > 0].mean() - diff[ring > 0].mean()) >= DRAWN_CONTRAST


def undrawn_ids(frames: list[np.ndarray], seq: Path, rows: np.ndarray) -> list[int]:
    """Track ids of ``rows`` ([frame, id, x, y, w, h]) whose box is drawn in fewer than half of the
    frames where it lies in the picture (decoded ``frames`` against the sequence's images)."""
    import cv2

    drawn: dict[int, list[bool]] = {}
    for f, tid, *box in rows:
        seen = box_drawn(frames[int(f) - 1], cv2.imread(str(seq / "img1" / f"{int(f):06d}.jpg")), box)
        if seen is not None:
            drawn.setdefault(int(tid), []).append(seen)
    return sorted(t for t, marks in drawn.items() if np.mean(marks) < 0.5)


def check_video(probe) -> None:
    import cv2

    scratch = probe.scratch_dir()
    seq = _hidden_sequence(str(scratch), _VIDEO_FRAMES, _SEED + 5)
    rows = _gt_rows(seq)[:, :6]
    rows[:, 1] = rows[:, 1] * 7 + 30  # a tracker's ids are arbitrary integers, not 1..n
    out = scratch / "review.mp4"
    got = probe.call("render_review", str(seq), rows, str(out))
    assert isinstance(got, str) and Path(got) == out, f"render_review must write {out.name} where it is asked to and return its path"
    assert out.is_file() and not out.is_symlink() and 0 < out.stat().st_size < 50_000_000, "no video file was written"
    capture, frames = cv2.VideoCapture(str(out)), []
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                break
            frames.append(image)
    finally:
        capture.release()
    assert len(frames) == _VIDEO_FRAMES, f"the video decodes to {len(frames)} frames; the sequence has {_VIDEO_FRAMES}"
    assert frames[0].shape[:2] == (240, 320), f"video frames are {frames[0].shape[:2]}, the sequence frames (240, 320)"
    missing = undrawn_ids(frames, seq, rows)
    assert not missing, (f"{len(missing)} of {len(np.unique(rows[:, 1]))} track ids are not drawn in the video (their box "
                         f"outline is missing in most of their frames): ids {missing[:10]}")


LAB = LabSpec(
    items=[Item("cost_matrix", 2, check_cost), Item("gated_out", 1, check_gated_out),
           Item("assignment", 2, check_assignment), Item("empty_and_ties", 1, check_empty_and_ties),
           Item("lifecycle", 2, check_lifecycle),
           Item("hota_hidden", 2, check_hota, timeout=180.0), Item("crossing", 1, check_crossing),
           Item("video", 1, check_video, timeout=120.0),
           *quiz_items(Path(__file__).resolve().parents[1] / "keys" / "ch04_tracker.yaml")],
    blocked_modules=("labkit.track",),
    prepare=hidden_case,
    skip_cells=("cost_visible", "assign_visible", "lifecycle_visible", "evaluate_run", "video_run",
                *(f"q{k}_check" for k in range(1, 6))),
)
