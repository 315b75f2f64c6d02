"""How a grading kernel is isolated from the grader's machine: one level, required.

``bwrap``
    The kernel runs under bubblewrap (Debian package ``bubblewrap``; ``make system-deps``) in its
    own mount, PID, IPC, UTS, cgroup and network namespaces, with every capability dropped and
    ``--die-with-parent``. Its file system is a fresh tmpfs ``/tmp`` plus, read-only, ``/usr``
    and the ``/bin``-style links, a few files of ``/etc``, the Python installation and virtual
    environment, the ``labkit`` package, ``$LABKIT_DATA`` and any ``extra`` read-only paths; the
    submission's throw-away copy is the only writable place. The course folder (``autograder/``:
    sources, keys, grading specs), the gradebook, the output folder and the other submissions are
    not there at all, and there is no network. The PID namespace ends with the kernel: every
    process the submission started (a double-forked daemon too) is killed with it.
    Blocked modules (:attr:`Sandbox.blocked`) are hidden by the file system: a package folder is
    covered by an empty tmpfs holding only an ``__init__.py`` that raises ``ImportError`` (its
    compiled extensions, ``torch.ops.torchvision`` included, cannot be loaded), and a module file
    by one that raises ``ImportError``.
There is no weaker level: without a working bubblewrap ``labkit grade`` refuses to run, because
every guarantee above (no course files, no other submissions, nothing outlives the kernel) rests
on it.
"""

from __future__ import annotations

import importlib.util
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
from labkit.grading.limits import DEFAULT_FILE_MB, DEFAULT_MEMORY_MB, procs_allowance

LEVELS = ("bwrap",)
DESCRIPTIONS = {
    "bwrap": "bubblewrap: own mount/PID/IPC/UTS/network namespaces, no capabilities; only the Python "
             "installation, labkit, the dataset and the submission's temporary copy are visible; no network",
}
MISSING_BWRAP = ("bubblewrap (bwrap) is required to grade untrusted submissions and does not work here; "
                 "install it (`make system-deps`, or apt-get install bubblewrap); there is no weaker level, since "
                 "without it a submission could read the grader's files and outlive its kernel")
#: Files of /etc a Python kernel may read (loader cache, users, fonts for matplotlib, time zone).
_ETC = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/passwd", "/etc/group",
        "/etc/nsswitch.conf", "/etc/localtime", "/etc/fonts", "/etc/mime.types")
_TOP_LEVEL = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
#: Size of the sandbox's private /tmp (bytes).
TMP_BYTES = 512 << 20


def _readonly_paths(extra: Sequence[Path]) -> list[Path]:
    """What a kernel must see: the Python installation, the venv, labkit, and ``extra``."""
    paths = [Path(sys.base_prefix), Path(sys.prefix), Path(labkit.__file__).resolve().parent, *extra]
    return list(dict.fromkeys(Path(p) for p in paths))


def module_location(name: str) -> Path | None:
    """The package folder or module file ``import name`` would load, without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or spec.origin in ("built-in", "frozen"):
        return None
    origin = Path(spec.origin)
    return origin.parent if spec.submodule_search_locations and origin.name == "__init__.py" else origin


def blocker_source(name: str) -> str:
    """The module that replaces a blocked one."""
    return (f"raise ImportError({name + ' is not available in this lab: the lab asks for your own implementation'!r}"
            ", name=__name__)\n")


def _blocked_mounts(blocked: Sequence[str], runtime_dir: Path) -> list[str]:
    args: list[str] = []
    for name in blocked:
        where = module_location(name)
        if where is None:
            continue
        stub = runtime_dir / f"blocked-{name}.py"
        stub.write_text(blocker_source(name))
        if where.is_dir():  # an empty folder would still import, as a namespace package
            args += ["--tmpfs", str(where), "--ro-bind", str(stub), str(where / "__init__.py")]
            continue
        args += ["--ro-bind", str(stub), str(where)]
        cache = where.parent / "__pycache__"
        if cache.is_dir():  # a cached .pyc of the module would still be loadable by hand
            args += ["--tmpfs", str(cache)]
    return args


def _bwrap_prefix(runtime_dir: Path, workdir: Path, extra: Sequence[Path], blocked: Sequence[str]) -> list[str]:
    args = [shutil.which("bwrap") or "bwrap", "--die-with-parent", "--new-session", "--unshare-all",
            "--cap-drop", "ALL", "--dev", "/dev", "--proc", "/proc", "--size", str(TMP_BYTES), "--tmpfs", "/tmp",
            "--ro-bind", "/usr", "/usr"]
    for top in _TOP_LEVEL:
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for path in [*_ETC, *map(str, _readonly_paths(extra))]:
        if os.path.exists(path):
            args += ["--ro-bind", path, path]
    args += _blocked_mounts(blocked, runtime_dir)
    # In the PID namespace the kernel's parent is bwrap's init (pid 1), which ipykernel's parent
    # poller reads as "the grader has exited"; --die-with-parent does that job instead.
    return args + ["--bind", str(runtime_dir), str(runtime_dir), "--chdir", str(workdir),
                   "--unsetenv", "JPY_PARENT_PID"]


@dataclass(frozen=True)
class Sandbox:
    """An isolation level, the resource limits and the blocked modules of a grading run."""

    level: str
    memory_mb: int = DEFAULT_MEMORY_MB
    file_mb: int = DEFAULT_FILE_MB
    extra_readonly: tuple[Path, ...] = ()
    blocked: tuple[str, ...] = ()

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self.level]

    def wrap(self, command: Sequence[str], *, runtime_dir: Path, workdir: Path) -> list[str]:
        """``command`` run under the resource limits and this isolation level.

        ``runtime_dir`` (which contains ``workdir``) is the only writable, visible folder under bwrap.
        """
        limits = [sys.executable, "-m", "labkit.grading.limits", "--memory-mb", str(self.memory_mb),
                  "--file-mb", str(self.file_mb), "--max-procs", str(procs_allowance()), "--"]
        return limits + _bwrap_prefix(runtime_dir, workdir, self.extra_readonly, self.blocked) + list(command)


@lru_cache(maxsize=None)
def level_works(level: str) -> bool:
    """Whether a Python process starts under ``level`` on this machine (probed once per process)."""
    if shutil.which("bwrap") is None:
        return False
    with tempfile.TemporaryDirectory(prefix="labkit-probe-") as tmp:
        probe = Sandbox(level, memory_mb=2048).wrap([sys.executable, "-c", "import labkit"],
                                                    runtime_dir=Path(tmp), workdir=Path(tmp))
        try:
            return subprocess.run(probe, capture_output=True, timeout=60, cwd=tmp).returncode == 0
        except (OSError, subprocess.SubprocessError):
            return False


def resolve_level(requested: str = "bwrap") -> str:
    """``requested`` if it works here; ``ValueError`` with what to do otherwise. Never falls back."""
    if requested not in LEVELS:
        raise ValueError(f"isolation must be one of {', '.join(LEVELS)}, got {requested!r}")
    if not level_works(requested):
        raise ValueError(MISSING_BWRAP)
    return requested
