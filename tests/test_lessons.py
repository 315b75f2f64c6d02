"""Single-sourced lessons: the release of a lesson, the exercise check, and the proof that every
released lesson is current, leaks no answer, has an exercise with a check in every section, and
that each check fails on the untouched exercise."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest

from labkit.errors import DataError
from labkit.exercises import (BEGIN, END, LESSON_SOURCES, STUB, ExerciseNotDone, check, exercise_cells,
                              release_lesson)

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
SOURCES = sorted(LESSON_SOURCES.glob("0*/*.ipynb"))


def _nb(*sources: str, markdown: tuple[str, ...] = ()) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(m) for m in markdown] + [nbformat.v4.new_code_cell(s) for s in sources]
    return nb


# --- release_lesson --------------------------------------------------------------------------------

def test_function_body_becomes_a_stub_at_its_indentation():
    src = f"def gate(cost, limit):\n    {BEGIN}\n    return cost <= limit\n    {END}\n"
    out = release_lesson(_nb(src)).cells[0].source
    assert out == f"def gate(cost, limit):\n    {STUB}\n    pass\n"
    namespace: dict = {}
    exec(out, namespace)  # still valid Python; the untouched function returns None
    assert namespace["gate"](1, 2) is None


def test_top_level_region_keeps_the_placeholder_above_it():
    src = f"answer = None\n{BEGIN}\nanswer = 0.3\n{END}\nprint(answer)"
    out = release_lesson(_nb(src)).cells[0].source
    assert out == f"answer = None\n{STUB}\npass\nprint(answer)"
    assert "0.3" not in out


def test_two_regions_in_one_cell_and_outputs_cleared():
    nb = _nb(f"a = None\n{BEGIN}\na = 1\n{END}\nb = None\n{BEGIN}\nb = 2\n{END}")
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", text="1")]
    nb.cells[0].execution_count = 3
    out = release_lesson(nb).cells[0]
    assert out.source.count(STUB) == 2 and "= 1" not in out.source and "= 2" not in out.source
    assert out.outputs == [] and out.execution_count is None
    assert nb.cells[0].execution_count == 3, "the source notebook must not be modified"


@pytest.mark.parametrize("source, problem", [
    (f"{BEGIN}\nx = 1\n", "never closed"),
    (f"x = 1\n{END}\n", "without"),
    (f"{BEGIN}\n{BEGIN}\nx = 1\n{END}\n{END}", "inside another"),
])
def test_unbalanced_markers_name_the_notebook_and_cell(source, problem):
    with pytest.raises(DataError, match=problem) as info:
        release_lesson(_nb("x = 0", source), name="lessons/x.ipynb")
    assert "lessons/x.ipynb, cell 1" in str(info.value)


def test_markers_in_markdown_are_refused():
    with pytest.raises(DataError, match="code cells only"):
        release_lesson(_nb(markdown=(f"{BEGIN}\nanswer\n{END}",)), name="x.ipynb")


def test_exercise_cells_finds_marked_code_cells_only():
    nb = _nb("x = 1", f"y = None\n{BEGIN}\ny = 2\n{END}", markdown=(f"{BEGIN}",))
    assert exercise_cells(nb) == [2]


# --- check -----------------------------------------------------------------------------------------

def test_check_passes_and_prints(capsys):
    check(3 > 2, expected="> 2", got=3, name="threshold")
    assert capsys.readouterr().out.strip() == "✓ threshold: 3"


def test_check_failure_says_expected_got_and_hint():
    with pytest.raises(ExerciseNotDone) as info:
        check(False, expected="a value in [0, 1]", got=1.5, hint="scores are probabilities", name="score")
    text = str(info.value)
    assert "expected a value in [0, 1]" in text and "got 1.5" in text and "Hint: scores are probabilities" in text


def test_check_on_the_untouched_answer_fails_without_crashing():
    answer = None
    with pytest.raises(ExerciseNotDone) as info:
        check(lambda: answer > 0.5, expected="> 0.5", got=answer)
    assert "TypeError" in str(info.value) and "YOUR CODE HERE" in str(info.value)
    assert isinstance(info.value, AssertionError)


# --- the course's lessons --------------------------------------------------------------------------

def _sections(nb: nbformat.NotebookNode) -> list[list[int]]:
    """Cell indices per numbered section (a markdown cell starting with '## <digit>' opens one)."""
    sections: list[list[int]] = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and re.match(r"^##\s+\d", cell.source.lstrip()):
            sections.append([])
        if sections:
            sections[-1].append(i)
    return sections


def _check_cell_after(nb: nbformat.NotebookNode, exercise: int) -> int | None:
    for j in range(exercise + 1, len(nb.cells)):
        if nb.cells[j].cell_type == "code":
            return j if "check(" in nb.cells[j].source else None
    return None


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_released_lesson_is_current_and_leaks_no_answer(source):
    released = NOTEBOOKS / source.parent.name / source.name
    assert released.is_file(), f"{released} missing: run `make release`"
    src = nbformat.read(source, as_version=4)
    fresh = release_lesson(src, name=str(source))
    on_disk = nbformat.read(released, as_version=4)
    assert [c.source for c in on_disk.cells] == [c.source for c in fresh.cells], f"{released} is stale: run `make release`"
    text = released.read_text(encoding="utf-8")
    assert BEGIN not in text and END not in text
    for index in exercise_cells(src):
        answer_lines = src.cells[index].source.split(BEGIN, 1)[1].split(END, 1)[0].split("\n")
        for line in (ln.strip() for ln in answer_lines):
            if len(line) > 12 and line not in {"pass", "return None"}:
                assert line not in on_disk.cells[index].source, f"{released}: cell {index} still holds answer line {line!r}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_section_has_an_exercise_and_a_check(source):
    nb = nbformat.read(source, as_version=4)
    sections = _sections(nb)
    assert sections, f"{source}: no numbered '## N' sections"
    exercises = set(exercise_cells(nb))
    for cells in sections:
        title = nb.cells[cells[0]].source.splitlines()[0]
        assert any(nb.cells[i].cell_type == "markdown" and "your turn" in nb.cells[i].source.lower() for i in cells), \
            f"{source.name} {title!r}: no 'Your turn' exercise"
        mine = sorted(exercises.intersection(cells))
        assert mine, f"{source.name} {title!r}: no exercise cell with a solution region"
        assert all(_check_cell_after(nb, i) in cells for i in mine), \
            f"{source.name} {title!r}: every exercise cell must be followed by a check cell calling check(...)"


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_checks_fail_on_the_untouched_released_lesson(source, tmp_path):
    """Run the learner's copy as handed out (ci budget): each check cell fails, every other cell runs."""
    from nbclient import NotebookClient

    released = NOTEBOOKS / source.parent.name / source.name
    nb = nbformat.read(released, as_version=4)
    exercises = exercise_cells(nbformat.read(source, as_version=4))
    checks = {_check_cell_after(nb, i) for i in exercises}
    env = {"LABKIT_BUDGET": "ci", "LABKIT_ARTIFACTS": str(tmp_path)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(released.parent)}}).execute()
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    errors = {i: o for i, c in enumerate(nb.cells) if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"}
    assert checks <= set(errors), f"{released.name}: checks that passed on the untouched exercise: {sorted(checks - set(errors))}"
    unexpected = {i: f"{o.ename}: {o.evalue}"[:200] for i, o in errors.items() if i not in checks and i not in exercises}
    assert not unexpected, f"{released.name}: cells outside the exercises fail in the learner's copy: {unexpected}"
