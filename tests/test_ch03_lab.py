"""The Chapter 3 graded lab (``autograder/source/ch03_qa_export``) grades what it claims to.

* The instructor notebook, solutions in place, runs with every test cell passing and leaves its
  export package (mask, overlay, summary per image) under ``$LABKIT_ARTIFACTS``.
* With the solutions stubbed as ``nbgrader generate_assignment`` stubs them, every graded test
  cell fails: no point is free.
* The bugs the export exists to catch pass the visible tests and lose the hidden points: an
  overlay shifted by one pixel, a mask written upside down, a "fraction" that is a count, and
  one wrong quiz answer.
* The student copy holds neither solutions nor hidden tests nor quiz answers.
"""

from __future__ import annotations

import json

import pytest

from lab_notebooks import (blanked, check_metadata, check_quiz, lab_kernel, load, run_graded, student_view,
                           with_wrong_answers)

LAB = "ch03_qa_export"
POINTS = {"png_visible": 1, "overlay_visible": 1, "summary_visible": 1, "export_masks": 2, "export_overlays": 2,
          "export_summaries": 3, **{f"q{i}_check": 1 for i in range(1, 6)}}
WRONG = {
    "overlay_answer": [("    return out\n", "    return np.roll(out, 1, axis=1)\n")],
    "export_answer": [('save_label_png(labels, out_dir', 'save_label_png(labels[::-1], out_dir')],
    "summary_answer": [("float((confidence < LOW_CONFIDENCE).mean())", "float((confidence < LOW_CONFIDENCE).sum())")],
    "q2_answer": [('answer_q2 = "a"', 'answer_q2 = "c"')],
}
#: grade_ids that fail with the wrong answers above; every other graded cell still passes.
FAILS_WITH_WRONG = {"export_masks", "export_overlays", "export_summaries", "q2_check"}


@pytest.fixture(scope="module")
def source():
    return load(LAB)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """(run, workdir): run(nb) -> grade_id -> error or None, all variants in one kernel."""
    workdir = tmp_path_factory.mktemp(LAB)
    with lab_kernel(workdir) as km:
        yield (lambda nb: run_graded(nb, km, workdir)), workdir


def test_nbgrader_metadata_is_valid(source):
    check_metadata(source, POINTS)
    assert sum(POINTS.values()) == 15


def test_quiz_matches_its_answer_key(source):
    check_quiz(source, LAB)


def test_student_copy_reveals_nothing(source):
    text = "\n".join(c.source for c in student_view(source).cells)
    for secret in ("BEGIN SOLUTION", "HIDDEN TESTS", "_reference_overlay", "connectedComponents((labels == cls)"):
        assert secret not in text, secret
    assert "raise NotImplementedError()" in text and "quiz.assert_correct" in text


@pytest.mark.slow
def test_instructor_solution_passes_every_test(source, lab):
    run, workdir = lab
    results = run(source)
    assert set(results) == set(POINTS)
    assert not {k: v for k, v in results.items() if v}, results
    export = workdir / "artifacts" / "ch03_qa_export"
    summaries = sorted((export / "summaries").glob("*.json"))
    assert summaries and len(summaries) == len(list((export / "masks").glob("*.png"))) == len(list((export / "overlays").glob("*.png")))
    first = json.loads(summaries[0].read_text())
    assert first["model_checkpoint"].startswith("noisy-segmenter-") and first["dataset_version"]["size"] == "small"


@pytest.mark.slow
def test_blank_answers_fail_every_graded_test(source, lab):
    run, _ = lab
    results = run(blanked(source))
    assert not [k for k, v in results.items() if v is None], results


@pytest.mark.slow
def test_wrong_answers_lose_only_the_hidden_points(source, lab):
    run, _ = lab
    results = run(with_wrong_answers(source, WRONG))
    failed = {k for k, v in results.items() if v}
    assert failed == FAILS_WITH_WRONG, {k: results[k] for k in failed ^ FAILS_WITH_WRONG}
