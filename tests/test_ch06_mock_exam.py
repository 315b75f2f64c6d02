"""The Chapter 6 mock exam (``autograder/source/ch06_mock_exam``) grades what it claims to, through
the grader, with each submission's drills drawn from its folder name.

* The instructor notebook gets every point under any student id (its isolation steps measure the
  broken stage instead of assuming a bug), and so does a second correct solution (OpenCV's
  pixel-centre nearest neighbour, a table-free AP, a hashed split).
* The blank student copy gets none.
* Plausible wrong fixes lose exactly their drill's fix item; a typed symptom, a decoy diagnosis
  and missing minutes lose exactly their record or review item; a notebook passed on to another
  student (its STUDENT_ID another's) loses every record item.
"""

from __future__ import annotations


from lab_notebooks import check_metadata, grade_variants, item_points, lost, source, student_text, student_view, with_answers  # noqa: F401 (source: the lab notebook fixture)
from test_grading import require_bwrap

LAB = "ch06_mock_exam"
DRILLS = ("letterbox", "export", "tracker", "mask_resize", "leakage", "map")
ALT = {
    "mask_resize_answer": '''def fix_mask_resize(mask, height, width):
    """OpenCV's exact nearest neighbour samples pixel centres."""
    import cv2
    return cv2.resize(np.asarray(mask, dtype=np.uint8), (width, height), interpolation=cv2.INTER_NEAREST_EXACT) > 0''',
    "leakage_answer": '''def fix_leakage(groups, val_fraction, seed):
    """Sequences shuffled by a seeded permutation; the first ones go to validation."""
    groups = np.asarray(groups)
    seqs = np.random.default_rng(seed).permutation(np.unique(groups))
    val = np.isin(groups, seqs[:max(1, int(round(val_fraction * len(seqs))))])
    return np.flatnonzero(~val), np.flatnonzero(val)''',
    "tracker_answer": '''def fix_tracker(fps):
    """Twice the largest step between frames, a weak IoU gate."""
    return {"max_dist_px": 2.0 * 150.0 / fps, "min_iou": 0.0}''',
}
WRONG = {
    "letterbox_half_pad": ({"letterbox_answer": [("(b - np.array([pad_x, pad_y, pad_x, pad_y]))",
                                                  "(b - np.array([pad_x, pad_y, pad_x, pad_y]) / 2)")]}, {"letterbox_fix"}),
    "export_fixed_contract": ({"export_answer": [('if contract["channel_order"] == "BGR":', "if False:")]}, {"export_fix"}),
    "tracker_30fps_gate": ({"tracker_answer": [("1.5 * 150.0 / fps", "1.5 * 150.0 / 30")]}, {"tracker_fix"}),
    "tracker_no_gate": ({"tracker_answer": [("1.5 * 150.0 / fps", "1e4")]}, {"tracker_fix"}),
    "mask_corner_aligned": ({"mask_resize_answer": [("(np.arange(height) + 0.5)", "np.arange(height)"),
                                                    ("(np.arange(width) + 0.5)", "np.arange(width)")]}, {"mask_resize_fix"}),
    "leakage_frame_split": ({"leakage_answer": [("val = np.isin(groups, val_seqs)",
                                                 "val = rng.random(len(groups)) < val_fraction")]}, {"leakage_fix"}),
    "map_strict_iou": ({"map_answer": [("iou[k] >= 0.5", "iou[k] > 0.5")]}, {"map_fix"}),
    "typed_symptom": ({"export_log": [('"reproduce": D.metric(D.broken)', '"reproduce": 1.0')]}, {"export_record"}),
    "decoy_diagnosis": ({"letterbox_log": [('"isolate": hypotheses[probe_box]', '"isolate": "stale_cache"')]},
                        {"letterbox_record"}),
    "no_minutes": ({"map_log": [('"minutes": 13', '"minutes": 0')]}, {"review"}),
}
PASSED_ON = "passed_on"  # graded under this id, the notebook still says STUDENT_ID = "instructor"


def _as(student: str, nb):
    return with_answers(nb, {"student_id": [('"instructor"', f'"{student}"')]})


def test_nbgrader_metadata_is_valid(source):
    check_metadata(source, LAB, 13)


def test_student_copy_reveals_nothing(source):
    text = student_text(source, ("BEGIN SOLUTION", "80447", "(np.arange(height) + 0.5)", "hypotheses[probe_box]", "REVIEW = {"))
    assert text.count("raise NotImplementedError()") >= 14


def test_grading_earns_exactly_what_each_variant_deserves(source, tmp_path, monkeypatch):
    require_bwrap()
    variants = {"instructor": source, "alternative": _as("alternative", with_answers(source, ALT)),
                "blank": student_view(source), PASSED_ON: source,
                **{name: _as(name, with_answers(source, edits)) for name, (edits, _) in WRONG.items()}}
    scores, points = grade_variants(LAB, variants, tmp_path, monkeypatch), item_points(LAB)
    assert not lost(scores["instructor"], points) and not lost(scores["alternative"], points), scores
    assert lost(scores["blank"], points) == set(points)
    assert lost(scores[PASSED_ON], points) == {f"{d}_record" for d in DRILLS}, scores[PASSED_ON]
    for name, (_, expected) in WRONG.items():
        assert lost(scores[name], points) == expected, (name, scores[name])
