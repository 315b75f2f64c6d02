"""Fast, sandbox-free checks of the grading helpers: report messages, results files, cell assembly.

Expected values are worked out by hand in each test (the sandboxed end-to-end runs are in
``tests/test_grading.py``)."""

from __future__ import annotations

import copy
import csv
import json

from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from labkit.grading.assemble import assemble, grade_id
from labkit.grading.feedback import MAX_MESSAGE, clean_message, feedback_html
from labkit.grading.results import ItemResult, LabReport, StudentResult, format_score


def test_clean_message_keeps_exactly_the_limit_and_cuts_one_more() -> None:
    assert MAX_MESSAGE == 240
    assert clean_message("x" * 240) == "x" * 240  # at the limit: untouched
    assert clean_message("x" * 241) == "x" * 237 + "..."  # one past: 237 + "..." = 240
    assert clean_message("ab cd ef", limit=7) == "ab c..."
    assert clean_message("abcd  efgh", limit=8) == "abcd..."  # trailing space before the cut is dropped


def test_clean_message_paths_control_characters_and_whitespace() -> None:
    assert clean_message(r"C:\Users\me\lab\a.py broke") == "<path> broke"
    assert clean_message("see ./notes.txt and ~/x") == "see <path> and <path>"
    assert clean_message("a single /slash stays") == "a single /slash stays"  # one component is not a path
    assert clean_message("tab\there,\r\nnew line\x00\x1f\x7f") == "tab here, new line"
    assert clean_message(3.5) == "3.5"


def test_format_score() -> None:
    assert [format_score(v) for v in (None, 2.0, 0.5, 0, 1e-7)] == ["", "2", "0.5", "0", "1e-07"]


def _report() -> LabReport:
    a = StudentResult("ann", [ItemResult("lab.ipynb", "q1", 2.0, 2.0, "passed"),
                              ItemResult("lab.ipynb", "q2", None, 1.5, "no_answer", "nothing came back")], 1.234)
    b = StudentResult("bob", [ItemResult("lab.ipynb", "q1", 0.0, 2.0, "failed", "off by one")])
    return LabReport("ch09_x", "bwrap", "bubblewrap sandbox", {"timeout": 5}, [a, b])


def test_scores_review_flag_and_dict() -> None:
    report = _report()
    ann, bob = report.students
    assert (ann.score, ann.max_score, bob.score, bob.max_score) == (2.0, 3.5, 0.0, 2.0)
    assert not report.needs_review
    for status in ("tampered", "invalid"):
        bob.items[0].status = status
        assert report.needs_review
    bob.items[0].status = "missing"
    assert not report.needs_review
    out = report.to_dict()
    assert json.loads(json.dumps(out)) == out
    assert {k: out[k] for k in ("lab", "isolation", "isolation_description", "settings", "needs_review")} == {
        "lab": "ch09_x", "isolation": "bwrap", "isolation_description": "bubblewrap sandbox",
        "settings": {"timeout": 5}, "needs_review": False}
    assert out["students"][0] == {"student": "ann", "score": 2.0, "max": 3.5, "seconds": 1.23, "items": [
        {"notebook": "lab.ipynb", "item": "q1", "score": 2.0, "max_score": 2.0, "status": "passed", "message": ""},
        {"notebook": "lab.ipynb", "item": "q2", "score": None, "max_score": 1.5, "status": "no_answer",
         "message": "nothing came back"}]}


def test_grades_csv_rows(tmp_path) -> None:
    path = _report().write_csv(tmp_path / "two" / "levels" / "grades.csv")  # missing folders are made
    assert _report().write_csv(path) == path  # and an existing one is fine (a second run overwrites)
    rows = list(csv.reader(path.open(encoding="utf-8")))
    assert rows == [["student", "notebook", "item", "score", "max", "status", "message", "isolation"],
                    ["ann", "lab.ipynb", "q1", "2", "2", "passed", "", "bwrap"],
                    ["ann", "lab.ipynb", "q2", "", "1.5", "no_answer", "nothing came back", "bwrap"],
                    ["bob", "lab.ipynb", "q1", "0", "2", "failed", "off by one", "bwrap"]]


def test_feedback_page_totals_and_escaping() -> None:
    items = [ItemResult("lab.ipynb", "q1", 2.0, 2.0, "passed"),
             ItemResult("lab.ipynb", "q<2>", None, 1.5, "failed", "expected <b>3</b> & got 4")]
    page = feedback_html("ann & co", "ch09_x", items, "bwrap")
    assert "<strong>Score: 2 / 3.5</strong>" in page
    assert "<td>q&lt;2&gt;</td><td class=num> / 1.5</td><td class=failed>failed</td>" in page
    assert "expected &lt;b&gt;3&lt;/b&gt; &amp; got 4" in page and "<b>3</b>" not in page
    assert "<title>ch09_x: feedback for ann &amp; co</title>" in page
    assert "Graded in isolation: bwrap." in page


# --------------------------------------------------------------------------- assembly
def _meta(gid: str, *, locked: bool, solution: bool = False, grade: bool = False, kind: str = "code") -> dict:
    nb = {"cell_type": kind, "grade": grade, "grade_id": gid, "locked": locked, "schema_version": 3,
          "solution": solution, "task": False}
    if grade:
        nb["points"] = 1
    return {"nbgrader": nb}


def _lab() -> tuple:
    source = new_notebook(cells=[
        new_markdown_cell("# Lab", metadata=_meta("intro", locked=True, kind="markdown")),
        new_code_cell("def f():\n    return 1", metadata=_meta("answer", locked=False, solution=True)),
        new_code_cell("assert f() == 1\nassert hidden()", metadata=_meta("check", locked=True, grade=True)),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})
    released = new_notebook(cells=[
        new_markdown_cell("# Lab", metadata=_meta("intro", locked=True, kind="markdown")),
        new_code_cell("def f():\n    raise NotImplementedError", metadata=_meta("answer", locked=False, solution=True)),
        new_code_cell("assert f() == 1", metadata=_meta("check", locked=True, grade=True)),
    ])
    return source, released


def test_grade_id_reads_only_string_ids() -> None:
    assert grade_id(new_code_cell("x", metadata=_meta("a1", locked=True))) == "a1"
    assert grade_id(new_code_cell("x")) is None
    assert grade_id(new_code_cell("x", metadata={"nbgrader": {"grade_id": 7}})) is None


def test_assemble_takes_locked_cells_from_the_source_and_answers_from_the_student() -> None:
    source, released = _lab()
    student = new_notebook(cells=[
        released.cells[0],
        new_code_cell("def f():\n    return 1", metadata={"nbgrader": {"grade_id": "answer", "points": 99},
                                                            "tags": ["mine"]}),
        new_code_cell("print('scratch')", metadata={"nbgrader": {"grade_id": "not_in_the_lab"}}),
        released.cells[2],
    ], metadata={"kernelspec": {"name": "evil", "display_name": "evil"}})
    student.cells[1].outputs = []
    out = assemble(source, released, student)
    assert out.tampered == {}
    cells = out.notebook.cells
    assert [c.source for c in cells] == ["# Lab", "def f():\n    return 1", "print('scratch')",
                                         "assert f() == 1\nassert hidden()"]  # hidden test put back
    assert cells[1].metadata["nbgrader"] == released.cells[1].metadata["nbgrader"]  # points: released
    assert cells[1].metadata["tags"] == ["mine"]
    assert "nbgrader" not in cells[2].metadata
    assert out.notebook.metadata == source.metadata


def test_assemble_reports_each_kind_of_tampering() -> None:
    source, released = _lab()
    changed = new_code_cell("assert True", metadata=released.cells[2].metadata)
    as_markdown = new_markdown_cell("def f(): return 1", metadata=released.cells[1].metadata)
    out = assemble(source, released, new_notebook(cells=[released.cells[0], released.cells[0], as_markdown, changed]))
    assert out.tampered == {
        "intro": "the cell appears more than once",
        "answer": "the answer cell was changed from code to markdown",
        "check": "a locked cell was changed (checksum mismatch); the original was run instead"}
    assert out.notebook.cells[-1].source == source.cells[2].source  # the original ran instead
    assert out.notebook.cells[1].cell_type == "code"  # the answer keeps the released cell's type
    deleted = assemble(source, released, new_notebook(cells=[released.cells[1]]))
    assert deleted.tampered == {"intro": "a locked cell was deleted", "check": "a locked cell was deleted"}
    # the instructor's own notebook is a valid submission
    assert assemble(source, released, source).tampered == {}


def test_assembly_clears_outputs_and_never_touches_its_inputs() -> None:
    source, released = _lab()
    mine = new_code_cell("x = 1", execution_count=3, outputs=[{"output_type": "stream", "name": "stdout", "text": "1"}])
    tagged = new_code_cell("y = 2", metadata={"nbgrader": {"grade_id": "not_in_the_lab"}})
    locked = new_code_cell("assert f() == 1", metadata=released.cells[2].metadata, execution_count=5,
                           outputs=[{"output_type": "stream", "name": "stdout", "text": "ok"}])
    student = new_notebook(cells=[released.cells[0], released.cells[1], mine, tagged, locked])
    before = copy.deepcopy((source, released, student))
    out = assemble(source, released, student)
    assert out.tampered == {}
    cells = out.notebook.cells
    for cell in cells[2:]:  # code cells run afresh: no outputs, no execution count
        assert (cell.outputs, cell.execution_count) == ([], None)
    assert "outputs" not in cells[0] and cells[0].cell_type == "markdown"  # markdown stays markdown
    assert "nbgrader" not in cells[3].metadata
    cells[1].metadata["nbgrader"]["points"] = 99  # the result shares nothing with the inputs
    assert (source, released, student) == before
