"""labkit.grading.sandbox: the bubblewrap command line argument by argument, where a blocked module is
found and what replaces it, the level check and its refusal, and (where bubblewrap works) one real
sandboxed process: blocked modules fail to import, the grader's files are not there, the run folder
is the only writable one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import labkit
from labkit.grading import sandbox
from labkit.grading.limits import DEFAULT_FILE_MB, DEFAULT_MEMORY_MB
from labkit.grading.sandbox import MISSING_BWRAP, Sandbox, blocker_source, level_works, module_location, resolve_level

STDLIB = Path(os.__file__).parent


def test_constants():
    assert sandbox.LEVELS == ("bwrap",) and sandbox.TMP_BYTES == 512 * 1024 * 1024
    assert sandbox.DESCRIPTIONS["bwrap"].startswith("bubblewrap: own mount/PID/IPC/UTS/network namespaces")
    s = Sandbox("bwrap")
    assert (s.memory_mb, s.file_mb, s.extra_readonly, s.blocked) == (DEFAULT_MEMORY_MB, DEFAULT_FILE_MB, (), ())
    assert s.description == sandbox.DESCRIPTIONS["bwrap"]


def test_readonly_paths_in_order_without_repeats(tmp_path):
    labkit_dir = Path(labkit.__file__).resolve().parent
    got = sandbox._readonly_paths([tmp_path, Path(sys.prefix), tmp_path])
    assert got == list(dict.fromkeys([Path(sys.base_prefix), Path(sys.prefix), labkit_dir, tmp_path]))
    assert got[-1] == tmp_path and len(got) == len(set(got))


def test_module_location():
    assert module_location("json") == STDLIB / "json"  # a package: its folder
    assert module_location("csv") == STDLIB / "csv.py"  # a module: its file
    # built in, frozen (no file to cover: the file system cannot block them), missing, not a name
    for name in ("sys", "zipimport", "__hello__", "no_such_module_xyz", "..relative", ""):
        assert module_location(name) is None, name


def test_blocker_source():
    text = blocker_source("cv2")
    assert text == ("raise ImportError('cv2 is not available in this lab: the lab asks for your own implementation'"
                    ", name=__name__)\n")
    with pytest.raises(ImportError) as exc:
        exec(compile(text, "cv2.py", "exec"), {"__name__": "cv2"})  # noqa: S102
    assert exc.value.name == "cv2"


def test_blocked_mounts(tmp_path):
    args = sandbox._blocked_mounts(["json", "csv", "no_such_module_xyz"], tmp_path)
    expected = ["--tmpfs", str(STDLIB / "json"), "--ro-bind", str(tmp_path / "blocked-json.py"),
                str(STDLIB / "json" / "__init__.py"), "--ro-bind", str(tmp_path / "blocked-csv.py"), str(STDLIB / "csv.py")]
    if (STDLIB / "__pycache__").is_dir():
        expected += ["--tmpfs", str(STDLIB / "__pycache__")]
    assert args == expected
    assert (tmp_path / "blocked-csv.py").read_text() == blocker_source("csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocked-csv.py", "blocked-json.py"]


def test_a_module_file_without_a_cache_folder(tmp_path, monkeypatch):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "lonely_mod_xyz.py").write_text("x = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    assert sandbox._blocked_mounts(["lonely_mod_xyz"], tmp_path) == [
        "--ro-bind", str(tmp_path / "blocked-lonely_mod_xyz.py"), str(tmp_path / "lib" / "lonely_mod_xyz.py")]


def test_the_bubblewrap_command_line(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: "/opt/bin/" + name)
    work = tmp_path / "work"
    args = sandbox._bwrap_prefix(tmp_path, work, [Path("/opt/data")], ["csv"])
    assert args[:17] == ["/opt/bin/bwrap", "--die-with-parent", "--new-session", "--unshare-all", "--cap-drop", "ALL",
                         "--dev", "/dev", "--proc", "/proc", "--size", str(512 << 20), "--tmpfs", "/tmp",
                         "--ro-bind", "/usr", "/usr"]
    assert args[-7:] == ["--bind", str(tmp_path), str(tmp_path), "--chdir", str(work), "--unsetenv", "JPY_PARENT_PID"]
    rest = args[17:-7]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            assert f"--symlink {os.readlink(top)} {top}" in " ".join(rest), top
        elif os.path.isdir(top):
            assert f"--ro-bind {top} {top}" in " ".join(rest), top
        else:
            assert top not in rest
    assert "--ro-bind /etc/passwd /etc/passwd" in " ".join(rest)
    assert "/etc/shadow" not in rest and "/opt/data" not in rest  # only what exists is bound
    assert f"--ro-bind {sys.prefix} {sys.prefix}" in " ".join(rest)
    assert rest[-3:] == ["--ro-bind", str(tmp_path / "blocked-csv.py"), str(STDLIB / "csv.py")] or \
        rest[-5:-2] == ["--ro-bind", str(tmp_path / "blocked-csv.py"), str(STDLIB / "csv.py")]
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    assert sandbox._bwrap_prefix(tmp_path, work, [], [])[0] == "bwrap"


def test_top_level_folders_that_are_not_links(tmp_path, monkeypatch):
    real, link = tmp_path / "lib32", tmp_path / "bin"
    real.mkdir()
    link.symlink_to("usr/bin")
    monkeypatch.setattr(sandbox, "_TOP_LEVEL", (str(real), str(link), str(tmp_path / "absent")))
    text = " ".join(sandbox._bwrap_prefix(tmp_path, tmp_path, [], []))
    assert f"--ro-bind /usr /usr --ro-bind {real} {real} --symlink usr/bin {link} --ro-bind /etc/" in text
    assert "absent" not in text


def test_wrap_puts_the_limits_first(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "procs_allowance", lambda: 4321)
    box = Sandbox("bwrap", memory_mb=1000, file_mb=7, extra_readonly=(tmp_path,), blocked=("csv",))
    argv = box.wrap(["python", "-c", "pass"], runtime_dir=tmp_path, workdir=tmp_path / "w")
    assert argv[:10] == [sys.executable, "-m", "labkit.grading.limits", "--memory-mb", "1000", "--file-mb", "7",
                         "--max-procs", "4321", "--"]
    assert argv[10:-3] == sandbox._bwrap_prefix(tmp_path, tmp_path / "w", (tmp_path,), ("csv",))
    assert argv[-3:] == ["python", "-c", "pass"]


def test_resolve_level(monkeypatch):
    with pytest.raises(ValueError) as exc:
        resolve_level("none")
    assert str(exc.value) == "isolation must be one of bwrap, got 'none'"
    monkeypatch.setattr(sandbox, "level_works", lambda level: False)
    with pytest.raises(ValueError) as exc:
        resolve_level()
    assert str(exc.value) == MISSING_BWRAP
    monkeypatch.setattr(sandbox, "level_works", lambda level: level == "bwrap")
    assert resolve_level() == "bwrap"


def test_no_bubblewrap_no_level(monkeypatch):
    level_works.cache_clear()
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    try:
        assert level_works("bwrap") is False
    finally:
        level_works.cache_clear()


def test_a_bubblewrap_that_cannot_start_python(monkeypatch, tmp_path):
    level_works.cache_clear()
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: str(fake))
    try:
        assert level_works("bwrap") is False
    finally:
        level_works.cache_clear()


CHECK = """
import os, sys
out = {}
for name in ("csv", "email.message"):
    try:
        __import__(name); out[name] = "imported"
    except ImportError as exc:
        out[name] = str(exc)
out["secret"] = os.path.exists(sys.argv[1])
open("written.txt", "w").write("x")
try:
    open(sys.argv[2], "w")
    out["outside"] = "written"
except OSError:
    out["outside"] = "refused"
out["cwd"] = os.getcwd()
print(repr(out))
"""


def test_a_real_sandbox(tmp_path):
    if not level_works("bwrap"):
        pytest.skip("bubblewrap does not work here")
    secret = tmp_path / "grader" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("key")
    run, work = tmp_path / "lkg-run", tmp_path / "lkg-run" / "work"
    work.mkdir(parents=True)
    argv = Sandbox("bwrap", memory_mb=2048, blocked=("csv", "email")).wrap(
        [sys.executable, "-c", CHECK, str(secret), str(secret.parent / "new.txt")], runtime_dir=run, workdir=work)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=work)
    assert done.returncode == 0, done.stderr
    out = eval(done.stdout)  # noqa: S307 - our own repr of plain values
    assert out["csv"] == "csv is not available in this lab: the lab asks for your own implementation"
    assert out["email.message"] == "email is not available in this lab: the lab asks for your own implementation"
    assert out["secret"] is False and out["outside"] == "refused" and out["cwd"] == str(work)
    assert (work / "written.txt").read_text() == "x" and not (secret.parent / "new.txt").exists()
    import email.message  # noqa: F401 - the grader itself still has it
