"""What a lesson logs and shows about its base detector (labkit.detect.base.log_base_model and
plot_ap_vs_minutes), on a stand-in model record written here."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from labkit.artifacts import read_metrics
from labkit.detect.base import CURVE, log_base_model, plot_ap_vs_minutes
from labkit.errors import DataError

INFO = {"epochs": 12, "train_minutes": 7.25, "device": "cpu", "steps": 360, "metrics": {"AP50": 0.5, "AP50_95": 0.25}}


def _model(folder: Path) -> SimpleNamespace:
    return SimpleNamespace(name="detect-x", source="cache", weights=folder / "weights.pt", info=INFO,
                           metrics=INFO["metrics"])


def test_log_base_model_logs_both_records_and_describes_the_model(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LABKIT_ARTIFACTS", str(tmp_path))
    monkeypatch.setenv("LABKIT_BUDGET", "ci")
    line = log_base_model(_model(tmp_path), "chX", prefix="l9")
    assert line == "base detector detect-x (cache): 12 epochs, 7.2 min on cpu; val AP50 0.500, AP50-95 0.250"
    logged = read_metrics(tmp_path)
    assert logged["chX"] == {"l9_budget": "ci", "l9_base_ap50": 0.5, "l9_base_ap50_95": 0.25, "l9_base_epochs": 12}
    assert logged["detection"]["base_steps"] == 360 and logged["detection"]["base_train_minutes"] == 7.25
    assert logged["detection"]["base_model"] == "detect-x" and logged["detection"]["budget"] == "ci"


def test_plot_ap_vs_minutes_reads_the_curve_beside_the_weights(tmp_path) -> None:
    points = [{"epoch": 2, "minutes": 1.0, "AP50": 0.1, "AP50_95": 0.05},
              {"epoch": 4, "minutes": 2.5, "AP50": 0.3, "AP50_95": 0.12}]
    (tmp_path / CURVE).write_text(json.dumps(points))
    curve, fig = plot_ap_vs_minutes(_model(tmp_path), path=tmp_path / "out" / "curve.png")
    assert curve["minutes"].tolist() == [1.0, 2.5] and curve["AP50"].tolist() == [0.1, 0.3]
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == ["AP50", "AP50-95"]
    assert list(ax.lines[1].get_ydata()) == [0.05, 0.12]
    assert ax.get_xlabel() == "training minutes on cpu"
    assert (tmp_path / "out" / "curve.png").stat().st_size > 0


def test_plot_ap_vs_minutes_names_a_damaged_curve_file(tmp_path) -> None:
    (tmp_path / CURVE).write_text("{not json")
    with pytest.raises(DataError, match=CURVE):
        plot_ap_vs_minutes(_model(tmp_path))
    with pytest.raises(DataError, match="cannot read"):
        plot_ap_vs_minutes(_model(tmp_path / "missing"))
