"""How a grading kernel is isolated from the grader's machine. Three levels, best first:

``bwrap``
    The kernel runs under bubblewrap (Debian package ``bubblewrap``) in its own mount, PID, IPC,
    UTS and network namespaces, with every capability dropped. Its file system is a fresh tmpfs
    ``/tmp`` plus, read-only, ``/usr`` and the ``/bin``-style links, a few files of ``/etc``, the
    Python installation and virtual environment, the ``labkit`` package and any ``extra``
    read-only paths; the submission's throw-away copy is the only writable place. The course
    folder (instructor notebooks with hidden tests), the grades and feedback being written and the
    other students' submissions are not there at all, and there is no network.
``unshare``
    ``unshare --net``: no network, but the file system is the grader's -- student code could read
    any file the grader can. Used when bubblewrap is missing or cannot create namespaces (some
    containers); reported as such.
``none``
    Only the throw-away working copy, a clean environment and the resource limits of
    :mod:`labkit.grading.limits`.

Every level adds the limits wrapper. ``auto`` picks the best level that works here (a probe runs
Python through it) and the grader writes the level it used into ``grades.csv`` and the feedback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import labkit
from labkit.grading.limits import DEFAULT_FILE_MB, DEFAULT_MEMORY_MB

LEVELS = ("bwrap", "unshare", "none")
CHOICES = ("auto", *LEVELS)
DESCRIPTIONS = {
    "bwrap": "bubblewrap: own mount/PID/IPC/UTS/network namespaces, no capabilities; only the Python "
             "installation, labkit and the submission's temporary copy are visible; no network",
    "unshare": "unshare: no network, but the file system is NOT hidden from student code",
    "none": "none: temporary working copy, clean environment and resource limits only; "
            "no file-system or network isolation",
}
#: Files of /etc a Python kernel may read (loader cache, users, fonts for matplotlib, time zone).
_ETC = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/passwd", "/etc/group",
        "/etc/nsswitch.conf", "/etc/localtime", "/etc/fonts", "/etc/mime.types")
_TOP_LEVEL = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


def _readonly_paths(extra: Sequence[Path]) -> list[Path]:
    """What a kernel must see: the Python installation, the venv, labkit, and ``extra``."""
    paths = [Path(sys.base_prefix), Path(sys.prefix), Path(labkit.__file__).resolve().parent, *extra]
    return list(dict.fromkeys(Path(p) for p in paths))


def _bwrap_prefix(runtime_dir: Path, workdir: Path, extra: Sequence[Path]) -> list[str]:
    args = [shutil.which("bwrap") or "bwrap", "--die-with-parent", "--new-session", "--unshare-all"]
    if os.geteuid() == 0:
        args += ["--cap-drop", "ALL"]
    args += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--ro-bind", "/usr", "/usr"]
    for top in _TOP_LEVEL:
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for path in [*_ETC, *map(str, _readonly_paths(extra))]:
        if os.path.exists(path):
            args += ["--ro-bind", path, path]
    # In the PID namespace the kernel's parent is bwrap's init (pid 1), which ipykernel's parent
    # poller reads as "the grader has exited"; --die-with-parent does that job instead.
    return args + ["--bind", str(runtime_dir), str(runtime_dir), "--chdir", str(workdir),
                   "--unsetenv", "JPY_PARENT_PID"]


def _unshare_prefix() -> list[str]:
    return [shutil.which("unshare") or "unshare", "--net"] + ([] if os.geteuid() == 0 else ["--map-root-user"])


@dataclass(frozen=True)
class Sandbox:
    """An isolation level and the resource limits every kernel of a grading run gets."""

    level: str
    memory_mb: int = DEFAULT_MEMORY_MB
    file_mb: int = DEFAULT_FILE_MB
    extra_readonly: tuple[Path, ...] = ()

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self.level]

    def wrap(self, command: Sequence[str], *, runtime_dir: Path, workdir: Path) -> list[str]:
        """``command`` run under the resource limits and this isolation level.

        ``runtime_dir`` (which contains ``workdir``) is the only writable, visible folder under bwrap.
        """
        limits = [sys.executable, "-m", "labkit.grading.limits", "--memory-mb", str(self.memory_mb),
                  "--file-mb", str(self.file_mb), "--"]
        if self.level == "bwrap":
            return limits + _bwrap_prefix(runtime_dir, workdir, self.extra_readonly) + list(command)
        if self.level == "unshare":
            return limits + _unshare_prefix() + list(command)
        return limits + list(command)


@lru_cache(maxsize=None)
def level_works(level: str) -> bool:
    """Whether a Python process starts under ``level`` on this machine (probed once per process)."""
    if level == "none":
        return True
    if shutil.which("bwrap" if level == "bwrap" else "unshare") is None:
        return False
    with tempfile.TemporaryDirectory(prefix="labkit-probe-") as tmp:
        probe = Sandbox(level, memory_mb=2048).wrap([sys.executable, "-c", "import labkit"],
                                                    runtime_dir=Path(tmp), workdir=Path(tmp))
        try:
            return subprocess.run(probe, capture_output=True, timeout=60, cwd=tmp).returncode == 0
        except (OSError, subprocess.SubprocessError):
            return False


def resolve_level(requested: str = "auto") -> str:
    """``requested`` if it works here; for ``auto`` the best level that does. ``ValueError`` otherwise."""
    if requested not in CHOICES:
        raise ValueError(f"isolation must be one of {', '.join(CHOICES)}, got {requested!r}")
    if requested != "auto":
        if not level_works(requested):
            raise ValueError(f"isolation {requested!r} does not work on this machine "
                             "(is bubblewrap installed: apt-get install bubblewrap?)")
        return requested
    return next(level for level in LEVELS if level_works(level))
