"""Helpers for the graded-lab tests: nbgrader metadata checks, the student view, planted-wrong and
alternative variants, and grading a batch of variants with the real grader (sandboxed kernels,
items scored in the grader's process) to see which items each one earns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import nbformat
import pytest
from nbgrader.nbgraderformat import MetadataValidator
from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

from labkit.course import SETUP_TAG
from labkit.grading.coursedir import CourseDir
from labkit.grading.grader import GradeSettings, grade_lab
from labkit.grading.labspec import load_spec

REPO = Path(__file__).resolve().parents[1]
COURSE = CourseDir(REPO / "autograder")
SETTINGS = GradeSettings(timeout_per_cell=120.0, jobs=2)  # the grader's own parallelism


def load(lab: str) -> nbformat.NotebookNode:
    """The instructor notebook ``autograder/source/<lab>/<lab>.ipynb``."""
    return nbformat.read(COURSE.source / lab / f"{lab}.ipynb", as_version=4)


@pytest.fixture(scope="module")
def source(request: pytest.FixtureRequest) -> nbformat.NotebookNode:
    """The instructor notebook of the test module's ``LAB``."""
    return load(request.module.LAB)


def student_text(nb: nbformat.NotebookNode, secrets: Sequence[str]) -> str:
    """The text of ``nb``'s student copy, asserted to show none of ``secrets`` (the leaked ones named)."""
    text = "\n".join(c.source for c in student_view(nb).cells)
    leaked = [secret for secret in secrets if secret in text]
    assert not leaked, f"the student copy shows {leaked}"
    return text


def nbgrader_meta(cell: nbformat.NotebookNode) -> dict:
    return cell.metadata.get("nbgrader", {})


def item_points(lab: str) -> dict[str, float]:
    return {i.name: i.points for i in load_spec(COURSE.spec_file(lab)).items}


def check_metadata(nb: nbformat.NotebookNode, lab: str, total: float) -> None:
    """Valid nbgrader metadata, unique ids, no hidden tests and no points in the notebook (the spec
    holds the items), skip_cells that exist, the course setup cell first, and no outputs stored."""
    MetadataValidator().validate_nb(nb)
    assert SETUP_TAG in nb.cells[0].metadata.get("tags", []), "the first cell must be the course setup cell"
    ids = [nbgrader_meta(c)["grade_id"] for c in nb.cells if nbgrader_meta(c)]
    assert len(ids) == len(set(ids)), "grade_ids must be unique"
    for cell in nb.cells:
        assert "HIDDEN TESTS" not in cell.source, "hidden tests live in the grading spec, never in the notebook"
        assert not nbgrader_meta(cell).get("points"), "points live in the grading spec"
        if "BEGIN SOLUTION" in cell.source:
            assert nbgrader_meta(cell).get("solution"), f"solution region outside a solution cell: {cell.source[:80]}"
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, "store the notebook without outputs"
    spec = load_spec(COURSE.spec_file(lab))
    assert set(spec.skip_cells) <= set(ids) and spec.max_score == total


def student_view(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Solutions stubbed, as ``nbgrader generate_assignment`` does."""
    nb, resources = ClearSolutions().preprocess(nbformat.from_dict(nb), {})
    nb, _ = ClearHiddenTests().preprocess(nb, resources)
    return nb


def with_answers(nb: nbformat.NotebookNode, edits: Mapping[str, Sequence[tuple[str, str]] | str]) -> nbformat.NotebookNode:
    """A copy whose solution cells (by grade_id) get ``(old, new)`` text replacements, or a whole new source."""
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        edit = edits.get(nbgrader_meta(cell).get("grade_id"))
        if isinstance(edit, str):
            cell.source = edit
        elif edit:
            for old, new in edit:
                assert old in cell.source, f"planted edit no longer applies: {old!r}"
                cell.source = cell.source.replace(old, new)
    return nb


def grade_variants(lab: str, variants: Mapping[str, nbformat.NotebookNode], tmp: Path,
                   monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, float]]:
    """Grade every variant as a submission (CI budget: the small dataset); student -> item -> score."""
    monkeypatch.setenv("LABKIT_BUDGET", "ci")
    for name, nb in variants.items():
        (tmp / "subs" / name / lab).mkdir(parents=True)
        nbformat.write(nb, tmp / "subs" / name / lab / f"{lab}.ipynb")
    report = grade_lab(COURSE, lab, tmp / "subs", tmp / "out", SETTINGS, progress=False)
    return {s.student: {i.item: i.score for i in s.items if i.max_score > 0} for s in report.students}


def lost(scores: dict[str, float], points: dict[str, float]) -> set[str]:
    """Items that did not get their full points."""
    return {item for item, full in points.items() if scores.get(item) != full}


def assert_each_variant_earns(lab: str, source: nbformat.NotebookNode, correct: Mapping[str, nbformat.NotebookNode],
                              wrong: Mapping[str, tuple[Mapping[str, Sequence[tuple[str, str]] | str], set[str]]],
                              tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Grade the instructor copy, the ``correct`` alternatives, the blank student copy and each
    ``wrong`` variant (``name -> (edits, the items it must lose)``) with the real grader: the correct
    ones lose nothing, the blank copy loses every item, each wrong one exactly its items."""
    variants = {"instructor": source, **correct, "blank": student_view(source),
                **{name: with_answers(source, edits) for name, (edits, _) in wrong.items()}}
    scores, points = grade_variants(lab, variants, tmp, monkeypatch), item_points(lab)
    for name in ("instructor", *correct):
        assert not lost(scores[name], points), (name, scores[name])
    assert lost(scores["blank"], points) == set(points), scores["blank"]
    for name, (_, expected) in wrong.items():
        assert lost(scores[name], points) == expected, (name, scores[name])
