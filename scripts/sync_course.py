"""Write what ``course.yaml`` determines: the setup cell of every notebook and the badges.

Notebooks: the lesson notebooks under ``notebooks/`` and the graded-lab sources under
``autograder/source/`` (student copies get the cell through ``make release``). The first cell is
replaced when it carries the ``course-setup`` tag, inserted otherwise. READMEs: the text between
``<!-- badges:start -->`` and ``<!-- badges:end -->`` (added under the title when missing).
``--check`` changes nothing and exits 1 when something is out of date (the test suite runs it).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

from labkit.artifacts import REPO_ROOT
from labkit.course import SETUP_TAG, badges, setup_cell_source

START, END = "<!-- badges:start -->", "<!-- badges:end -->"


def notebooks() -> list[Path]:
    found = list((REPO_ROOT / "notebooks").glob("0*/*.ipynb")) + list((REPO_ROOT / "autograder" / "source").glob("*/*.ipynb"))
    return sorted(p for p in found if ".ipynb_checkpoints" not in p.parts)


def synced_notebook(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    cell = nbformat.v4.new_code_cell(setup_cell_source(), metadata={"tags": [SETUP_TAG]})
    cell.pop("id", None)
    first = nb.cells[0] if nb.cells else None
    if first is not None and SETUP_TAG in first.get("metadata", {}).get("tags", []):
        first.source = cell.source
        first.outputs, first.execution_count = [], None
    else:
        nb.cells.insert(0, nbformat.v4.new_code_cell(setup_cell_source(), metadata={"tags": [SETUP_TAG]}))
    return nb


def readmes() -> dict[Path, str | None]:
    """README -> the notebook its badges open (None: the whole course)."""
    out: dict[Path, str | None] = {REPO_ROOT / "README.md": None}
    for readme in sorted((REPO_ROOT / "notebooks").glob("0*/README.md")):
        lessons = sorted(readme.parent.glob("*.ipynb"))
        out[readme] = lessons[0].relative_to(REPO_ROOT).as_posix() if lessons else None
    return out


def synced_readme(path: Path, notebook: str | None) -> str:
    text = path.read_text()
    block = f"{START}\n{badges(notebook)}\n{END}"
    if START in text:
        return re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    lines = text.splitlines(keepends=True)
    return "".join(lines[:1]) + "\n" + block + "\n" + "".join(lines[1:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report what is out of date, change nothing")
    args = parser.parse_args(argv)
    stale = []
    for path in notebooks():
        new = nbformat.writes(synced_notebook(path)) + "\n"
        if path.read_text() != new:
            stale.append(path)
            if not args.check:
                path.write_text(new)
    for path, notebook in readmes().items():
        new = synced_readme(path, notebook)
        if path.read_text() != new:
            stale.append(path)
            if not args.check:
                path.write_text(new)
    for path in stale:
        print(f"{'out of date' if args.check else 'updated'}: {path.relative_to(REPO_ROOT)}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
