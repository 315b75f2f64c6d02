"""One sandboxed IPython kernel, driven cell by cell through jupyter_client.

Why not ``nbclient.NotebookClient``: after a cell timeout it interrupts the kernel but leaves the
interrupted request's messages in flight, and the outputs of the following cells get lost. Here a
timed-out cell is interrupted and its messages are drained before the next cell runs; a kernel
that ignores the interrupt is reported ``hung`` and one that exits is reported ``dead``.

The kernel talks over ZeroMQ ``ipc`` sockets (files in the run's folder), not TCP, so it works
inside a network namespace; interrupts are sent as messages (``interrupt_mode: message``) because
a signal to the sandbox's process group would kill bubblewrap rather than interrupt Python.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Mapping

from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager
from nbformat import NotebookNode
from nbformat.v4 import output_from_msg

from labkit.errors import LabkitError
from labkit.grading.sandbox import Sandbox

KERNEL_NAME = "labkit-grading"
MAX_OUTPUTS = 200        # outputs kept per cell, errors always (an endless print loop must not fill memory)
MAX_TEXT = 20_000        # characters kept per text output
_OUTPUT_TYPES = ("stream", "display_data", "execute_result", "error")


class KernelStartError(LabkitError):
    """The grading kernel did not start (or did not answer in time)."""


@dataclass
class ExecResult:
    """What one execution did: ``ok``, ``error``, ``timeout`` (interrupted in time), ``hung``
    (did not react to the interrupt) or ``dead`` (the kernel process exited)."""

    status: str
    outputs: list[NotebookNode] = field(default_factory=list)
    seconds: float = 0.0


def _clip(output: NotebookNode) -> NotebookNode:
    if output.get("output_type") == "stream" and len(output.get("text", "")) > MAX_TEXT:
        output["text"] = output["text"][:MAX_TEXT] + "\n[... output truncated by the grader]\n"
    return output


class KernelSession:
    """A kernel started with ``sandbox`` in ``workdir`` (inside ``runtime_dir``); use it as a context manager."""

    def __init__(self, sandbox: Sandbox, *, runtime_dir: Path, workdir: Path, env: Mapping[str, str],
                 startup_timeout: float = 60.0):
        self.runtime_dir, self.workdir, self.env = runtime_dir, workdir, dict(env)
        self.startup_timeout = startup_timeout
        spec_dir = runtime_dir / "kernelspec" / KERNEL_NAME
        spec_dir.mkdir(parents=True, exist_ok=True)
        argv = sandbox.wrap([sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                            runtime_dir=runtime_dir, workdir=workdir)
        (spec_dir / "kernel.json").write_text(json.dumps(
            {"argv": argv, "display_name": "labkit grading", "language": "python", "interrupt_mode": "message"}))
        self.km = KernelManager(kernel_name=KERNEL_NAME, transport="ipc", ip=str(runtime_dir / "ipc"),
                                connection_file=str(runtime_dir / "connection.json"),
                                kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec_dir.parent)]))
        self.kc = None

    def __enter__(self) -> "KernelSession":
        try:
            self.km.start_kernel(cwd=str(self.workdir), env=self.env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.kc = self.km.client()
            self.kc.start_channels()
            self.kc.wait_for_ready(timeout=self.startup_timeout)
        except Exception as exc:  # any failure to start is one outcome for the grader: no kernel
            self.__exit__()
            raise KernelStartError(f"the grading kernel did not start: {type(exc).__name__}: {exc}") from None
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.kc is not None:
            self.kc.stop_channels()
            self.kc = None
        try:
            if self.km.has_kernel:
                self.km.shutdown_kernel(now=True)
        finally:
            self.km.cleanup_resources()

    def execute(self, code: str, *, timeout: float, grace: float = 5.0) -> ExecResult:
        """Run ``code``; interrupt after ``timeout`` seconds and give up ``grace`` seconds later."""
        start = time.monotonic()
        msg_id = self.kc.execute(code, store_history=True, stop_on_error=False, allow_stdin=False)
        outputs: list[NotebookNode] = []
        deadline, interrupted = start + timeout, False
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                if interrupted:
                    return ExecResult("hung", outputs, time.monotonic() - start)
                self.km.interrupt_kernel()
                deadline, interrupted = time.monotonic() + grace, True
                continue
            try:
                msg = self.kc.get_iopub_msg(timeout=min(left, 0.5))
            except Empty:
                if not self.km.is_alive():
                    return ExecResult("dead", outputs, time.monotonic() - start)
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "error" or (kind in _OUTPUT_TYPES and len(outputs) < MAX_OUTPUTS):
                outputs.append(_clip(output_from_msg(msg)))
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                break
        status = self._reply_status(msg_id, deadline=time.monotonic() + grace)
        return ExecResult("timeout" if interrupted else status, outputs, time.monotonic() - start)

    def _reply_status(self, msg_id: str, *, deadline: float) -> str:
        while (left := deadline - time.monotonic()) > 0:
            try:
                reply = self.kc.get_shell_msg(timeout=left)
            except Empty:
                break
            if reply["parent_header"].get("msg_id") == msg_id:
                return "ok" if reply["content"]["status"] == "ok" else "error"
        return "hung"
