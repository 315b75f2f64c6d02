"""``make release``: regenerate the learner's copy of every lesson and every graded lab.

Lessons: each source in ``autograder/lessons/<chapter>/`` (with the exercises' answers) is released
to ``notebooks/<chapter>/`` by :func:`labkit.exercises.release_lessons` (answers stubbed, outputs
cleared).

For each lab in ``autograder/source/`` this runs ``nbgrader generate_assignment`` (into a
temporary folder) and writes the student notebooks, outputs stripped, with the lab's other
released files, to the chapter folder: ``ch01_*`` -> ``notebooks/01_data_foundations/labs/``,
``ch02_*`` -> ``notebooks/02_detection/labs/``, ...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from labkit.artifacts import REPO_ROOT
from labkit.errors import LabkitError
from labkit.exercises import LESSON_SOURCES, release_lessons
from labkit.grading.coursedir import DEFAULT_COURSE_ROOT, DEFAULT_NOTEBOOKS_ROOT, CourseDir
from labkit.grading.release import release_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labs", nargs="*", help="lab ids (default: every lesson and every lab in the course)")
    parser.add_argument("--course", type=Path, default=DEFAULT_COURSE_ROOT, help="nbgrader course folder")
    parser.add_argument("--notebooks", type=Path, default=DEFAULT_NOTEBOOKS_ROOT, help="the chapter folders")
    args = parser.parse_args(argv)
    course = CourseDir(args.course)
    unknown = sorted(set(args.labs) - set(course.labs()))
    if unknown:
        parser.error(f"unknown labs {unknown}; the course has {course.labs()}")
    try:
        written = [] if args.labs else release_lessons(LESSON_SOURCES, args.notebooks)
        written += release_all(course, args.notebooks, args.labs or None)
    except LabkitError as exc:
        print(f"release failed: {exc}", file=sys.stderr)
        return 1
    for path in written:
        shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
        print(f"wrote {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
