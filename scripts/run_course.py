"""Execute every chapter notebook headless and write ``artifacts/course_summary.json``.

For each lesson notebook (``notebooks/0*/*.ipynb``; graded-lab student copies under ``labs/``
are skipped, their instructor sources are checked by the test suite) this records status, wall
seconds and the kernel's peak resident memory, saves the executed copy under
``artifacts/notebooks/``, and gathers the metric logs the notebooks wrote with
``labkit.artifacts.log_metrics``. A failed notebook does not stop the others; the exit code is 1
if any failed. ``--chapters`` re-runs some chapters and keeps the other chapters' rows of the
previous summary.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from labkit.artifacts import REPO_ROOT, artifacts_dir, read_metrics, write_json


class PeakRSS:
    """Samples the resident memory of a kernel and its children every ``interval`` seconds."""

    def __init__(self, interval: float = 0.2):
        self.interval, self.peak, self.pid = interval, 0, None
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
                self.peak = max(self.peak, total)
            except psutil.Error:
                continue

    def __enter__(self) -> "PeakRSS":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def lesson_notebooks(root: Path, chapters: list[str] | None) -> list[Path]:
    found = sorted(p for p in root.glob("0*/*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    return [p for p in found if not chapters or any(p.parent.name.startswith(c) for c in chapters)]


def run_notebook(path: Path, out_dir: Path, timeout: int) -> dict:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    start, status, error = time.perf_counter(), "ok", None
    with PeakRSS() as rss:
        try:
            with client.setup_kernel():
                rss.pid = client.km.provisioner.process.pid if client.km.provisioner else None
                for index, cell in enumerate(nb.cells):
                    client.execute_cell(cell, index)
        except CellExecutionError as exc:
            status, error = "failed", str(exc).splitlines()[-1][:500] if str(exc) else "cell failed"
        except Exception as exc:  # a dead kernel or a timeout: record it and go on with the next notebook
            status, error = "failed", f"{type(exc).__name__}: {exc}"[:500]
    seconds = time.perf_counter() - start
    target = out_dir / path.parent.name / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    rel = path.relative_to(REPO_ROOT).as_posix()
    return {"path": rel, "status": status, "seconds": round(seconds, 2), "peak_rss_mb": round(rss.peak / 2**20, 1),
            "error": error}


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
    width = max([len(r["path"]) for r in rows] + [8])
    print(f"{'notebook':<{width}}  {'status':<7} {'seconds':>8} {'peak MB':>8}")
    for r in rows:
        print(f"{r['path']:<{width}}  {r['status']:<7} {r['seconds']:>8.1f} {r['peak_rss_mb']:>8.1f}")
        if r["error"]:
            print(f"    -> {r['error']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapters", nargs="*", help="chapter folder prefixes, e.g. 01 02 (default: all)")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds allowed per cell")
    args = parser.parse_args(argv)
    out = artifacts_dir()
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
    chapters: dict[str, dict] = {}
    for r in rows:
        ch = chapters.setdefault(Path(r["path"]).parent.name, {"seconds": 0.0, "peak_rss_mb": 0.0, "notebooks": 0})
        ch["seconds"] = round(ch["seconds"] + r["seconds"], 2)
        ch["peak_rss_mb"] = max(ch["peak_rss_mb"], r["peak_rss_mb"])
        ch["notebooks"] += 1
    summary = {"notebooks": rows, "chapters": chapters, "metrics": read_metrics(out)}
    write_json(out / "course_summary.json", summary)
    print_table(rows)
    for name, ch in chapters.items():
        print(f"{name}: {ch['notebooks']} notebooks, {ch['seconds']:.1f} s, peak {ch['peak_rss_mb']:.0f} MB")
    print(f"summary written to {out / 'course_summary.json'}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
