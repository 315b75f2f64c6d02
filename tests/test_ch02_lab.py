"""The Chapter 2 graded lab (``autograder/source/ch02_nms``) grades what it claims to.

* The instructor notebook, solutions in place, runs with every test cell passing (this also
  proves the AP50 target is reached and that the quiz hashes match the instructor's answers).
* With the solutions stubbed as ``nbgrader generate_assignment`` stubs them, every graded test
  cell fails: no point is free.
* Plausible wrong answers pass the visible tests and lose the hidden points: a box_iou that drops
  float64 to float32, NMS that suppresses at IoU >= threshold, linear Soft-NMS that ignores N_t,
  a postprocess that ignores its ``iou`` argument, and one wrong quiz answer.
* The student copy holds neither solutions nor hidden tests nor quiz answers.
"""

from __future__ import annotations

import pytest

from lab_notebooks import (blanked, check_metadata, check_quiz, graded_cells, lab_kernel, load, run_graded, student_view,
                           with_wrong_answers)

LAB = "ch02_nms"
POINTS = {"iou_visible": 1, "iou_hidden": 2, "threshold_visible": 1, "nms_visible": 1, "nms_hidden": 3,
          "softnms_visible": 1, "softnms_hidden": 2, "postprocess_visible": 1, "postprocess_hidden": 2,
          **{f"q{i}_check": 1 for i in range(1, 6)}}
WRONG = {
    "iou_answer": [("    area1 = (boxes1", "    boxes1, boxes2 = boxes1.float(), boxes2.float()\n    area1 = (boxes1")],
    "nms_answer": [("boxes[order]) > iou_threshold", "boxes[order]) >= iou_threshold")],
    "softnms_answer": [("torch.where(overlap >= iou_threshold, 1 - overlap, torch.ones_like(overlap))", "1 - overlap")],
    "postprocess_answer": [("batched_nms(boxes, scores, classes, iou)", "batched_nms(boxes, scores, classes, IOU)")],
    "q3_answer": [('answer_q3 = "a"', 'answer_q3 = "b"')],
}
#: grade_ids that fail with the wrong answers above; every other graded cell still passes.
FAILS_WITH_WRONG = {"iou_hidden", "nms_hidden", "softnms_hidden", "postprocess_hidden", "q3_check"}


@pytest.fixture(scope="module")
def source():
    return load(LAB)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """run(nb) -> grade_id -> error or None, all variants in one kernel."""
    workdir = tmp_path_factory.mktemp(LAB)
    with lab_kernel(workdir) as km:
        yield lambda nb: run_graded(nb, km, workdir)


def test_nbgrader_metadata_is_valid(source):
    check_metadata(source, POINTS)
    assert sum(POINTS.values()) == 19


def test_quiz_matches_its_answer_key(source):
    check_quiz(source, LAB)


def test_student_copy_reveals_nothing(source):
    text = "\n".join(c.source for c in student_view(source).cells)
    for secret in ("BEGIN SOLUTION", "HIDDEN TESTS", "_reference_soft_nms", "_check_valid_nms",
                   "torch.exp(-overlap"):
        assert secret not in text, secret
    assert "raise NotImplementedError()" in text and "quiz.assert_correct" in text


@pytest.mark.slow
def test_instructor_solution_passes_every_test(source, run):
    results = run(source)
    assert set(results) == set(POINTS)
    assert not {k: v for k, v in results.items() if v}, results


@pytest.mark.slow
def test_blank_answers_fail_every_graded_test(source, run):
    results = run(blanked(source))
    assert not [k for k, v in results.items() if v is None], results


@pytest.mark.slow
def test_wrong_answers_lose_only_the_hidden_points(source, run):
    results = run(with_wrong_answers(source, WRONG))
    failed = {k for k, v in results.items() if v}
    assert failed == FAILS_WITH_WRONG, {k: results[k] for k in failed ^ FAILS_WITH_WRONG}
    assert set(graded_cells(source)) == set(results)
