"""Run a notebook's code cells one by one so that one bad cell costs only itself, then keep the
kernel for the grader's probes (:mod:`labkit.grading.probe`).

* A cell past its time limit is interrupted; the kernel keeps its state and the next cell runs.
* A kernel that dies (``os._exit``, a segfault, a memory cap) or ignores the interrupt is replaced
  by a fresh one, the cells that had succeeded are replayed (outputs discarded) to rebuild the
  state, and the run goes on after the cell at fault -- at most ``max_restarts`` times, after
  which the remaining cells are ``not_run`` and probes get no kernel.
* A probe that kills or hangs the kernel is treated the same way: the next probe gets a fresh
  kernel with the notebook's state rebuilt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from nbformat import NotebookNode

from labkit.grading.kernel import ExecResult, KernelSession, KernelStartError

_FATAL = ("dead", "hung")  # outcomes after which the kernel is replaced


@dataclass
class CellRun:
    """The fate of one cell: ``ok``, ``error``, ``timeout``, ``crashed``, ``skipped`` or ``not_run``."""

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


class NotebookRun:
    """The cells of one notebook in a kernel that stays up for probes; use as a context manager.

    ``start`` makes a fresh (not yet entered) :class:`KernelSession`; ``sources`` entries that are
    ``None`` are skipped (not run at grading).
    """

    def __init__(self, sources: Sequence[str | None], start: Callable[[], KernelSession], *, timeout: float,
                 grace: float, preamble: str = "", max_restarts: int = 2):
        self.sources, self.start, self.timeout, self.grace = list(sources), start, timeout, grace
        self.preamble, self.restarts_left = preamble, max_restarts
        self.session: KernelSession | None = None
        self.succeeded: list[int] = []

    def __enter__(self) -> "NotebookRun":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._close()

    def _close(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            session.__exit__(None, None, None)

    def _fresh_session(self) -> None:
        """A new kernel with the preamble and every cell that succeeded so far replayed."""
        self._close()
        session = self.start().__enter__()
        self.session = session
        for code in [self.preamble] + [self.sources[i] for i in self.succeeded]:
            if session.execute(code, timeout=self.timeout, grace=self.grace).status in _FATAL:
                self._close()
                raise KernelStartError("the kernel died while its state was rebuilt after a restart")

    def _restart(self) -> bool:
        """Replace a dead or hung kernel; ``False`` when no restart is left (or it fails too)."""
        self._close()
        while self.restarts_left > 0:
            self.restarts_left -= 1
            try:
                self._fresh_session()
                return True
            except KernelStartError:
                continue
        return False

    def run_cells(self) -> list[CellRun]:
        """One :class:`CellRun` per source, in order."""
        runs: list[CellRun] = []
        try:
            self._fresh_session()
        except KernelStartError as exc:
            if not self._restart():
                note = f"not run: no grading kernel ({exc})"
                return [CellRun("not_run", message=note) for _ in self.sources]
        for k, code in enumerate(self.sources):
            if code is None:
                runs.append(CellRun("skipped"))
                continue
            if self.session is None:
                runs.append(CellRun("not_run", message="not run: the kernel was restarted too often"))
                continue
            result = self.session.execute(code, timeout=self.timeout, grace=self.grace) if code.strip() \
                else ExecResult("ok")
            runs.append(_cell_run(result, self.timeout))
            if result.status == "ok":
                self.succeeded.append(k)
            elif result.status in _FATAL and not self._restart():
                self.session = None
        return runs

    def execute(self, code: str, *, timeout: float) -> ExecResult:
        """Run grader code (a probe) in the kernel; a fatal outcome replaces the kernel for the next one."""
        if self.session is None:
            return ExecResult("dead")
        result = self.session.execute(code, timeout=timeout, grace=self.grace)
        if result.status in _FATAL or not self.session.km.is_alive():
            if not self._restart():
                self.session = None
            if result.status not in _FATAL:
                result = ExecResult("dead", result.outputs, result.seconds)
        return result
