import pytest

from labkit import budget


def test_pick_follows_the_environment(monkeypatch):
    monkeypatch.delenv("LABKIT_BUDGET", raising=False)
    assert budget.current() == "full" and budget.pick(10, 1) == 10
    monkeypatch.setenv("LABKIT_BUDGET", "ci")
    assert budget.pick(10, 1) == 1
    monkeypatch.setenv("LABKIT_BUDGET", "huge")
    with pytest.raises(ValueError, match="LABKIT_BUDGET"):
        budget.current()
