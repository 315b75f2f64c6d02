"""Shared fixtures: where ../shared lives (and a skip when it is absent); a network that refuses."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


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
