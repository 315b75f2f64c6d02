"""labkit.grading.labspec without a sandbox: a Probe whose "kernel" runs the probe code in this process
on a plain namespace (the real call and result files travel), every NoAnswer message word for word,
grading specs loaded from files, and quiz items against a hand-written key."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from labkit.errors import DataError
from labkit.grading import labspec
from labkit.grading import probe as wire
from labkit.grading.kernel import ExecResult
from labkit.grading.labspec import Item, LabSpec, NoAnswer, Probe, StudentRaised, load_spec, quiz_items


class Kernel:
    """Runs the grader's probe code on ``namespace`` (like the student's kernel would), or answers
    ``status`` without running it; ``write`` replaces the result file with other bytes."""

    def __init__(self, namespace=None, status="ok", write=None):
        self.namespace, self.status, self.write, self.seen = dict(namespace or {}), status, write, []

    def __call__(self, code: str, timeout: float) -> ExecResult:
        self.seen.append((code, timeout))
        if self.status == "ok":
            exec(code, self.namespace)  # noqa: S102 - the probe's own one-liner
            if self.write is not None:
                call = code.split("answer_call(")[1].split(", globals()")[0].strip("'\"")
                with open(call.replace(".npz", ".out.npz"), "wb") as handle:
                    handle.write(self.write)
        return ExecResult(self.status)


def _probe(tmp_path, kernel, timeout=5.0) -> Probe:
    return Probe(kernel, tmp_path, timeout, student="s01", workdir=tmp_path / "lab")


def _double(x):
    if x < 0:
        raise ValueError("negative " + "x" * 400)
    return 2 * x


def test_defaults_and_scores():
    assert labspec.DEFAULT_PROBE_TIMEOUT == 60.0
    item = Item("a", 2, lambda p: None)
    assert item.notebook is None and item.timeout == 60.0
    spec = LabSpec([item, Item("b", 0.5, lambda p: None)])
    assert spec.max_score == 2.5 and spec.blocked_modules == () and spec.skip_cells == ()
    assert spec.readonly_paths == () and spec.prepare is None
    err = StudentRaised("f", "KeyError", "'k'")
    assert str(err) == "f raised KeyError: 'k'" and (err.name, err.exc_type, err.message) == ("f", "KeyError", "'k'")


def test_values_and_calls_travel_both_ways(tmp_path):
    kernel = Kernel({"answer": {"k": np.arange(3)}, "double": _double})
    probe = _probe(tmp_path, kernel, timeout=2.5)
    assert probe.student == "s01" and probe.workdir == tmp_path / "lab" and probe.scratch == tmp_path
    got = probe.value("answer")
    assert list(got) == ["k"] and np.array_equal(got["k"], [0, 1, 2])
    assert probe.call("double", 4) == 8 and probe.call("double", x=1.5) == 3.0
    out = probe.map("double", [((1,), {}), ((-1,), {}), ((), {"x": 3})])
    assert out[0] == 2 and out[2] == 6 and isinstance(out[1], StudentRaised)
    assert (out[1].name, out[1].exc_type) == ("double", "ValueError") and out[1].message == ("negative " + "x" * 400)[:300]
    with pytest.raises(StudentRaised, match=r"^double raised ValueError: negative x"):
        probe.call("double", -2)
    assert probe.map("double", []) == []
    assert all(timeout == 2.5 for _, timeout in kernel.seen)
    assert all(f"{tmp_path}/call-" in code and code.endswith(".npz', globals())") for code, _ in kernel.seen)


def test_a_stale_result_is_removed_before_the_call(tmp_path, monkeypatch):
    monkeypatch.setattr(labspec, "_CALLS", itertools.count(7))
    (tmp_path / "call-7.out.npz").write_bytes(wire.dumps({"ok": 42}))  # planted in advance
    with pytest.raises(NoAnswer) as exc:
        _probe(tmp_path, Kernel(status="error")).value("answer")
    assert str(exc.value) == "answer: no answer came back from the notebook's kernel"
    assert (tmp_path / "call-7.npz").is_file() and not (tmp_path / "call-7.out.npz").exists()


@pytest.mark.parametrize("status, message", [
    ("timeout", "f: exceeded the 2.5 s time limit"),
    ("dead", "f: the kernel died or hung while it ran"),
    ("hung", "f: the kernel died or hung while it ran"),
    ("error", "f: no answer came back from the notebook's kernel"),
])
def test_a_kernel_that_does_not_answer(tmp_path, status, message):
    with pytest.raises(NoAnswer) as exc:
        _probe(tmp_path, Kernel({"f": _double}, status=status), timeout=2.5).call("f", 1)
    assert str(exc.value) == message


def test_the_time_limit_is_printed_short(tmp_path):
    with pytest.raises(NoAnswer, match=r"^f: exceeded the 60 s time limit$"):
        _probe(tmp_path, Kernel(status="timeout"), timeout=60.0).value("f")


def test_call_files_the_kernel_blocked(tmp_path):
    with pytest.raises(NoAnswer) as exc:
        _probe(tmp_path / "gone", Kernel()).value("x")
    assert str(exc.value) == "x: the notebook's kernel blocked the call files"


@pytest.mark.parametrize("namespace, write, message", [
    ({}, None, "f is not defined after the notebook ran"),
    ({"f": lambda: object()}, None, "f returned a value that is not plain data"),
    ({"f": lambda: 1}, b"not an archive", "f: the answer is not plain data (not a probe result (ValueError))"),
    ({"f": lambda: 1}, wire.dumps([{"ok": 1}, {"ok": 2}]), "f: the answer does not match the calls made"),
    ({"f": lambda: 1}, wire.dumps({"ok": 1}), "f: the answer does not match the calls made"),
    ({"f": lambda: 1}, wire.dumps([{"nothing": 1}]), "f: the answer does not match the calls made"),
    ({"f": lambda: 1}, wire.dumps([{"raised": ["E"]}]), "f: the answer does not match the calls made"),
    ({"f": lambda: 1}, wire.dumps([{"raised": "E: m"}]), "f: the answer does not match the calls made"),
])
def test_answers_that_are_refused(tmp_path, namespace, write, message):
    with pytest.raises(NoAnswer) as exc:
        _probe(tmp_path, Kernel(namespace, write=write)).call("f")
    assert str(exc.value) == message


def test_a_raised_entry_with_two_parts_is_the_students_exception(tmp_path):
    kernel = Kernel({"f": lambda: 1}, write=wire.dumps([{"raised": ["KeyError", 5]}]))
    with pytest.raises(StudentRaised) as exc:
        _probe(tmp_path, kernel).call("f")
    assert (exc.value.exc_type, exc.value.message) == ("KeyError", "5")


@pytest.mark.parametrize("write", [wire.dumps([1]), wire.dumps({"value": 1}), wire.dumps(3)])
def test_a_value_must_come_back_as_ok(tmp_path, write):
    with pytest.raises(NoAnswer) as exc:
        _probe(tmp_path, Kernel({"v": 1}, write=write)).value("v")
    assert str(exc.value) == "v: no answer came back from the notebook's kernel"


def test_scratch_dirs_are_new_and_inside(tmp_path):
    probe = _probe(tmp_path, Kernel())
    a, b = probe.scratch_dir(), probe.scratch_dir()
    assert a != b and a.parent == b.parent == tmp_path and a.name.startswith("dir-")
    assert a.is_dir() and not any(a.iterdir())


def _spec(tmp_path, body: str):
    path = tmp_path / "ch09_x.py"
    path.write_text("from labkit.grading.labspec import Item, LabSpec\n" + body, encoding="utf-8")
    return path


def test_load_spec(tmp_path):
    lab = load_spec(_spec(tmp_path, "LAB = LabSpec([Item('a', 1, print), Item('b', 2, print)], skip_cells=('c',))\n"))
    assert [i.name for i in lab.items] == ["a", "b"] and lab.skip_cells == ("c",) and lab.max_score == 3


@pytest.mark.parametrize("body, record, message", [
    ("LAB = 3\n", "LAB", "a grading spec defines LAB = LabSpec(...)"),
    ("X = LabSpec([Item('a', 1, print)])\n", "LAB", "a grading spec defines LAB = LabSpec(...)"),
    ("LAB = LabSpec([])\n", "items", "item names must be unique and there must be at least one"),
    ("LAB = LabSpec([Item('a', 1, print), Item('a', 2, print)])\n", "items",
     "item names must be unique and there must be at least one"),
])
def test_bad_specs_name_the_file_and_the_record(tmp_path, body, record, message):
    path = _spec(tmp_path, body)
    with pytest.raises(DataError) as exc:
        load_spec(path)
    assert str(exc.value) == f"{path}: record {record}: {message}"


def test_a_missing_spec(tmp_path):
    with pytest.raises(DataError) as exc:
        load_spec(tmp_path / "ch09_none.py")
    assert str(exc.value) == f"{tmp_path / 'ch09_none.py'}: the lab has no grading spec (autograder/graders/<lab_id>.py)"


class Values:
    """A probe stand-in for quiz items: ``value(name)`` from a dict; a missing name is NoAnswer."""

    def __init__(self, **values):
        self.values, self.asked = values, []

    def value(self, name):
        self.asked.append(name)
        if name not in self.values:
            raise NoAnswer(f"{name} is not defined after the notebook ran")
        return self.values[name]


def test_quiz_items_check_in_the_graders_process(tmp_path):
    key = tmp_path / "key.yaml"
    key.write_text("decimals: 1\nanswers: {q1: b, q2: 0.25}\n", encoding="utf-8")
    items = quiz_items(key, notebook="lab.ipynb")
    assert [(i.name, i.points, i.notebook, i.timeout) for i in items] == [("q1", 1.0, "lab.ipynb", 20.0),
                                                                         ("q2", 1.0, "lab.ipynb", 20.0)]
    assert quiz_items(key)[0].notebook is None
    q1, q2 = items
    probe = Values(answer_q1=" B ", answer_q2=0.21)  # 0.21 -> 0.2 and 0.25 -> 0.2 at one decimal
    q1.check(probe)
    q2.check(probe)
    assert probe.asked == ["answer_q1", "answer_q2"]
    for probe, message in [(Values(), "q1: no answer given (answer_q1 is not set)"),
                           (Values(answer_q1=None), "q1: no answer given"),
                           (Values(answer_q1="c"), "q1: not the expected answer")]:
        with pytest.raises(AssertionError) as exc:
            q1.check(probe)
        assert str(exc.value) == message
    with pytest.raises(AssertionError, match="^q2: not the expected answer$"):
        q2.check(Values(answer_q2=0.36))


def test_a_result_that_is_a_folder(tmp_path, monkeypatch):
    """The student's process may make a folder where the answer goes (an IsADirectoryError escaped
    before 2026-12-07)."""
    monkeypatch.setattr(labspec, "_CALLS", itertools.count(3))

    def kernel(code, timeout):
        (tmp_path / "call-3.out.npz").mkdir()
        return ExecResult("ok")

    with pytest.raises(NoAnswer) as exc:
        _probe(tmp_path, kernel).value("v")
    assert str(exc.value) == "v: the answer is not plain data (not a plain file of a sensible size)"


def test_a_path_in_the_scratch_folder_reaches_the_students_function(tmp_path):
    probe = _probe(tmp_path, Kernel({"name_of": lambda path: [path.name, path.parent.name]}))
    folder = probe.scratch_dir()
    assert probe.call("name_of", folder / "in.txt") == ["in.txt", folder.name]
