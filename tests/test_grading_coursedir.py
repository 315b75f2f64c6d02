"""labkit.grading.coursedir on a hand-made course folder in tmp_path (not this repository's autograder/):
where each file lives, which folders count as labs, the support files nbgrader's ignore list lets
through, and the chapter folder of a lab id, with the errors naming what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from labkit.artifacts import REPO_ROOT
from labkit.errors import DataError
from labkit.grading import coursedir
from labkit.grading.coursedir import CourseDir, chapter_labs_dir


def _course(tmp_path: Path, config: str | None = None) -> CourseDir:
    root = tmp_path / "course"
    for lab, files in {"ch01_a": ["ch01_a.ipynb", "data/x.csv", "helper.py", ".ipynb_checkpoints/c.ipynb",
                                  "__pycache__/helper.pyc", "b.ipynb"],
                       "ch02_b": ["ch02_b.ipynb"],
                       "ch03_empty": ["notes.txt"]}.items():
        for name in files:
            (root / "source" / lab / name).parent.mkdir(parents=True, exist_ok=True)
            (root / "source" / lab / name).write_text("{}", encoding="utf-8")
    (root / "source" / "stray.ipynb").write_text("{}", encoding="utf-8")  # a file, not a lab folder
    if config is not None:
        (root / "nbgrader_config.py").write_text(config, encoding="utf-8")
    return CourseDir(root)


def test_the_default_course_is_this_repositorys():
    assert coursedir.DEFAULT_COURSE_ROOT == REPO_ROOT / "autograder"
    assert coursedir.DEFAULT_NOTEBOOKS_ROOT == REPO_ROOT / "notebooks"
    assert CourseDir().root == REPO_ROOT / "autograder"


def test_paths_of_a_course(tmp_path):
    course = CourseDir(tmp_path)
    assert course.source == tmp_path / "source" and course.config_file == tmp_path / "nbgrader_config.py"
    assert course.spec_file("ch02_nms") == tmp_path / "graders" / "ch02_nms.py"
    assert course.key_file("ch02_nms") == tmp_path / "keys" / "ch02_nms.yaml"


def test_labs_are_source_folders_with_a_notebook(tmp_path):
    course = _course(tmp_path)
    assert course.labs() == ["ch01_a", "ch02_b"]
    assert CourseDir(tmp_path / "nowhere").labs() == []
    assert course.lab_dir("ch02_b") == course.root / "source" / "ch02_b"
    assert course.source_notebooks("ch01_a") == [course.root / "source" / "ch01_a" / n for n in ("b.ipynb", "ch01_a.ipynb")]


def test_an_unknown_lab_is_named_with_the_labs_there_are(tmp_path):
    course = _course(tmp_path)
    for lab in ("ch03_empty", "ch09_none", "stray.ipynb"):
        with pytest.raises(DataError) as exc:
            course.lab_dir(lab)
        assert str(exc.value) == f"{course.source}: no lab {lab!r} (labs: ch01_a, ch02_b)"
    with pytest.raises(DataError) as exc:
        CourseDir(tmp_path / "nowhere").lab_dir("ch01_a")
    assert str(exc.value).endswith("no lab 'ch01_a' (labs: none)") and exc.value.source == str(tmp_path / "nowhere" / "source")


def test_support_files_follow_nbgraders_ignore_list(tmp_path):
    course = _course(tmp_path)
    lab = course.root / "source" / "ch01_a"
    # nbgrader's default ignore list drops .ipynb_checkpoints and __pycache__ (and *.pyc)
    assert course.support_files("ch01_a") == [lab / "data" / "x.csv", lab / "helper.py"]
    assert course.support_files("ch02_b") == []
    configured = _course(tmp_path / "b", "c = get_config()\nc.CourseDirectory.ignore = ['*.csv']\n")
    lab = configured.root / "source" / "ch01_a"
    # (the notebook in .ipynb_checkpoints stays out: notebooks are never support files)
    assert configured.support_files("ch01_a") == [lab / "__pycache__" / "helper.pyc", lab / "helper.py"]


def test_the_nbgrader_config_is_read_when_there_is_one(tmp_path):
    course = _course(tmp_path, "c = get_config()\nc.CourseDirectory.course_id = 'demo'\n")
    assert course.load_config().CourseDirectory.course_id == "demo"
    assert "CourseDirectory" not in _course(tmp_path / "b").load_config()


def _chapters(tmp_path: Path, *names: str) -> Path:
    for name in names:
        (tmp_path / name).mkdir(parents=True)
    return tmp_path


def test_chapter_labs_dir(tmp_path):
    root = _chapters(tmp_path, "01_data", "02_detection", "12_extra", "03_a", "03_b")
    assert chapter_labs_dir("ch01_quiz", root) == root / "01_data" / "labs"
    assert chapter_labs_dir("ch12_x_2", root) == root / "12_extra" / "labs"
    with pytest.raises(DataError) as exc:
        chapter_labs_dir("ch03_quiz", root)
    assert str(exc.value) == f"{root}: record ch03_quiz: expected one chapter folder 03_*, found 2"
    with pytest.raises(DataError) as exc:
        chapter_labs_dir("ch04_quiz", root)
    assert str(exc.value) == f"{root}: record ch04_quiz: expected one chapter folder 04_*, found 0"


def test_a_file_is_not_a_chapter_folder(tmp_path):
    root = _chapters(tmp_path, "05_robust")
    (root / "05_notes.md").write_text("", encoding="utf-8")
    assert chapter_labs_dir("ch05_lab", root) == root / "05_robust" / "labs"


@pytest.mark.parametrize("lab_id", ["quiz", "ch1_quiz", "ch001_quiz", "ch01_Quiz", "ch01_", "ch01-quiz", "xch01_quiz",
                                    "ch01_quiz\n", "ch01_qu iz"])
def test_bad_lab_ids(tmp_path, lab_id):
    """(``ch01_quiz\\n`` passed before 2026-12-07: ``$`` also matches before a final newline.)"""
    with pytest.raises(DataError) as exc:
        chapter_labs_dir(lab_id, _chapters(tmp_path, "01_data"))
    assert str(exc.value) == f"{lab_id}: a lab id is chNN_<name> (lower case, digits, underscores)"
