"""``make release``: the committed student copies are what nbgrader makes from the sources today,
and none of them gives away a solution, a hidden test or a quiz answer."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from labkit.errors import DataError
from labkit.grading.coursedir import CourseDir, chapter_labs_dir
from labkit.grading.quiz import load_key
from labkit.grading.release import release_all, released_view

REPO = Path(__file__).resolve().parents[1]
COURSE = CourseDir(REPO / "autograder")
NOTEBOOKS = REPO / "notebooks"
FORBIDDEN = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def _committed(lab_id: str) -> Path:
    return chapter_labs_dir(lab_id, NOTEBOOKS)


def _essence(nb: nbformat.NotebookNode) -> list[tuple]:
    """What must not drift: cell type, source and nbgrader metadata (ids, outputs, timings ignored)."""
    return [(c.cell_type, c.source, dict(c.metadata.get("nbgrader", {}))) for c in nb.cells]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    """A release of every lab into an empty copy of the chapter folders (one nbgrader run)."""
    root = tmp_path_factory.mktemp("release") / "notebooks"
    for chapter in NOTEBOOKS.glob("0*_*/"):
        (root / chapter.name).mkdir(parents=True)
    release_all(COURSE, root)
    return root


def test_there_are_labs():
    assert "ch01_quiz" in COURSE.labs()


@pytest.mark.parametrize("lab_id", COURSE.labs())
def test_committed_student_copies_equal_a_fresh_release(fresh, lab_id):
    new, old = chapter_labs_dir(lab_id, fresh), _committed(lab_id)
    for path in COURSE.source_notebooks(lab_id):
        assert (old / path.name).is_file(), f"{lab_id}: no student copy {old / path.name}; run `make release`"
        fresh_cells = _essence(nbformat.read(new / path.name, as_version=4))
        committed_cells = _essence(nbformat.read(old / path.name, as_version=4))
        assert fresh_cells == committed_cells, f"{lab_id}: stale student copy; run `make release`"


@pytest.mark.parametrize("lab_id", COURSE.labs())
def test_in_memory_release_view_matches_nbgrader(fresh, lab_id):
    """The grader's tamper check relies on released_view giving nbgrader's cells and checksums."""
    for path in COURSE.source_notebooks(lab_id):
        view = released_view(COURSE, lab_id, nbformat.read(path, as_version=4))
        assert _essence(view) == _essence(nbformat.read(chapter_labs_dir(lab_id, fresh) / path.name, as_version=4))


@pytest.mark.parametrize("lab_id", COURSE.labs())
def test_student_copies_give_nothing_away(lab_id):
    for path in COURSE.source_notebooks(lab_id):
        source, student = path.read_text(), (_committed(lab_id) / path.name).read_text()
        assert "BEGIN SOLUTION" in source
        assert not [marker for marker in FORBIDDEN if marker in student]
        nb = nbformat.read(_committed(lab_id) / path.name, as_version=4)
        assert all(not c.outputs and c.execution_count is None for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("key_path", sorted((REPO / "autograder" / "keys").glob("*.yaml")), ids=lambda p: p.stem)
def test_quiz_answers_are_not_in_the_student_copy(key_path):
    key, lab_id = load_key(key_path), key_path.stem
    source = (COURSE.source / lab_id / f"{lab_id}.ipynb").read_text()
    student = (_committed(lab_id) / f"{lab_id}.ipynb").read_text()
    for question, answer in key.answers.items():
        pattern = rf'answer_{question}\s*=\s*\\?["\']{re.escape(str(answer))}\\?["\']'
        assert re.search(pattern, source), f"{question}: the source should hold the answer (test self-check)"
        assert not re.search(pattern, student), f"{question}: the student copy holds the answer"
    assert "hashes" not in student and "salt" not in student, "nothing to test a guess against offline"


@pytest.mark.parametrize("lab_id", COURSE.labs())
def test_grading_specs_are_never_released(lab_id):
    """Specs and keys live outside source/, so neither nbgrader nor the sandbox ever sees them."""
    assert COURSE.spec_file(lab_id).is_file(), f"{lab_id} has no grading spec"
    assert not COURSE.spec_file(lab_id).is_relative_to(COURSE.source)
    released = {p.name for p in _committed(lab_id).iterdir()}
    assert not {f"{lab_id}.py", f"{lab_id}.yaml"} & released


def test_chapter_mapping(tmp_path):
    assert chapter_labs_dir("ch01_quiz", NOTEBOOKS) == NOTEBOOKS / "01_data_foundations" / "labs"
    assert chapter_labs_dir("ch02_nms", NOTEBOOKS) == NOTEBOOKS / "02_detection" / "labs"
    assert chapter_labs_dir("ch05_robustness", NOTEBOOKS) == NOTEBOOKS / "05_robustness" / "labs"
    for bad in ("quiz", "ch1_quiz", "ch07_missing_chapter"):
        with pytest.raises(DataError):
            chapter_labs_dir(bad, NOTEBOOKS)


@pytest.mark.parametrize("chapter", ["01", "02", "03", "04", "05"])
def test_every_written_chapter_has_a_released_graded_lab_and_a_quiz(chapter):
    labs = [lab for lab in COURSE.labs() if lab.startswith(f"ch{chapter}_")]
    assert labs, f"chapter {chapter} has no graded lab under autograder/source/"
    assert all((_committed(lab) / f"{lab}.ipynb").is_file() for lab in labs), f"chapter {chapter}: run `make release`"
    assert any((REPO / "autograder" / "keys" / f"{lab}.yaml").is_file() for lab in labs), f"chapter {chapter} has no quiz key"


@pytest.mark.parametrize("lab_id", COURSE.labs())
def test_hidden_seeds_are_not_in_the_student_copy(lab_id):
    """The seeds a grading spec draws its hidden cases from (``_SEED = N``) appear in no student copy."""
    seeds = re.findall(r"^_SEED = (\d+)", COURSE.spec_file(lab_id).read_text(), re.M)
    for path in COURSE.source_notebooks(lab_id):
        student = (_committed(lab_id) / path.name).read_text()
        assert not [s for s in seeds if s in student], f"{lab_id}: a hidden seed is in the student copy"


def test_mock_exam_student_copy_holds_no_fix_and_no_diagnosis():
    """The mock exam's answers are per student; the copy keeps the drills' machinery calls only."""
    student = (_committed("ch06_mock_exam") / "ch06_mock_exam.ipynb").read_text()
    for leak in ("planted_bug", "compile_stage", '"isolate": "', "(np.arange(height) + 0.5)", "STUDENT_ID = \\\"instructor"):
        assert leak not in student, leak
    assert "exam(STUDENT_ID)" in student
