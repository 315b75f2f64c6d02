"""Start ``labkit serve`` (or ``labkit demo``) as a real server process on a loopback port and
wait until it answers: what the service tests, the browser test and ``benchmarks/serve.py``
talk to over real HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from labkit.errors import LabkitError

#: The health endpoint of each command: the service's own, Streamlit's.
HEALTH = {"serve": "/healthz", "demo": "/_stcore/health"}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``with ServerProcess(config) as server:`` runs ``python -m labkit serve`` (``command="demo"``:
    ``labkit demo``) on ``127.0.0.1:<free port>``, waits for its health endpoint (``timeout_s``),
    and stops it on exit.
    ``server.url`` is the base URL; the server's stderr goes to ``log`` (default: a pipe that
    is read when start-up fails)."""

    def __init__(self, config: str | Path, *, command: str = "serve", host: str = "127.0.0.1",
                 timeout_s: float = 120.0, log: Path | None = None):
        if command not in HEALTH:
            raise ValueError(f"command must be one of {sorted(HEALTH)}, got {command!r}")
        self.config, self.command, self.host, self.timeout_s, self.log = Path(config), command, host, timeout_s, log
        self.port = free_port(host)
        self.url = f"http://{host}:{self.port}"
        self._proc: subprocess.Popen | None = None
        self._log_file = None

    def __enter__(self) -> "ServerProcess":
        import httpx

        cmd = [sys.executable, "-m", "labkit", self.command, "--config", str(self.config), "--host", self.host,
               "--port", str(self.port)]
        self._log_file = open(self.log, "w") if self.log is not None else subprocess.PIPE  # noqa: SIM115
        self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self._log_file, env=dict(os.environ))
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self.log is None else self.log.read_text()
                raise LabkitError(f"labkit {self.command} exited with code {self._proc.returncode}: {err[-2000:]}")
            try:
                if httpx.get(self.url + HEALTH[self.command], timeout=2.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        self.__exit__()
        raise LabkitError(f"labkit {self.command} did not answer on {self.url} within {self.timeout_s} s")

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._log_file not in (None, subprocess.PIPE):
            self._log_file.close()
        elif self._proc is not None and self._proc.stderr is not None:
            self._proc.stderr.close()
