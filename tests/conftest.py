"""Shared fixtures: where ../shared lives (and a skip when it is absent); a network that refuses;
the rule for tests that need a Debian package (fail in CI, skip with the reason elsewhere)."""

from __future__ import annotations

import os
import importlib.util
import socket
from types import ModuleType
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def in_ci() -> bool:
    """Whether this run is CI's (``.ci/run`` runs with ``CI=true``)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require_debian_package(package: str, present: bool, needed_for: str) -> None:
    """Skip a test whose Debian ``package`` is missing, or fail it in CI.

    CI installs the packages with ``make system-deps`` (``.ci/run`` stops when that fails), so a
    missing one there means the install step broke and the test must not vanish into a skip.
    Outside CI (a laptop without root) the test skips and says what to install.
    """
    if present:
        return
    message = (f"Debian package {package} is not installed ({needed_for}); "
               f"install it with `make system-deps` (apt-get install -y {package})")
    if in_ci():
        pytest.fail(f"{message}. CI must have it: did `make system-deps` fail?", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; tests using it skip (with the reason) when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real-data copies not found at {SHARED_DATA} (../shared is only beside CI and dev checkouts)")
    return SHARED_DATA


@pytest.fixture
def network_attempts(monkeypatch: pytest.MonkeyPatch) -> list:
    """Refuse and record every DNS lookup or socket connection (training must be offline)."""
    attempts: list = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network access is disabled in this test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


def load_script(name: str, folder: str = "scripts") -> ModuleType:
    """``<folder>/<name>.py`` (default ``scripts/``; also ``benchmarks/``) imported as a module
    (neither folder is a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
