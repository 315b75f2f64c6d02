"""``labkit grade``: full marks for the instructor's answers, nothing for a blank copy, and a bad
submission (endless loop, crash, memory bomb, ignored interrupt, tampering, snooping) costs only
its own items while the batch goes on. Grading twice gives the same result.

One batch of crafted submissions of a small lab built in tmp_path is graded once (module fixture);
the Chapter 1 quiz is graded through the command line.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from conftest import require_debian_package
from labkit.grading.assemble import assemble, grade_id
from labkit.grading.coursedir import CourseDir
from labkit.grading.grader import GradeSettings, _prepare_workdir, grade_lab
from labkit.grading.release import released_view
from labkit.grading.sandbox import Sandbox, level_works, resolve_level

REPO = Path(__file__).resolve().parents[1]
LAB = "ch09_probe"
HIDDEN_MARKER = "HIDDEN-MARKER-7f3a"
SETTINGS = GradeSettings(timeout_per_cell=6.0, interrupt_grace=2.0, memory_mb=1024, startup_timeout=60.0)


def _cell(kind: str, source: str, gid: str, *, grade: bool = False, solution: bool = False, points: int = 0):
    meta = {"nbgrader": {"cell_type": kind, "grade": grade, "grade_id": gid, "locked": not solution,
                         "schema_version": 3, "solution": solution, "task": False}}
    if grade:
        meta["nbgrader"]["points"] = points
    return (new_code_cell if kind == "code" else new_markdown_cell)(source, metadata=meta)


def _source_notebook() -> nbformat.NotebookNode:
    return new_notebook(cells=[
        _cell("markdown", "# Probe lab", "intro"),
        _cell("code", "BASE = 40", "setup"),
        _cell("code", "def add_two(x):\n    ### BEGIN SOLUTION\n    return x + 2\n    ### END SOLUTION",
              "answer_a", solution=True),
        _cell("code", 'assert add_two(BASE) == 42, "add_two(40) should be 42"\n### BEGIN HIDDEN TESTS\n'
                      f'assert add_two(-2) == 0, "add_two(-2) should be 0"  # {HIDDEN_MARKER}\n### END HIDDEN TESTS',
              "test_a", grade=True, points=1),
        _cell("code", "### BEGIN SOLUTION\nvalue_b = 7\n### END SOLUTION", "answer_b", solution=True),
        _cell("code", 'assert value_b == 7, "value_b should be 7"', "test_b", grade=True, points=2),
        _cell("code", "### BEGIN SOLUTION\nlucky = 3\n### END SOLUTION", "answer_c", solution=True),
        _cell("code", 'assert lucky == 3, "lucky should be 3"', "test_c", grade=True, points=1),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def _with(nb: nbformat.NotebookNode, **answers: str) -> nbformat.NotebookNode:
    """A copy of ``nb`` with the sources of the cells named by grade_id replaced."""
    out = copy.deepcopy(nb)
    for cell in out.cells:
        if grade_id(cell) in answers:
            cell.source = answers[grade_id(cell)]
    return out


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """The crafted course, its submissions, and the report of grading them all once."""
    root = tmp_path_factory.mktemp("probe")
    course = CourseDir(root / "course")
    (course.source / LAB).mkdir(parents=True)
    shutil.copy(REPO / "autograder" / "nbgrader_config.py", course.config_file)
    source = _source_notebook()
    nbformat.write(source, course.source / LAB / f"{LAB}.ipynb")
    (course.root / "gradebook.db").write_text("secret gradebook")
    released = released_view(course, LAB, source)
    solved = {gid: c.source for c in source.cells if (gid := grade_id(c)) and gid.startswith("answer_")}
    snooped = [course.source / LAB / f"{LAB}.ipynb", course.root / "gradebook.db", course.root,
               root / "subs" / "alice" / LAB / f"{LAB}.ipynb", root / "out" / "feedback" / "alice" / f"{LAB}.html",
               REPO / "autograder" / "source" / "ch01_quiz" / "ch01_quiz.ipynb", "leak.txt"]
    snoop = ("import pathlib\nfound = []\n"
             f"for p in {[str(p) for p in snooped]!r}:\n"
             "    try:\n        path = pathlib.Path(p)\n"
             "        found.append(sorted(path.iterdir()) if path.is_dir() else path.read_text())\n"
             "    except OSError:\n        pass\n"
             "value_b = 7 if not found else 100 + len(found)")
    students = {
        "alice": _with(released, **solved),
        "blank": released,
        "crash": _with(released, **{**solved, "answer_a": "def add_two(x):\n    import os\n    os._exit(3)"}),
        "half": _with(released, **{**solved, "answer_a": "def add_two(x):\n    return 42"}),
        "hog": _with(released, **{**solved,
                                  "answer_a": "def add_two(x):\n    blob = bytearray(8 << 30)\n    return x + 2"}),
        "loop": _with(released, **{**solved, "answer_a": "def add_two(x):\n    while True:\n        pass"}),
        "seeded": _with(released, **{**solved, "answer_b": "import random\nvalue_b = 7 if random.random() < 0.5 else 0",
                                     "answer_c": "lucky = 3 if hash('cv-lab') % 2 == 0 else 4"}),
        "snoop": _with(released, **{**solved, "answer_b": snoop}),
        "stubborn": _with(released, **{**solved, "answer_c": "import signal\n"
                                                              "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                                              "while True:\n    pass"}),
        "tamper": _with(released, **{**solved, "test_b": "pass"}),
    }
    students["tamper"].cells = [c for c in students["tamper"].cells if grade_id(c) != "test_c"]
    for name, nb in students.items():
        (root / "subs" / name / LAB).mkdir(parents=True)
        nbformat.write(nb, root / "subs" / name / LAB / f"{LAB}.ipynb")
    (root / "subs" / "snoop" / LAB / "leak.txt").symlink_to(course.root / "gradebook.db")
    report = grade_lab(course, LAB, root / "subs", root / "out", SETTINGS, progress=False)
    results = {s.student: {i.item: i for i in s.items} for s in report.students}
    return {"root": root, "course": course, "report": report, "results": results, "released": released}


def _scores(probe, student):
    return {item: (r.score, r.status) for item, r in probe["results"][student].items()}


def test_instructor_answers_get_full_marks(probe):
    assert _scores(probe, "alice") == {"test_a": (1, "passed"), "test_b": (2, "passed"), "test_c": (1, "passed")}


def test_blank_student_copy_gets_nothing(probe):
    items = probe["results"]["blank"]
    assert all(i.score == 0 and i.status == "failed" for i in items.values())
    assert items["test_a"].message == "NotImplementedError"


def test_endless_loop_loses_only_its_item(probe):
    items = probe["results"]["loop"]
    assert items["test_a"].status == "timeout" and items["test_a"].score == 0
    assert "time limit" in items["test_a"].message
    assert items["test_b"].score == 2 and items["test_c"].score == 1


def test_ignored_interrupt_restarts_the_kernel_and_grading_goes_on(probe):
    items = probe["results"]["stubborn"]
    assert items["test_a"].score == 1 and items["test_b"].score == 2
    assert items["test_c"].status == "failed" and "ignored the interrupt" in items["test_c"].message


def test_crashing_kernel_loses_its_items_and_the_batch_goes_on(probe):
    items = probe["results"]["crash"]
    assert items["test_a"].status == "crashed" and items["test_a"].score == 0
    assert items["test_b"].score == 2 and items["test_c"].score == 1  # state rebuilt after the restart
    students = [s.student for s in probe["report"].students]
    assert students.index("crash") < students.index("tamper") and _scores(probe, "half")["test_b"] == (2, "passed")


def test_memory_bomb_under_the_cap_fails_its_item(probe):
    items = probe["results"]["hog"]
    assert items["test_a"].status == "failed" and items["test_a"].message.startswith("MemoryError")
    assert items["test_b"].score == 2 and items["test_c"].score == 1


def test_hidden_test_runs_but_its_code_stays_hidden(probe):
    items = probe["results"]["half"]
    assert items["test_a"].status == "failed"
    assert items["test_a"].message == "AssertionError: add_two(-2) should be 0"
    assert HIDDEN_MARKER not in json.dumps(nbformat.from_dict(probe["released"]))
    out = probe["root"] / "out"
    texts = [p.read_text() for p in out.rglob("*") if p.is_file()]
    assert texts and not any(HIDDEN_MARKER in t or "assert add_two(-2)" in t for t in texts)
    page = (out / "feedback" / "half" / f"{LAB}.html").read_text()
    assert "add_two(-2) should be 0" in page and "assert " not in page


def test_tampered_and_deleted_test_cells_are_reported(probe):
    items = probe["results"]["tamper"]
    assert items["test_b"].status == "tampered" and "checksum" in items["test_b"].message
    assert items["test_c"].status == "tampered" and "deleted" in items["test_c"].message
    assert items["test_a"].score == 1 and probe["report"].needs_review


def test_sandboxed_submission_cannot_read_course_gradebook_or_other_work(probe):
    require_debian_package("bubblewrap", shutil.which("bwrap") is not None, "the grading sandbox")
    if not level_works("bwrap"):
        pytest.skip("bubblewrap is installed but cannot create namespaces here (a container without user namespaces)")
    assert probe["report"].isolation == "bwrap"
    assert _scores(probe, "snoop")["test_b"] == (2, "passed"), probe["results"]["snoop"]["test_b"].message


def test_grades_csv_and_feedback_files(probe):
    out = probe["root"] / "out"
    rows = list(csv.DictReader((out / "grades.csv").open()))
    assert rows and set(rows[0]) >= {"student", "item", "score", "max", "status", "isolation"}
    assert {r["isolation"] for r in rows} == {probe["report"].isolation}
    assert len(rows) == sum(len(items) for items in probe["results"].values())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["isolation_description"] and summary["needs_review"] is True
    assert sorted(p.parent.name for p in (out / "feedback").glob(f"*/{LAB}.html")) == sorted(probe["results"])


def test_grading_twice_gives_the_same_result(probe, tmp_path):
    for name in ("seeded", "half"):
        shutil.copytree(probe["root"] / "subs" / name, tmp_path / "subs" / name)
    again = grade_lab(probe["course"], LAB, tmp_path / "subs", tmp_path / "out", SETTINGS, progress=False)
    for student in again.students:
        assert {i.item: (i.score, i.status, i.message) for i in student.items} == \
               {k: (i.score, i.status, i.message) for k, i in probe["results"][student.student].items()}
    assert _scores(probe, "seeded")["test_b"] == (0, "failed")  # random.random() after seed 0 is 0.84


def test_symlinks_in_a_submission_are_not_followed(tmp_path):
    (tmp_path / "secret").write_text("gradebook")
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "data.txt").write_text("mine")
    (tmp_path / "lab" / "leak.txt").symlink_to(tmp_path / "secret")
    work = _prepare_workdir(tmp_path / "run", tmp_path / "lab", [])
    assert sorted(p.name for p in work.iterdir()) == ["data.txt"]


def test_assemble_restores_locked_cells_and_keeps_answers(probe):
    source = nbformat.read(probe["course"].source / LAB / f"{LAB}.ipynb", as_version=4)
    submitted = _with(probe["released"], answer_b="value_b = 7")
    merged = assemble(source, probe["released"], submitted)
    cells = {grade_id(c): c for c in merged.notebook.cells}
    assert merged.tampered == {}
    assert HIDDEN_MARKER in cells["test_a"].source and cells["answer_b"].source == "value_b = 7"


def test_isolation_levels(monkeypatch):
    with pytest.raises(ValueError):
        resolve_level("chroot")
    command = Sandbox("none", memory_mb=512).wrap(["python", "-V"], runtime_dir=Path("/r"), workdir=Path("/r/w"))
    assert command[-2:] == ["python", "-V"] and "512" in command
    monkeypatch.setattr("labkit.grading.sandbox.level_works", lambda level: level != "bwrap")
    assert resolve_level("auto") == "unshare"
    with pytest.raises(ValueError, match="does not work"):
        resolve_level("bwrap")


def _cli(argv: list[str]) -> int:
    from labkit.grading import cli

    parser = argparse.ArgumentParser(prog="labkit")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    from labkit.cli import UsageError

    try:
        return args.func(args)
    except UsageError:
        return 2


def test_quiz_lab_through_the_command_line(tmp_path, capsys):
    source = REPO / "autograder" / "source" / "ch01_quiz" / "ch01_quiz.ipynb"
    student = REPO / "notebooks" / "01_data_foundations" / "labs" / "ch01_quiz.ipynb"
    for name, nb in (("instructor", source), ("student", student)):
        (tmp_path / "subs" / name / "ch01_quiz").mkdir(parents=True)
        shutil.copy(nb, tmp_path / "subs" / name / "ch01_quiz" / "ch01_quiz.ipynb")
    out = tmp_path / "out"
    code = _cli(["grade", str(tmp_path / "subs"), "--lab", "ch01_quiz", "--out", str(out),
                 "--timeout-per-cell", "30", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    totals = {s["student"]: (s["score"], s["max"]) for s in report["students"]}
    assert totals == {"instructor": (5.0, 5.0), "student": (0.0, 5.0)}
    assert (out / "feedback" / "student" / "ch01_quiz.html").is_file()
    assert _cli(["grade", str(tmp_path / "nowhere"), "--lab", "ch01_quiz"]) == 2
    assert _cli(["grade", str(tmp_path / "subs"), "--lab", "ch99_nothing"]) == 2
