"""labkit.grading.grader on a one-lab course in tmp_path: the pieces by hand (seed preamble, kernel
environment, work folder, cells run, item scoring, cell notes), the submissions that never reach a
kernel (missing, linked, unreadable), and one small real run (bubblewrap) with its written files."""

from __future__ import annotations

import csv
import json
import random
import sys

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

import labkit
from labkit.grading import grader as gr
from labkit.grading.coursedir import CourseDir
from labkit.grading.labspec import Item, LabSpec, NoAnswer, StudentRaised
from labkit.grading.release import released_view
from labkit.grading.runner import CellRun
from labkit.grading.sandbox import level_works

LAB = "ch01_demo"
SPEC = '''
from pathlib import Path

from labkit.grading.labspec import Item, LabSpec


def _check(probe):
    n = len(probe.student)  # each student's own case (3 for ann, bob and cat)
    assert n and probe.call("double", n) == 2 * n, f"double({n}) is not {2 * n}"


def _prepare():
    with open(Path(__file__).with_name("prepared.txt"), "a") as f:
        f.write("1")


LAB = LabSpec(items=[Item("double", 2, _check, timeout=20.0)], skip_cells=("explore",), prepare=_prepare,
              blocked_modules=("labkit.data.validate",))
'''


def _cell(source: str, gid: str, *, solution=False, grade=False, locked=True, kind="code"):
    meta = {"nbgrader": {"cell_type": kind, "grade": grade, "grade_id": gid, "locked": locked and not solution,
                         "schema_version": 3, "solution": solution, "task": False, **({"points": 0} if grade else {})}}
    return (new_code_cell if kind == "code" else new_markdown_cell)(source, metadata=meta)


def _source():
    return new_notebook(cells=[
        _cell("# Demo", "intro", kind="markdown"),
        _cell("def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION", "answer", solution=True),
        _cell("assert double(1) == 2", "check", grade=True),
        _cell("raise SystemExit('explore is skipped')", "explore"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    course = CourseDir(root)
    (course.source / LAB / "data").mkdir(parents=True)
    (course.source / LAB / "data" / "table.csv").write_text("a\n1\n")
    nbformat.write(_source(), course.source / LAB / f"{LAB}.ipynb")
    (root / "graders").mkdir()
    course.spec_file(LAB).write_text(SPEC)
    return course


def test_seed_preamble_seeds_both_generators():
    namespace: dict = {}
    exec(gr.seed_preamble(7), namespace)  # noqa: S102
    assert set(namespace) == {"__builtins__"}  # it leaves no names behind
    random.seed(7)
    np.random.seed(7)
    expected = (random.random(), np.random.random())
    random.seed(1)
    np.random.seed(1)
    exec(gr.seed_preamble(7), {})  # noqa: S102
    assert (random.random(), np.random.random()) == expected


def test_kernel_env(tmp_path):
    env = gr.kernel_env(tmp_path, tmp_path / "work", 11, {"LABKIT_DATA": "/data", "LANG": "X"})
    assert (tmp_path / "home").is_dir() and (tmp_path / "tmp").is_dir()
    assert env["PATH"] == f"{sys.executable.rsplit('/', 1)[0]}:/usr/local/bin:/usr/bin:/bin"
    assert (env["HOME"], env["TMPDIR"], env["IPYTHONDIR"], env["MPLCONFIGDIR"]) == (
        str(tmp_path / "home"), str(tmp_path / "tmp"), str(tmp_path / "home" / ".ipython"), str(tmp_path / "home" / ".mpl"))
    assert env["PYTHONHASHSEED"] == "11" and env["LABKIT_ARTIFACTS"] == str(tmp_path / "work" / "artifacts")
    assert env["PYTHONPATH"] == str(gr.Path(labkit.__file__).resolve().parent.parent)
    assert env["LABKIT_DATA"] == "/data" and env["LANG"] == "X" and env["LC_ALL"] == "C.UTF-8" and env["TZ"] == "UTC"
    assert all(env[k] == "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                       "PYTHONDONTWRITEBYTECODE"))
    assert env["MPLBACKEND"] == "Agg" and env["MALLOC_ARENA_MAX"] == "2" and len(env) == 18


def test_the_work_folder_leaves_links_and_checkpoints_out(tmp_path):
    lab = tmp_path / "sub"
    (lab / ".ipynb_checkpoints").mkdir(parents=True)
    (lab / "nb.ipynb").write_text("mine")
    (lab / "data").mkdir()
    (lab / "data" / "table.csv").write_text("edited by the student")
    (lab / "leak.txt").symlink_to(tmp_path / "secret")
    (tmp_path / "secret").write_text("s")
    support = tmp_path / "support.csv"
    support.write_text("original")
    work = gr._prepare_workdir(tmp_path / "run", lab, [(support, gr.Path("data/table.csv")),
                                                        (support, gr.Path("new/deep.csv"))])
    assert work == tmp_path / "run" / "work"
    assert sorted(str(p.relative_to(work)) for p in work.rglob("*")) == [
        "data", "data/table.csv", "nb.ipynb", "new", "new/deep.csv"]
    assert (work / "data" / "table.csv").read_text() == "original" and (work / "new" / "deep.csv").read_text() == "original"


def test_cells_to_run():
    cells = _source().cells + [_cell("x = 1", "free", locked=False), _cell("y = 2", "locked_grade", grade=True)]
    cells[-1].metadata["nbgrader"]["locked"] = False  # a grade cell is a visible check all the same (nbgrader)
    assert gr._cells_to_run(cells, ("explore",)) == [
        (1, cells[1].source), (2, None), (3, None), (4, "x = 1"), (5, None)]
    assert gr._cells_to_run(cells, ())[2] == (3, "raise SystemExit('explore is skipped')")


def test_cell_problems_names_at_most_two_cells_counted_from_one():
    runs = [CellRun("ok"), CellRun("timeout", message="t"), CellRun("error", message="e"), CellRun("crashed", message="c"),
            CellRun("not_run", message="n")]
    assert gr._cell_problems(runs, [0, 2, 4, 6, 8]) == "cell 3: t; cell 7: c"
    assert gr._cell_problems(runs[-1:], [9]) == "cell 10: n" and gr._cell_problems([CellRun("skipped")], [0]) == ""


def _raise(exc):
    def check(probe):
        raise exc
    return check


@pytest.mark.parametrize("check, status, message", [
    (lambda probe: None, "passed", ""),
    (_raise(AssertionError("double(3) is not 6")), "failed", "double(3) is not 6"),
    (_raise(AssertionError()), "failed", "the check failed"),
    (_raise(StudentRaised("double", "KeyError", "'k'")), "failed", "double raised KeyError: 'k'"),
    (_raise(StudentRaised("double", "StopIteration", "")), "failed", "double raised StopIteration"),
    (_raise(NoAnswer("double is not defined after the notebook ran")), "no_answer",
     "double is not defined after the notebook ran (cell 2: died)"),
    (_raise(TypeError("unhashable")), "failed", "the answer has the wrong type or shape (TypeError)"),
])
def test_score_item(check, status, message):
    result = gr.score_item(Item("double", 2.5, check), None, "nb", "cell 2: died")
    assert (result.notebook, result.item, result.max_score, result.status, result.message) == ("nb", "double", 2.5, status,
                                                                                                message)
    assert result.score == (2.5 if status == "passed" else 0.0)


def test_no_cell_note_without_problems():
    result = gr.score_item(Item("q", 1, _raise(NoAnswer("q: gone"))), None, "nb")
    assert result.message == "q: gone"


@pytest.fixture(scope="module")
def lab_grader(course):
    if not level_works("bwrap"):
        pytest.skip("bubblewrap does not work here")
    settings = gr.GradeSettings(timeout_per_cell=20.0, memory_mb=3000, readonly_paths=(course.root / "graders",))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LABKIT_DATA", str(course.root / "source"))
        return gr.LabGrader(course, LAB, settings)


def test_the_grader_set_up(lab_grader, course):
    assert (course.root / "graders" / "prepared.txt").read_text() == "1"  # prepare ran once
    assert lab_grader.sandbox.blocked == ("labkit.data.validate",) and lab_grader.sandbox.memory_mb == 3000
    assert lab_grader.sandbox.extra_readonly == (course.root / "graders", course.source)
    assert lab_grader.passed_env["LABKIT_DATA"] == str(course.source)
    assert list(lab_grader.sources) == [f"{LAB}.ipynb"] and [i.name for i in lab_grader.items_of(f"{LAB}.ipynb")] == ["double"]
    assert lab_grader.support == [(course.source / LAB / "data" / "table.csv", gr.Path("data/table.csv"))]


def test_submissions_that_reach_no_kernel(lab_grader, tmp_path):
    name = f"{LAB}.ipynb"
    missing = lab_grader.grade_notebook(name, tmp_path / "nobody")
    assert [(r.notebook, r.item, r.score, r.max_score, r.status, r.message) for r in missing] == [
        (LAB, "double", 0.0, 2, "missing", f"no {name} in the submission")]
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / name).symlink_to(lab_grader.course.source / LAB / name)
    assert lab_grader.grade_notebook(name, tmp_path / "linked")[0].status == "missing"
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / name).write_text("{not json")
    invalid = lab_grader.grade_notebook(name, tmp_path / "broken")
    assert invalid[0].status == "invalid" and invalid[0].message.startswith(f"{name} is not a readable notebook: ")
    assert (invalid[0].notebook, invalid[0].item, invalid[0].score, invalid[0].max_score) == (LAB, "double", 0.0, 2)


def test_items_of_a_lab_with_two_notebooks(lab_grader, monkeypatch):
    items = [Item("a", 1, print, notebook="one.ipynb"), Item("b", 1, print), Item("c", 1, print, notebook="two.ipynb")]
    monkeypatch.setattr(lab_grader, "spec", LabSpec(items))
    monkeypatch.setattr(lab_grader, "sources", {"one.ipynb": None, "two.ipynb": None})
    assert [i.name for i in lab_grader.items_of("one.ipynb")] == ["a"]  # "b" names no notebook: none of two
    monkeypatch.setattr(lab_grader, "sources", {"one.ipynb": None})
    assert [i.name for i in lab_grader.items_of("one.ipynb")] == ["a", "b"]


@pytest.fixture(scope="module")
def submissions(course, tmp_path_factory):
    """ann is right only if the kernel was seeded with the run's seed (3) and edits a locked check
    cell; bob is wrong; cat imports a blocked module."""
    if not level_works("bwrap"):
        pytest.skip("bubblewrap does not work here")
    subs = tmp_path_factory.mktemp("subs")
    random.seed(3)
    np.random.seed(3)
    seeded = (random.random(), float(np.random.random()))
    released = released_view(course, LAB, _source())
    answers = {"ann": f"import random, numpy\n_r = (random.random(), float(numpy.random.random()))\n"
                      f"def double(x):\n    return x + x if _r == {seeded!r} else 0",
               "bob": "def double(x):\n    return x * 3",
               "cat": "import labkit.data.validate\ndef double(x):\n    return 2 * x"}
    for student, answer in answers.items():
        nb = nbformat.from_dict(json.loads(json.dumps(released)))
        nb.cells[1].source = answer
        if student == "ann":
            nb.cells[2].source = "pass"  # the locked check, edited
        (subs / student / LAB).mkdir(parents=True)
        nbformat.write(nb, subs / student / LAB / f"{LAB}.ipynb")
    (subs / ".hidden").mkdir()
    (subs / "zed").symlink_to(subs / "ann")
    return subs


def _outcomes(report) -> list[tuple]:
    return [(s.student, [(i.item, i.score, i.status, i.message[:18]) for i in s.items]) for s in report.students]


EXPECTED = [("ann", [("double", 2.0, "passed", ""), ("check", 0.0, "tampered", "")]),
            ("bob", [("double", 0.0, "failed", "double(3) is not 6")]),
            ("cat", [("double", 0.0, "no_answer", "double is not defined after the notebook ran"[:18])])]


def test_parallel_grading_reports_in_student_order(course, submissions, tmp_path):
    settings = gr.GradeSettings(timeout_per_cell=20.0, memory_mb=3000, seed=3, jobs=2)
    report = gr.grade_lab(course, LAB, submissions, tmp_path / "out", settings, progress=False)
    got = _outcomes(report)
    got[0][1][1] = got[0][1][1][:3] + ("",)  # the tampering message is nbgrader's wording
    assert got == EXPECTED


def test_a_small_real_run(course, submissions, tmp_path, capsys):
    out = tmp_path / "out"
    settings = gr.GradeSettings(timeout_per_cell=20.0, memory_mb=3000, seed=3)
    report = gr.grade_lab(course, LAB, submissions, out, settings, progress=True)
    assert f"grading {LAB}: 100%" in capsys.readouterr().err  # the progress bar
    assert [s.student for s in report.students] == ["ann", "bob", "cat"]
    got = {s.student: (s.items[0].status, s.items[0].score, s.items[0].message) for s in report.students}
    assert [(i.item, i.score, i.max_score, i.status) for i in report.students[0].items[1:]] == [("check", 0.0, 0.0, "tampered")]
    assert report.needs_review and [len(s.items) for s in report.students] == [2, 1, 1]
    assert got["ann"] == ("passed", 2.0, "") and got["bob"] == ("failed", 0.0, "double(3) is not 6")
    assert got["cat"][0] == "no_answer"  # the module is blocked: the cell fails and double is never defined
    assert report.settings["seed"] == 3 and report.settings["readonly_paths"] == "()"
    assert report.isolation == "bwrap"
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["student"], r["score"], r["status"]) for r in rows] == [("ann", "2", "passed"), ("ann", "0", "tampered"),
                                                                       ("bob", "0", "failed"), ("cat", "0", "no_answer")]
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(report.to_dict()))
    assert sorted(p.relative_to(out).as_posix() for p in (out / "feedback").rglob("*.html")) == [
        f"feedback/{s}/{LAB}.html" for s in ("ann", "bob", "cat")]
    assert "double(3) is not 6" in (out / "feedback" / "bob" / f"{LAB}.html").read_text(encoding="utf-8")
