"""Compute budgets: the same notebooks run at full budget in ``make course`` and at a tiny one in
the test suite.

``LABKIT_BUDGET=full`` (the default) is what learners get; ``LABKIT_BUDGET=ci`` is what
``make test`` uses to prove that every notebook executes top to bottom with the real training code,
in seconds instead of minutes. Notebooks pick their sizes with :func:`pick`, and the numbers they
log always come from the run that actually happened (the budget is logged with them).
"""

from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")
BUDGETS = ("full", "ci")


def current() -> str:
    """The active budget name (``full`` unless ``LABKIT_BUDGET`` says otherwise)."""
    value = os.environ.get("LABKIT_BUDGET", "full").strip().lower() or "full"
    if value not in BUDGETS:
        raise ValueError(f"LABKIT_BUDGET must be one of {BUDGETS}, got {value!r}")
    return value


def pick(full: T, ci: T) -> T:
    """``full`` under the full budget, ``ci`` under the test budget."""
    return full if current() == "full" else ci
