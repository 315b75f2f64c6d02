"""Grading spec of the Chapter 6 mock exam (``source/ch06_mock_exam``): six troubleshooting drills,
each with a planted bug drawn from the student's id, plus a review sheet.

Per drill ``d`` two items:

* ``d_fix``: the learner's ``fix_<d>`` on hidden cases (seeds only this file holds), compared with
  references written here independently of :mod:`labkit.grading.mock_exam`:
  letterbox ``(b - [px, py, px, py]) / scale``; export ``((x / 255)[order] - mean) / std`` as
  1x3xHxW float32 for ANY contract (several are probed, the student's own among them); tracker
  settings that keep ID switches on hidden clips at 5-30 fps within twice (or 6) those of a gate
  of 1.5 x the largest step, with a gate at most 4 x that step (it must still gate); mask resize equal (IoU >= 0.99, centroid within 0.2 px) to
  pixel-centre nearest-neighbour sampling; leakage a sequence-level split (no sequence on both
  sides, every frame once, the asked fraction of sequences, repeatable); map an all-point AP at
  IoU >= 0.5 computed here;
* ``d_record``: ``LOG[d]`` holds the planted bug's id (``isolate``), the symptom measured on
  the broken stage (``reproduce``) and the metric with the learner's fix (``measure``); the
  grader derives the student's seed from the SUBMISSION FOLDER's name
  (:func:`labkit.grading.drills.student_seed`), rebuilds the drill, measures both itself (the
  fix through the probe) and compares. Numbers copied from another student, or typed, fail.

``review``: minutes for every drill and a review sheet (the check that would have caught each bug).
"""

from __future__ import annotations

import numpy as np

from labkit.grading import drills as dr
from labkit.grading.labspec import Item, LabSpec, NoAnswer, StudentRaised
from labkit.grading.mock_exam import build_drill, disc_masks, tracker_clip

_SEED = 80447
_SPEED = 150.0  # the drill's maximum object speed, px per second


def _got(value, name: str):
    if isinstance(value, StudentRaised):
        raise value
    return value


def _close(a, b) -> bool:
    return a is not None and np.isfinite(float(a)) and abs(float(a) - float(b)) <= 2e-3 + 1e-3 * abs(float(b))


# --- fixes on hidden cases --------------------------------------------------------------------

def check_letterbox(probe) -> None:
    rng = np.random.default_rng(_SEED)
    cases = []
    for w, h, s in [(640, 360, 320), (360, 640, 416), (500, 500, 256), (1000, 300, 320), (333, 777, 384)]:
        scale = min(s / w, s / h)
        cases.append((rng.uniform(0, s, (7, 4)), scale, (s - w * scale) / 2, (s - h * scale) / 2))
    cases.append((np.zeros((0, 4)), 0.5, 3.0, 0.0))
    for (b, scale, px, py), got in zip(cases, probe.map("fix_letterbox", [(c, {}) for c in cases])):
        got = np.asarray(_got(got, "fix_letterbox"), dtype=np.float64)
        ref = (b - np.array([px, py, px, py])) / scale
        assert got.shape == ref.shape, f"fix_letterbox returned shape {got.shape} for {len(b)} boxes"
        assert np.allclose(got, ref, atol=1e-6), f"fix_letterbox is wrong on a hidden {len(b)}-box case (pads {px:g}, {py:g})"


def _reference_export(image: np.ndarray, contract: dict) -> np.ndarray:
    x = image.astype(np.float64) / 255.0
    if contract["channel_order"] == "BGR":
        x = x[:, :, [2, 1, 0]]
    x = (x - np.asarray(contract["mean"])) / np.asarray(contract["std"])
    return np.moveaxis(x, -1, 0)[None]


def check_export(probe) -> None:
    rng = np.random.default_rng(_SEED + 1)
    own = build_drill("export", dr.student_seed(probe.student)).inputs["contract"]
    contracts = [own] + [{"channel_order": order, "mean": list(rng.uniform(0.3, 0.6, 3)), "std": list(rng.uniform(0.15, 0.3, 3))}
                         for order in ("RGB", "BGR", "BGR")]
    cases = [(rng.integers(0, 256, (int(rng.integers(8, 40)), int(rng.integers(8, 40)), 3)).astype(np.uint8), c)
             for c in contracts for _ in range(2)]
    for (image, contract), got in zip(cases, probe.map("fix_export", [(c, {}) for c in cases])):
        got = np.asarray(_got(got, "fix_export"))
        ref = _reference_export(image, contract)
        assert got.shape == ref.shape and got.dtype == np.float32, \
            f"fix_export must return a 1x3xHxW float32 array, got {got.shape} {got.dtype}"
        assert np.allclose(got, ref, atol=1e-5), \
            f"fix_export does not follow the contract {contract['channel_order']} with its mean and std on a hidden image"


def check_tracker(probe) -> None:
    rng = np.random.default_rng(_SEED + 2)
    rates = (5.0, 10.0, 12.5, 25.0, 30.0)
    for fps, got in zip(rates, probe.map("fix_tracker", [((fps,), {}) for fps in rates])):
        settings = _got(got, "fix_tracker")
        assert isinstance(settings, dict) and {"max_dist_px", "min_iou"} <= set(settings), \
            "fix_tracker(fps) returns a dict with max_dist_px and min_iou"
        gate = float(settings["max_dist_px"])
        assert gate <= 4 * _SPEED / fps, \
            f"at {fps:g} fps the gate {gate:.1f} px is wider than 4 x the largest step ({_SPEED / fps:.1f} px): it no longer gates"
        clips = [tracker_clip(rng, fps) for _ in range(3)]
        reference = {"max_dist_px": 1.5 * _SPEED / fps, "min_iou": 0.0}  # 1.5 x the largest step, no IoU gate
        switches, floor = (sum(dr.id_switches(c["truth_ids"], dr.track_clip(c["detections"], s)) for c in clips)
                           for s in (settings, reference))
        assert switches <= max(6, 2 * floor), \
            f"{switches} ID switches on three hidden clips at {fps:g} fps ({floor} with a gate of 1.5 x the largest step)"


def _reference_resize(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    ys = np.minimum(((np.arange(height) + 0.5) * mask.shape[0] / height).astype(int), mask.shape[0] - 1)
    xs = np.minimum(((np.arange(width) + 0.5) * mask.shape[1] / width).astype(int), mask.shape[1] - 1)
    return mask[np.ix_(ys, xs)]


def _centroid(m: np.ndarray) -> np.ndarray:
    return np.argwhere(m).mean(0)


def check_mask_resize(probe) -> None:
    rng = np.random.default_rng(_SEED + 3)
    cases = [(m, h, w) for (lh, lw, h, w) in [(60, 80, 240, 320), (51, 67, 240, 320), (96, 96, 250, 410), (90, 120, 90, 120)]
             for m in disc_masks(rng, 2, lh, lw)]
    for (m, h, w), got in zip(cases, probe.map("fix_mask_resize", [(c, {}) for c in cases])):
        got = np.asarray(_got(got, "fix_mask_resize"))
        ref = _reference_resize(m, h, w)
        assert got.shape == (h, w), f"fix_mask_resize to {h}x{w} returned shape {got.shape}"
        got = got.astype(bool)
        iou = (got & ref).sum() / max((got | ref).sum(), 1)
        shift = np.abs(_centroid(got) - _centroid(ref)).max() if got.any() else np.inf
        assert iou >= 0.99 and shift <= 0.2, \
            f"a hidden {m.shape[0]}x{m.shape[1]} mask resized to {h}x{w} is off (IoU {iou:.3f} with pixel-centre sampling, " \
            f"centroid moved {shift:.2f} px)"


def check_leakage(probe) -> None:
    rng = np.random.default_rng(_SEED + 4)
    cases = []
    for n_seq, fraction in [(30, 0.2), (12, 0.25), (7, 0.3)]:
        groups = np.repeat(np.arange(100, 100 + n_seq), rng.integers(3, 25, n_seq))
        cases.append((rng.permutation(groups), fraction, int(rng.integers(1 << 30))))
    calls = [(c, {}) for c in cases] + [(cases[0], {})]
    results = probe.map("fix_leakage", calls)
    for (groups, fraction, _), got in zip(cases, results):
        train, val = (np.asarray(x, dtype=np.int64).ravel() for x in _got(got, "fix_leakage"))
        assert len(train) and len(val), "fix_leakage returned an empty side"
        assert sorted(np.concatenate([train, val]).tolist()) == list(range(len(groups))), \
            "fix_leakage must put every frame exactly once in train or validation"
        shared = set(groups[train].tolist()) & set(groups[val].tolist())
        assert not shared, f"{len(shared)} sequence(s) have frames on both sides of a hidden split: leakage"
        n_val, n_seq = len(set(groups[val].tolist())), len(set(groups.tolist()))
        assert abs(n_val - fraction * n_seq) <= 1, f"{n_val} of {n_seq} sequences in validation for val_fraction {fraction}"
    again = [np.asarray(x).tolist() for x in _got(results[-1], "fix_leakage")]
    assert again == [np.asarray(x).tolist() for x in _got(results[0], "fix_leakage")], \
        "fix_leakage gives another split for the same seed"


def _reference_ap50(pred_xywh, scores, gt_xywh) -> float:
    """All-point AP at IoU >= 0.5: predictions by descending score (ties in input order) each take
    the best-overlapping free ground truth."""
    order = sorted(range(len(scores)), key=lambda k: -scores[k])
    free, hits = set(range(len(gt_xywh))), []
    for k in order:
        x, y, w, h = pred_xywh[k]
        best, best_iou = None, -1.0
        for g in sorted(free):
            gx, gy, gw, gh = gt_xywh[g]
            iw, ih = max(0.0, min(x + w, gx + gw) - max(x, gx)), max(0.0, min(y + h, gy + gh) - max(y, gy))
            iou = iw * ih / (w * h + gw * gh - iw * ih)
            if iou >= 0.5 and iou > best_iou:
                best, best_iou = g, iou
        hits.append(best is not None)
        free.discard(best)
    precisions = [sum(hits[:i + 1]) / (i + 1) for i in range(len(hits))]
    ap, n_gt = 0.0, len(gt_xywh)
    for i, hit in enumerate(hits):
        if hit:
            ap += max(precisions[i:]) / n_gt
    return ap


def check_map(probe) -> None:
    rng = np.random.default_rng(_SEED + 5)
    cases = []
    for n_gt, n_fp in [(10, 3), (25, 10), (4, 0), (6, 12)]:
        gt = np.concatenate([rng.uniform(0, 400, (n_gt, 2)), rng.uniform(15, 80, (n_gt, 2))], axis=1)
        pred = gt + rng.normal(0, 1, gt.shape) * gt[:, [2, 3, 2, 3]] * 0.12
        pred[:, 2:] = np.abs(pred[:, 2:])
        pred = np.concatenate([pred, np.concatenate([rng.uniform(0, 400, (n_fp, 2)), rng.uniform(15, 80, (n_fp, 2))], 1)])
        cases.append((pred, rng.permutation(np.linspace(0.05, 0.95, len(pred))), gt))
    gt = np.array([[0.0, 0.0, 10.0, 20.0], [50.0, 50.0, 10.0, 10.0]])  # IoU exactly 0.5 counts as a hit
    cases.append((np.array([[0.0, 0.0, 10.0, 10.0], [200.0, 200.0, 5.0, 5.0]]), np.array([0.9, 0.8]), gt))
    cases.append((np.zeros((0, 4)), np.zeros(0), gt))
    for (pred, scores, gt), got in zip(cases, probe.map("fix_map", [(c, {}) for c in cases])):
        ref = _reference_ap50(pred.tolist(), scores.tolist(), gt.tolist())
        got = float(_got(got, "fix_map"))
        assert abs(got - ref) <= 1e-6, f"fix_map gives {got:.4f} on a hidden case of {len(gt)} objects; AP50 there is {ref:.4f}"


# --- records, per student -----------------------------------------------------------------------

def _log_entry(probe, drill: str) -> dict:
    try:
        student_id = probe.value("STUDENT_ID")
        log = probe.value("LOG")
    except NoAnswer:
        raise AssertionError("STUDENT_ID and LOG must be set") from None
    assert str(student_id).strip() == probe.student, \
        f"STUDENT_ID is {str(student_id)[:40]!r} but this submission is {probe.student!r}: the drills were not yours"
    entry = log.get(drill) if isinstance(log, dict) else None
    assert isinstance(entry, dict), f"LOG[{drill!r}] is missing"
    return entry


def record_check(drill: str):
    def check(probe) -> None:
        entry = _log_entry(probe, drill)
        d = build_drill(drill, dr.student_seed(probe.student))
        assert entry.get("isolate") == dr.planted_bug(drill, dr.student_seed(probe.student)), \
            f"LOG[{drill!r}]['isolate'] does not name the bug planted in your {drill} drill"
        symptom = d.metric(d.broken)
        assert _close(entry.get("reproduce"), symptom), \
            f"LOG[{drill!r}]['reproduce'] is not the symptom the broken stage gives on your drill's data"
        measured = d.metric(lambda *args: probe.call(f"fix_{drill}", *args))
        assert _close(entry.get("measure"), measured), \
            f"LOG[{drill!r}]['measure'] is not what your fix_{drill} measures on your drill's data"
    return check


def check_review(probe) -> None:
    try:
        log, review = probe.value("LOG"), probe.value("REVIEW")
    except NoAnswer:
        raise AssertionError("LOG and REVIEW must be set") from None
    assert isinstance(log, dict) and isinstance(review, dict), "LOG and REVIEW are dicts keyed by drill"
    for drill in dr.DRILLS:
        minutes = (log.get(drill) or {}).get("minutes")
        assert isinstance(minutes, (int, float)) and 0 < minutes <= 240, f"LOG[{drill!r}]['minutes'] must be your minutes (0-240]"
        note = review.get(drill)
        assert isinstance(note, str) and len(note.split()) >= 6, \
            f"REVIEW[{drill!r}]: say in a sentence which check would have caught the bug"


LAB = LabSpec(
    items=[Item("letterbox_fix", 1, check_letterbox), Item("export_fix", 1, check_export),
           Item("tracker_fix", 1, check_tracker), Item("mask_resize_fix", 1, check_mask_resize),
           Item("leakage_fix", 1, check_leakage), Item("map_fix", 1, check_map),
           *[Item(f"{d}_record", 1, record_check(d)) for d in dr.DRILLS],
           Item("review", 1, check_review)],
    skip_cells=(*(f"{d}_visible" for d in dr.DRILLS), "review_visible"),
)
