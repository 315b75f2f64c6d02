"""Shared fixtures: where ../shared lives, and a skip when it is absent."""

from __future__ import annotations

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
