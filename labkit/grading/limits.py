"""``python -m labkit.grading.limits --memory-mb M --file-mb F -- CMD ...``: set limits, then exec CMD.

The grading kernel is started through this wrapper, so the limits hold from the kernel's first
instruction and bind everything it starts. Soft and hard limits are set to the same value, so
student code cannot raise them again (that needs ``CAP_SYS_RESOURCE``, which the ``bwrap`` level
drops even when the grader runs as root):

* ``RLIMIT_AS`` (address space) = ``--memory-mb``: an allocation beyond it fails (``MemoryError``
  in Python, or the kernel dies), which fails the cell instead of the grading machine. It counts
  virtual memory: importing torch and OpenCV alone maps about 3.6 GB.
* ``RLIMIT_FSIZE`` = ``--file-mb``: no single file larger than that.
* ``RLIMIT_CORE`` = 0: a crashing kernel leaves no core dump behind.
* ``RLIMIT_NPROC`` = ``--max-procs`` (when given): a fork bomb stops there. The limit counts every
  process and thread of the user on the machine, so the grader passes the current count plus a
  margin (:func:`procs_allowance`).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
from typing import Sequence

#: Defaults of a grading run: address space (MiB; torch + OpenCV alone map ~3.6 GB), largest file
#: (MiB) and the wall-clock seconds a cell may run before it is interrupted and fails.
DEFAULT_MEMORY_MB = 6144
DEFAULT_FILE_MB = 512
DEFAULT_TIMEOUT_PER_CELL = 120.0


#: Processes and threads a sandbox may add to what its user already runs.
PROCS_MARGIN = 512


def procs_allowance(margin: int = PROCS_MARGIN) -> int:
    """The current user's processes and threads on this machine plus ``margin`` (the RLIMIT_NPROC to set)."""
    uid, count = os.getuid(), 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry.name}/task"))
            except OSError:  # the process ended meanwhile
                continue
    return count + margin


def apply_limits(memory_mb: int, file_mb: int, max_procs: int | None = None) -> None:
    """Set the limits above on the current process (inherited by what it executes)."""
    limits = [(resource.RLIMIT_AS, memory_mb << 20), (resource.RLIMIT_FSIZE, file_mb << 20), (resource.RLIMIT_CORE, 0)]
    if max_procs is not None:
        limits.append((resource.RLIMIT_NPROC, max_procs))
    for which, value in limits:
        resource.setrlimit(which, (value, value))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("--file-mb", type=int, required=True)
    parser.add_argument("--max-procs", type=int)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    apply_limits(args.memory_mb, args.file_mb, args.max_procs)
    os.execvp(command[0], command)


if __name__ == "__main__":  # pragma: no cover - exercised through the grading kernel
    main(sys.argv[1:])
