"""The notebook that is actually graded, built from a submission, and the tampering found on the way.

The rule is nbgrader's (``OverwriteCells`` in ``nbgrader autograde``): cells are matched by their
nbgrader ``grade_id``. Cells the student may not change -- locked cells and test cells -- are taken
from the instructor *source*, which also puts the hidden tests back; answer cells keep the
student's source under the released nbgrader metadata. A locked cell whose
:func:`nbgrader.utils.compute_checksum` (source, cell type, grade/solution/locked flags, grade id,
points) matches neither the released cell's nor the source cell's (the instructor's own notebook is
a valid submission), a locked cell that is missing or duplicated, or an answer
cell whose type was changed is reported as tampered -- never scored silently.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell
from nbgrader.utils import compute_checksum, is_locked


@dataclass
class Assembled:
    """The notebook to run, and ``grade_id -> what was wrong`` for every tampered cell."""

    notebook: NotebookNode
    tampered: dict[str, str] = field(default_factory=dict)


def grade_id(cell: NotebookNode) -> str | None:
    value = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    return value if isinstance(value, str) else None


def _checksum(cell: NotebookNode) -> str | None:
    try:
        return compute_checksum(cell)
    except (KeyError, TypeError, ValueError, AttributeError):  # metadata edited into something invalid
        return None


def _fresh(cell: NotebookNode) -> NotebookNode:
    out = copy.deepcopy(cell)
    if out.cell_type == "code":
        out.outputs, out.execution_count = [], None
    return out


def _answer(submitted: NotebookNode, released: NotebookNode) -> NotebookNode:
    make = new_code_cell if released.cell_type == "code" else new_markdown_cell
    return make(submitted.source, metadata={**copy.deepcopy(dict(submitted.metadata)),
                                            "nbgrader": copy.deepcopy(released.metadata["nbgrader"])})


def _plain(cell: NotebookNode) -> NotebookNode:
    """A student's own cell: kept, but without nbgrader metadata it has no business carrying."""
    out = _fresh(cell)
    out.metadata.pop("nbgrader", None)
    return out


def assemble(source: NotebookNode, released: NotebookNode, submitted: NotebookNode) -> Assembled:
    """Merge ``submitted`` with the instructor ``source`` (``released`` is its student copy)."""
    source_cells = {grade_id(c): c for c in source.cells if grade_id(c)}
    released_cells = {grade_id(c): c for c in released.cells if grade_id(c)}
    cells, tampered, seen = [], {}, set()
    for cell in submitted.cells:
        gid = grade_id(cell)
        if gid not in released_cells:
            cells.append(_plain(cell))
            continue
        if gid in seen:
            tampered[gid] = "the cell appears more than once"
            continue
        seen.add(gid)
        reference = released_cells[gid]
        if is_locked(reference):
            if _checksum(cell) not in (compute_checksum(reference), compute_checksum(source_cells[gid])):
                tampered[gid] = "a locked cell was changed (checksum mismatch); the original was run instead"
            cells.append(_fresh(source_cells[gid]))
        else:
            if cell.cell_type != reference.cell_type:
                tampered[gid] = f"the answer cell was changed from {reference.cell_type} to {cell.cell_type}"
            cells.append(_answer(cell, reference))
    for gid, reference in released_cells.items():
        if gid not in seen and is_locked(reference):
            tampered[gid] = "a locked cell was deleted"
    notebook = copy.deepcopy(submitted)
    notebook.cells = cells
    notebook.metadata = copy.deepcopy(source.metadata)
    return Assembled(notebook, tampered)
