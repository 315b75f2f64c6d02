"""Autograde every submission of a lab: ``SUBMISSIONS_DIR/<student>/<lab_id>/<notebook>.ipynb``.

For each student and each notebook of the lab (matched by file name with the instructor source):

1. the graded notebook is assembled from the submission and the source
   (:mod:`labkit.grading.assemble`: hidden tests restored, tampering reported);
2. the student's lab folder is copied into a fresh temporary folder, the lab's support files are
   put back over it, and a new kernel starts there under the sandbox
   (:mod:`labkit.grading.sandbox`) with the memory cap, a clean environment and fixed seeds
   (``PYTHONHASHSEED``, Python's and NumPy's global generators), so grading twice gives the same
   scores;
3. the code cells run one by one with the per-cell time limit (:mod:`labkit.grading.runner`);
4. every graded cell is scored with nbgrader's own rule (:func:`nbgrader.utils.determine_grade`:
   full points unless the cell raised or wrote to stderr; a numeric result is partial credit).

Outputs (``out_dir``): ``grades.csv``, ``summary.json`` and ``feedback/<student>/<lab_id>.html``.
A failing, hanging or crashing submission costs its own items only; the batch goes on.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbgrader.utils import determine_grade, is_grade
from tqdm.auto import tqdm

from labkit.artifacts import write_json
from labkit.grading.assemble import assemble, grade_id
from labkit.grading.coursedir import CourseDir
from labkit.grading.feedback import feedback_html
from labkit.grading.kernel import KernelSession
from labkit.grading.limits import DEFAULT_FILE_MB, DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_PER_CELL
from labkit.grading.release import released_view
from labkit.grading.results import ItemResult, LabReport, StudentResult
from labkit.grading.runner import CellRun, run_cells
from labkit.grading.sandbox import Sandbox, resolve_level

#: Environment variables passed on from the grader to the kernel (compute budget, dataset folder).
PASSED_ENV = ("LABKIT_BUDGET", "LABKIT_DATA")


@dataclass(frozen=True)
class GradeSettings:
    """Knobs of a grading run (all in seconds / MiB)."""

    timeout_per_cell: float = DEFAULT_TIMEOUT_PER_CELL
    interrupt_grace: float = 5.0
    memory_mb: int = DEFAULT_MEMORY_MB
    file_mb: int = DEFAULT_FILE_MB
    isolation: str = "auto"
    max_restarts: int = 2
    startup_timeout: float = 60.0
    seed: int = 0
    readonly_paths: tuple[Path, ...] = ()


def seed_preamble(seed: int) -> str:
    """Code run silently before the first cell: seeds Python's and NumPy's global generators."""
    return (f"import random as _labkit_random\n_labkit_random.seed({seed})\n"
            "try:\n    import numpy as _labkit_numpy\nexcept ImportError:\n    _labkit_numpy = None\n"
            f"if _labkit_numpy is not None:\n    _labkit_numpy.random.seed({seed})\n"
            "del _labkit_random, _labkit_numpy")


def kernel_env(runtime: Path, workdir: Path, seed: int, passed: dict[str, str]) -> dict[str, str]:
    """The kernel's whole environment: nothing of the grader's leaks in except ``passed``."""
    home = runtime / "home"
    for folder in (home, runtime / "tmp"):
        folder.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin", "HOME": str(home),
        "TMPDIR": str(runtime / "tmp"), "IPYTHONDIR": str(home / ".ipython"), "MPLCONFIGDIR": str(home / ".mpl"),
        "MPLBACKEND": "Agg", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TZ": "UTC", "PYTHONHASHSEED": str(seed),
        "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2", "LABKIT_ARTIFACTS": str(workdir / "artifacts"),
        **passed,
    }


def _message(outputs: list[NotebookNode]) -> str:
    """The test's own message: ``Name: value`` of its error, else the first stderr line; no code."""
    for out in outputs:
        if out.output_type == "error":
            return f"{out.ename}: {out.evalue}".strip().rstrip(":")[:500]
    for out in outputs:
        if out.output_type == "stream" and out.name == "stderr" and out.text.strip():
            return "wrote to stderr: " + out.text.strip().splitlines()[0][:300]
    return ""


def score_cell(cell: NotebookNode, run: CellRun | None, notebook: str) -> ItemResult:
    """Score one graded cell of the assembled notebook from how it ran (``None``: not executed)."""
    gid, points = grade_id(cell), float(cell.metadata["nbgrader"]["points"])
    if run is not None and run.status in ("timeout", "crashed", "not_run"):
        return ItemResult(notebook, gid, 0.0, points, run.status, run.message)
    if run is not None and run.status == "error":
        return ItemResult(notebook, gid, 0.0, points, "failed", _message(run.outputs) or "the cell raised an error")
    graded = nbformat.from_dict({**cell, "outputs": run.outputs if run else []})
    score, _ = determine_grade(graded)
    if score is None:
        return ItemResult(notebook, gid, None, points, "manual", "graded by hand")
    status = "passed" if score >= points else "failed" if score <= 0 else "partial"
    message = _message(run.outputs) if run else ("no answer" if status == "failed" else "")
    return ItemResult(notebook, gid, float(score), points, status, message)


def _earlier_problems(cells: list[NotebookNode], runs: dict[int, CellRun]) -> dict[int, str]:
    """For each graded cell, what went wrong in the ungraded cells run since the previous graded one
    (an answer cell that timed out or crashed explains why its test failed)."""
    notes, pending = {}, []
    for k, cell in enumerate(cells):
        if is_grade(cell):
            notes[k], pending = "; ".join(pending), []
        elif (run := runs.get(k)) is not None and run.status in ("timeout", "crashed", "not_run"):
            pending.append(f"an earlier cell: {run.message}")
    return notes


def _not_copied(folder: str, names: list[str]) -> set[str]:
    """Checkpoints, and symbolic links: following one would copy a file the grader can read but the
    student should not (a link to the gradebook) into the sandbox."""
    return {n for n in names if n == ".ipynb_checkpoints" or os.path.islink(os.path.join(folder, n))}


def _prepare_workdir(runtime: Path, student_lab: Path, support: list[tuple[Path, Path]]) -> Path:
    """``runtime/work``: a copy of the student's lab folder with the lab's support files put back."""
    work = runtime / "work"
    shutil.copytree(student_lab, work, ignore=_not_copied)
    for src, rel in support:
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, work / rel)
    return work


class LabGrader:
    """Grades submissions of one lab; the source, its released view and the sandbox are set up once."""

    def __init__(self, course: CourseDir, lab_id: str, settings: GradeSettings = GradeSettings()):
        self.course, self.lab_id, self.settings = course, lab_id, settings
        readonly = list(settings.readonly_paths)
        self.passed_env = {k: v for k in PASSED_ENV if (v := os.environ.get(k))}
        if "LABKIT_DATA" in self.passed_env:
            readonly.append(Path(self.passed_env["LABKIT_DATA"]))
        self.sandbox = Sandbox(resolve_level(settings.isolation), settings.memory_mb, settings.file_mb,
                               tuple(readonly))
        self.sources = {p.name: nbformat.read(p, as_version=4) for p in course.source_notebooks(lab_id)}
        self.released = {name: released_view(course, lab_id, nb) for name, nb in self.sources.items()}
        lab_dir = course.lab_dir(lab_id)
        self.support = [(p, p.relative_to(lab_dir)) for p in course.support_files(lab_id)]

    def grade_notebook(self, name: str, student_lab: Path) -> list[ItemResult]:
        """The items of source notebook ``name`` for the submission in ``student_lab`` (may not exist)."""
        source, stem = self.sources[name], Path(name).stem
        graded = [c for c in source.cells if is_grade(c)]
        path = student_lab / name
        if not path.is_file():
            return [ItemResult(stem, grade_id(c), 0.0, float(c.metadata.nbgrader.points), "missing",
                               f"no {name} in the submission") for c in graded]
        try:
            submitted = nbformat.read(path, as_version=4)
        except Exception as exc:  # nbformat raises several unrelated types for a broken file
            return [ItemResult(stem, grade_id(c), 0.0, float(c.metadata.nbgrader.points), "invalid",
                               f"{name} is not a readable notebook: {type(exc).__name__}") for c in graded]
        assembled = assemble(source, self.released[name], submitted)
        cells = assembled.notebook.cells
        runs = self._run(assembled.notebook, student_lab)
        notes = _earlier_problems(cells, runs)
        by_id = {grade_id(c): k for k, c in enumerate(cells) if grade_id(c)}
        items = []
        for cell in graded:
            gid, points = grade_id(cell), float(cell.metadata.nbgrader.points)
            if gid in assembled.tampered:
                items.append(ItemResult(stem, gid, 0.0, points, "tampered", assembled.tampered[gid]))
            elif gid not in by_id:
                items.append(ItemResult(stem, gid, 0.0, points, "missing", "the cell is not in the submission"))
            else:
                item = score_cell(cells[by_id[gid]], runs.get(by_id[gid]), stem)
                if item.status == "failed" and notes.get(by_id[gid]):
                    item.message = f"{item.message} ({notes[by_id[gid]]})".strip()
                items.append(item)
        graded_ids = {grade_id(c) for c in graded}
        items += [ItemResult(stem, gid, 0.0, 0.0, "tampered", why)
                  for gid, why in assembled.tampered.items() if gid not in graded_ids]
        return items

    def _run(self, notebook: NotebookNode, student_lab: Path) -> dict[int, CellRun]:
        s = self.settings
        code = [k for k, c in enumerate(notebook.cells) if c.cell_type == "code"]
        runtime = Path(tempfile.mkdtemp(prefix="lkg-"))
        try:
            work = _prepare_workdir(runtime, student_lab, self.support)
            env = kernel_env(runtime, work, s.seed, self.passed_env)

            def start() -> KernelSession:
                return KernelSession(self.sandbox, runtime_dir=runtime, workdir=work, env=env,
                                     startup_timeout=s.startup_timeout)

            runs = run_cells([notebook.cells[k].source for k in code], start, timeout=s.timeout_per_cell,
                             grace=s.interrupt_grace, preamble=seed_preamble(s.seed), max_restarts=s.max_restarts)
        finally:
            shutil.rmtree(runtime, ignore_errors=True)
        return dict(zip(code, runs, strict=True))

    def grade_student(self, student: str, student_lab: Path) -> StudentResult:
        start = time.perf_counter()
        items = [item for name in self.sources for item in self.grade_notebook(name, student_lab)]
        return StudentResult(student, items, time.perf_counter() - start)


def grade_lab(course: CourseDir, lab_id: str, submissions_dir: Path, out_dir: Path,
              settings: GradeSettings = GradeSettings(), *, progress: bool = True) -> LabReport:
    """Grade every ``submissions_dir/<student>/`` and write grades, summary and feedback to ``out_dir``."""
    grader = LabGrader(course, lab_id, settings)
    report = LabReport(lab_id, grader.sandbox.level, grader.sandbox.description,
                       {k: str(v) if isinstance(v, tuple) else v for k, v in asdict(settings).items()})
    students = sorted(p for p in submissions_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    for folder in tqdm(students, desc=f"grading {lab_id}", unit="submission", disable=not progress):
        result = grader.grade_student(folder.name, folder / lab_id)
        report.students.append(result)
        page = out_dir / "feedback" / folder.name / f"{lab_id}.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(feedback_html(folder.name, lab_id, result.items, grader.sandbox.description), encoding="utf-8")
    report.write_csv(out_dir / "grades.csv")
    write_json(out_dir / "summary.json", report.to_dict())
    return report
