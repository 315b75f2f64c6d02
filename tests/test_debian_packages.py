"""The rule for tests that need a Debian package: skip with the reason outside CI, fail in CI."""

from __future__ import annotations

import pytest

from conftest import require_debian_package


def test_present_package_neither_skips_nor_fails(monkeypatch):
    monkeypatch.setenv("CI", "true")
    require_debian_package("opencv-doc", True, "vtest.avi")


def test_missing_package_skips_outside_ci_with_the_reason(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"opencv-doc is not installed \(vtest.avi\).*make system-deps"):
        require_debian_package("opencv-doc", False, "vtest.avi")


@pytest.mark.parametrize("value", ["true", "1", "TRUE"])
def test_missing_package_fails_in_ci(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="bubblewrap is not installed.*CI must have it"):
        require_debian_package("bubblewrap", False, "the grading sandbox")
