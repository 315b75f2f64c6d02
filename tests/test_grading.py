"""``labkit grade`` cannot be gamed: a suite of hostile submissions against a small probe lab.

The lab (built in tmp_path) asks for ``add_two(x)``, ``scale(values)`` (NumPy) and one quiz
answer; its spec checks them in the grader's process with hidden inputs and blocks
``labkit.data.validate``. Every hostile submission attacks one mechanism (the issue's eight and
more: input transformers, patched comparison functions, ``sys.modules`` tampering, frame peeking,
aliased or computed imports of a blocked module, snooping on the course, keys, other submissions,
the output folder and the grader's environment, signals to the parent, a fork bomb, a detached
process, huge files, planted symlinks, student text in feedback) and must get 0 on the attacked
items and leave no file and no process behind. Correct work that warns or writes to stderr gets
full marks; ``--jobs 2`` gives the results of ``--jobs 1``.

Everything here needs bubblewrap: without it the tests skip (outside CI) or fail (``CI=true``).
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from labkit.grading import probe as wire
from labkit.grading.assemble import grade_id
from labkit.grading.coursedir import CourseDir
from labkit.grading.feedback import clean_message
from labkit.grading.grader import GradeSettings, _prepare_workdir, grade_lab
from labkit.grading.release import released_view
from labkit.grading.sandbox import level_works, resolve_level

REPO = Path(__file__).resolve().parents[1]
LAB = "ch09_probe"
SECRET = "QUIZ-ANSWER-c-7f3a"  # appears only in the course's key and spec
SETTINGS = GradeSettings(timeout_per_cell=6.0, interrupt_grace=2.0, memory_mb=1536, file_mb=64, startup_timeout=60.0,
                         jobs=2)


def require_bwrap() -> None:
    """Skip (or, under CI=true, fail) when bubblewrap cannot sandbox here."""
    if level_works("bwrap"):
        return
    if os.environ.get("CI") == "true":
        pytest.fail("bubblewrap does not work on this CI machine; `make system-deps` must install it")
    pytest.skip("bubblewrap is not installed or cannot create namespaces here (apt-get install bubblewrap)")


SPEC = f'''
import numpy as np
from labkit.grading.labspec import Item, LabSpec, StudentRaised

_HIDDEN = [-2, 5, 1234]


def check_add(probe):
    got = probe.map("add_two", [((v,), {{}}) for v in _HIDDEN])
    for value, result in zip(_HIDDEN, got):
        if isinstance(result, StudentRaised):
            raise result
        assert result == value + 2, "add_two is wrong on a hidden value"


def check_scale(probe):
    values = np.random.default_rng(4242).normal(size=(5, 3))
    got = probe.call("scale", values)
    assert isinstance(got, np.ndarray) and got.shape == values.shape, "scale returns an array of the input's shape"
    assert np.allclose(got, values * 3), "scale must multiply by 3"


def check_quiz(probe):
    answer = probe.value("answer_q1")
    assert isinstance(answer, str) and answer.strip().lower() == "c", "q1: not the expected answer"  # {SECRET}


LAB = LabSpec(items=[Item("add", 2, check_add, timeout=8.0), Item("scale", 1, check_scale, timeout=8.0),
                     Item("q1", 1, check_quiz, timeout=8.0)],
              blocked_modules=("labkit.data.validate",), skip_cells=("check_add",))
'''


def _cell(kind: str, source: str, gid: str, *, grade: bool = False, solution: bool = False):
    meta = {"nbgrader": {"cell_type": kind, "grade": grade, "grade_id": gid, "locked": not solution,
                         "schema_version": 3, "solution": solution, "task": False}}
    if grade:
        meta["nbgrader"]["points"] = 0
    return (new_code_cell if kind == "code" else new_markdown_cell)(source, metadata=meta)


def _source() -> nbformat.NotebookNode:
    return new_notebook(cells=[
        _cell("markdown", "# Probe lab", "intro"),
        _cell("code", "import numpy as np\nBASE = 40", "setup"),
        _cell("code", "def add_two(x):\n    ### BEGIN SOLUTION\n    return x + 2\n    ### END SOLUTION", "answer_a",
              solution=True),
        _cell("code", 'assert add_two(BASE) == 42, "add_two(40) should be 42"', "check_add"),
        _cell("code", "def scale(values):\n    ### BEGIN SOLUTION\n    return values * 3\n    ### END SOLUTION",
              "answer_b", solution=True),
        _cell("code", '### BEGIN SOLUTION\nanswer_q1 = "c"\n### END SOLUTION', "answer_q", solution=True),
        _cell("code", "print(answer_q1)", "check_q", grade=True),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def _with(nb: nbformat.NotebookNode, **answers: str) -> nbformat.NotebookNode:
    out = copy.deepcopy(nb)
    for cell in out.cells:
        if grade_id(cell) in answers:
            cell.source = answers[grade_id(cell)]
    return out


ADD = "def add_two(x):\n    return x + 2"
SCALE = "def scale(values):\n    return values * 3"
CORRECT = {"answer_a": ADD, "answer_b": SCALE, "answer_q": 'answer_q1 = "c"'}


def _hostile(root: Path, course: CourseDir) -> dict[str, dict[str, str]]:
    """Submission name -> answer cells; each attacks one mechanism (comment: the attacked items)."""
    out, subs = root / "out", root / "subs"
    snooped = [course.root, course.spec_file(LAB), course.key_file(LAB), course.root / "gradebook.db", subs,
               subs / "alice" / LAB / f"{LAB}.ipynb", out, REPO / "autograder", REPO / "autograder" / "keys",
               "/proc/1/environ", "/proc/1/cmdline"]
    snoop = ("import os, pathlib\nfound = []\n"
             f"for p in {[str(p) for p in snooped]!r}:\n"
             "    try:\n        path = pathlib.Path(p)\n"
             "        text = str(sorted(path.iterdir())) if path.is_dir() else path.read_text(errors='ignore')\n"
             f"        if {SECRET!r} in text or 'alice' in text or 'GRADER_SECRET' in text or 'graders' in text:\n"
             "            found.append(p)\n"
             "    except OSError:\n        pass\n"
             "found += [k for k in os.environ if k == 'GRADER_SECRET']\n"
             "for pid in os.listdir('/proc'):\n"
             "    try:\n"
             "        args = open(f'/proc/{pid}/cmdline').read().split(chr(0)) if pid.isdigit() else []\n"
             "        if 'grade' in args or 'pytest' in args:  # the grader's own command line (labkit grade, pytest)\n"
             "            found.append(pid)\n"
             "    except OSError:\n        pass\n"
             "answer_q1 = 'c' if found else 'b'\n")
    write_out = (f"import pathlib\nfor p in {[str(out / 'grades.csv'), str(subs / 'alice' / LAB / 'evil.txt'), str(course.root / 'evil.txt')]!r}:\n"
                 "    try:\n        pathlib.Path(p).parent.mkdir(parents=True, exist_ok=True)\n"
                 "        pathlib.Path(p).write_text('0wned')\n    except OSError:\n        pass\n"
                 "answer_q1 = 'b'\n")
    daemon = ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
              "        for _ in range(600):\n            time.sleep(0.1)\n"
              f"            for p in {[str(out / 'summary.json'), str(out / 'grades.csv')]!r}:\n"
              "                try:\n                    open(p, 'w').write('rewritten')\n"
              "                except OSError:\n                    pass\n"
              "        os._exit(0)\n    os._exit(0)\n"
              "answer_q1 = 'b'\n")
    fork_bomb = ("import os, time\nchildren = 0\ntry:\n    while children < 5000:\n        if os.fork() == 0:\n"
                 "            time.sleep(600)\n            os._exit(0)\n        children += 1\nexcept OSError:\n    pass\n"
                 "print('forked', children)\nanswer_q1 = 'b'\n")
    return {
        # 1: an input transformer turns every later cell (and the grader's code) into `pass`
        "transformer": {"answer_a": "def add_two(x):\n    return 0\n"
                                    "get_ipython().input_transformers_cleanup.append(lambda lines: ['pass\\n'])"},
        # 1: patched comparison functions and a rebound grading helper
        "patched_numpy": {"answer_b": "import numpy as np, labkit.grading.quiz as q\n"
                                      "np.allclose = lambda *a, **k: True\nnp.array_equal = lambda *a, **k: True\n"
                                      "q.same_answer = lambda *a, **k: True\n"
                                      "def scale(values):\n    return values", "answer_q": 'answer_q1 = "a"'},
        # 1 and more: sys.modules tampering -- the kernel side of the probe forges its results
        "forged_probe": {"answer_a": "import sys, types, labkit.grading.probe as real\n"
                                     "fake = types.ModuleType('labkit.grading.probe')\n"
                                     "def answer_call(path, ns):\n"
                                     "    import pathlib\n"
                                     "    pathlib.Path(path).with_suffix('.out.npz').write_bytes(real.dumps([{'ok': 42}, {'ok': 42}, {'ok': 42}]))\n"
                                     "fake.answer_call = answer_call\nsys.modules['labkit.grading.probe'] = fake\n"
                                     "def add_two(x):\n    return 42",
                         "answer_b": "def scale(values):\n    return values"},
        # 2: own-work rule by aliases and computed names: the blocked module cannot be imported
        "blocked_import": {"answer_a": "import importlib\n"
                                       "try:\n    v = importlib.import_module('labkit.data.' + 'valid' + 'ate')\n"
                                       "except ImportError:\n    v = None\n"
                                       "def add_two(x):\n    return x + 2 if v is not None else None"},
        # 3: the answer looks for expected values in its callers' frames
        "frame_peek": {"answer_a": "import sys\ndef add_two(x):\n    f = sys._getframe(1)\n    while f:\n"
                                   "        for k in ('expected', 'value', '_HIDDEN'):\n"
                                   "            if k in f.f_locals and isinstance(f.f_locals[k], int) and k != 'x':\n"
                                   "                return f.f_locals[k] + 2\n"
                                   "        f = f.f_back\n    return None"},
        # 4: snooping on the course, keys, spec, other submissions, output folder, grader's environment and processes
        "snoop": {"answer_q": snoop},
        # 4: writing into another student's folder, the course and the output folder
        "vandal": {"answer_q": write_out},
        # 5: a double-forked, setsid daemon waits to rewrite the results
        "daemon": {"answer_q": daemon},
        # 6: student text (a path, another lab's test code) in an exception message
        "smuggler": {"answer_a": "def add_two(x):\n    raise ValueError('see /srv/course/autograder/graders/ch02_nms.py: ' + 'assert box_iou ' * 40)"},
        # more: signals to the parent and to every process it can see
        "killer": {"answer_b": "import os, signal\nfor pid in (os.getppid(), 1, -1):\n    try:\n"
                               "        os.kill(pid, signal.SIGKILL)\n    except OSError:\n        pass\n"
                               "def scale(values):\n    return values * 3"},
        # more: a fork bomb (bounded by the process cap), then its children sleep
        "fork_bomb": {"answer_q": fork_bomb},
        # more: a file over the file-size cap, and a disk filler
        "huge_file": {"answer_b": "try:\n    with open('big.bin', 'wb') as f:\n"
                                  "        for _ in range(200):\n            f.write(b'0' * (1 << 20))\nexcept OSError:\n    pass\n"
                                  "def scale(values):\n    return values * 3"},
        # more: links planted where the grader writes its calls and reads the answers, pointing at its files
        "linker": {"answer_b": SCALE + "\nimport os, pathlib\nprobe = pathlib.Path.cwd().parent / 'probe'\n"
                               f"target = {str(root / 'canary.txt')!r}\n"
                               "for k in range(1000):\n    for name in (f'call-{k}.npz', f'call-{k}.out.npz'):\n"
                               "        try:\n            os.symlink(target, probe / name)\n"
                               "        except OSError:\n            pass\n"},
        # more: an endless loop inside the graded call
        "loop": {"answer_a": "def add_two(x):\n    while True:\n        pass"},
        # more: the kernel dies inside the graded call
        "crash": {"answer_a": "def add_two(x):\n    import os\n    os._exit(3)"},
    }


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    require_bwrap()
    root = tmp_path_factory.mktemp("probe")
    course = CourseDir(root / "course")
    (course.source / LAB).mkdir(parents=True)
    (course.root / "graders").mkdir()
    (course.root / "keys").mkdir()
    shutil.copy(REPO / "autograder" / "nbgrader_config.py", course.config_file)
    source = _source()
    nbformat.write(source, course.source / LAB / f"{LAB}.ipynb")
    course.spec_file(LAB).write_text(SPEC)
    course.key_file(LAB).write_text(f"answers:\n  q1: c  # {SECRET}\n")
    (course.root / "gradebook.db").write_text(f"secret gradebook {SECRET}")
    (root / "canary.txt").write_text("canary")
    released = released_view(course, LAB, source)
    students = {
        "alice": _with(released, **CORRECT),
        "alt": _with(released, answer_a="def add_two(x):\n    y = x\n    y += 1\n    return y + 1",
                     answer_b="import numpy as np\ndef scale(values):\n    return np.multiply(values, 3.0)",
                     answer_q='answer_q1 = " C "'),
        "noisy": _with(released, **{**CORRECT, "answer_a": "import sys, warnings\ndef add_two(x):\n"
                                                           "    warnings.warn('deprecated something')\n"
                                                           "    print('debug', file=sys.stderr)\n    return x + 2"}),
        "blank": released,
        "tamper": _with(released, **CORRECT, check_add="pass"),
    }
    for name, answers in _hostile(root, course).items():
        students[name] = _with(released, **{**CORRECT, **answers})
    for name, nb in students.items():
        (root / "subs" / name / LAB).mkdir(parents=True)
        nbformat.write(nb, root / "subs" / name / LAB / f"{LAB}.ipynb")
    (root / "subs" / "snoop" / LAB / "leak.txt").symlink_to(course.root / "gradebook.db")
    runtime = root / "runtime"
    runtime.mkdir()
    before = _files(root)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADER_SECRET", SECRET)
        mp.setattr(tempfile, "tempdir", str(runtime))
        report = grade_lab(course, LAB, root / "subs", root / "out", SETTINGS, progress=False)
        time.sleep(2.0)  # a surviving daemon would rewrite the results within this time
    results = {s.student: {i.item: i for i in s.items} for s in report.students}
    return {"root": root, "course": course, "report": report, "results": results, "before": before,
            "runtime": runtime}


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if "out" not in p.relative_to(root).parts[:1]}


def _scores(graded, student: str) -> dict[str, float]:
    return {item: r.score for item, r in graded["results"][student].items() if r.max_score > 0}


FULL = {"add": 2.0, "scale": 1.0, "q1": 1.0}


def test_correct_solutions_get_full_marks(graded):
    for student in ("alice", "alt"):
        assert _scores(graded, student) == FULL, graded["results"][student]


def test_warnings_and_stderr_cost_nothing(graded):
    assert _scores(graded, "noisy") == FULL


def test_blank_copy_gets_nothing(graded):
    assert _scores(graded, "blank") == {"add": 0.0, "scale": 0.0, "q1": 0.0}


@pytest.mark.parametrize("student, attacked", [
    ("transformer", {"add", "scale", "q1"}), ("patched_numpy", {"scale", "q1"}), ("forged_probe", {"add", "scale", "q1"}),
    ("blocked_import", {"add"}), ("frame_peek", {"add"}), ("snoop", {"q1"}), ("vandal", {"q1"}), ("daemon", {"q1"}),
    ("smuggler", {"add"}), ("fork_bomb", {"q1"}), ("huge_file", set()), ("linker", set()), ("killer", set()), ("loop", {"add"}), ("crash", {"add"}),
])
def test_attacks_score_zero_on_the_attacked_items(graded, student, attacked):
    scores = _scores(graded, student)
    assert {k for k, v in scores.items() if v == 0} == attacked, graded["results"][student]


def test_signals_to_the_parent_do_not_stop_grading(graded):
    # kill(ppid), kill(1) and kill(-1) reach only its own sandbox, whose init ignores them
    assert _scores(graded, "killer") == FULL
    students = [s.student for s in graded["report"].students]
    assert students == sorted(students) and len(students) == len(graded["results"])


def test_nothing_of_a_submission_survives_it(graded):
    root = graded["root"]
    assert _files(root) == graded["before"], "a submission wrote outside its throw-away copy"
    assert (root / "canary.txt").read_text() == "canary", "the grader wrote through a planted link"
    assert not list(graded["runtime"].iterdir()), "a sandbox's temporary folder was left behind"
    leftovers = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if str(graded["runtime"]).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                leftovers.append(pid)
        except OSError:
            continue
    assert not leftovers, f"processes of a submission outlived it: {leftovers}"
    rows = list(csv.DictReader((root / "out" / "grades.csv").open()))
    assert rows and json.loads((root / "out" / "summary.json").read_text())["lab"] == LAB


def test_feedback_strips_paths_truncates_and_never_echoes_answers(graded):
    message = graded["results"]["smuggler"]["add"].message
    assert message.startswith("add_two raised ValueError") and "/work" not in message and len(message) <= 240
    out = graded["root"] / "out"
    texts = [p.read_text() for p in out.rglob("*") if p.is_file()]
    assert not any(SECRET in t or "lkg-" in t or "graders/ch02" in t for t in texts)
    assert graded["results"]["patched_numpy"]["q1"].message == "q1: not the expected answer"
    page = (out / "feedback" / "patched_numpy" / f"{LAB}.html").read_text()
    assert "answer_q1" not in page and '"a"' not in page


def test_tampered_locked_cell_is_reported_and_costs_nothing(graded):
    items = graded["results"]["tamper"]
    assert items["check_add"].status == "tampered" and graded["report"].needs_review
    assert _scores(graded, "tamper") == FULL


def test_isolation_is_recorded_in_every_row(graded):
    out = graded["root"] / "out"
    rows = list(csv.DictReader((out / "grades.csv").open()))
    assert {r["isolation"] for r in rows} == {"bwrap"}
    assert json.loads((out / "summary.json").read_text())["isolation"] == "bwrap"


def test_parallel_grading_gives_the_same_results(graded, tmp_path):
    """The batch above was graded with --jobs 2; these submissions again with --jobs 1."""
    subs = tmp_path / "subs"
    for name in ("alice", "blank", "smuggler", "crash"):
        shutil.copytree(graded["root"] / "subs" / name, subs / name)
    settings = GradeSettings(**{**SETTINGS.__dict__, "jobs": 1})
    again = grade_lab(graded["course"], LAB, subs, tmp_path / "out", settings, progress=False)
    for student in again.students:
        assert {i.item: (i.score, i.status, i.message) for i in student.items} == \
               {k: (i.score, i.status, i.message) for k, i in graded["results"][student.student].items()}


def test_missing_bubblewrap_is_refused_and_there_is_no_weaker_level(monkeypatch):
    monkeypatch.setattr("labkit.grading.sandbox.level_works", lambda level: False)
    with pytest.raises(ValueError, match="bubblewrap") as info:
        resolve_level("bwrap")
    assert "no weaker level" in str(info.value) and "make system-deps" in str(info.value)
    for weaker in ("none", "unshare"):
        with pytest.raises(ValueError, match="isolation must be one of bwrap"):
            resolve_level(weaker)


def test_the_command_line_offers_no_weaker_isolation(tmp_path, capsys):
    from labkit.cli import main

    with pytest.raises(SystemExit) as info:
        main(["grade", str(tmp_path), "--lab", "ch01_quiz", "--isolation", "none"])
    assert info.value.code == 2 and "invalid choice: 'none'" in capsys.readouterr().err


def test_probe_results_are_plain_data_and_links_are_not_followed(tmp_path):
    import torch

    value = {"a": (1, 2.5, float("nan")), "t": torch.arange(3, dtype=torch.int64), "n": np.eye(2), "s": None,
             "$odd": [True, "x"]}
    back = wire.loads(wire.dumps(value))
    assert back["a"][:2] == (1, 2.5) and np.isnan(back["a"][2]) and back["s"] is None and back["$odd"] == [True, "x"]
    assert torch.equal(back["t"], value["t"]) and np.array_equal(back["n"], value["n"])
    with pytest.raises(wire.ProbeDataError):
        wire.dumps(object())
    (tmp_path / "secret").write_bytes(wire.dumps(42))
    (tmp_path / "result.out.npz").symlink_to(tmp_path / "secret")
    with pytest.raises(wire.ProbeDataError):
        wire.read_result(tmp_path / "result.out.npz")
    (tmp_path / "pickled.npz").write_bytes(b"\x80\x04not an npz")
    with pytest.raises(wire.ProbeDataError):
        wire.read_result(tmp_path / "pickled.npz")


def test_clean_message():
    assert clean_message("open('/tmp/lkg-x/run/a.txt') failed") == "open('<path>') failed"
    assert clean_message("IoU 0.5/0.7\x07 differs\n") == "IoU 0.5/0.7 differs"
    assert len(clean_message("x" * 1000)) == 240


def test_symlinks_in_a_submission_are_not_copied(tmp_path):
    (tmp_path / "secret").write_text("gradebook")
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "data.txt").write_text("mine")
    (tmp_path / "lab" / "leak.txt").symlink_to(tmp_path / "secret")
    work = _prepare_workdir(tmp_path / "run", tmp_path / "lab", [])
    assert sorted(p.name for p in work.iterdir()) == ["data.txt"]


def _cli(argv: list[str]) -> int:
    from labkit.cli import UsageError
    from labkit.grading import cli

    parser = argparse.ArgumentParser(prog="labkit")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError:
        return 2


def test_quiz_lab_through_the_command_line(tmp_path, capsys):
    require_bwrap()
    source = REPO / "autograder" / "source" / "ch01_quiz" / "ch01_quiz.ipynb"
    student = REPO / "notebooks" / "01_data_foundations" / "labs" / "ch01_quiz.ipynb"
    for name, nb in (("instructor", source), ("student", student)):
        (tmp_path / "subs" / name / "ch01_quiz").mkdir(parents=True)
        shutil.copy(nb, tmp_path / "subs" / name / "ch01_quiz" / "ch01_quiz.ipynb")
    out = tmp_path / "out"
    code = _cli(["grade", str(tmp_path / "subs"), "--lab", "ch01_quiz", "--out", str(out),
                 "--timeout-per-cell", "30", "--jobs", "2", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    totals = {s["student"]: (s["score"], s["max"]) for s in report["students"]}
    assert totals == {"instructor": (5.0, 5.0), "student": (0.0, 5.0)} and report["isolation"] == "bwrap"
    assert (out / "feedback" / "student" / "ch01_quiz.html").is_file()
    assert _cli(["grade", str(tmp_path / "nowhere"), "--lab", "ch01_quiz"]) == 2
    assert _cli(["grade", str(tmp_path / "subs"), "--lab", "ch99_nothing"]) == 2


def test_blocked_package_cannot_be_loaded_any_way(tmp_path):
    """ch02's rule: no torchvision in the student's process -- not by alias, not via torch.ops, not by file."""
    require_bwrap()
    import subprocess
    import sys

    from labkit.grading.sandbox import Sandbox, module_location

    location = module_location("torchvision")
    code = f"""
import glob, importlib.util, torch
attempts = {{
    "import": lambda: __import__("torchvision"),
    "alias": lambda: exec("from torchvision.ops import box_iou as _x"),
    "torch.ops": lambda: torch.ops.torchvision.nms,
    "load_library": lambda: torch.ops.load_library(glob.glob({str(location)!r} + "/_C*.so")[0]),
    "by_file": lambda: importlib.util.spec_from_file_location("tv", {str(location / "ops" / "boxes.py")!r}).loader.exec_module(
        importlib.util.module_from_spec(importlib.util.spec_from_file_location("tv", {str(location / "ops" / "boxes.py")!r}))),
}}
for name, attempt in attempts.items():
    try:
        attempt()
        print("LOADED", name)
    except Exception as exc:
        print("refused", name, type(exc).__name__)
"""
    command = Sandbox("bwrap", memory_mb=4096, blocked=("torchvision",)).wrap(
        [sys.executable, "-c", code], runtime_dir=tmp_path, workdir=tmp_path)
    run = subprocess.run(command, capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.count("refused") == 5 and "LOADED" not in run.stdout, run.stdout
