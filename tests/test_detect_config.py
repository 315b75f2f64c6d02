"""The detection run config: YAML loading, validation with clear errors, Ultralytics arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from labkit.detect.config import DetectConfig
from labkit.errors import DataError

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["detect_base.yaml", "detect_yolo11n.yaml", "detect_tiny.yaml"])
def test_shipped_configs_load(name: str) -> None:
    cfg = DetectConfig.load(REPO / "configs" / name)
    assert cfg.model.endswith(".yaml") and cfg.imgsz % 32 == 0
    assert DetectConfig.from_mapping(cfg.to_dict()) == cfg


def test_base_config_is_an_epoch_budget_at_320() -> None:
    cfg = DetectConfig.load(REPO / "configs" / "detect_base.yaml")
    assert (cfg.dataset_size, cfg.imgsz, cfg.epochs) == ("default", 320, 8)


def test_a_wall_clock_budget_is_refused(tmp_path: Path) -> None:
    """Budgets are epochs: ``time_minutes`` is no longer a field, and Ultralytics' ``time`` may not
    come in through ``overrides`` either (the weights would depend on the machine's load)."""
    path = tmp_path / "timed.yaml"
    path.write_text("epochs: 200\ntime_minutes: 10\n")
    with pytest.raises(DataError, match="unknown config keys \\['time_minutes'\\]"):
        DetectConfig.load(path)
    with pytest.raises(DataError, match="overrides may not set \\['time'\\]"):
        DetectConfig(overrides={"time": 0.1})


def test_ultralytics_args_are_offline_safe(tmp_path: Path) -> None:
    cfg = DetectConfig(epochs=6, device="cpu", overrides={"lr0": 0.02})
    args = cfg.ultralytics_args(data_yaml=tmp_path / "data.yaml", run_dir=tmp_path / "runs" / "a")
    assert args["plots"] is False and args["amp"] is False and args["device"] == "cpu"
    assert "time" not in args and args["epochs"] == 6 and args["lr0"] == 0.02
    assert (args["project"], args["name"]) == (str(tmp_path / "runs"), "a")


@pytest.mark.parametrize("text, message", [
    ("imgsz: 100\n", "multiple of 32"),
    ("epochs: 3\nlearning_rate: 0.1\n", "unknown config keys \\['learning_rate'\\]"),
    ("overrides: {amp: true}\n", "overrides may not set \\['amp'\\]"),
    ("device: tpu\n", "device must be"),
    ("dataset_size: huge\n", "dataset_size"),
    ("- a\n- b\n", "must be a mapping"),
    ("epochs: [1\n", "not valid YAML"),
])
def test_bad_configs_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as info:
        DetectConfig.load(path)
    assert str(path) in str(info.value)
