"""Tracker configs: the default file equals the dataclass defaults; presets load; bad keys fail."""

from __future__ import annotations

import dataclasses
import re
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


# Boundaries of every knob, by hand from the documented ranges: the edges are accepted, a step
# past them is refused with a message naming the knob and its range. ``fix`` keeps the other
# cross-field rules (low_score <= high_score, some weight > 0) satisfied at the edge.
RANGES = [
    ("process_noise_position", 1e-6, 10.0, {}),
    ("process_noise_velocity", 1e-6, 10.0, {}),
    ("measurement_noise", 1e-6, 10.0, {}),
    ("high_score", 0.0, 1.0, {"low_score": 0.0}),
    ("low_score", 0.0, 1.0, {"high_score": 1.0}),
    ("new_track_score", 0.0, 1.0, {}),
    ("gate_min_iou", 0.0, 1.0, {}),
    ("ema_momentum", 0.0, 1.0, {}),
    ("gate_probability", 0.0, 0.999999, {}),
    ("iou_weight", 0.0, 100.0, {"centre_weight": 1.0}),
    ("centre_weight", 0.0, 100.0, {}),
    ("appearance_weight", 0.0, 100.0, {"appearance": "histogram"}),
    ("max_cost", 0.0, 2.0, {}),
    ("low_score_max_cost", 0.0, 1.0, {}),
]


@pytest.mark.parametrize(("name", "low", "high", "fix"), RANGES, ids=[r[0] for r in RANGES])
def test_number_ranges_are_inclusive_and_refused_just_outside(name, low, high, fix):
    assert getattr(TrackConfig(**fix, **{name: low}), name) == low
    assert getattr(TrackConfig(**fix, **{name: high}), name) == high
    message = f"'{name}' must be a number in [{low}, {high}], got "
    step = 1e-7 if low == 1e-6 else 1e-9
    for bad in (low - step, high + step):
        with pytest.raises(DataError, match=re.escape(message + repr(bad))):
            TrackConfig(**fix, **{name: bad})
    for bad in (True, "0.5", None):  # a YAML boolean / string / empty value is not a number
        with pytest.raises(DataError, match=re.escape(message + repr(bad))):
            TrackConfig(**fix, **{name: bad})


def test_an_integer_counts_as_a_number():
    assert TrackConfig(max_cost=1).max_cost == 1  # YAML "max_cost: 1" is an int


@pytest.mark.parametrize(("name", "low"), [("min_hits", 1), ("max_misses", 0), ("gallery_size", 1)])
def test_integer_knobs_have_a_lower_bound_and_refuse_floats_and_booleans(name, low):
    assert getattr(TrackConfig(**{name: low}), name) == low
    for bad in (low - 1, float(low), True if low == 1 else False, "3"):
        with pytest.raises(DataError, match=re.escape(f"'{name}' must be an integer >= {low}, got {bad!r}")):
            TrackConfig(**{name: bad})


@pytest.mark.parametrize("name", ["low_score_pass", "class_aware", "output_tentative_history", "score_fusion",
                                  "confirmed_first"])
def test_flags_take_only_booleans(name):
    for value in (True, False):
        assert getattr(TrackConfig(**{name: value}), name) is value
    for bad in (1, 0, "yes"):
        with pytest.raises(DataError, match=re.escape(f"'{name}' must be true or false, got {bad!r}")):
            TrackConfig(**{name: bad})


@pytest.mark.parametrize(("name", "choices"), [
    ("camera_motion", ["none", "orb", "ecc"]),
    ("appearance", ["none", "histogram", "reid"]),
    ("gallery", ["ema", "last_k"]),
    ("output_box", ["detection", "filtered"]),
])
def test_choices_are_exactly_the_documented_ones(name, choices):
    for value in choices:
        extra = {"reid_weights": "w.pt"} if value == "reid" else {}
        assert getattr(TrackConfig(**extra, **{name: value}), name) == value
    for bad in ("NONE", "kalman", ""):
        with pytest.raises(DataError, match=re.escape(f"'{name}' must be one of {choices}, got {bad!r}")):
            TrackConfig(**{name: bad})


def test_cross_field_rules():
    # the weights: all zero is refused, any single positive weight is enough
    with pytest.raises(DataError, match=re.escape("at least one of iou_weight, centre_weight, appearance_weight must be > 0")):
        TrackConfig(iou_weight=0.0)
    assert TrackConfig(iou_weight=0.0, centre_weight=0.001).centre_weight == 0.001
    assert TrackConfig(iou_weight=0.0, appearance_weight=0.001, appearance="histogram").appearance_weight == 0.001
    # low_score may equal high_score, not exceed it
    assert TrackConfig(low_score=0.4, high_score=0.4).low_score == 0.4
    with pytest.raises(DataError, match=re.escape("low_score 0.41 must not exceed high_score 0.4")):
        TrackConfig(low_score=0.41, high_score=0.4)
    # appearance weight needs an appearance model; 0 weight with none is fine
    with pytest.raises(DataError, match=re.escape("appearance_weight > 0 needs appearance: histogram or reid")):
        TrackConfig(appearance_weight=0.001)
    assert TrackConfig(appearance_weight=0.0, appearance="none").appearance == "none"
    assert TrackConfig(appearance_weight=0.5, appearance="reid", reid_weights="w.pt").appearance == "reid"
    # reid needs a weights path (a string)
    with pytest.raises(DataError, match=re.escape("appearance: reid needs reid_weights (the path of the course ReID weights)")):
        TrackConfig(appearance="reid")
    with pytest.raises(DataError, match=re.escape("'reid_weights' must be a path string, got 3")):
        TrackConfig(reid_weights=3)
    assert TrackConfig(appearance="histogram").reid_weights == ""


def test_load_config_passes_objects_and_mappings_through(tmp_path: Path):
    config = TrackConfig(min_hits=5)
    assert load_config(config) is config
    assert load_config({"min_hits": 5}) == config
    path = tmp_path / "c.yaml"
    path.write_text("min_hits: 5\nmax_misses: 1.5\n")
    with pytest.raises(DataError, match=re.escape(f"{path}: 'max_misses' must be an integer >= 0, got 1.5")):
        load_config(path)
