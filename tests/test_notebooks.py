"""Chapter notebooks are product code: stored without outputs, and they execute top to bottom."""

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import load_script

REPO = Path(__file__).resolve().parents[1]
LESSONS = sorted(p for p in (REPO / "notebooks").glob("0*/*.ipynb"))
CHAPTERS_WITH_LESSONS = sorted({p.parent.name[:2] for p in LESSONS})


def test_there_are_lesson_notebooks():
    assert LESSONS, "no lesson notebooks found under notebooks/"


@pytest.mark.parametrize("path", LESSONS + sorted((REPO / "notebooks").glob("0*/labs/*.ipynb"))
                         + sorted((REPO / "autograder" / "lessons").glob("0*/*.ipynb")), ids=lambda p: p.name)
def test_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name}: clear outputs before committing"


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS_WITH_LESSONS)
def test_chapter_executes(chapter, tmp_path):
    env_artifacts = tmp_path / "artifacts"
    run = subprocess.run(
        [sys.executable, "scripts/run_course.py", "--chapters", chapter, "--timeout", "600"],
        cwd=REPO, capture_output=True, text=True, timeout=1800,
        env={**__import__("os").environ, "LABKIT_ARTIFACTS": str(env_artifacts), "LABKIT_BUDGET": "ci"},
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    summary = json.loads((env_artifacts / "course_summary.json").read_text())
    assert all(nb["status"] == "ok" for nb in summary["notebooks"])
    assert summary["metrics"], "the chapter logged no metrics"


def _run_course_module():
    return load_script('run_course')


def test_rerunning_one_chapter_keeps_the_other_chapters_rows(tmp_path):
    run_course = _run_course_module()
    old = [{"path": "notebooks/01_a/x.ipynb", "seconds": 1.0}, {"path": "notebooks/03_c/y.ipynb", "seconds": 9.0}]
    (tmp_path / "course_summary.json").write_text(json.dumps({"notebooks": old}))
    fresh = [{"path": "notebooks/03_c/y.ipynb", "seconds": 2.0}]
    merged = run_course.merge_rows(run_course.previous_rows(tmp_path / "course_summary.json"), fresh)
    assert merged == [old[0], fresh[0]]
    (tmp_path / "broken.json").write_text("{not json")
    assert run_course.previous_rows(tmp_path / "broken.json") == []
    assert run_course.previous_rows(tmp_path / "missing.json") == []
