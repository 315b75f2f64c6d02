"""Student copies of the labs, made by nbgrader.

:func:`generate_assignment` runs ``nbgrader generate_assignment`` itself (solutions replaced by
stubs, hidden tests removed, outputs cleared, cells locked and checksummed); :func:`release_all`
copies its output into the chapter folders. :func:`released_view` applies the same nbgrader
preprocessors in memory -- all but ``SaveCells``, the one that writes to a gradebook -- so the
grader knows the released form of every cell (and its checksum) without a release on disk; the
test suite checks the two agree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import nbformat

from labkit.errors import LabkitError
from labkit.grading.coursedir import DEFAULT_NOTEBOOKS_ROOT, CourseDir, chapter_labs_dir


def generate_assignment(course: CourseDir, lab_id: str, release_root: Path) -> Path:
    """Run ``nbgrader generate_assignment LAB --force`` into ``release_root``; returns ``release_root``.

    ``lab_id`` may be ``"*"``: every lab in one nbgrader run (much faster than one run per lab).
    The gradebook nbgrader insists on writing goes to a temporary folder and is discarded.
    """
    if lab_id != "*":
        course.lab_dir(lab_id)  # a clear error for an unknown lab
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    with tempfile.TemporaryDirectory(prefix="labkit-gradebook-") as db_dir:
        run = subprocess.run(
            [sys.executable, "-m", "nbgrader", "generate_assignment", lab_id, "--force",
             f"--CourseDirectory.root={course.root}",
             f"--CourseDirectory.release_directory={release_root}",
             f"--CourseDirectory.db_url=sqlite:///{Path(db_dir) / 'gradebook.db'}"],
            cwd=course.root, env=env, capture_output=True, text=True, timeout=900)
    if run.returncode != 0:
        raise LabkitError(f"nbgrader generate_assignment {lab_id} failed:\n{(run.stdout + run.stderr)[-3000:]}")
    return release_root


def released_view(course: CourseDir, lab_id: str, notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student copy of one source notebook, computed in memory with nbgrader's preprocessors."""
    from nbgrader.converters import GenerateAssignment
    from nbgrader.preprocessors import SaveCells

    config = course.load_config()
    nb = nbformat.from_dict(notebook)
    resources = {"metadata": {"path": str(course.lab_dir(lab_id))}, "nbgrader": {"assignment": lab_id}}
    for preprocessor in GenerateAssignment.class_traits()["preprocessors"].default():
        if preprocessor is not SaveCells:
            nb, resources = preprocessor(config=config).preprocess(nb, resources)
    return nb


def clear_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop outputs and execution counts (in place; returned for chaining)."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def release_all(course: CourseDir = CourseDir(), notebooks_root: Path = DEFAULT_NOTEBOOKS_ROOT,
                labs: Sequence[str] | None = None) -> list[Path]:
    """Release ``labs`` (default: all) and copy them to ``notebooks/NN_*/labs/``; returns the files written."""
    written = []
    with tempfile.TemporaryDirectory(prefix="labkit-release-") as tmp:
        release_root = Path(tmp) / "release"
        for pattern in labs or ["*"]:
            generate_assignment(course, pattern, release_root)
        for lab_id in labs or course.labs():
            released, target = release_root / lab_id, chapter_labs_dir(lab_id, notebooks_root)
            for path in sorted(p for p in released.rglob("*") if p.is_file()):
                dest = target / path.relative_to(released)
                dest.parent.mkdir(parents=True, exist_ok=True)
                if path.suffix == ".ipynb":
                    nbformat.write(clear_outputs(nbformat.read(path, as_version=4)), dest)
                else:
                    shutil.copyfile(path, dest)
                written.append(dest)
    return written
