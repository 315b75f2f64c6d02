"""Write what ``course.yaml`` determines: the setup cell of every notebook and the badges.

Notebooks: the lesson notebooks under ``notebooks/``, their sources under ``autograder/lessons/``
(when a lesson has one) and the graded-lab sources under ``autograder/source/`` (student copies get
the cell through ``make release``). The first cell is
replaced when it carries the ``course-setup`` tag, inserted otherwise. READMEs: the text between
``<!-- badges:start -->`` and ``<!-- badges:end -->`` (added under the title when missing).
``--check`` changes nothing and exits 1 when something is out of date (the test suite runs it).

``--durations artifacts/course_summary.json`` also writes, from the seconds ``make course`` measured
for each code cell (``scripts/run_course.py``: ``notebooks[].cells``), one line stating the expected
duration at the end of the markdown cell above every cell that took more than :data:`SLOW_SECONDS`
(between ``<!-- expected-duration -->`` markers; lines of cells now fast are removed), and, for a
lesson whose peak memory was above the Binder line (``over_binder_line``), a line at the end of its
first markdown cell saying so (``<!-- binder-memory -->`` markers). Durations and memory are never
typed by hand: re-run it after ``make course`` on the reference machine.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import nbformat

from labkit.artifacts import REPO_ROOT
from labkit.course import SETUP_TAG, badges, setup_cell_source
from labkit.exercises import LESSON_SOURCES, release_lessons

START, END = "<!-- badges:start -->", "<!-- badges:end -->"
DURATION_START, DURATION_END = "<!-- expected-duration -->", "<!-- /expected-duration -->"
MEMORY_START, MEMORY_END = "<!-- binder-memory -->", "<!-- /binder-memory -->"
#: The Binder memory line, in MiB as ``peak_rss_mb`` counts (1.8 GB = 1.8e9 bytes).
BINDER_LINE_MB = 1.8e9 / 2**20
#: A cell slower than this (seconds, as measured by ``make course``) gets a duration line above it.
SLOW_SECONDS = 20.0


def notebooks() -> list[Path]:
    found = (list((REPO_ROOT / "notebooks").glob("0*/*.ipynb")) + list((REPO_ROOT / "autograder" / "source").glob("*/*.ipynb"))
             + list((REPO_ROOT / "autograder" / "lessons").glob("0*/*.ipynb")))  # lesson sources, released to notebooks/
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


def duration_text(seconds: float) -> str:
    """``about 40 s`` below 90 s, else ``about 7 min`` (whole minutes, at least 2)."""
    return f"about {seconds:.0f} s" if seconds < 90 else f"about {round(seconds / 60):.0f} min"


def duration_line(seconds: float, machine: dict | None = None) -> str:
    """The line above a slow cell; ``machine`` (``{"cpus", "load_average"}`` of the measuring run) says
    how busy the machine was, since the seconds depend on it."""
    where = (f" on {machine['cpus']} CPU cores at a load average of {machine['load_average']:g}"
             if machine and machine.get("cpus") and machine.get("load_average") is not None else "")
    return (f"{DURATION_START}*Expected duration of the next cell: {duration_text(seconds)}, as measured by "
            f"`make course`{where} (`artifacts/course_summary.json`); its progress bar shows the time left.*{DURATION_END}")


def without_block(source: str, start: str = DURATION_START, end: str = DURATION_END) -> str:
    return re.sub(r"\n*" + re.escape(start) + ".*?" + re.escape(end), "", source, flags=re.S)


def with_memory_note(nb: nbformat.NotebookNode, row: dict) -> nbformat.NotebookNode:
    """``nb`` whose first markdown cell ends with a note when ``row`` (one ``make course`` row) measured
    a peak above the Binder line, and without one otherwise."""
    first = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if first is None:
        return nb
    first.source = without_block(first.source, MEMORY_START, MEMORY_END)
    peak = float(row.get("peak_rss_mb") or 0.0)
    if row.get("over_binder_line", peak > BINDER_LINE_MB):
        first.source = first.source.rstrip("\n") + "\n\n" + (
            f"{MEMORY_START}**Memory:** this lesson peaked at {peak:.0f} MiB in `make course` "
            f"(`artifacts/course_summary.json`){peak_place(nb, row.get('cells') or [])}, above the 1.8 GB Binder line "
            f"({BINDER_LINE_MB:.0f} MiB): on Binder the session may be stopped for memory; run it on Colab or "
            f"locally.{MEMORY_END}")
    return nb


def peak_place(nb: nbformat.NotebookNode, cells: list[dict]) -> str:
    """`` in the section "N. Title"`` of the code cell whose measured peak (``cells[].peak_rss_mb``)
    was the highest: where a learner meets the memory; empty when no cell recorded one."""
    measured = [c for c in cells if c.get("peak_rss_mb") and int(c["index"]) < len(nb.cells)]
    if not measured:
        return ""
    index = int(max(measured, key=lambda c: c["peak_rss_mb"])["index"])
    for cell in reversed(nb.cells[:index]):
        heading = next((line for line in reversed(cell.source.splitlines()) if line.startswith("## ")), None)
        if cell.cell_type == "markdown" and heading:
            return f' in the section "{heading[3:].strip()}"'
    return f" in code cell {index}"


def with_durations(nb: nbformat.NotebookNode, cells: list[dict], machine: dict | None = None) -> nbformat.NotebookNode:
    """``nb`` with a duration line above each code cell ``cells`` measured slower than
    :data:`SLOW_SECONDS` (``cells``: ``{"index", "seconds"}`` of one ``make course`` row; ``machine``:
    its ``{"cpus", "load_average"}``, named in the line). A row that
    names a cell the notebook does not have as code is a :class:`ValueError` (the notebook changed
    since it was measured)."""
    seconds = {int(c["index"]): float(c["seconds"]) for c in cells}
    stale = [i for i in seconds if i >= len(nb.cells) or nb.cells[i].cell_type != "code"]
    if stale:
        raise ValueError(f"cells {sorted(stale)} are not code cells any more: run `make course` again")
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = without_block(cell.source)
    for index, took in sorted(seconds.items()):
        above = nb.cells[index - 1] if index > 0 else None
        if took > SLOW_SECONDS and above is not None and above.cell_type == "markdown":
            above.source = above.source.rstrip("\n") + "\n\n" + duration_line(took, machine)
    return nb


def measured_rows(summary: Path) -> dict[Path, dict]:
    """Notebook path -> its row (``cells``, ``peak_rss_mb``, ...) in a ``course_summary.json``."""
    try:
        rows = json.loads(summary.read_text())["notebooks"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SystemExit(f"{summary}: not a course summary with a 'notebooks' list ({exc})") from exc
    return {REPO_ROOT / row["path"]: row for row in rows if row.get("status") == "ok" and row.get("cells")}


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
    parser.add_argument("--durations", type=Path, metavar="SUMMARY",
                        help="also state each slow cell's measured duration (rows that record their machine) and a lesson's memory above the "
                             "Binder line, from this course_summary.json")
    args = parser.parse_args(argv)
    measured = measured_rows(args.durations) if args.durations else {}
    stale = []
    for path in notebooks():
        nb = synced_notebook(path)
        if path in measured:
            row = measured[path]
            try:  # a duration is stated only with the machine it was measured on (how busy it was)
                nb = with_memory_note(with_durations(nb, row["cells"], row["machine"]) if row.get("machine") else nb, row)
            except ValueError as exc:
                print(f"{path.relative_to(REPO_ROOT)}: durations not written: {exc}", file=sys.stderr)
        new = nbformat.writes(nb) + "\n"
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
    if stale and not args.check:  # the learner copies follow their synced sources
        release_lessons(LESSON_SOURCES, REPO_ROOT / "notebooks")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
