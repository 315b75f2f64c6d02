"""``labkit grade`` (labkit.grading.cli) without grading anything: grade_lab and the sandbox check are
stand-ins, so the usage errors, the settings handed over, the printed summary and the exit status are
checked on a hand-made course folder in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit.cli import main
from labkit.grading import grader, sandbox
from labkit.grading.limits import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_PER_CELL
from labkit.grading.results import ItemResult, LabReport, StudentResult


def _course(tmp_path: Path, spec: bool = True) -> Path:
    course = tmp_path / "course"
    (course / "source" / "ch01_demo").mkdir(parents=True)
    (course / "source" / "ch01_demo" / "ch01_demo.ipynb").write_text("{}", encoding="utf-8")
    if spec:
        (course / "graders").mkdir()
        (course / "graders" / "ch01_demo.py").write_text("", encoding="utf-8")
    (tmp_path / "subs").mkdir()
    return course


def _report(status: str = "passed") -> LabReport:
    ann = StudentResult("ann", [ItemResult("nb", "a", 2.0, 2.0, "passed"), ItemResult("nb", "b", 0.5, 1.0, status)])
    bob = StudentResult("bob", [ItemResult("nb", "a", None, 2.0, "no_answer"), ItemResult("nb", "b", 0.0, 1.0, "failed")])
    return LabReport("ch01_demo", "bwrap", "bubblewrap sandbox", {}, [ann, bob])


@pytest.fixture
def graded(monkeypatch):
    """Stand-ins for grade_lab (records its arguments) and resolve_level (accepts "bwrap")."""
    calls = {}

    def fake_grade_lab(course, lab, submissions, out, settings, progress=True):
        calls.update(course=course, lab=lab, submissions=submissions, out=out, settings=settings, progress=progress)
        return calls.get("report") or _report()

    def fake_resolve(level="bwrap"):
        calls["level"] = level
        return level

    monkeypatch.setattr(grader, "grade_lab", fake_grade_lab)
    monkeypatch.setattr(sandbox, "resolve_level", fake_resolve)
    return calls


def test_settings_and_the_summary(tmp_path, graded, capsys, monkeypatch):
    course = _course(tmp_path)
    monkeypatch.chdir(tmp_path)
    code = main(["grade", str(tmp_path / "subs"), "--lab", "ch01_demo", "--course", str(course)])
    out = capsys.readouterr().out
    assert code == 0 and graded["level"] == "bwrap"
    assert graded["lab"] == "ch01_demo" and graded["course"].root == course and graded["submissions"] == tmp_path / "subs"
    assert graded["out"] == Path("graded") / "ch01_demo" and graded["progress"] is True
    s = graded["settings"]
    assert (s.timeout_per_cell, s.memory_mb, s.isolation, s.readonly_paths, s.jobs) == (
        DEFAULT_TIMEOUT_PER_CELL, DEFAULT_MEMORY_MB, "bwrap", (), 1)
    assert out == ("ch01_demo: 2 submissions graded; isolation: bubblewrap sandbox\n"
                   "  ann: 2.5 / 3\n"
                   "  bob: 0 / 3  (failed, no_answer)\n"
                   f"grades: {Path('graded') / 'ch01_demo' / 'grades.csv'}; feedback: {Path('graded') / 'ch01_demo' / 'feedback'}\n")


def test_options_reach_the_settings(tmp_path, graded, capsys):
    course = _course(tmp_path)
    extra = tmp_path / "data"
    extra.mkdir()
    code = main(["grade", str(tmp_path / "subs"), "--lab", "ch01_demo", "--course", str(course), "--out",
                 str(tmp_path / "o"), "--timeout-per-cell", "2.5", "--memory-mb", "900", "--jobs", "3",
                 "--bind-ro", str(extra), "--bind-ro", str(course), "--json"])
    assert code == 0
    s = graded["settings"]
    assert (s.timeout_per_cell, s.memory_mb, s.jobs) == (2.5, 900, 3) and s.readonly_paths == (extra, course)
    assert graded["out"] == tmp_path / "o" and graded["progress"] is False
    assert json.loads(capsys.readouterr().out) == _report().to_dict()


def test_a_report_to_review_exits_1(tmp_path, graded, capsys):
    graded["report"] = _report("tampered")
    assert main(["grade", str(tmp_path / "subs"), "--lab", "ch01_demo", "--course", str(_course(tmp_path))]) == 1
    assert "  ann: 2.5 / 3  (tampered)\n" in capsys.readouterr().out


def _usage_error(argv, capsys) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


def test_usage_errors(tmp_path, graded, capsys):
    course = _course(tmp_path)
    subs = str(tmp_path / "subs")
    assert _usage_error(["grade", str(tmp_path / "none"), "--lab", "ch01_demo", "--course", str(course)], capsys) == \
        f"labkit: error: submissions folder {tmp_path / 'none'} does not exist\n"
    assert _usage_error(["grade", subs, "--lab", "ch02_x", "--course", str(course)], capsys) == \
        f"labkit: error: no lab 'ch02_x' in {course / 'source'} (labs: ch01_demo)\n"
    assert _usage_error(["grade", subs, "--lab", "ch01_demo", "--course", str(tmp_path / "nothing")], capsys) == \
        f"labkit: error: no lab 'ch01_demo' in {tmp_path / 'nothing' / 'source'} (labs: none)\n"
    assert _usage_error(["grade", subs, "--lab", "ch01_demo", "--course", str(course), "--bind-ro", str(course),
                         "--bind-ro", str(tmp_path / "gone")], capsys) == f"labkit: error: --bind-ro {tmp_path / 'gone'} does not exist\n"
    assert "lab" not in graded  # grade_lab never ran


def test_a_lab_without_a_grading_spec(tmp_path, graded, capsys):
    course = _course(tmp_path, spec=False)
    assert _usage_error(["grade", str(tmp_path / "subs"), "--lab", "ch01_demo", "--course", str(course)], capsys) == \
        f"labkit: error: lab 'ch01_demo' has no grading spec {course / 'graders' / 'ch01_demo.py'}\n"


def test_a_missing_sandbox_is_a_usage_error(tmp_path, monkeypatch, capsys):
    def refuse(level="bwrap"):
        raise ValueError("bubblewrap is missing here")

    monkeypatch.setattr(sandbox, "resolve_level", refuse)
    assert _usage_error(["grade", str(tmp_path / "subs"), "--lab", "ch01_demo", "--course", str(_course(tmp_path))],
                        capsys) == "labkit: error: bubblewrap is missing here\n"


@pytest.mark.parametrize("option, value, message", [
    ("--timeout-per-cell", "0", "argument --timeout-per-cell: must be > 0, got 0"),
    ("--timeout-per-cell", "-1.5", "argument --timeout-per-cell: must be > 0, got -1.5"),
    ("--memory-mb", "0", "argument --memory-mb: must be > 0, got 0"),
    ("--jobs", "-2", "argument --jobs: must be > 0, got -2"),
    ("--jobs", "1.5", "argument --jobs: invalid parse value: '1.5'"),
])
def test_option_values(tmp_path, option, value, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["grade", str(tmp_path), "--lab", "ch01_demo", option, value])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_the_smallest_positive_values_are_taken(tmp_path, graded):
    course = _course(tmp_path)
    main(["grade", str(tmp_path / "subs"), "--lab", "ch01_demo", "--course", str(course), "--timeout-per-cell", "0.01",
          "--memory-mb", "1", "--jobs", "1", "--json"])
    assert (graded["settings"].timeout_per_cell, graded["settings"].memory_mb) == (0.01, 1)


def test_help(capsys):
    with pytest.raises(SystemExit):
        main(["grade", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for words in ("[--bind-ro PATH] [--json] SUBMISSIONS_DIR", "SUBMISSIONS_DIR folder of <student>/<lab_id>/*.ipynb",
                  "--lab LAB lab id, a folder of the course's source/ (e.g. ch01_quiz)",
                  "default: this repository's autograder/", "default: graded/LAB_ID",
                  "--timeout-per-cell S seconds", f"(default {DEFAULT_TIMEOUT_PER_CELL:g})",
                  "--memory-mb M address-space cap", f"(default {DEFAULT_MEMORY_MB}; importing torch and OpenCV maps ~3600)",
                  "--isolation {bwrap}", "grading refuses to run without bubblewrap; the level is written into every row of grades.csv)", "--jobs N grade N", "(default 1)",
                  "--bind-ro PATH extra path", "(repeatable)", "--json",
                  "Autograde SUBMISSIONS_DIR/<student>/<lab_id>/*.ipynb: every submission in a fresh sandboxed kernel, "
                  "cell by cell; writes grades.csv, summary.json and per", "feedback HTML"):
        assert words in text, words


def test_the_command_is_listed(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "grade autograde every submission of a lab (sandboxed, per-cell timeouts)" in text


def test_lab_is_required(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["grade", str(tmp_path)])
    assert exc.value.code == 2 and "the following arguments are required: --lab" in capsys.readouterr().err


def test_the_default_course(tmp_path, graded, monkeypatch):
    from labkit.grading import coursedir

    monkeypatch.setattr(coursedir, "DEFAULT_COURSE_ROOT", _course(tmp_path))
    assert main(["grade", str(tmp_path / "subs"), "--lab", "ch01_demo", "--json"]) == 0
    assert graded["course"].root == tmp_path / "course"
