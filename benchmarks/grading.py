"""Benchmark: seconds per submission when ``labkit grade`` autogrades the Chapter 1 quiz.

Grades ``--submissions`` copies of the quiz (the instructor's answers, the blank student copy, and
copies with a seeded mix of right and wrong letters) in one batch, with the default settings and
the best isolation level available, and writes ``artifacts/bench_grading.json``: the per-submission
seconds (each includes starting a fresh sandboxed kernel), their mean and maximum, the one-off
set-up and the whole batch's wall time, the scores, and the target (<= 60 s per submission on
2 CPU cores).

Run: ``.venv/bin/python benchmarks/grading.py [--submissions 6 --seed 0]``
"""

from __future__ import annotations

import argparse
import copy
import random
import statistics
import tempfile
import time
from pathlib import Path

import nbformat

from labkit.artifacts import REPO_ROOT, artifacts_dir, write_json
from labkit.grading.assemble import grade_id
from labkit.grading.coursedir import CourseDir, chapter_labs_dir
from labkit.grading.grader import GradeSettings, grade_lab
from labkit.repro import run_manifest

LAB = "ch01_quiz"
TARGET_SECONDS = 60.0


def submissions(folder: Path, count: int, seed: int) -> None:
    """``count`` quiz submissions under ``folder/<student>/ch01_quiz/``."""
    course = CourseDir()
    source = nbformat.read(course.source_notebooks(LAB)[0], as_version=4)
    student = nbformat.read(chapter_labs_dir(LAB) / f"{LAB}.ipynb", as_version=4)
    rng = random.Random(seed)
    notebooks = [source, student]
    while len(notebooks) < count:
        nb = copy.deepcopy(student)
        for cell in nb.cells:
            if (gid := grade_id(cell) or "").endswith("_answer"):
                cell.source = f'answer_{gid.split("_")[0]} = "{rng.choice("abcd")}"'
        notebooks.append(nb)
    for k, nb in enumerate(notebooks[:count]):
        (folder / f"student{k:02d}" / LAB).mkdir(parents=True)
        nbformat.write(nb, folder / f"student{k:02d}" / LAB / f"{LAB}.ipynb")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    settings = GradeSettings()
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        submissions(Path(tmp) / "subs", args.submissions, args.seed)
        start = time.perf_counter()
        report = grade_lab(CourseDir(), LAB, Path(tmp) / "subs", Path(tmp) / "out", settings)
        wall = time.perf_counter() - start
    seconds = [round(s.seconds, 2) for s in report.students]
    result = {
        "lab": LAB, "submissions": len(seconds), "isolation": report.isolation,
        "seconds_per_submission": seconds, "mean_seconds": round(statistics.mean(seconds), 2),
        "max_seconds": max(seconds), "setup_seconds": round(wall - sum(seconds), 2), "wall_seconds": round(wall, 2),
        "target_seconds": TARGET_SECONDS, "meets_target": max(seconds) <= TARGET_SECONDS,
        "scores": {s.student: s.score for s in report.students},
        "manifest": run_manifest(seed=args.seed, config={"submissions": args.submissions, **report.settings}),
    }
    path = write_json(artifacts_dir() / "bench_grading.json", result)
    shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
    print(f"{len(seconds)} submissions, isolation {report.isolation}: mean {result['mean_seconds']} s, "
          f"max {result['max_seconds']} s per submission (target <= {TARGET_SECONDS:g} s); "
          f"set-up {result['setup_seconds']} s -> {shown}")
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
