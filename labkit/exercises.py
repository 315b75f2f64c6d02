"""Learner exercises in the lessons: the check cell's helper and the release of a lesson.

Lessons are single-sourced like the graded labs. The source copy of a lesson
(``autograder/lessons/<chapter>/<lesson>.ipynb``) holds the reference answer of every "Your turn"
exercise between two marker lines::

    chosen_threshold = None          # the learner's answer goes here
    ### BEGIN SOLUTION
    chosen_threshold = 0.3
    ### END SOLUTION

``make course`` executes the source, so every exercise is proven solvable and its check passes on
the reference answer. :func:`release_lesson` turns the source into the learner's copy
(``notebooks/<chapter>/<lesson>.ipynb``): each marked region becomes ``# YOUR CODE HERE`` and a
``pass`` at the region's indentation, so a function body stays valid Python and returns ``None``,
and a variable keeps the placeholder assigned above the region. The check cell after the exercise
then fails through :func:`check` with what was expected, what came out and a hint.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import nbformat

from labkit.artifacts import REPO_ROOT
from labkit.errors import DataError

#: Where the source copies of the lessons live (``<chapter>/<lesson>.ipynb``), with the answers.
LESSON_SOURCES = REPO_ROOT / "autograder" / "lessons"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = "# YOUR CODE HERE"


class ExerciseNotDone(AssertionError):
    """A "Your turn" check did not pass: the message says what was expected, what came out, and a hint."""


def check(condition: Any, *, expected: Any, got: Any, hint: str | None = None, name: str = "exercise") -> None:
    """Pass (print a one-line confirmation) or raise :class:`ExerciseNotDone` with a helpful message.

    ``condition`` may be a callable: it is called, and an exception inside it (e.g. comparing the
    untouched answer ``None`` with a number) counts as not done, with the exception named.
    """
    error = None
    if callable(condition):
        try:
            condition = condition()
        except Exception as exc:  # the learner's answer is not usable yet: report, do not crash
            error, condition = f"{type(exc).__name__}: {exc}", False
    if condition:
        print(f"✓ {name}: {got!r}")
        return
    lines = [f"✗ {name}: expected {expected}; got {got!r}"]
    if error:
        lines.append(f"  (checking it raised {error})")
    if got is None:
        lines.append("  The answer is still empty: write your code where it says '# YOUR CODE HERE'.")
    if hint:
        lines.append(f"  Hint: {hint}")
    raise ExerciseNotDone("\n".join(lines))


def _release_source(source: str, where: str) -> tuple[str, int]:
    """The cell source with each solution region replaced by the stub; and how many regions."""
    out: list[str] = []
    inside, regions = False, 0
    for number, line in enumerate(source.split("\n"), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise DataError(f"line {number}: '{BEGIN}' inside another solution region", source=where)
            indent = line[: len(line) - len(line.lstrip())]
            out += [f"{indent}{STUB}", f"{indent}pass"]
            inside, regions = True, regions + 1
        elif marker == END:
            if not inside:
                raise DataError(f"line {number}: '{END}' without a '{BEGIN}' before it", source=where)
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise DataError(f"'{BEGIN}' is never closed by '{END}'", source=where)
    return "\n".join(out), regions


def release_lesson(source_nb: nbformat.NotebookNode, name: str = "lesson") -> nbformat.NotebookNode:
    """The learner's copy of a lesson: solution regions stubbed, outputs and execution counts cleared.

    ``name`` (e.g. the source path) is used in errors, which name the cell of an unbalanced marker."""
    nb = copy.deepcopy(source_nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.source, _ = _release_source(cell.source, f"{name}, cell {index}")
            cell.outputs, cell.execution_count = [], None
        elif BEGIN in cell.source or END in cell.source:
            raise DataError(f"cell {index}: solution markers belong in code cells only", source=name)
    return nb


def exercise_cells(nb: nbformat.NotebookNode) -> list[int]:
    """Indices of the code cells that hold a solution region (in a source copy)."""
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and any(
        line.strip() == BEGIN for line in c.source.split("\n"))]


def release_lessons(sources: Path, notebooks: Path) -> list[Path]:
    """Release every ``sources/<chapter>/<lesson>.ipynb`` to ``notebooks/<chapter>/<lesson>.ipynb``."""
    written = []
    for path in sorted(sources.glob("0*/*.ipynb")):
        nb = release_lesson(nbformat.read(path, as_version=4), name=str(path))
        target = notebooks / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
        written.append(target)
    return written
