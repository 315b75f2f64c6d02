"""Autograde every submission of a lab: ``SUBMISSIONS_DIR/<student>/<lab_id>/<notebook>.ipynb``.

Points are decided outside the student's process. For each student and each notebook of the lab:

1. the notebook is assembled from the submission and the instructor source
   (:mod:`labkit.grading.assemble`: locked cells restored, tampering reported);
2. the student's lab folder is copied into a fresh temporary folder, the lab's support files are
   put back over it, and a new kernel starts there under the sandbox
   (:mod:`labkit.grading.sandbox`: bubblewrap, required)
   with the memory, file and process caps, a clean environment, fixed seeds and the lab's
   blocked modules hidden;
3. the code cells run one by one with the per-cell time limit (:mod:`labkit.grading.runner`);
   visible checks (locked ``grade`` cells) and the lab's ``skip_cells`` are not run -- they
   award nothing;
4. every item of the lab's grading spec (:mod:`labkit.grading.labspec`) is scored **in the
   grader's process**: its check calls the student's functions across the process boundary
   (:mod:`labkit.grading.probe`: inputs in, plain data out) and compares the answers with its
   own references. Expected values, planted defects and hidden seeds never enter the sandbox;
   warnings and stderr cost nothing;
5. the kernel is shut down and the whole sandbox (its PID namespace) with it; only then, after
   every submission, are ``grades.csv``, ``summary.json`` and ``feedback/<student>/<lab_id>.html``
   written to ``out_dir``, which no sandbox can see.

``jobs > 1`` grades that many submissions at once, each in its own sandbox, in worker processes;
results are identical to ``jobs = 1`` and reported in student order.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat

import labkit
from nbformat import NotebookNode
from nbgrader.utils import is_grade, is_locked
from tqdm.auto import tqdm

from labkit.artifacts import write_json
from labkit.grading.assemble import assemble, grade_id
from labkit.grading.coursedir import CourseDir
from labkit.grading.feedback import clean_message, feedback_html
from labkit.grading.kernel import KernelSession
from labkit.grading.labspec import Item, NoAnswer, Probe, StudentRaised, load_spec
from labkit.grading.limits import DEFAULT_FILE_MB, DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_PER_CELL
from labkit.grading.release import released_view
from labkit.grading.results import ItemResult, LabReport, StudentResult
from labkit.grading.runner import CellRun, NotebookRun
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
    isolation: str = "bwrap"
    max_restarts: int = 2
    startup_timeout: float = 60.0
    seed: int = 0
    readonly_paths: tuple[Path, ...] = ()
    jobs: int = 1


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
        # the labkit the grader runs (the sandbox shows that folder only, not its neighbours)
        "PYTHONPATH": str(Path(labkit.__file__).resolve().parent.parent),
        **passed,
    }


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


def _cells_to_run(cells: list[NotebookNode], skip: tuple[str, ...]) -> list[tuple[int, str | None]]:
    """``(index, source or None)`` of every code cell; ``None``: not run at grading."""
    out = []
    for k, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        visible_check = is_grade(cell) and is_locked(cell)
        out.append((k, None if visible_check or grade_id(cell) in skip else cell.source))
    return out


def _cell_problems(runs: list[CellRun], indices: list[int]) -> str:
    """A short note on cells that timed out or crashed (why a function may be missing)."""
    notes = [f"cell {k + 1}: {run.message}" for k, run in zip(indices, runs)
             if run.status in ("timeout", "crashed", "not_run")]
    return "; ".join(notes[:2])


def score_item(item: Item, probe: Probe, notebook: str, cell_note: str = "") -> ItemResult:
    """Run one item's check in this (the grader's) process and turn its outcome into a result."""
    def result(status: str, message: str) -> ItemResult:
        score = item.points if status == "passed" else 0.0
        return ItemResult(notebook, item.name, score, item.points, status, clean_message(message))

    try:
        item.check(probe)
    except AssertionError as exc:
        return result("failed", str(exc) or "the check failed")
    except StudentRaised as exc:
        return result("failed", f"{exc.name} raised {exc.exc_type}" + (f": {exc.message}" if exc.message else ""))
    except NoAnswer as exc:
        return result("no_answer", f"{exc}" + (f" ({cell_note})" if cell_note else ""))
    except Exception as exc:  # a value of the wrong type or shape makes the comparison itself fail
        return result("failed", f"the answer has the wrong type or shape ({type(exc).__name__})")
    return result("passed", "")


class LabGrader:
    """Grades submissions of one lab; the source, its released view, the spec and the sandbox are set up once."""

    def __init__(self, course: CourseDir, lab_id: str, settings: GradeSettings = GradeSettings()):
        self.course, self.lab_id, self.settings = course, lab_id, settings
        self.spec = load_spec(course.spec_file(lab_id))
        if self.spec.prepare is not None:
            self.spec.prepare()
        readonly = [*settings.readonly_paths, *self.spec.readonly_paths]
        self.passed_env = {k: v for k in PASSED_ENV if (v := os.environ.get(k))}
        if "LABKIT_DATA" in self.passed_env:
            readonly.append(Path(self.passed_env["LABKIT_DATA"]))
        self.sandbox = Sandbox(resolve_level(settings.isolation), settings.memory_mb, settings.file_mb,
                               tuple(readonly), tuple(self.spec.blocked_modules))
        self.sources = {p.name: nbformat.read(p, as_version=4) for p in course.source_notebooks(lab_id)}
        self.released = {name: released_view(course, lab_id, nb) for name, nb in self.sources.items()}
        lab_dir = course.lab_dir(lab_id)
        self.support = [(p, p.relative_to(lab_dir)) for p in course.support_files(lab_id)]

    def items_of(self, name: str) -> list[Item]:
        only = len(self.sources) == 1
        return [i for i in self.spec.items if i.notebook == name or (i.notebook is None and only)]

    def grade_notebook(self, name: str, student_lab: Path, student: str = "") -> list[ItemResult]:
        """The items probing notebook ``name`` for ``student``'s submission in ``student_lab`` (may not exist)."""
        stem, items = Path(name).stem, self.items_of(name)
        path = student_lab / name
        if not path.is_file() or path.is_symlink():
            return [ItemResult(stem, i.name, 0.0, i.points, "missing", f"no {name} in the submission") for i in items]
        try:
            submitted = nbformat.read(path, as_version=4)
        except Exception as exc:  # nbformat raises several unrelated types for a broken file
            return [ItemResult(stem, i.name, 0.0, i.points, "invalid",
                               f"{name} is not a readable notebook: {type(exc).__name__}") for i in items]
        assembled = assemble(self.sources[name], self.released[name], submitted)
        results = self._run_and_probe(assembled.notebook, student_lab, items, stem, student)
        results += [ItemResult(stem, gid, 0.0, 0.0, "tampered", clean_message(why))
                    for gid, why in assembled.tampered.items()]
        return results

    def _run_and_probe(self, notebook: NotebookNode, student_lab: Path, items: list[Item],
                       stem: str, student: str) -> list[ItemResult]:
        s = self.settings
        plan = _cells_to_run(notebook.cells, tuple(self.spec.skip_cells))
        runtime = Path(tempfile.mkdtemp(prefix="lkg-"))
        try:
            work = _prepare_workdir(runtime, student_lab, self.support)
            env = kernel_env(runtime, work, s.seed, self.passed_env)
            scratch = runtime / "probe"
            scratch.mkdir()

            def start() -> KernelSession:
                return KernelSession(self.sandbox, runtime_dir=runtime, workdir=work, env=env,
                                     startup_timeout=s.startup_timeout)

            preamble = seed_preamble(s.seed)
            with NotebookRun([src for _, src in plan], start, timeout=s.timeout_per_cell, grace=s.interrupt_grace,
                             preamble=preamble, max_restarts=s.max_restarts) as run:
                runs = run.run_cells()
                note = _cell_problems(runs, [k for k, _ in plan])
                results = []
                for item in items:
                    probe = Probe(lambda code, timeout: run.execute(code, timeout=timeout), scratch, item.timeout,
                                  student=student, workdir=work)
                    results.append(score_item(item, probe, stem, note))
        finally:
            shutil.rmtree(runtime, ignore_errors=True)
        return results

    def grade_student(self, student: str, student_lab: Path) -> StudentResult:
        start = time.perf_counter()
        items = [item for name in self.sources for item in self.grade_notebook(name, student_lab, student)]
        return StudentResult(student, items, time.perf_counter() - start)


_WORKER: LabGrader | None = None


def _grade_in_worker(student: str, student_lab: Path) -> StudentResult:
    return _WORKER.grade_student(student, student_lab)


def grade_lab(course: CourseDir, lab_id: str, submissions_dir: Path, out_dir: Path,
              settings: GradeSettings = GradeSettings(), *, progress: bool = True) -> LabReport:
    """Grade every ``submissions_dir/<student>/`` and then write grades, summary and feedback to ``out_dir``."""
    grader = LabGrader(course, lab_id, settings)
    report = LabReport(lab_id, grader.sandbox.level, grader.sandbox.description,
                       {k: str(v) if isinstance(v, tuple) else v for k, v in asdict(settings).items()})
    students = sorted(p for p in submissions_dir.iterdir()
                      if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))
    bar = tqdm(total=len(students), desc=f"grading {lab_id}", unit="submission", disable=not progress)
    if settings.jobs > 1 and len(students) > 1:
        # forked workers inherit the grader set up above (no second nbgrader import or release view);
        # the grader has started no kernel and no thread of its own yet
        global _WORKER
        _WORKER = grader
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(min(settings.jobs, len(students)), mp_context=context) as pool:
            futures = [pool.submit(_grade_in_worker, p.name, p / lab_id) for p in students]
            for future in futures:
                report.students.append(future.result())
                bar.update()
    else:
        for folder in students:
            report.students.append(grader.grade_student(folder.name, folder / lab_id))
            bar.update()
    bar.close()
    for result in report.students:  # every sandbox is gone: only now are results written
        page = out_dir / "feedback" / result.student / f"{lab_id}.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(feedback_html(result.student, lab_id, result.items, grader.sandbox.description),
                        encoding="utf-8")
    report.write_csv(out_dir / "grades.csv")
    write_json(out_dir / "summary.json", report.to_dict())
    return report
