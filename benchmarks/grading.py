"""Benchmark: seconds per submission per lab when ``labkit grade`` grades under bubblewrap, and the
speed-up of ``--jobs N`` over ``--jobs 1`` on the same batch.

For every lab it grades ``--submissions`` submissions (the instructor's notebook and the blank
student copy, repeated) at the CI budget (small dataset), once with ``jobs=1`` and once with
``jobs=--jobs``, checks both runs give identical items, and writes ``artifacts/bench_grading.json``:
per-lab seconds per submission (each includes starting a fresh sandboxed kernel and every probe),
mean and maximum, wall time of both runs, the speed-up and the target (<= 15 s per submission).

Run: ``.venv/bin/python benchmarks/grading.py [--submissions 4 --jobs 2 --labs ch01_quiz ch02_nms]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import nbformat

from labkit.artifacts import REPO_ROOT, artifacts_dir, write_json
from labkit.grading.coursedir import CourseDir
from labkit.grading.grader import GradeSettings, grade_lab
from labkit.grading.release import released_view
from labkit.repro import run_manifest

TARGET_SECONDS = 15.0


def _submissions(course: CourseDir, lab: str, folder: Path, count: int) -> None:
    source = nbformat.read(course.source_notebooks(lab)[0], as_version=4)
    pair = [source, released_view(course, lab, source)]
    for k in range(count):
        (folder / f"student{k:02d}" / lab).mkdir(parents=True)
        nbformat.write(pair[k % 2], folder / f"student{k:02d}" / lab / f"{lab}.ipynb")


def _items(report) -> dict:
    return {s.student: [(i.item, i.score, i.status, i.message) for i in s.items] for s in report.students}


def bench_lab(course: CourseDir, lab: str, count: int, jobs: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        _submissions(course, lab, Path(tmp) / "subs", count)
        runs = {}
        for n in (1, jobs):
            start = time.perf_counter()
            report = grade_lab(course, lab, Path(tmp) / "subs", Path(tmp) / f"out{n}", GradeSettings(jobs=n),
                               progress=False)
            runs[n] = (time.perf_counter() - start, report)
    (wall1, serial), (wall_n, parallel) = runs[1], runs[jobs]
    seconds = [round(s.seconds, 2) for s in serial.students]
    return {"submissions": count, "isolation": serial.isolation, "seconds_per_submission": seconds,
            "mean_seconds": round(statistics.mean(seconds), 2), "max_seconds": max(seconds),
            "wall_seconds_jobs1": round(wall1, 2), f"wall_seconds_jobs{jobs}": round(wall_n, 2),
            "speedup": round(wall1 / wall_n, 2), "identical_results": _items(serial) == _items(parallel),
            "meets_target": max(seconds) <= TARGET_SECONDS,
            "scores": {s.student: s.score for s in serial.students}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--labs", nargs="*", default=None, help="default: every lab")
    args = parser.parse_args(argv)
    os.environ.setdefault("LABKIT_BUDGET", "ci")
    course = CourseDir()
    labs = args.labs or course.labs()
    results = {lab: bench_lab(course, lab, args.submissions, args.jobs) for lab in labs}
    result = {"labs": results, "jobs": args.jobs, "cpu_count": os.cpu_count(), "target_seconds": TARGET_SECONDS,
              "budget": os.environ["LABKIT_BUDGET"],
              "meets_target": all(r["meets_target"] for r in results.values()),
              "identical_results": all(r["identical_results"] for r in results.values()),
              "manifest": run_manifest(seed=0, config={"submissions": args.submissions, "jobs": args.jobs})}
    path = write_json(artifacts_dir() / "bench_grading.json", result)
    shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
    for lab, r in results.items():
        print(f"{lab}: mean {r['mean_seconds']} s, max {r['max_seconds']} s per submission "
              f"(target <= {TARGET_SECONDS:g} s); --jobs {args.jobs} speed-up x{r['speedup']}, "
              f"identical results: {r['identical_results']}")
    print(f"-> {shown}")
    return 0 if result["meets_target"] and result["identical_results"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
