"""Tracker configs: the default file equals the dataclass defaults; presets load; bad keys fail."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from labkit.configfile import read_yaml_mapping
from labkit.errors import DataError
from labkit.track.config import TrackConfig, load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_default_yaml_is_the_dataclass_default():
    values = read_yaml_mapping(CONFIGS / "track_default.yaml")
    assert set(values) == {f.name for f in dataclasses.fields(TrackConfig)}  # every knob written out
    assert load_config(CONFIGS / "track_default.yaml") == TrackConfig() == load_config(None)


@pytest.mark.parametrize("name", ["track_sort.yaml", "track_bytetrack.yaml", "track_deepsort.yaml"])
def test_presets_load(name: str):
    config = load_config(CONFIGS / name)
    assert config != TrackConfig()


def test_sort_preset_has_no_second_pass_and_deepsort_gates():
    assert load_config(CONFIGS / "track_sort.yaml").low_score_pass is False
    deepsort = load_config(CONFIGS / "track_deepsort.yaml")
    assert deepsort.gate_probability == 0.95 and deepsort.appearance_weight > 0


def test_unknown_key_and_bad_value_name_the_file(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_cots: 0.5\n")
    with pytest.raises(DataError, match="bad.yaml.*unknown config keys"):
        load_config(bad)
    bad.write_text("min_hits: 0\n")
    with pytest.raises(DataError, match="bad.yaml.*min_hits"):
        load_config(bad)
    bad.write_text("appearance_weight: 0.5\n")
    with pytest.raises(DataError, match="needs appearance"):
        load_config(bad)
