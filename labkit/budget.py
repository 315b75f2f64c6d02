"""Compute budgets: the same notebooks run at full budget in ``make course`` and at a tiny one in
the test suite.

``LABKIT_BUDGET=full`` (the default) is what learners get; ``LABKIT_BUDGET=ci`` is what
``make test`` uses to prove that every notebook executes top to bottom with the real training code,
in seconds instead of minutes. Notebooks pick their sizes with :func:`pick`, and the numbers they
log always come from the run that actually happened (the budget is logged with them).
"""

from __future__ import annotations

import os
from typing import Callable, TypeVar

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


#: Why a full-budget check does not bind under the ``ci`` budget (printed when it is skipped).
CI_SKIP_REASON = "the ci budget trains and evaluates too little for this outcome to hold"


def full_check(name: str, condition: Callable[[], bool], message: Callable[[], str] | str, *,
               reason: str = CI_SKIP_REASON) -> bool:
    """A notebook check that binds at the full budget and is skipped, visibly, under ``ci``.

    At the full budget ``condition()`` is evaluated; when false, ``AssertionError`` is raised with
    ``"<name>: <message>"`` (``message`` may be a function, called only then, so it can format
    values that exist only after the run); when true, ``check passed: <name>`` is printed.
    Under ``ci`` neither function is called and ``skipped at the ci budget: <name> (<reason>)``
    is printed, so nothing switches off silently. Returns whether the check ran.
    """
    if current() != "full":
        print(f"skipped at the ci budget: {name} ({reason})")
        return False
    if not condition():
        raise AssertionError(f"{name}: {message() if callable(message) else message}")
    print(f"check passed: {name}")
    return True
