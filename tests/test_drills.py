"""The mock exam's drill machinery (labkit.grading.drills, labkit.grading.mock_exam): seeds per
student, helpers on hand-worked cases, and every planted bug producing its symptom."""

from __future__ import annotations

import importlib.util
import inspect

import numpy as np
import pytest

from conftest import REPO
from labkit.grading import drills as dr
from labkit.grading import mock_exam
from labkit.grading.mock_exam import build_drill, compile_stage, exam, stage_source

_spec = importlib.util.spec_from_file_location("ch06_mock_exam_grader", REPO / "autograder/graders/ch06_mock_exam.py")
grader = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(grader)


def _sequence_split(groups, val_fraction, seed):
    """A leakage-free split: whole sequences to validation."""
    groups = np.asarray(groups)
    seqs = np.unique(groups)
    val_seqs = np.random.default_rng(seed).choice(seqs, size=max(1, round(val_fraction * len(seqs))), replace=False)
    val = np.isin(groups, val_seqs)
    return np.flatnonzero(~val), np.flatnonzero(val)


#: A correct stage per drill, from the grader's references (labkit holds none: it ships to learners).
FIXED = {
    "letterbox": lambda b, scale, px, py: (np.asarray(b, dtype=np.float64).reshape(-1, 4) - [px, py, px, py]) / scale,
    "export": lambda image, contract: grader._reference_export(image, contract).astype(np.float32),
    "tracker": lambda fps: {"max_dist_px": 1.5 * grader._SPEED / fps, "min_iou": 0.0},
    "mask_resize": grader._reference_resize,
    "leakage": _sequence_split,
    "map": lambda pred, scores, gt: grader._reference_ap50(np.asarray(pred).tolist(), np.asarray(scores).tolist(),
                                                           np.asarray(gt).tolist()),
}

IDS = [f"student{k:02d}" for k in range(40)]


def test_student_seed_is_stable_distinct_and_strict():
    assert dr.student_seed("alice") == dr.student_seed(" alice ")
    assert len({dr.student_seed(s) for s in IDS}) == len(IDS)
    assert all(0 <= dr.student_seed(s) < 2**63 for s in IDS)
    with pytest.raises(ValueError, match="STUDENT_ID"):
        dr.student_seed("  ")


def test_every_bug_is_drawn_for_some_student_and_ids_vary():
    for drill, variants in dr.VARIANTS.items():
        drawn = {dr.planted_bug(drill, dr.student_seed(s)) for s in IDS}
        assert drawn == set(variants), drill
    combos = {tuple(dr.planted_bug(d, dr.student_seed(s)) for d in dr.DRILLS) for s in IDS}
    assert len(combos) >= 30  # 40 students, 486 possible exams


def test_iou_and_ap_on_hand_cases():
    assert np.allclose(dr.pair_iou([[0, 0, 10, 10]], [[0, 0, 10, 20], [5, 0, 15, 10], [20, 20, 30, 30]]), [[0.5, 1 / 3, 0]])
    iou = np.array([[0.9, 0.0], [0.6, 0.0], [0.0, 0.4]])
    # scores 0.9, 0.8, 0.7: hit, miss (gt 0 taken), miss (IoU 0.4) -> AP = 1/2 * 1
    assert dr.average_precision(iou, np.array([0.9, 0.8, 0.7]), 0.5) == pytest.approx(0.5)
    # the second prediction ranked first: miss?  no: it takes gt 0 (IoU 0.6), the first then finds gt 0 taken
    assert dr.average_precision(iou, np.array([0.8, 0.9, 0.7]), 0.5) == pytest.approx(0.5)
    assert dr.average_precision(np.array([[0.5]]), np.array([1.0]), 0.5) == 1.0  # IoU at the threshold counts
    assert dr.average_precision(np.zeros((0, 2)), np.zeros(0), 0.5) == 0.0


def test_tracker_and_id_switches_on_a_hand_case():
    box = lambda x: np.array([[x, 0.0, x + 10, 10.0]])  # noqa: E731
    frames = [box(0), box(8), box(30)]  # steps of 8 (IoU 20/180) then 22 pixels (no overlap)
    assert [t.tolist() for t in dr.track_clip(frames, {"max_dist_px": 25, "min_iou": 0.0})] == [[1], [1], [1]]
    assert [t.tolist() for t in dr.track_clip(frames, {"max_dist_px": 10, "min_iou": 0.0})] == [[1], [1], [2]]
    assert [t.tolist() for t in dr.track_clip(frames, {"max_dist_px": 25, "min_iou": 0.1})] == [[1], [1], [2]]
    truth = [np.array([7]), np.array([7]), np.array([7])]
    assert dr.id_switches(truth, [np.array([1]), np.array([1]), np.array([2])]) == 1


def test_nn_accuracy_and_export_logits():
    feats, labels = np.array([[0.0], [1.0], [10.0], [11.0]]), np.array([0, 0, 1, 1])
    assert dr.nn_accuracy(feats, labels, [0, 2], [1, 3]) == 1.0
    assert dr.nn_accuracy(feats, labels, [0, 1], [2, 3]) == 0.0
    chw = np.stack([np.full((2, 2), v) for v in (1.0, 2.0, 3.0)])
    weights = np.zeros((1, 7))
    weights[0, [0, 4, 6]] = 1.0  # mean of channel 0 + mean square of channel 1 + bias
    assert dr.export_logits(chw, weights).tolist() == [1.0 + 4.0 + 1.0]


@pytest.mark.parametrize("drill", dr.DRILLS)
def test_every_planted_bug_shows_its_symptom_and_the_correct_stage_removes_it(drill):
    worse_is_higher = drill in ("export", "tracker", "leakage")  # a gap, switches, an inflated score
    for bug in dr.VARIANTS[drill]:
        for seed in (1, 2, 3):
            d = build_drill(drill, seed)
            broken, fixed = d.metric(compile_stage(drill, bug)), d.metric(FIXED[drill])
            assert (broken > fixed) if worse_is_higher else (broken < fixed), (drill, bug, seed, broken, fixed)


def test_a_students_drill_runs_the_planted_source():
    d = exam("alice")["letterbox"]
    bug = dr.planted_bug("letterbox", dr.student_seed("alice"))
    assert d.source == stage_source("letterbox", bug) and "BEGIN" not in d.source
    assert set(dr.VARIANTS["letterbox"]) < set(d.candidates)
    # the hand case of the notebook: scale 1, pads (3, 5)
    out = d.broken(np.array([[10.0, 10.0, 20.0, 20.0]]), 1.0, 3.0, 5.0)[0].tolist()
    assert out == {"pad_not_removed": [10, 10, 20, 20], "pad_axes_swapped": [5, 7, 15, 17], "pad_doubled": [4, 0, 14, 10]}[bug]


def test_the_drill_data_references_equal_the_graders_independent_ones():
    for seed in (1, 2, 3):
        d = build_drill("export", seed)
        ref = [dr.export_logits(grader._reference_export(im, d.inputs["contract"])[0], d.inputs["weights"])
               for im in d.inputs["images"]]
        assert np.allclose(d.inputs["reference_logits"], ref, rtol=1e-12, atol=1e-12)
        assert d.metric(FIXED["export"]) < 1e-4  # the correct stage, in float32, matches to rounding
        m = build_drill("mask_resize", seed)
        for low, before in zip(m.inputs["masks"], m.inputs["before_refactor"]):
            assert np.array_equal(before, grader._reference_resize(low, m.inputs["height"], m.inputs["width"]))
        assert m.metric(FIXED["mask_resize"]) == 1.0


def test_labkit_holds_no_correct_stage():
    with pytest.raises(ValueError, match="drill 'letterbox' has no bug None"):
        stage_source("letterbox", None)
    with pytest.raises(ValueError, match="has no bug 'typo'; its bugs: \\['pad_axes_swapped'"):
        compile_stage("letterbox", "typo")
    text = inspect.getsource(mock_exam) + inspect.getsource(dr)
    for answer in ("(b - np.array([pad_x, pad_y, pad_x, pad_y])) / scale", "(np.arange(height) + 0.5)",
                   "MAX_SPEED_PX_S / fps, \"min_iou\": 0.0", "pair_iou(xywh_to_xyxy(pred_xywh), xywh_to_xyxy(gt_xywh)), scores, 0.5"):
        assert answer not in text, f"labkit ships a correct stage: {answer}"
