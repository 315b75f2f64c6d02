"""Monitoring: features on hand-made frames, PSI and KS on hand-worked samples, drift alarms, the gate."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from labkit.errors import DataError
from labkit.robust.monitor import (DriftMonitor, QualityGate, blockiness, first_alarm, frame_record, input_features, ks,
                                   output_features, psi, psi_from_counts, read_jsonl, write_jsonl)


def test_psi_on_hand_made_histograms() -> None:
    # shares .25 each vs .1 .2 .3 .4: sum (q - p) ln(q / p)
    expected = (-0.15 * math.log(0.4) - 0.05 * math.log(0.8) + 0.05 * math.log(1.2) + 0.15 * math.log(1.6))
    assert psi_from_counts([25, 25, 25, 25], [10, 20, 30, 40]) == pytest.approx(expected)
    assert expected == pytest.approx(0.228217, abs=1e-6)
    assert psi_from_counts([3, 3], [30, 30]) == pytest.approx(0.0)  # shares, not counts, matter
    with pytest.raises(ValueError, match="same bins"):
        psi_from_counts([1, 2], [1, 2, 3])


def test_psi_on_samples_uses_reference_deciles_and_smooths_empty_bins() -> None:
    reference = np.arange(10.0)  # deciles 0.9, 1.8, ... 8.1: one value per bin
    assert psi(reference, reference) == pytest.approx(0.0)
    current = [0, 0, 0, 0, 0, 9, 9, 9, 9, 9]  # half in the first bin, half in the last, 8 bins empty
    # + 0.5 per bin: reference 1.5 / 15 = 0.1 each; current 5.5 / 15 twice and 0.5 / 15 eight times
    p, q_full, q_empty = 0.1, 5.5 / 15, 0.5 / 15
    expected = 2 * (q_full - p) * math.log(q_full / p) + 8 * (q_empty - p) * math.log(q_empty / p)
    assert psi(reference, current) == pytest.approx(expected)
    eps = 1e-4  # without smoothing, the empty bins are floored at eps
    unsmoothed = 2 * (0.5 - 0.1) * math.log(0.5 / 0.1) + 8 * (eps - 0.1) * math.log(eps / 0.1)
    assert psi(reference, current, pseudo_count=0.0) == pytest.approx(unsmoothed)


def test_ks_statistic_hand_worked() -> None:
    d, p = ks([1, 2, 3, 4], [3, 4, 5, 6])  # ECDF gap 0.5 at x = 2 and at x = 4
    assert d == pytest.approx(0.5) and 0 < p <= 1
    d_same, p_same = ks([1, 2, 3], [1, 2, 3])
    assert d_same == 0.0 and p_same == pytest.approx(1.0)


def test_input_features_on_hand_made_frames() -> None:
    half = np.zeros((40, 40, 3), np.uint8)
    half[:, 20:] = 200
    f = input_features(half)
    assert f["brightness"] == pytest.approx(100.0, abs=0.5) and f["contrast"] == pytest.approx(100.0, abs=0.5)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
    sharp = input_features(noise)["blur"]
    assert input_features(cv2.GaussianBlur(noise, (0, 0), 2))["blur"] < 0.1 * sharp
    assert blockiness(noise[..., 0].astype(float)) == pytest.approx(1.0, abs=0.05)  # no grid in white noise
    assert blockiness(np.full((16, 16), 7.0)) == 1.0  # flat: (0 + 1) / (0 + 1)
    steps = np.kron(np.arange(4.0)[None, :] * 10, np.ones((16, 8)))  # 8-px wide flat columns, steps of 10
    # 16 x 32: across the borders, 16 rows x 3 column steps of 10 and 1 row step x 32 columns of 0
    # -> mean 480 / 80 = 6; every other step is 0 -> (6 + 1) / (0 + 1)
    assert blockiness(steps) == pytest.approx(7.0)
    smooth = cv2.GaussianBlur(noise, (0, 0), 3)
    ok, buf = cv2.imencode(".jpg", smooth, [cv2.IMWRITE_JPEG_QUALITY, 5])
    assert ok
    assert input_features(cv2.imdecode(buf, cv2.IMREAD_COLOR))["blockiness"] > 1.5 * input_features(smooth)["blockiness"]


def test_output_features_hand_counted() -> None:
    out = output_features([0.05, 0.95, 1.0, 0.5])
    assert out["detections"] == 4 and out["mean_score"] == pytest.approx(0.625)
    assert out["score_hist"] == [1, 0, 0, 0, 0, 1, 0, 0, 0, 2]  # 1.0 goes to the last bin
    assert output_features([]) == {"detections": 0, "mean_score": None, "score_hist": [0] * 10}


def test_jsonl_round_trip_and_bad_line(tmp_path) -> None:
    frame = np.full((6, 6, 3), 90, np.uint8)  # smaller than two 8x8 blocks: blockiness undefined -> null
    path = write_jsonl(tmp_path / "f.jsonl", [frame_record(0, frame, [0.4]), frame_record(1, frame)])
    back = read_jsonl(path)
    assert back[0]["frame"] == 0 and back[0]["detections"] == 1 and back[0]["blockiness"] is None
    assert "detections" not in back[1]
    path.write_text(path.read_text() + "{oops\n")
    with pytest.raises(DataError, match=r"f.jsonl: record line 3"):
        read_jsonl(path)


def test_drift_alarm_fires_after_dusk_and_not_before() -> None:
    rng = np.random.default_rng(0)
    reference = {"brightness": rng.normal(120, 5, 300)}
    day = [{"frame": k, "brightness": v} for k, v in enumerate(rng.normal(120, 5, 150))]
    dusk = [{"frame": 150 + k, "brightness": v} for k, v in enumerate(rng.normal(100, 5, 100))]
    table = DriftMonitor(reference, window=50).run(day + dusk)
    assert not table["alarm"].iloc[:150].any()  # no false alarm on the calm stretch
    assert table["brightness_psi"].iloc[:49].isna().all()  # nothing until the window is full
    frame = first_alarm(table)
    assert frame is not None and 150 < frame < 200  # fires before the window is all dusk


def test_drift_monitor_needs_the_feature() -> None:
    mon = DriftMonitor({"blur": [1.0, 2.0, 3.0]}, window=2)
    with pytest.raises(DataError, match="lacks the monitored feature 'blur'"):
        mon.update({"frame": 7, "brightness": 3.0})


def test_quality_gate_tukey_fences_hand_worked() -> None:
    # 40..60: Q1 45, Q3 55, IQR 10 -> fences 45 - 15 = 30 and 55 + 15 = 70
    records = [{"blur": float(v), "brightness": float(v), "contrast": float(v), "blockiness": float(v)}
               for v in range(40, 61)]
    gate = QualityGate.from_reference(records)
    assert gate.limits["blur"] == (pytest.approx(30.0), None)
    assert gate.limits["brightness"] == (pytest.approx(30.0), pytest.approx(70.0))
    assert gate.limits["blockiness"] == (None, pytest.approx(70.0))
    ok = {"blur": 30.0, "brightness": 70.0, "contrast": 31.0, "blockiness": 70.0}  # on the fences: fine
    assert gate.check(ok) == []
    assert gate.check({**ok, "brightness": 29.9, "blockiness": 70.1}) == ["brightness", "blockiness"]
    assert gate.check({**ok, "blur": None}) == []  # an undefined feature cannot fire


# --- evidence before an alarm (labkit.robust.monitor.first_sustained) -------------------------------

from labkit.robust.monitor import first_sustained  # noqa: E402


@pytest.mark.parametrize("flags, frames, expected", [
    ([False, True, True, False, True, True, True], 3, 6),   # the first run of 2 is too short
    ([True, True, True], 3, 2),                              # exactly N at the end
    ([True, False, True], 1, 0),                             # N = 1: the first flag
    ([True, True], 3, None),                                 # never long enough
    ([], 2, None),                                           # empty stream
])
def test_first_sustained(flags, frames, expected):
    assert first_sustained(flags, frames) == expected


def test_first_sustained_needs_a_positive_count():
    with pytest.raises(ValueError, match="frames must be >= 1"):
        first_sustained([True], 0)
