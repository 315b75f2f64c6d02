"""Calibration and policies: temperature / Platt fits against known truths and scikit-learn,
act/observe counts, risk-coverage and abstention on hand-worked cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labkit.metrics.calibration import expected_calibration_error
from labkit.robust.policy import (abstention_effect, ece_table, fit_platt, fit_temperature, logit, risk_coverage,
                                  two_threshold_policy)


def _overconfident(n: int, temperature: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scores sigmoid(z) of which a detection is correct with probability sigmoid(z / T)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 3.0, n)
    return 1 / (1 + np.exp(-z)), rng.random(n) < 1 / (1 + np.exp(-z / temperature))


def test_temperature_recovers_the_true_one_and_agrees_with_sklearn() -> None:
    scores, correct = _overconfident(20000, temperature=2.5)
    cal = fit_temperature(scores, correct)
    assert cal.temperature == pytest.approx(2.5, rel=0.06)
    linear_model = pytest.importorskip("sklearn.linear_model")
    lr = linear_model.LogisticRegression(fit_intercept=False, C=1e6).fit(logit(scores)[:, None], correct)
    assert cal.temperature == pytest.approx(1 / lr.coef_[0, 0], rel=1e-3)


def test_platt_agrees_with_sklearn_logistic_regression() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(0.0, 2.0, 5000)
    correct = rng.random(5000) < 1 / (1 + np.exp(-(0.5 * z - 1.0)))
    cal = fit_platt(1 / (1 + np.exp(-z)), correct)
    linear_model = pytest.importorskip("sklearn.linear_model")
    lr = linear_model.LogisticRegression(C=1e6).fit(z[:, None], correct)
    assert cal.a == pytest.approx(lr.coef_[0, 0], abs=2e-3) and cal.b == pytest.approx(lr.intercept_[0], abs=2e-3)
    assert cal.temperature is None


def test_scaling_lowers_ece_and_keeps_the_ranking() -> None:
    scores, correct = _overconfident(4000, temperature=3.0, seed=2)
    cal = fit_temperature(scores, correct)
    assert expected_calibration_error(cal(scores), correct) < 0.5 * expected_calibration_error(scores, correct)
    assert (np.argsort(cal(scores), kind="stable") == np.argsort(scores, kind="stable")).all()
    table = ece_table(cal, {"clean": (scores, correct), "shifted": _overconfident(4000, 5.0, seed=3)})
    assert table["set"].tolist() == ["clean", "shifted"]
    assert (table["ece_calibrated"] < table["ece_raw"]).all()


def test_fit_needs_both_outcomes() -> None:
    with pytest.raises(ValueError, match="both correct and wrong"):
        fit_temperature([0.2, 0.9], [True, True])
    with pytest.raises(ValueError, match="lie in"):
        fit_temperature([0.2, 1.3], [True, False])


def test_two_threshold_policy_hand_counted() -> None:
    scores = [0.95, 0.9, 0.7, 0.5, 0.5, 0.2]
    correct = [1, 0, 1, 1, 0, 0]
    out = two_threshold_policy(scores, correct, t_observe=0.5, t_act=0.9)
    assert out["act"] == {"count": 2, "tp": 1, "fp": 1}  # 0.9 sits exactly on t_act: acted on
    assert out["observe"] == {"count": 3, "tp": 2, "fp": 1}  # the two 0.5 ties on t_observe: observed
    assert out["ignore"] == {"count": 1, "tp": 0, "fp": 1}
    assert out["act_precision"] == pytest.approx(0.5) and out["coverage"] == pytest.approx(2 / 6)
    with pytest.raises(ValueError, match="t_observe <= t_act"):
        two_threshold_policy(scores, correct, 0.9, 0.5)
    empty = two_threshold_policy([], [], 0.3, 0.6)
    assert empty["act_precision"] is None and empty["coverage"] is None


def test_risk_coverage_hand_worked_with_ties() -> None:
    df = risk_coverage([0.8, 0.9, 0.3, 0.8], [False, True, False, True])
    assert df["threshold"].tolist() == [0.9, 0.8, 0.3]
    assert df["kept"].tolist() == [1, 3, 4]  # the two 0.8 are kept together
    assert df["coverage"].tolist() == pytest.approx([0.25, 0.75, 1.0])
    assert df["risk"].tolist() == pytest.approx([0.0, 1 / 3, 0.5])
    assert df.attrs["aurc"] == pytest.approx(0.25 * 0 + 0.5 / 3 + 0.25 * 0.5)


def test_abstention_effect_hand_counted() -> None:
    table = pd.DataFrame({"image_id": [1, 1, 2, 2, 3], "score": [0.9, 0.8, 0.95, 0.2, 0.7],
                          "correct": [True, False, False, True, True]})
    out = abstention_effect(table, fired={2, 9}, t_act=0.7)
    # acted: (1, .9, T), (1, .8, F), (2, .95, F), (3, .7, T); frame 2 abstains
    assert (out["acted_tp"], out["acted_fp"]) == (2, 2)
    assert (out["kept_tp"], out["kept_fp"]) == (2, 1)
    assert out["fp_saved"] == 1 and out["tp_lost"] == 0
    assert out["frames"] == 3 and out["frames_abstained"] == 1 and out["frame_coverage"] == pytest.approx(2 / 3)


class _TwoScoreDetector:
    """Every ground-truth box at score 0.9 plus one 2x2 px false box in the top-left corner at 0.7."""

    def __init__(self, dataset):
        self.truth = {r.id: r.detections for r in dataset.images}

    def predict(self, images):
        from labkit.data.annotations import Detections

        out = {}
        for k in images:
            det = self.truth[k]
            det = det[np.asarray(det.get("iscrowd", np.zeros(len(det))), dtype=int) == 0]
            xyxy = np.vstack([det.xyxy, [[0.0, 0.0, 2.0, 2.0]]])
            out[k] = Detections.from_xyxy(xyxy, np.append(det.class_id, 1), score=np.append(np.full(len(det), 0.9), 0.7))
        return out


def test_calibration_under_corruption_wires_fit_and_ece(tmp_path) -> None:
    from labkit.data.synth import generate_dataset
    from labkit.models.dataset import load_split
    from labkit.robust.policy import calibration_under_corruption

    generate_dataset(tmp_path / "d", seed=0, size="small")
    val = load_split(tmp_path / "d", "val")
    out = calibration_under_corruption(_TwoScoreDetector(val), val, [("jpeg", 2)], max_images=None)
    clean = out["outcomes"]["clean"]
    n_gt = sum(int((np.asarray(r.detections.get("iscrowd"), dtype=int) == 0).sum()) for r in val.images)
    assert int(clean["correct"].sum()) == n_gt and int((~clean["correct"]).sum()) == len(val)
    # hand fit: at 0.9 every detection is right, at 0.7 every one wrong -> T pushes 0.9 up, 0.7 down
    assert out["calibration"]["temperature"] < 1.0
    row = out["ece"][0]
    assert row["set"] == "clean" and row["detections"] == n_gt + len(val)
    gaps = (n_gt * 0.1 + len(val) * 0.7) / (n_gt + len(val))  # |1 - 0.9| and |0 - 0.7| weighted by counts
    assert row["ece_raw"] == pytest.approx(gaps)
    assert row["ece_calibrated"] < row["ece_raw"]
    assert [r["set"] for r in out["ece"]] == ["clean", "jpeg 2"]


def _outside_tukey_fences(dataset) -> int:
    """Clean frames whose grey mean or std lies outside Q1 - 1.5 IQR .. Q3 + 1.5 IQR, or whose
    Laplacian variance lies below Q1 - 1.5 IQR (blockiness, an upper fence, counted too)."""
    import cv2

    from labkit.data.images import load_image
    from labkit.robust.monitor import blockiness

    feats = []
    for rec in dataset.images:
        grey = cv2.cvtColor(load_image(dataset.image_path(rec)), cv2.COLOR_RGB2GRAY).astype(np.float64)
        feats.append((cv2.Laplacian(grey, cv2.CV_64F).var(), grey.mean(), grey.std(), blockiness(grey)))
    f = np.array(feats)
    q1, q3 = np.percentile(f, 25, axis=0), np.percentile(f, 75, axis=0)
    lo, hi = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
    out = (f[:, 0] < lo[0]) | (f[:, 1] < lo[1]) | (f[:, 1] > hi[1]) | (f[:, 2] < lo[2]) | (f[:, 3] > hi[3])
    return int(out.sum())


def test_abstention_under_corruption_flags_dark_frames(tmp_path) -> None:
    from labkit.data.synth import generate_dataset
    from labkit.models.dataset import load_split
    from labkit.robust.policy import abstention_under_corruption

    generate_dataset(tmp_path / "d", seed=0, size="small")
    val = load_split(tmp_path / "d", "val")
    table = abstention_under_corruption(_TwoScoreDetector(val), val, [("low_light", 5)], t_act=0.8)
    clean, dark = table.set_index("set").loc["clean"], table.set_index("set").loc["low_light 5"]
    n_gt = sum(int((np.asarray(r.detections.get("iscrowd"), dtype=int) == 0).sum()) for r in val.images)
    assert clean["acted_tp"] == n_gt and clean["acted_fp"] == 0
    assert clean["frames_flagged"] == _outside_tukey_fences(val)
    # severity 5 is far darker than any clean frame: every frame abstains, nothing is acted on
    assert dark["frames_flagged"] == len(val) and dark["frame_coverage"] == 0.0
    assert dark["kept_tp"] == 0 and dark["tp_lost"] == n_gt
