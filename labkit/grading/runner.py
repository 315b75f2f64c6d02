"""Run a notebook's code cells one by one so that one bad cell costs only itself.

* A cell past its time limit is interrupted; the kernel keeps its state and the next cell runs.
* A kernel that dies (``os._exit``, a segfault, a memory cap) or ignores the interrupt is replaced
  by a fresh one, the cells that had succeeded are replayed (outputs discarded) to rebuild the
  state, and grading goes on after the cell at fault -- at most ``max_restarts`` times, after
  which the remaining cells are ``not_run``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from nbformat import NotebookNode

from labkit.grading.kernel import ExecResult, KernelSession, KernelStartError

_FATAL = ("dead", "hung")  # outcomes after which the kernel is replaced


@dataclass
class CellRun:
    """The fate of one cell: ``ok``, ``error``, ``timeout``, ``crashed`` or ``not_run``."""

    status: str
    outputs: list[NotebookNode] = field(default_factory=list)
    seconds: float = 0.0
    message: str = ""


def _cell_run(result: ExecResult, timeout: float) -> CellRun:
    if result.status == "timeout":
        return CellRun("timeout", result.outputs, result.seconds, f"exceeded the {timeout:g} s time limit per cell")
    if result.status == "hung":
        return CellRun("timeout", result.outputs, result.seconds,
                       f"exceeded the {timeout:g} s time limit and ignored the interrupt; the kernel was restarted")
    if result.status == "dead":
        return CellRun("crashed", result.outputs, result.seconds,
                       "the kernel died (process exit, crash or memory limit); it was restarted")
    return CellRun(result.status, result.outputs, result.seconds)


def run_cells(sources: Sequence[str], start: Callable[[], KernelSession], *, timeout: float, grace: float,
              preamble: str = "", max_restarts: int = 2) -> list[CellRun]:
    """One :class:`CellRun` per source, in order. ``start`` makes a fresh (not yet entered) session."""
    if not sources:
        return []
    runs: list[CellRun] = []
    succeeded: list[int] = []
    for _attempt in range(max_restarts + 1):
        try:
            with start() as session:
                for code in [preamble] + [sources[i] for i in succeeded]:
                    if session.execute(code, timeout=timeout, grace=grace).status in _FATAL:
                        raise KernelStartError("the kernel died while its state was rebuilt after a restart")
                while len(runs) < len(sources):
                    code = sources[len(runs)]
                    result = session.execute(code, timeout=timeout, grace=grace) if code.strip() else ExecResult("ok")
                    runs.append(_cell_run(result, timeout))
                    if result.status == "ok":
                        succeeded.append(len(runs) - 1)
                    elif result.status in _FATAL:
                        break
        except KernelStartError as exc:  # no usable kernel: the cell that was next is lost
            runs.append(CellRun("crashed", message=str(exc)))
        if len(runs) >= len(sources):
            return runs[:len(sources)]
    note = f"not run: the kernel was restarted {max_restarts} times already"
    return runs + [CellRun("not_run", message=note) for _ in range(len(sources) - len(runs))]
