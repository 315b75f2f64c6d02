"""labkit.grading.runner.NotebookRun with scripted stand-in kernels (no Jupyter): which cells run in
which kernel, the replay after a restart, the restart budget, and the status and message of every
kind of cell outcome, written out by hand."""

from __future__ import annotations

import pytest

from labkit.grading.kernel import ExecResult, KernelStartError
from labkit.grading.runner import CellRun, NotebookRun


class Kernels:
    """``start`` for NotebookRun: every kernel logs what it ran in ``self.log`` as (kernel number,
    code, timeout, grace); ``outcome`` maps code to a status (default ``ok``), or to a list of
    statuses taken in turn; ``fail_starts`` kernels fail to start first; ``dies_after`` codes
    leave the kernel dead (is_alive False) after they return."""

    def __init__(self, outcome=None, fail_starts=0, dies_after=()):
        self.outcome, self.fail_starts, self.dies_after = dict(outcome or {}), fail_starts, set(dies_after)
        self.log, self.started, self.closed = [], 0, []

    def __call__(self):
        kernels = self

        class Session:
            number = None
            alive = True

            def __enter__(self):
                if kernels.fail_starts:
                    kernels.fail_starts -= 1
                    raise KernelStartError("no kernel today")
                kernels.started += 1
                self.number = kernels.started
                return self

            def __exit__(self, *exc):
                kernels.closed.append(self.number)

            @property
            def km(self):
                return self

            def is_alive(self):
                return self.alive

            def execute(self, code, *, timeout, grace):
                kernels.log.append((self.number, code, timeout, grace))
                status = kernels.outcome.get(code, "ok")
                if isinstance(status, list):
                    status = status.pop(0) if len(status) > 1 else status[0]
                if code in kernels.dies_after:
                    self.alive = False
                return ExecResult(status, [f"out:{code}"], 0.5)

        return Session()

    def ran(self, kernel=None):
        return [code for number, code, _, _ in self.log if kernel is None or number == kernel]


def _run(sources, kernels, **kw):
    run = NotebookRun(sources, kernels, timeout=kw.pop("timeout", 2.5), grace=1.0, preamble="PRE", **kw)
    return run, run.run_cells()


def test_every_cell_once_with_the_preamble_first():
    kernels = Kernels()
    run, runs = _run(["a", None, "   \n", "b"], kernels)
    assert [r.status for r in runs] == ["ok", "skipped", "ok", "ok"]
    assert kernels.ran() == ["PRE", "a", "b"]  # a blank cell is not sent to the kernel
    assert runs[0] == CellRun("ok", ["out:a"], 0.5) and runs[2] == CellRun("ok")
    assert all((t, g) == (2.5, 1.0) for _, _, t, g in kernels.log)
    assert run.succeeded == [0, 2, 3] and kernels.started == 1


def test_a_timeout_costs_only_its_cell():
    kernels = Kernels({"slow": "timeout", "bad": "error"})
    run, runs = _run(["a", "slow", "bad", "b"], kernels)
    assert runs[1] == CellRun("timeout", ["out:slow"], 0.5, "exceeded the 2.5 s time limit per cell")
    assert runs[2] == CellRun("error", ["out:bad"], 0.5, "")
    assert runs[3].status == "ok" and kernels.started == 1 and run.succeeded == [0, 3]


def test_a_dead_kernel_is_replaced_and_the_state_rebuilt():
    kernels = Kernels({"boom": "dead"})
    run, runs = _run(["a", "b", "boom", "c"], kernels, timeout=60)
    assert runs[2] == CellRun("crashed", ["out:boom"], 0.5,
                              "the kernel died (process exit, crash or memory limit); it was restarted")
    assert kernels.ran(1) == ["PRE", "a", "b", "boom"] and kernels.ran(2) == ["PRE", "a", "b", "c"]
    assert kernels.closed == [1] and run.restarts_left == 1 and runs[3].status == "ok"
    run.__exit__(None, None, None)
    assert kernels.closed == [1, 2] and run.session is None


def test_a_hung_kernel_is_replaced_too():
    kernels = Kernels({"spin": "hung"})
    _, runs = _run(["a", "spin", "c"], kernels, timeout=3)
    assert runs[1] == CellRun("timeout", ["out:spin"], 0.5,
                              "exceeded the 3 s time limit and ignored the interrupt; the kernel was restarted")
    assert kernels.ran(2) == ["PRE", "a", "c"]


def test_the_restart_budget():
    kernels = Kernels({"x": "dead", "y": "dead"})
    run, runs = _run(["a", "x", "y", "b", None], kernels, max_restarts=1)
    assert [r.status for r in runs] == ["ok", "crashed", "crashed", "not_run", "skipped"]
    assert runs[3].message == "not run: the kernel was restarted too often"
    assert kernels.started == 2 and run.session is None and run.restarts_left == 0
    assert run.execute("probe", timeout=1) == ExecResult("dead")  # no kernel left for probes
    assert kernels.ran()[-1] == "y"


@pytest.mark.parametrize("fails, left", [(1, 1), (2, 0)])
def test_a_kernel_that_does_not_start_at_first(fails, left):
    kernels = Kernels(fail_starts=fails)  # each failed start after the first uses a restart
    run, runs = _run(["a"], kernels)
    assert [r.status for r in runs] == ["ok"] and kernels.ran() == ["PRE", "a"] and run.restarts_left == left


def test_no_kernel_at_all():
    kernels = Kernels(fail_starts=3)
    _, runs = _run(["a", None], kernels)
    assert runs == [CellRun("not_run", message="not run: no grading kernel (no kernel today)")] * 2
    assert kernels.log == []


def test_a_replay_that_kills_the_new_kernel_uses_the_next_restart():
    # "a" succeeds in kernel 1, kills kernel 2 during the replay, and succeeds again in kernel 3
    kernels = Kernels({"a": ["ok", "dead", "ok"], "boom": "dead"})
    run, runs = _run(["a", "boom", "c"], kernels)
    assert [r.status for r in runs] == ["ok", "crashed", "ok"]
    assert kernels.ran(2) == ["PRE", "a"] and kernels.ran(3) == ["PRE", "a", "c"] and kernels.closed == [1, 2]
    assert run.restarts_left == 0


def test_a_preamble_that_kills_every_kernel():
    kernels = Kernels({"PRE": "dead"})
    _, runs = _run(["a"], kernels, max_restarts=2)
    assert runs == [CellRun("not_run", message="not run: no grading kernel "
                                               "(the kernel died while its state was rebuilt after a restart)")]
    assert kernels.started == 3 and kernels.closed == [1, 2, 3]


def test_probes():
    kernels = Kernels({"hang": "hung", "err": "error"}, dies_after={"exit"})
    run, _ = _run(["a"], kernels)
    assert run.execute("p", timeout=7.0) == ExecResult("ok", ["out:p"], 0.5)
    assert kernels.log[-1] == (1, "p", 7.0, 1.0)
    assert run.execute("err", timeout=7.0).status == "error" and kernels.started == 1
    assert run.execute("hang", timeout=7.0) == ExecResult("hung", ["out:hang"], 0.5)  # reported as it was
    assert kernels.started == 2 and kernels.ran(2) == ["PRE", "a"]
    # a probe that returns but leaves the kernel dead is reported dead, and the kernel replaced
    assert run.execute("exit", timeout=7.0) == ExecResult("dead", ["out:exit"], 0.5)
    assert kernels.started == 3 and run.restarts_left == 0
    assert run.execute("exit", timeout=7.0) == ExecResult("dead", ["out:exit"], 0.5)
    assert run.session is None and run.execute("p", timeout=1) == ExecResult("dead")


@pytest.mark.parametrize("status", ["error", "ok"])
def test_a_probe_that_keeps_the_kernel_alive_keeps_its_status(status):
    kernels = Kernels({"p": status})
    run, _ = _run([], kernels)
    assert run.execute("p", timeout=1).status == status and kernels.started == 1


def test_defaults_no_preamble_and_two_restarts():
    kernels = Kernels({"x": "dead"})
    run = NotebookRun(["a", "x"], kernels, timeout=1, grace=0.5)
    assert run.restarts_left == 2 and run.preamble == ""
    run.run_cells()
    assert kernels.ran(1) == ["", "a", "x"] and kernels.ran(2) == ["", "a"]  # an empty preamble, then the replay
