"""Helpers for the graded-lab tests: nbgrader metadata checks, the student view, blanked and
planted-wrong variants, and running a variant with nbclient to see which graded cells pass.

The variants of one lab run one after the other in a single kernel (:func:`lab_kernel`), each
starting from an emptied namespace (``%reset -f``): every cell is executed again, only the
import of torch & co. is not paid twice.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import nbformat
import pytest
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbgrader.nbgraderformat import MetadataValidator
from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

from labkit.course import SETUP_TAG
from labkit.grading.quiz import load_key, quiz_cell_source

REPO = Path(__file__).resolve().parents[1]
SOURCES = REPO / "autograder" / "source"
KEYS = REPO / "autograder" / "keys"


def load(lab: str) -> nbformat.NotebookNode:
    """The instructor notebook ``autograder/source/<lab>/<lab>.ipynb``."""
    return nbformat.read(SOURCES / lab / f"{lab}.ipynb", as_version=4)


def nbgrader_meta(cell: nbformat.NotebookNode) -> dict:
    return cell.metadata.get("nbgrader", {})


def graded_cells(nb: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    """grade_id -> autograded test cell."""
    return {nbgrader_meta(c)["grade_id"]: c for c in nb.cells
            if nbgrader_meta(c).get("grade") and not nbgrader_meta(c).get("solution")}


def check_metadata(nb: nbformat.NotebookNode, points: Mapping[str, int]) -> None:
    """Valid nbgrader metadata, unique ids, locked test cells worth ``points``, regions in the right
    cells, the course setup cell first, and no outputs stored."""
    MetadataValidator().validate_nb(nb)
    assert SETUP_TAG in nb.cells[0].metadata.get("tags", []), "the first cell must be the course setup cell"
    ids = [nbgrader_meta(c)["grade_id"] for c in nb.cells if nbgrader_meta(c)]
    assert len(ids) == len(set(ids)), "grade_ids must be unique"
    graded = graded_cells(nb)
    assert {k: nbgrader_meta(c)["points"] for k, c in graded.items()} == dict(points)
    assert all(nbgrader_meta(c)["locked"] for c in graded.values()), "test cells must be locked"
    for cell in nb.cells:
        if "BEGIN SOLUTION" in cell.source:
            assert nbgrader_meta(cell).get("solution"), f"solution region outside a solution cell: {cell.source[:80]}"
        if "BEGIN HIDDEN TESTS" in cell.source:
            assert nbgrader_meta(cell).get("grade"), f"hidden tests outside a graded cell: {cell.source[:80]}"
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, "store the notebook without outputs"


def check_quiz(nb: nbformat.NotebookNode, lab: str) -> None:
    """The quiz cell holds the hashes of ``autograder/keys/<lab>.yaml``, the instructor's answer
    cells (``answer_qN = "x"``) give the key's answers, and the student copy assigns none."""
    key = load_key(KEYS / f"{lab}.yaml")
    cells = {nbgrader_meta(c).get("grade_id"): c for c in nb.cells}
    assert cells["quiz_setup"].source == quiz_cell_source(key), "quiz cell out of date: run `labkit quiz-key`"
    pattern = re.compile(r'answer_(q\d+)\s*=\s*["\'](\w)["\']')
    answers = {m.group(1): m.group(2) for c in nb.cells for m in pattern.finditer(c.source)}
    assert answers == dict(key.answers)
    assert not [m.group(0) for c in student_view(nb).cells for m in pattern.finditer(c.source)], \
        "the student copy must not assign any quiz answer"


def student_view(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Solutions stubbed and hidden tests removed, as ``nbgrader generate_assignment`` does."""
    nb, resources = ClearSolutions().preprocess(nbformat.from_dict(nb), {})
    nb, _ = ClearHiddenTests().preprocess(nb, resources)
    return nb


def blanked(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The instructor notebook with every solution region stubbed (hidden tests kept)."""
    return ClearSolutions().preprocess(nbformat.from_dict(nb), {})[0]


def with_wrong_answers(nb: nbformat.NotebookNode,
                       edits: Mapping[str, Sequence[tuple[str, str]]]) -> nbformat.NotebookNode:
    """A copy whose solution cells (by grade_id) get ``(old, new)`` text replacements."""
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        for old, new in edits.get(nbgrader_meta(cell).get("grade_id"), ()):
            assert old in cell.source, f"planted edit no longer applies: {old!r}"
            cell.source = cell.source.replace(old, new)
    return nb


@contextmanager
def lab_kernel(workdir: Path) -> Iterator[KernelManager]:
    """A kernel manager for :func:`run_graded` whose kernel (started on first use) sees the CI
    budget (small dataset at its default place, not ``$LABKIT_DATA``) and a throw-away
    artifacts folder under ``workdir``; shut down on exit."""
    km = KernelManager(kernel_name="python3")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LABKIT_BUDGET", "ci")
        env.delenv("LABKIT_DATA", raising=False)
        env.setenv("LABKIT_ARTIFACTS", str(workdir / "artifacts"))
        try:
            yield km
        finally:
            if km.has_kernel:
                km.shutdown_kernel(now=True)


def run_graded(nb: nbformat.NotebookNode, km: KernelManager, workdir: Path) -> dict[str, str | None]:
    """Execute every cell in a freshly emptied namespace (errors do not stop the run); grade_id ->
    ``None`` if the test cell passed, else ``"Name: message"`` of its error."""
    nb = nbformat.from_dict(nb)
    nb.cells.insert(0, nbformat.v4.new_code_cell('get_ipython().run_line_magic("reset", "-f")'))
    NotebookClient(nb, km=km, timeout=240, allow_errors=True, resources={"metadata": {"path": str(workdir)}}).execute()
    result = {}
    for grade_id, cell in graded_cells(nb).items():
        errors = [o for o in cell.outputs if o.output_type == "error"]
        result[grade_id] = f"{errors[0].ename}: {errors[0].evalue}"[:300] if errors else None
    return result
