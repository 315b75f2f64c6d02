"""labkit.grading.release on a hand-made one-lab course in tmp_path (test_release.py needs this
repository's autograder/ and notebooks/): the student copy nbgrader writes (stub for the solution,
hidden test gone, outputs cleared, support files copied into the chapter's labs/), the in-memory view
agreeing with it, and nbgrader's failures reported."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from labkit.errors import DataError, LabkitError
from labkit.grading.coursedir import CourseDir
from labkit.grading.release import clear_outputs, generate_assignment, release_all, released_view

STUB = "# STUDENT CODE\nraise NotImplementedError()"


def _meta(grade_id: str, *, solution=False, grade=False, locked=False, points=None) -> dict:
    meta = {"grade_id": grade_id, "solution": solution, "grade": grade, "locked": locked, "schema_version": 3}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def _source() -> nbformat.NotebookNode:
    answer = new_code_cell("def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
                           metadata=_meta("answer", solution=True), execution_count=3,
                           outputs=[new_output("stream", name="stdout", text="hi\n")])
    check = new_code_cell("assert f(1) == 2\n### BEGIN HIDDEN TESTS\nassert f(5) == 10\n### END HIDDEN TESTS",
                          metadata=_meta("check", grade=True, locked=True, points=1))
    return new_notebook(cells=[new_markdown_cell("# Lab"), answer, check])


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> CourseDir:
    root = tmp_path_factory.mktemp("course")
    (root / "source" / "ch01_demo" / "data" / "deep").mkdir(parents=True)
    (root / "source" / "ch01_demo" / "data" / "table.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    (root / "source" / "ch01_demo" / "data" / "deep" / "x.txt").write_text("x", encoding="utf-8")
    nbformat.write(_source(), root / "source" / "ch01_demo" / "ch01_demo.ipynb")
    (root / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.course_id = 'demo'\nc.ClearSolutions.code_stub = {{'python': {STUB!r}}}\n"
        "c.ClearOutput.enabled = False\n",  # nbgrader keeps the outputs: release_all must clear them itself
        encoding="utf-8")
    return CourseDir(root)


@pytest.fixture(scope="module")
def released(course, tmp_path_factory) -> tuple[Path, list[Path]]:
    notebooks = tmp_path_factory.mktemp("notebooks")
    (notebooks / "01_first").mkdir()
    (notebooks / "02_second").mkdir()
    return notebooks, release_all(course, notebooks)


def _student_cells(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source) for c in nb.cells]


EXPECTED = [("markdown", "# Lab"), ("code", "def f(x):\n    " + STUB.replace("\n", "\n    ")),
            ("code", "assert f(1) == 2\n")]


def test_release_all_writes_the_student_copy_into_the_chapter(released):
    notebooks, written = released
    labs = notebooks / "01_first" / "labs"
    assert written == [labs / "ch01_demo.ipynb", labs / "data" / "deep" / "x.txt", labs / "data" / "table.csv"]
    assert (labs / "data" / "table.csv").read_text(encoding="utf-8") == "a,b\n1,2\n"
    assert not (notebooks / "02_second" / "labs").exists()
    nb = nbformat.read(labs / "ch01_demo.ipynb", as_version=4)
    assert [(t, s.rstrip("\n")) for t, s in _student_cells(nb)] == [(t, s.rstrip("\n")) for t, s in EXPECTED]
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert "checksum" in code[1].metadata["nbgrader"]


def test_the_in_memory_view_is_what_nbgrader_releases(course, released):
    notebooks, _ = released
    source = course.source_notebooks("ch01_demo")[0]
    view = released_view(course, "ch01_demo", nbformat.read(source, as_version=4))
    disk = nbformat.read(notebooks / "01_first" / "labs" / "ch01_demo.ipynb", as_version=4)
    assert _student_cells(view) == _student_cells(disk)
    assert [c.metadata.get("nbgrader") for c in view.cells] == [c.metadata.get("nbgrader") for c in disk.cells]
    assert not (course.root / "gradebook.db").exists()
    assert "BEGIN SOLUTION" in source.read_text(encoding="utf-8")  # the source is untouched


def test_release_all_of_named_labs(course, tmp_path):
    (tmp_path / "01_x").mkdir()
    written = release_all(course, tmp_path, labs=["ch01_demo"])
    assert sorted(p.name for p in written) == ["ch01_demo.ipynb", "table.csv", "x.txt"]


def test_generate_assignment_errors(course, tmp_path):
    with pytest.raises(DataError, match="no lab 'ch01_nope' \\(labs: ch01_demo\\)"):
        generate_assignment(course, "ch01_nope", tmp_path / "release")
    broken = tmp_path / "broken"
    (broken / "source" / "ch01_bad").mkdir(parents=True)
    (broken / "source" / "ch01_bad" / "ch01_bad.ipynb").write_text("not json", encoding="utf-8")
    with pytest.raises(LabkitError, match="^nbgrader generate_assignment ch01_bad failed:\n"):
        generate_assignment(CourseDir(broken), "ch01_bad", tmp_path / "release")
    assert not (broken / "gradebook.db").exists()


def test_clear_outputs_in_place():
    nb = _source()
    nb.cells[2].execution_count = 4
    assert clear_outputs(nb) is nb
    assert [(c.get("outputs"), c.get("execution_count")) for c in nb.cells] == [(None, None), ([], None), ([], None)]
    assert nb.cells[1].source.startswith("def f(x)")
