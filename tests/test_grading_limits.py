"""labkit.grading.limits: the resource limits a grading kernel starts under (set in a child process,
read back there with resource.getrlimit), the wrapper's command line, and the process allowance
counted from a stand-in /proc."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from types import SimpleNamespace

import pytest

from labkit.grading import limits

PROBE = ("import json, resource; print(json.dumps({n: resource.getrlimit(getattr(resource, n)) for n in "
         "('RLIMIT_AS', 'RLIMIT_FSIZE', 'RLIMIT_CORE', 'RLIMIT_NPROC')}))")


def _wrapped(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labkit.grading.limits", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def test_defaults():
    assert (limits.DEFAULT_MEMORY_MB, limits.DEFAULT_FILE_MB, limits.DEFAULT_TIMEOUT_PER_CELL) == (6144, 512, 120.0)
    assert limits.PROCS_MARGIN == 512


def test_wrapper_sets_soft_and_hard_limits_then_runs_the_command():
    nproc_before = resource.getrlimit(resource.RLIMIT_NPROC)
    nproc = nproc_before[1]  # the hard limit (may be unlimited, -1): a limit may be lowered, not raised
    done = _wrapped("--memory-mb", "2048", "--file-mb", "3", "--max-procs", str(nproc), "--",
                    sys.executable, "-c", PROBE)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["RLIMIT_AS"] == [2048 * 1024 * 1024] * 2
    assert got["RLIMIT_FSIZE"] == [3 * 1024 * 1024] * 2
    assert got["RLIMIT_CORE"] == [0, 0]
    assert got["RLIMIT_NPROC"] == [nproc] * 2
    # without --max-procs the process limit is inherited unchanged (and "--" may be left out)
    done = _wrapped("--memory-mb", "2048", "--file-mb", "3", sys.executable, "-c", PROBE)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["RLIMIT_NPROC"] == list(nproc_before)


def test_file_limit_binds_the_command(tmp_path):
    big = tmp_path / "big.bin"
    code = f"open({str(big)!r}, 'wb').write(b'x' * (2 << 20))"
    done = _wrapped("--memory-mb", "2048", "--file-mb", "1", "--", sys.executable, "-c",
                    "import signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); " + code)
    assert done.returncode != 0 and "File too large" in done.stderr
    assert big.stat().st_size == 1 << 20


@pytest.mark.parametrize("argv, message", [
    (["--memory-mb", "10", "--file-mb", "1"], "error: no command given\n"),
    (["--memory-mb", "10", "--file-mb", "1", "--"], "error: no command given\n"),
    (["--file-mb", "1", "--", "true"], "the following arguments are required: --memory-mb"),
    (["--memory-mb", "10", "--", "true"], "the following arguments are required: --file-mb"),
    (["--memory-mb", "ten", "--file-mb", "1", "--", "true"], "argument --memory-mb: invalid int value: 'ten'"),
    (["--memory-mb", "10", "--file-mb", "1", "--max-procs", "x", "--", "true"], "argument --max-procs: invalid int value"),
])
def test_wrapper_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        limits.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "XX" not in err and (not message.endswith("\n") or err.endswith(message))


def test_help_names_the_module_docstring(capsys):
    with pytest.raises(SystemExit):
        limits.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "``python -m labkit.grading.limits --memory-mb M --file-mb F -- CMD ...``: set limits, then exec CMD." in out
    assert "positional arguments: command the command to run, after -- options:" in out


def test_main_applies_the_limits_then_execs(monkeypatch):
    calls = []
    monkeypatch.setattr(limits, "apply_limits", lambda *a: calls.append(("limits", a)))
    monkeypatch.setattr(limits.os, "execvp", lambda file, args: calls.append(("exec", file, args)))
    limits.main(["--memory-mb", "10", "--file-mb", "2", "--max-procs", "7", "--", "echo", "--", "hi"])
    assert calls == [("limits", (10, 2, 7)), ("exec", "echo", ["echo", "--", "hi"])]
    calls.clear()
    limits.main(["--memory-mb", "10", "--file-mb", "2", "ls", "-l"])
    assert calls == [("limits", (10, 2, None)), ("exec", "ls", ["ls", "-l"])]


def test_apply_limits_sets_each_limit(monkeypatch):
    set_calls = []
    monkeypatch.setattr(limits.resource, "setrlimit", lambda which, value: set_calls.append((which, value)))
    limits.apply_limits(3, 2)
    assert set_calls == [(resource.RLIMIT_AS, (3 << 20, 3 << 20)), (resource.RLIMIT_FSIZE, (2 << 20, 2 << 20)),
                         (resource.RLIMIT_CORE, (0, 0))]
    set_calls.clear()
    limits.apply_limits(3, 2, 0)
    assert set_calls[-1] == (resource.RLIMIT_NPROC, (0, 0))


def test_procs_allowance_counts_the_users_threads(monkeypatch):
    """A stand-in /proc: pids 10 (ours, 3 threads), 11 (another user), 12 (ours, 1 thread), 13 (ours, ended
    before its tasks were listed), 14 (ours, ended before stat), 'self' (not a pid), 15 (ours, 2 threads: a
    process that ended does not stop the count)."""
    def entry(name, uid):
        def stat():
            if uid is None:
                raise FileNotFoundError(name)
            return SimpleNamespace(st_uid=uid)
        return SimpleNamespace(name=name, stat=stat)

    me = 4242
    entries = [entry("10", me), entry("11", me + 1), entry("12", me), entry("13", me), entry("14", None),
               entry("self", me), entry("15", me)]
    tasks = {"/proc/10/task": ["10", "20", "21"], "/proc/12/task": ["12"], "/proc/15/task": ["15", "30"]}

    def listdir(path):
        if path not in tasks:
            raise FileNotFoundError(path)
        return tasks[path]

    monkeypatch.setattr(limits.os, "getuid", lambda: me)
    monkeypatch.setattr(limits.os, "scandir", lambda path: entries if path == "/proc" else [])
    monkeypatch.setattr(limits.os, "listdir", listdir)
    assert limits.procs_allowance(0) == 6
    assert limits.procs_allowance(5) == 11
    assert limits.procs_allowance() == 6 + 512


def test_procs_allowance_on_this_machine():
    assert limits.procs_allowance(0) >= 1  # at least this process
