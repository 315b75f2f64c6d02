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


def test_full_check_binds_at_full_budget(monkeypatch, capsys):
    monkeypatch.setenv("LABKIT_BUDGET", "full")
    assert budget.full_check("loss falls", lambda: 0.7 < 1.0, "never formatted") is True
    assert capsys.readouterr().out == "check passed: loss falls\n"
    with pytest.raises(AssertionError, match=r"^loss falls: expected ratio < 1, got 1\.01$"):
        budget.full_check("loss falls", lambda: 1.01 < 1.0, lambda: f"expected ratio < 1, got {1.01}")


def test_full_check_is_skipped_visibly_under_ci(monkeypatch, capsys):
    monkeypatch.setenv("LABKIT_BUDGET", "ci")
    called = []
    ran = budget.full_check("star IoU", lambda: called.append(1) or False, lambda: called.append(2) or "x",
                            reason="one epoch on 8 images")
    assert ran is False and called == []  # neither the condition nor the message is evaluated
    assert capsys.readouterr().out == "skipped at the ci budget: star IoU (one epoch on 8 images)\n"
    budget.full_check("default reason", lambda: False, "x")
    assert budget.CI_SKIP_REASON in capsys.readouterr().out
