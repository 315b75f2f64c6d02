"""``labkit grade`` (autograde a lab's submissions).

``labkit grade SUBMISSIONS_DIR --lab LAB_ID`` exits 0 when every submission was graded, 1 when
one needs the instructor's review (a tampered locked cell, an unreadable notebook), 2 on bad usage
-- including a missing bubblewrap (there is no weaker isolation level). See
:mod:`labkit.grading.grader` for what it does and :mod:`labkit.grading.sandbox` for the isolation
levels; the level used is printed and written to every row of ``grades.csv``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from labkit.cli import UsageError, add_json_flag, emit


def _positive(kind: type):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return parse


def _grade(args: argparse.Namespace) -> int:
    from labkit.grading.coursedir import CourseDir
    from labkit.grading.grader import GradeSettings, grade_lab
    from labkit.grading.results import format_score
    from labkit.grading.sandbox import resolve_level

    submissions, course = Path(args.submissions), CourseDir(Path(args.course))
    if not submissions.is_dir():
        raise UsageError(f"submissions folder {submissions} does not exist")
    if args.lab not in course.labs():
        raise UsageError(f"no lab {args.lab!r} in {course.source} (labs: {', '.join(course.labs()) or 'none'})")
    for path in args.bind_ro:
        if not Path(path).exists():
            raise UsageError(f"--bind-ro {path} does not exist")
    try:
        resolve_level(args.isolation)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not course.spec_file(args.lab).is_file():
        raise UsageError(f"lab {args.lab!r} has no grading spec {course.spec_file(args.lab)}")
    settings = GradeSettings(timeout_per_cell=args.timeout_per_cell, memory_mb=args.memory_mb,
                             isolation=args.isolation, readonly_paths=tuple(Path(p).resolve() for p in args.bind_ro),
                             jobs=args.jobs)
    out = Path(args.out) if args.out else Path("graded") / args.lab
    report = grade_lab(course, args.lab, submissions, out, settings, progress=not args.json)

    def render(_: object) -> str:
        lines = [f"{args.lab}: {len(report.students)} submissions graded; isolation: {report.isolation_description}"]
        for s in report.students:
            flags = sorted({i.status for i in s.items} - {"passed"})
            lines.append(f"  {s.student}: {format_score(s.score)} / {format_score(s.max_score)}"
                         + (f"  ({', '.join(flags)})" if flags else ""))
        lines.append(f"grades: {out / 'grades.csv'}; feedback: {out / 'feedback'}")
        return "\n".join(lines)

    emit(args, report.to_dict(), render)
    return 1 if report.needs_review else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    from labkit.grading.coursedir import DEFAULT_COURSE_ROOT
    from labkit.grading.limits import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_PER_CELL
    from labkit.grading.sandbox import LEVELS

    grade = subparsers.add_parser("grade", help="autograde every submission of a lab (sandboxed, per-cell timeouts)",
                                  description="Autograde SUBMISSIONS_DIR/<student>/<lab_id>/*.ipynb: every "
                                              "submission in a fresh sandboxed kernel, cell by cell; writes "
                                              "grades.csv, summary.json and per-student feedback HTML.")
    grade.add_argument("submissions", metavar="SUBMISSIONS_DIR", help="folder of <student>/<lab_id>/*.ipynb")
    grade.add_argument("--lab", required=True, help="lab id, a folder of the course's source/ (e.g. ch01_quiz)")
    grade.add_argument("--course", default=str(DEFAULT_COURSE_ROOT),
                       help="nbgrader course folder (default: this repository's autograder/)")
    grade.add_argument("--out", help="where grades.csv, summary.json and feedback/ go (default: graded/LAB_ID)")
    grade.add_argument("--timeout-per-cell", type=_positive(float), default=DEFAULT_TIMEOUT_PER_CELL, metavar="S",
                       help="seconds a cell may run before it is interrupted and fails "
                            f"(default {DEFAULT_TIMEOUT_PER_CELL:g})")
    grade.add_argument("--memory-mb", type=_positive(int), default=DEFAULT_MEMORY_MB, metavar="M",
                       help=f"address-space cap of the kernel in MiB (default {DEFAULT_MEMORY_MB}; "
                            "importing torch and OpenCV maps ~3600)")
    grade.add_argument("--isolation", choices=LEVELS, default="bwrap",
                       help="sandbox level (bwrap, the only one: grading refuses to run without bubblewrap; "
                            "the level is written into every row of grades.csv)")
    grade.add_argument("--jobs", type=_positive(int), default=1, metavar="N",
                       help="grade N submissions at once, each in its own sandbox (default 1)")
    grade.add_argument("--bind-ro", action="append", default=[], metavar="PATH",
                       help="extra path the kernel may read, e.g. a dataset folder (repeatable)")
    add_json_flag(grade)
    grade.set_defaults(func=_grade)
