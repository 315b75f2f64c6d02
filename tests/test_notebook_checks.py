"""Lesson checks say what they expected and what they got, and none switches off silently.

Static checks over every lesson notebook's code cells (IPython magics dropped before parsing):
every ``assert`` carries a message, and no assert hides under an ``if`` on the budget (a
full-budget check goes through ``labkit.budget.full_check``, which prints when it is skipped).
"""

import ast
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
LESSONS = sorted((REPO / "notebooks").glob("0*/*.ipynb"))


def code_trees(path: Path):
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type == "code":
            source = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in cell.source.splitlines())
            yield index, ast.parse(source)


def budget_guarded(node: ast.If) -> bool:
    names = {n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)}
    calls = {n.func.id for n in ast.walk(node.test) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    return bool(names & {"FULL", "CI"} or calls & {"current"})


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: f"{p.parent.name[:2]}/{p.name}")
def test_every_assert_has_a_message(path):
    bare = [(index, node.lineno) for index, tree in code_trees(path) for node in ast.walk(tree)
            if isinstance(node, ast.Assert) and node.msg is None]
    assert not bare, f"{path.name}: asserts without a message at (cell, line) {bare}"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: f"{p.parent.name[:2]}/{p.name}")
def test_no_assert_is_switched_off_by_the_budget(path):
    hidden = [index for index, tree in code_trees(path) for node in ast.walk(tree)
              if isinstance(node, ast.If) and budget_guarded(node)
              and any(isinstance(n, ast.Assert) for n in ast.walk(node))]
    assert not hidden, f"{path.name}: cells {hidden} skip asserts on the budget silently; use labkit.budget.full_check"


def test_the_static_checks_catch_what_they_claim(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("%matplotlib inline\nx = 1\nassert x == 1"),
                nbformat.v4.new_code_cell("if FULL:\n    assert x > 0, 'x'")]
    path = tmp_path / "bad.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(AssertionError, match=r"\(cell, line\) \[\(0, 3\)\]"):
        test_every_assert_has_a_message(path)
    with pytest.raises(AssertionError, match=r"cells \[1\] skip asserts"):
        test_no_assert_is_switched_off_by_the_budget(path)
