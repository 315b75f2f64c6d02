"""Execute every chapter notebook headless and write ``artifacts/course_summary.json``.

For each lesson notebook (``notebooks/0*/*.ipynb``; graded-lab student copies under ``labs/``
are skipped, their instructor sources are checked by the test suite) this records status, wall
seconds, the seconds and peak memory of every code cell, and the kernel's peak resident memory next
to the 1.8 GB Binder line, saves the executed copy under
``artifacts/notebooks/``, and gathers the metric logs the notebooks wrote with
``labkit.artifacts.log_metrics`` and the learners' section notes (``labkit.repro.note``). A failed
notebook does not stop the others; the exit code is 1 if any failed, and each failure is printed with its notebook, cell index (0-based, as nbformat
counts) and the error with its values (an assert's message, else the failing line), ANSI colour
codes stripped. ``--chapters`` re-runs some chapters and keeps the other chapters' rows of the
previous summary.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from labkit.artifacts import REPO_ROOT, artifacts_dir, read_metrics, write_json
from labkit.exercises import LESSON_SOURCES
from labkit import budget
from labkit.repro import git_commit, read_notes

#: The Binder memory line of issue 17: 1.8 GB (10^9 bytes), in the MiB that ``peak_rss_mb`` uses.
BINDER_LINE_MB = round(1.8e9 / 2**20, 1)
#: Cells slower than this (seconds) are listed per notebook; lessons say so above such a cell.
SLOW_CELL_SECONDS = 30.0
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def strip_ansi(text: str) -> str:
    """``text`` without ANSI escape sequences (IPython colours its tracebacks)."""
    return ANSI_ESCAPE.sub("", text)


def failure_message(exc: CellExecutionError, cell_index: int) -> str:
    """``cell N: Name: value [at: failing line]`` for a failed cell.

    The value of an assert is its message (every course check has one, with the values it
    compared); the line IPython marked with ``---->`` names the statement, which is all a bare
    ``assert`` leaves.
    """
    ename, evalue = strip_ansi(exc.ename or "Error"), strip_ansi(exc.evalue or "").strip()
    text = f"cell {cell_index}: {ename}" + (f": {evalue}" if evalue else "")
    marked = [line.split("---->", 1)[1].strip() for line in strip_ansi(exc.traceback or "").splitlines()
              if line.lstrip().startswith("---->")]
    if marked:
        text += f" [at: {' '.join(marked[-1].split()[1:]) or marked[-1]}]"
    return text[:800]


class PeakRSS:
    """Samples the resident memory of a kernel and its children every ``interval`` seconds.

    ``peak``: the highest sample since the start; ``window``: the highest since the last
    :meth:`start_window` (one code cell's peak; 0 when no sample fell in it)."""

    def __init__(self, interval: float = 0.2):
        self.interval, self.peak, self.window, self.pid = interval, 0, 0, None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self.pid is None:
                continue
            try:
                proc = psutil.Process(self.pid)
                # the kernel's RSS plus what its children hold on their own (USS): a forked child
                # shares the kernel's pages, and summing both RSS values would count them twice
                total = proc.memory_info().rss + sum(c.memory_full_info().uss for c in proc.children(recursive=True))
                self.peak, self.window = max(self.peak, total), max(self.window, total)
            except psutil.Error:
                continue

    def start_window(self) -> None:
        self.window = 0

    def __enter__(self) -> "PeakRSS":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def chapter_totals(rows: list[dict]) -> dict[str, dict]:
    """Per chapter folder: its notebooks, how many ran ``ok``, their summed seconds and the highest
    peak resident memory (MiB)."""
    chapters: dict[str, dict] = {}
    for r in rows:
        ch = chapters.setdefault(Path(r["path"]).parent.name, {"notebooks": 0, "ok": 0, "seconds": 0.0, "peak_rss_mb": 0.0})
        ch["notebooks"] += 1
        ch["ok"] += r["status"] == "ok"
        ch["seconds"] = round(ch["seconds"] + r["seconds"], 2)
        ch["peak_rss_mb"] = max(ch["peak_rss_mb"], r["peak_rss_mb"])
    return chapters


def lesson_notebooks(root: Path, chapters: list[str] | None, sources: Path = LESSON_SOURCES) -> list[Path]:
    """The lessons to execute: the source copy (with the exercises' answers) where a lesson has one,
    else the notebook in ``root``; ordered by chapter and lesson."""
    def found(folder: Path) -> dict[str, Path]:
        return {f"{p.parent.name}/{p.name}": p for p in folder.glob("0*/*.ipynb") if ".ipynb_checkpoints" not in p.parts}
    lessons = {**found(root), **found(sources)}
    return [lessons[k] for k in sorted(lessons) if not chapters or any(k.startswith(c) for c in chapters)]


def run_notebook(path: Path, out_dir: Path, timeout: int) -> dict:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    start, status, error, failed_cell, cells = time.perf_counter(), "ok", None, None, []
    index = -1
    with PeakRSS() as rss:
        try:
            with client.setup_kernel():
                rss.pid = client.km.provisioner.process.pid if client.km.provisioner else None
                for index, cell in enumerate(nb.cells):
                    if cell.cell_type != "code":
                        continue
                    cell_start = time.perf_counter()
                    rss.start_window()
                    try:
                        client.execute_cell(cell, index)
                    finally:
                        cells.append({"index": index, "seconds": round(time.perf_counter() - cell_start, 2),
                                      "peak_rss_mb": round(rss.window / 2**20, 1) if rss.window else None})
        except CellExecutionError as exc:
            status, error, failed_cell = "failed", failure_message(exc, index), index
        except Exception as exc:  # a dead kernel or a timeout: record it and go on with the next notebook
            status, failed_cell = "failed", index if index >= 0 else None
            error = strip_ansi(f"cell {index}: {type(exc).__name__}: {exc}" if index >= 0 else f"{type(exc).__name__}: {exc}")[:800]
    seconds = time.perf_counter() - start
    target = out_dir / path.parent.name / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    rel = path.relative_to(REPO_ROOT).as_posix() if path.is_relative_to(REPO_ROOT) else path.as_posix()
    peak_mb = round(rss.peak / 2**20, 1)
    machine = {"cpus": os.cpu_count(), "load_average": round(os.getloadavg()[0], 1)}  # how busy it was: seconds depend on it
    return {"path": rel, "status": status, "seconds": round(seconds, 2), "peak_rss_mb": peak_mb, "machine": machine,
            "budget": budget.current(), "git_commit": git_commit(REPO_ROOT), "finished_unix": round(time.time(), 1),
            "over_binder_line": peak_mb > BINDER_LINE_MB, "error": error, "failed_cell": failed_cell,
            "slow_cells": [c["index"] for c in cells if c["seconds"] > SLOW_CELL_SECONDS], "cells": cells}


#: The folders the default torch wheel brings for GPUs (CUDA libraries, cuDNN, NCCL, the Triton
#: compiler): on a machine without a GPU they are disk spent on nothing.
GPU_STACK = ("nvidia", "triton", "cuda")


def torch_site_packages() -> str:
    """The site-packages folder torch is installed in (found from its spec, without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("torch")
    return str(Path(spec.origin).parent.parent) if spec and spec.origin else sys.prefix


def gpu_stack_mb(site_packages: Path) -> float | None:
    """MiB of ``site_packages`` taken by the GPU libraries of :data:`GPU_STACK` (``None`` if none is there)."""
    sizes = [v for v in disk_mb({name: site_packages / name for name in GPU_STACK}).values() if v is not None]
    return round(sum(sizes), 1) if sizes else None


def disk_mb(paths: dict[str, Path]) -> dict[str, float | None]:
    """Size on disk (MiB, files counted once, links not followed) of each folder; ``None`` if absent.

    What a newcomer needs free: the virtual environment, the generated data and the artifacts.
    """
    sizes = {}
    for name, root in paths.items():
        if not root.is_dir():
            sizes[name] = None
            continue
        total = 0
        for path in root.rglob("*"):
            try:
                if path.is_file() and not path.is_symlink():
                    total += path.stat().st_blocks * 512
            except OSError:
                continue
        sizes[name] = round(total / 2**20, 1)
    return sizes


def previous_rows(summary: Path) -> list[dict]:
    """The notebook rows of an earlier summary (none if there is no readable one)."""
    try:
        return list(json.loads(summary.read_text())["notebooks"])
    except (OSError, ValueError, KeyError, TypeError):
        return []


def merge_rows(previous: list[dict], fresh: list[dict]) -> list[dict]:
    """Earlier rows of notebooks that were not run this time, plus the fresh rows, in path order.

    Re-running one chapter keeps the other chapters' figures in the summary instead of dropping them.
    """
    by_path = {r["path"]: r for r in previous} | {r["path"]: r for r in fresh}
    return [by_path[p] for p in sorted(by_path)]


def print_table(rows: list[dict]) -> None:
    """The summary table (peak MB flagged ``>binder`` past the 1.8 GB line), then every failure."""
    width = max([len(r["path"]) for r in rows] + [8])
    print(f"{'notebook':<{width}}  {'status':<7} {'seconds':>8} {'peak MB':>8}  binder {BINDER_LINE_MB:.0f} MB")
    for r in rows:
        over = r.get("over_binder_line", r["peak_rss_mb"] > BINDER_LINE_MB)
        print(f"{r['path']:<{width}}  {r['status']:<7} {r['seconds']:>8.1f} {r['peak_rss_mb']:>8.1f}  "
              f"{'over' if over else 'under'}")
    failed = [r for r in rows if r["status"] != "ok"]
    if failed:
        print(f"\n{len(failed)} notebook(s) failed:")
    for r in failed:
        print(f"  {r['path']}, {strip_ansi(r['error'] or 'no error recorded')}")


def read_setup_times(path: Path) -> list[dict]:
    """The timed set-up steps of ``make course`` from ``path`` (lines ``step<TAB>seconds<TAB>finished unix time``).

    Raises ``ValueError`` naming the file and line for a line that is not three such fields.
    """
    steps = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split("\t")
        try:
            if len(fields) != 3 or not fields[0]:
                raise ValueError
            steps.append({"step": fields[0], "seconds": int(fields[1]), "finished_unix": int(fields[2])})
        except ValueError:
            raise ValueError(f"{path}: line {number} is not 'step<TAB>seconds<TAB>finished unix time': {line!r}") from None
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapters", nargs="*", help="chapter folder prefixes, e.g. 01 02 (default: all)")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds allowed per cell")
    parser.add_argument("--setup-times", type=Path, help="the set-up steps `make course` timed before the notebooks "
                        "(step, seconds, finished unix time per line), stored as the summary's 'setup'")
    args = parser.parse_args(argv)
    out = artifacts_dir()
    try:
        setup = read_setup_times(args.setup_times) if args.setup_times else []
    except (OSError, ValueError) as exc:
        print(f"--setup-times: {exc}", file=sys.stderr)
        return 2
    notebooks = lesson_notebooks(REPO_ROOT / "notebooks", args.chapters)
    if not notebooks:
        print("no notebooks found", file=sys.stderr)
        return 1
    rows = []
    for nb in notebooks:
        print(f"running {nb.relative_to(REPO_ROOT)} ...", flush=True)
        rows.append(run_notebook(nb, out / "notebooks", args.timeout))
    all_ok = all(r["status"] == "ok" for r in rows)  # the exit code speaks for this run's notebooks only
    if args.chapters:
        rows = merge_rows(previous_rows(out / "course_summary.json"), rows)
    chapters = chapter_totals(rows)
    data = Path(os.environ.get("LABKIT_DATA") or REPO_ROOT / "data")  # where the generated datasets live
    disk = disk_mb({".venv": Path(sys.prefix), "data": data, "artifacts": out})
    disk[".venv GPU stack"] = gpu_stack_mb(Path(torch_site_packages()))
    summary = {"setup": setup, "notebooks": rows, "chapters": chapters, "disk_mb": disk, "metrics": read_metrics(out),
               "notes": read_notes(out)}  # the learners' "what changed / why / next" per section
    write_json(out / "course_summary.json", summary)
    for step in setup:
        print(f"set-up step {step['step']}: {step['seconds'] / 60:.1f} min")
    print_table(rows)
    for name, ch in chapters.items():
        print(f"{name}: {ch['notebooks']} notebooks, {ch['seconds']:.1f} s, peak {ch['peak_rss_mb']:.0f} MB")
    print("disk (MiB): " + ", ".join(f"{k} {v:.0f}" if v is not None else f"{k} absent" for k, v in disk.items()))
    print(f"summary written to {out / 'course_summary.json'}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
