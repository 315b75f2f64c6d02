"""The Chapter 6 graded capstone (``autograder/source/ch06_capstone``) grades what it claims to,
through the grader: the learner's config really runs (on a hidden sequence, in the sandbox), and
every number and file is checked against what the grader measures itself.

* The instructor notebook (the shipped ``detect-base`` with the default tracker) gets every point.
* The blank student copy gets none.
* Gamed or careless submissions lose exactly the items they break: typed numbers instead of the
  measured ones (metrics), a success metric without its protocol (spec), a report without the
  checkpoint hashes (report), a wrong quiz answer (q3), and track ids renumbered in predictions.jsonl after the video was
  rendered (video, and metrics: the predictions no longer reproduce).
"""

from __future__ import annotations


from lab_notebooks import (  # noqa: F401 (source: the lab notebook fixture)
    assert_each_variant_earns, check_metadata, source, student_text)
from test_grading import require_bwrap

LAB = "ch06_capstone"
WRONG = {
    "typed_numbers": ({"report_answer": [('REPORTED = {"AP50": METRICS_FILE["box"]["AP50"], "HOTA": METRICS_FILE["tracking"]["HOTA"],\n'
                                          '            "IDF1": METRICS_FILE["tracking"]["IDF1"]}',
                                          'REPORTED = {"AP50": 0.412, "HOTA": 0.538, "IDF1": 0.601}')]}, {"metrics"}),
    "metric_without_protocol": ({"spec_answer": [('"iou_thresholds": "box AP at IoU 0.5; HOTA over 0.05 to 0.95",\n', '')],
                                 "q3_answer": [('answer_q3 = "a"', 'answer_q3 = "b"')]}, {"spec", "q3"}),
    "report_without_hashes": ({"report_answer": [("sha256 `{m['sha256']}`", "(see the manifest)")]}, {"report"}),
    "ids_renumbered_after_video": ({"report_answer": [('Path("capstone_report.md").write_text',
                                                       'records = [json.loads(x) for x in (RUN / "predictions.jsonl").read_text().splitlines()]\n'
                                                       'for r in records:\n'
                                                       '    for o in r["objects"]:\n'
                                                       '        o["track_id"] = None if o["track_id"] is None else o["track_id"] + 7\n'
                                                       '(RUN / "predictions.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\\n" for r in records))\n'
                                                       'Path("capstone_report.md").write_text')]}, {"video", "metrics"}),
}


def test_nbgrader_metadata_is_valid(source):
    check_metadata(source, LAB, 15)


def test_student_copy_reveals_nothing(source):
    text = student_text(source, ("BEGIN SOLUTION", "66023", "SPEC = {", "REPORTED = {", "answer_q1 ="))
    assert text.count("raise NotImplementedError()") == 8 and "def capstone_run" in text


def test_grading_earns_exactly_what_each_variant_deserves(source, tmp_path, monkeypatch):
    require_bwrap()
    assert_each_variant_earns(LAB, source, {}, WRONG, tmp_path, monkeypatch)
