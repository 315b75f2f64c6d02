"""How a lab declares what it grades: items scored in the grader's process by probing the student's kernel.

A lab ``chNN_name`` has its instructor notebook(s) under ``autograder/source/chNN_name/`` and its
grading spec in ``autograder/graders/chNN_name.py`` -- outside ``source/``, so it is never released
and never visible inside the sandbox. The spec module defines ``LAB = LabSpec(...)``:

* ``items``: the graded :class:`Item` s. Each has a name, points and a ``check(probe)`` function
  that runs **in the grader's process**. It calls the student's functions through ``probe``
  (:class:`Probe`: inputs in, outputs back as plain data), compares them with references it
  computes itself, and raises ``AssertionError("message for the student")`` to fail the item.
  Hidden inputs are made here, from seeds that only the spec holds.
* ``blocked_modules``: modules the student's process cannot import in this lab (own-work
  rules). Under bubblewrap the package folder or module file is replaced by an empty folder or a
  module that raises ``ImportError`` -- enforced by the file system, not by string search.
* ``skip_cells``: ``grade_id`` s of locked cells not run at grading (visible checks, slow
  explorations); they award nothing either way. Locked cells with ``grade: true`` are never run.
* ``prepare``: an optional function run once before the first submission (reference data).

Visible checks in the notebook give the student feedback while working and award no points.

Worked example (a Chapter 4 lab whose students write ``iou_match(tracks, dets, thr)``)::

    # autograder/graders/ch04_tracker.py
    from pathlib import Path

    import numpy as np
    from labkit.grading.labspec import Item, LabSpec, quiz_items

    _RNG_SEED = 48213  # hidden: not in the student copy

    def _reference_match(tracks, dets, thr): ...   # the instructor's own, independent reference

    def _check_match(probe):
        rng = np.random.default_rng(_RNG_SEED)
        for _ in range(5):
            tracks, dets = rng.uniform(0, 100, (6, 4)), rng.uniform(0, 100, (7, 4))
            got = probe.call("iou_match", tracks, dets, 0.3)      # a NumPy array comes back
            assert np.array_equal(np.asarray(got), _reference_match(tracks, dets, 0.3)), \\
                "iou_match differs from greedy IoU matching on a hidden case"

    KEY = Path(__file__).resolve().parents[1] / "keys" / "ch04_tracker.yaml"   # the quiz's answers
    LAB = LabSpec(items=[Item("match", 2, _check_match), *quiz_items(KEY)],
                  blocked_modules=("motmetrics",), skip_cells=("match_check", "explore_run"))

In the notebook (``source/ch04_tracker/ch04_tracker.ipynb``): the answer cell defining
``iou_match`` is an nbgrader solution cell; its visible check (``grade_id`` ``match_check``) is a
locked cell with ``grade: false`` listed in ``skip_cells``; no hidden tests and no points are in
the notebook. The quiz cells are ``answer_qN = ...`` solution cells followed by a locked
``record_answer("qN", answer_qN)`` check. State every blocked module in the lab's text. A lab
test then grades, through :func:`labkit.grading.grader.grade_lab`, the instructor notebook, a
second correct solution, the blank student copy and plausible wrong answers, each losing
exactly the items it breaks (``tests/test_ch02_lab.py`` is the model).

``probe.call`` raises :class:`StudentRaised` when the student's function raised (uncaught, the
item fails with "``iou_match`` raised ValueError: ..."; catch it to require an exception) and
:class:`NoAnswer` when nothing came back (undefined name, time limit, crash, a value that cannot
travel). ``probe.map`` makes many calls in one round trip; ``probe.value`` reads a variable;
``probe.scratch_dir()`` gives a fresh folder the student's code may write into; open files from
there only with :func:`labkit.grading.probe.read_plain_file` (no links followed, size-capped).
``probe.student`` is the submission's student id (a lab may draw each student's cases from it,
as the Chapter 6 mock exam does) and ``probe.workdir`` the sandbox's copy of the submitted lab
folder after the notebook ran (deliverable files, read the same way).
"""

from __future__ import annotations

import importlib.util
import itertools
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from labkit.errors import DataError
from labkit.grading import probe as wire
from labkit.grading.kernel import ExecResult

_CALLS = itertools.count()  # call files are numbered across every probe of this process
#: Seconds one probe call may run before the kernel is interrupted (an item may override it).
DEFAULT_PROBE_TIMEOUT = 60.0


class NoAnswer(Exception):
    """Nothing usable came back from the student's kernel (the message says why)."""


class StudentRaised(Exception):
    """The student's function raised ``exc_type`` (its message is student-controlled text)."""

    def __init__(self, name: str, exc_type: str, message: str):
        super().__init__(f"{name} raised {exc_type}: {message}")
        self.name, self.exc_type, self.message = name, exc_type, message


@dataclass(frozen=True)
class Item:
    """One graded item: ``check(probe)`` passes, or raises ``AssertionError`` with the message shown."""

    name: str
    points: float
    check: Callable[["Probe"], None]
    notebook: str | None = None  # file name of the lab notebook it probes; None: the lab's only one
    timeout: float = DEFAULT_PROBE_TIMEOUT


@dataclass(frozen=True)
class LabSpec:
    items: Sequence[Item]
    blocked_modules: tuple[str, ...] = ()
    skip_cells: tuple[str, ...] = ()
    #: What the sandbox must see read-only besides Python, labkit and $LABKIT_DATA (rarely needed).
    readonly_paths: tuple[Path, ...] = field(default_factory=tuple)
    #: Called once when grading starts (before any worker forks): build cached reference data here,
    #: so its cost is paid once per lab, not by the first submission. Start no thread pool here (no
    #: torch inference): a forked worker inherits its locks but not its threads, and deadlocks.
    prepare: Callable[[], object] | None = None

    @property
    def max_score(self) -> float:
        return sum(i.points for i in self.items)


class Probe:
    """The grader's handle on one student's kernel (see the module docstring)."""

    def __init__(self, execute: Callable[[str, float], ExecResult], scratch: Path, timeout: float, *,
                 student: str = "", workdir: Path | None = None):
        self._execute, self.scratch, self.timeout = execute, scratch, timeout
        #: The submission's student id (its folder name): per-student hidden cases are drawn from it.
        self.student = student
        #: The sandbox's copy of the submitted lab folder after the notebook ran (files the notebook
        #: wrote there are deliverables; read them only with ``read_plain_file``).
        self.workdir = workdir

    def scratch_dir(self) -> Path:
        """A new, empty folder inside the sandbox's scratch area (same path inside and out)."""
        return Path(tempfile.mkdtemp(prefix="dir-", dir=self.scratch))

    def _round_trip(self, request: dict) -> Any:
        call = self.scratch / f"call-{next(_CALLS)}.npz"
        try:  # a result or a link the student's process planted in advance is removed, never followed
            call.with_suffix(".out.npz").unlink(missing_ok=True)
            wire.write_call(call, wire.dumps(request, self.scratch))
        except OSError:
            raise NoAnswer(f"{request['name']}: the notebook's kernel blocked the call files") from None
        code = f"__import__('labkit.grading.probe', fromlist=['answer_call']).answer_call({str(call)!r}, globals())"
        result = self._execute(code, self.timeout)
        if result.status == "timeout":
            raise NoAnswer(f"{request['name']}: exceeded the {self.timeout:g} s time limit")
        if result.status in ("dead", "hung"):
            raise NoAnswer(f"{request['name']}: the kernel died or hung while it ran")
        try:
            outcome = wire.read_result(call.with_suffix(".out.npz"), self.scratch)
        except FileNotFoundError:
            raise NoAnswer(f"{request['name']}: no answer came back from the notebook's kernel") from None
        except wire.ProbeDataError as exc:
            raise NoAnswer(f"{request['name']}: the answer is not plain data ({exc})") from None
        if isinstance(outcome, dict) and "missing" in outcome:
            raise NoAnswer(f"{request['name']} is not defined after the notebook ran")
        if isinstance(outcome, dict) and "unsupported" in outcome:
            raise NoAnswer(f"{request['name']} returned a value that is not plain data")
        return outcome

    def value(self, name: str) -> Any:
        """The value of the notebook variable ``name`` (plain data)."""
        outcome = self._round_trip({"kind": "value", "name": name})
        if not isinstance(outcome, dict) or "ok" not in outcome:
            raise NoAnswer(f"{name}: no answer came back from the notebook's kernel")
        return outcome["ok"]

    def map(self, name: str, calls: Sequence[tuple[Sequence[Any], dict[str, Any]]]) -> list[Any]:
        """``name(*args, **kwargs)`` for every ``(args, kwargs)``; a raised call gives a :class:`StudentRaised`
        in its place (not raised)."""
        outcome = self._round_trip({"kind": "call", "name": name,
                                    "calls": [[list(args), dict(kwargs)] for args, kwargs in calls]})
        if not isinstance(outcome, list) or len(outcome) != len(calls):
            raise NoAnswer(f"{name}: the answer does not match the calls made")
        out = []
        for entry in outcome:
            if isinstance(entry, dict) and "ok" in entry:
                out.append(entry["ok"])
            elif isinstance(entry, dict) and isinstance(entry.get("raised"), list) and len(entry["raised"]) == 2:
                out.append(StudentRaised(name, str(entry["raised"][0]), str(entry["raised"][1])))
            else:
                raise NoAnswer(f"{name}: the answer does not match the calls made")
        return out

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """``name(*args, **kwargs)`` in the student's kernel; :class:`StudentRaised` if it raised."""
        result = self.map(name, [(args, kwargs)])[0]
        if isinstance(result, StudentRaised):
            raise result
        return result


def load_spec(path: Path) -> LabSpec:
    """The ``LAB`` of a grading spec module (``autograder/graders/<lab_id>.py``)."""
    if not path.is_file():
        raise DataError("the lab has no grading spec (autograder/graders/<lab_id>.py)", source=str(path))
    module_spec = importlib.util.spec_from_file_location(f"labkit_lab_spec_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    lab = getattr(module, "LAB", None)
    if not isinstance(lab, LabSpec):
        raise DataError("a grading spec defines LAB = LabSpec(...)", source=str(path), record="LAB")
    names = [i.name for i in lab.items]
    if len(names) != len(set(names)) or not names:
        raise DataError("item names must be unique and there must be at least one", source=str(path), record="items")
    return lab


def quiz_items(key_path: Path, *, notebook: str | None = None) -> list[Item]:
    """One item per question of an answer key: the notebook's ``answer_qN`` compared with the key in
    the grader's process. The feedback never repeats an answer, right or wrong."""
    from labkit.grading.quiz import load_key, same_answer

    key = load_key(key_path)

    def make(question: str, expected: Any) -> Item:
        def check(probe: Probe) -> None:
            try:
                given = probe.value(f"answer_{question}")
            except NoAnswer:
                raise AssertionError(f"{question}: no answer given (answer_{question} is not set)") from None
            assert given is not None, f"{question}: no answer given"
            assert same_answer(given, expected, decimals=key.decimals), f"{question}: not the expected answer"

        return Item(question, 1.0, check, notebook=notebook, timeout=20.0)

    return [make(q, a) for q, a in key.answers.items()]
