"""The Chapter 1 graded lab (``autograder/source/ch01_dataset_card``) grades what it claims to.

* The instructor notebook, solutions in place, runs with every test cell passing.
* With the solutions blanked the way ``nbgrader generate_assignment`` blanks them, every graded
  test cell fails (so no point is free).
* Planted wrong answers lose exactly the points they should: a validator that wraps
  ``labkit.data.validate``, an image-level (leaking) split and a card whose split unit is the
  image pass the visible tests but fail the hidden ones.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbgrader.nbgraderformat import MetadataValidator
from nbgrader.preprocessors import ClearSolutions

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "autograder" / "source" / "ch01_dataset_card" / "ch01_dataset_card.ipynb"
TOTAL_POINTS = 13

#: Wrong answers (grade_id of the solution cell -> replacement source) and what they must lose.
CHEATING_VALIDATOR = '''
from labkit.data.validate import validate_coco


def validate(coco):
    return [(f.code, f.record) for f in validate_coco(coco, check_files=False).findings if f.severity == "error"]
'''
LEAKING_SPLIT = '''
def split_by_scene(images, fractions=(0.7, 0.15, 0.15), seed=0):
    names = [img["file_name"] for img in images]
    order = [names[k] for k in np.random.default_rng(seed).permutation(len(names))]
    a, b = round(fractions[0] * len(names)), round((fractions[0] + fractions[1]) * len(names))
    return {"train": order[:a], "val": order[a:b], "test": order[b:]}
'''
WRONG_ANSWERS = {"validator_answer": CHEATING_VALIDATOR, "split_answer": LEAKING_SPLIT}
#: grade_id -> must the cell pass with the wrong answers above (and the card below)?
EXPECTED_WITH_WRONG_ANSWERS = {
    "card_complete": True, "card_content": False,
    "validator_visible": True, "validator_own_work": False, "validator_schema": False,
    "validator_references": False, "validator_geometry": False, "validator_no_false_alarms": False,
    "split_visible": True, "split_hidden": False,
}


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _graded(nb) -> dict[str, nbformat.NotebookNode]:
    return {_meta(c)["grade_id"]: c for c in nb.cells if _meta(c).get("grade") and not _meta(c).get("solution")}


def _execute(nb, tmp_path: Path) -> dict[str, str | None]:
    """Run every cell (errors do not stop the run); grade_id -> error name of each graded test cell."""
    client = NotebookClient(nb, timeout=240, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    result = {}
    for grade_id, cell in _graded(nb).items():
        errors = [o for o in cell.outputs if o.output_type == "error"]
        result[grade_id] = f"{errors[0].ename}: {errors[0].evalue}" if errors else None
    return result


@pytest.fixture(scope="module")
def source_nb() -> nbformat.NotebookNode:
    return nbformat.read(SOURCE, as_version=4)


def test_nbgrader_metadata_is_valid(source_nb):
    MetadataValidator().validate_nb(source_nb)
    ids = [_meta(c)["grade_id"] for c in source_nb.cells if _meta(c)]
    assert len(ids) == len(set(ids)), "grade_ids must be unique"
    graded = _graded(source_nb)
    assert sum(_meta(c)["points"] for c in graded.values()) == TOTAL_POINTS
    assert all(_meta(c)["locked"] for c in graded.values()), "test cells must be locked"
    for cell in source_nb.cells:
        if "BEGIN SOLUTION" in cell.source:
            assert _meta(cell).get("solution"), f"solution region outside a solution cell: {cell.source[:80]}"
        if "BEGIN HIDDEN TESTS" in cell.source:
            assert _meta(cell).get("grade"), f"hidden tests outside a graded cell: {cell.source[:80]}"
    assert set(EXPECTED_WITH_WRONG_ANSWERS) == set(graded)


@pytest.mark.slow
def test_instructor_solution_passes_every_test(source_nb, tmp_path):
    nb = nbformat.from_dict(source_nb)
    results = _execute(nb, tmp_path)
    assert results and not {k: v for k, v in results.items() if v}, results
    errors = [c.source[:80] for c in nb.cells if c.cell_type == "code" and any(o.output_type == "error" for o in c.outputs)]
    assert not errors, f"cells raised: {errors}"


@pytest.mark.slow
def test_blank_answers_fail_every_graded_test(source_nb, tmp_path):
    nb = nbformat.from_dict(source_nb)
    nb, _ = ClearSolutions().preprocess(nb, {})
    assert not any("BEGIN SOLUTION" in c.source for c in nb.cells)
    results = _execute(nb, tmp_path)
    passed = [k for k, v in results.items() if v is None]
    assert not passed, f"graded cells that pass without any answer: {passed}"


@pytest.mark.slow
def test_wrong_answers_lose_the_hidden_points(source_nb, tmp_path):
    nb = nbformat.from_dict(source_nb)
    for cell in nb.cells:
        grade_id = _meta(cell).get("grade_id")
        if grade_id in WRONG_ANSWERS:
            cell.source = WRONG_ANSWERS[grade_id]
        elif grade_id == "card_answer":
            start, end = cell.source.index("## Split strategy"), cell.source.index("## Known artifacts")
            image_level = "## Split strategy\n\nUnit: image. A random 70/15/15 split of the images.\n\n"
            cell.source = cell.source[:start] + image_level + cell.source[end:]
    results = _execute(nb, tmp_path)
    wrong = {k: results[k] for k, must_pass in EXPECTED_WITH_WRONG_ANSWERS.items() if (results[k] is None) != must_pass}
    assert not wrong, f"cells with the wrong outcome (None = passed): {wrong}"
