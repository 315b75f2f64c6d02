"""When the system acts, observes or abstains: score calibration, thresholds, risk and coverage.

**Temperature scaling** (C. Guo, G. Pleiss, Y. Sun, K. Weinberger, "On Calibration of Modern
Neural Networks", ICML 2017), for a detector's per-box score ``s`` (a sigmoid output; F. Küppers
et al., CVPR-W 2020, calibrate detection scores the same way): with the logit ``z = log(s / (1 - s))``
the calibrated score is ``sigmoid(z / T)``; ``T > 1`` softens over-confident scores. ``T`` is
fitted on val by minimising the binary negative log-likelihood of the detections' correctness
(true positive or not, :func:`labkit.metrics.calibration.match_detections`). **Platt scaling**
(J. Platt, 1999) fits ``sigmoid(a z + b)`` the same way. Scaling is monotone, so it changes ECE,
never the ranking (AP is unchanged).

**Two-threshold policy**: a detection with calibrated score ``>= t_act`` is *acted* on, one with
``t_observe <= score < t_act`` is *observed* (logged, tracked, shown to a person), the rest is
ignored.

**Risk-coverage curve** (Y. Geifman and R. El-Yaniv, "Selective Classification for Deep Neural
Networks", NeurIPS 2017): keeping the detections whose score is ``>= t``, coverage = kept / all
and risk = wrong kept / kept; one point per distinct score (ties are kept or dropped together).

**Abstention on an input-quality alarm**: on a frame where the monitor fires (see
:mod:`labkit.robust.monitor`), every detection abstains; :func:`abstention_effect` counts what
that costs (true positives and coverage given up) and what it saves (false positives not acted on).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
import pandas as pd
from scipy.optimize import minimize, minimize_scalar

from labkit.metrics.calibration import reliability

_EPS = 1e-6


def _checked(scores: Any, correct: Any) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    c = np.asarray(correct, dtype=bool).ravel()
    if s.shape != c.shape:
        raise ValueError(f"{s.size} scores but {c.size} correctness flags")
    if s.size and (np.isnan(s).any() or s.min() < 0 or s.max() > 1):
        raise ValueError("scores must lie in [0, 1]")
    return s, c


def logit(scores: Any) -> np.ndarray:
    """``log(s / (1 - s))`` with ``s`` clipped to ``[1e-6, 1 - 1e-6]`` (scores of exactly 0 or 1 stay finite)."""
    s = np.clip(np.asarray(scores, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(s / (1 - s))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _nll(p: np.ndarray, c: np.ndarray) -> float:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return float(-np.mean(np.where(c, np.log(p), np.log(1 - p))))


@dataclass(frozen=True)
class ScoreCalibration:
    """``sigmoid((a * logit(s) + b))``: temperature scaling is ``a = 1 / T, b = 0``."""

    a: float = 1.0
    b: float = 0.0
    method: str = "identity"

    @property
    def temperature(self) -> float | None:
        """``T`` of temperature scaling (``None`` for Platt scaling)."""
        return 1.0 / self.a if self.method in ("temperature", "identity") else None

    def __call__(self, scores: Any) -> np.ndarray:
        return _sigmoid(self.a * logit(scores) + self.b)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "a": self.a, "b": self.b, "temperature": self.temperature}


def fit_temperature(scores: Any, correct: Any, bounds: tuple[float, float] = (0.05, 20.0)) -> ScoreCalibration:
    """Temperature ``T`` in ``bounds`` minimising the NLL of ``correct`` under ``sigmoid(logit(s) / T)``.
    Needs both correct and wrong detections (else ``ValueError``)."""
    s, c = _checked(scores, correct)
    if c.all() or not c.any():
        raise ValueError("fitting a temperature needs both correct and wrong detections")
    z = logit(s)
    res = minimize_scalar(lambda log_t: _nll(_sigmoid(z / np.exp(log_t)), c),
                          bounds=(np.log(bounds[0]), np.log(bounds[1])), method="bounded", options={"xatol": 1e-6})
    return ScoreCalibration(a=float(np.exp(-res.x)), b=0.0, method="temperature")


def fit_platt(scores: Any, correct: Any) -> ScoreCalibration:
    """Platt scaling: ``a, b`` minimising the NLL of ``correct`` under ``sigmoid(a logit(s) + b)``."""
    s, c = _checked(scores, correct)
    if c.all() or not c.any():
        raise ValueError("fitting Platt scaling needs both correct and wrong detections")
    z = logit(s)
    res = minimize(lambda ab: _nll(_sigmoid(ab[0] * z + ab[1]), c), x0=np.array([1.0, 0.0]), method="Nelder-Mead",
                   options={"xatol": 1e-7, "fatol": 1e-10, "maxiter": 4000})
    return ScoreCalibration(a=float(res.x[0]), b=float(res.x[1]), method="platt")


def ece_table(calibration: ScoreCalibration, sets: dict[str, tuple[Any, Any]], bins: int = 10) -> pd.DataFrame:
    """ECE (:func:`labkit.metrics.calibration.reliability`) before and after ``calibration`` for each
    named ``(scores, correct)`` set, e.g. ``{"clean": ..., "fog 3": ...}``."""
    rows = []
    for name, (scores, correct) in sets.items():
        s, c = _checked(scores, correct)
        rows.append({"set": name, "detections": int(s.size), "ece_raw": reliability(s, c, bins).ece,
                     "ece_calibrated": reliability(calibration(s), c, bins).ece})
    return pd.DataFrame(rows)


def two_threshold_policy(scores: Any, correct: Any, t_observe: float, t_act: float) -> dict[str, Any]:
    """Counts of the act / observe / ignore decisions (score ``>= t_act``: act; ``>= t_observe``:
    observe; else ignore), with the true and false positives in each, the precision of acting and
    the coverage (share of detections acted on)."""
    if not 0.0 <= t_observe <= t_act <= 1.0:
        raise ValueError(f"need 0 <= t_observe <= t_act <= 1, got {t_observe} and {t_act}")
    s, c = _checked(scores, correct)
    act, observe = s >= t_act, (s >= t_observe) & (s < t_act)
    ignore = ~(act | observe)
    out: dict[str, Any] = {"t_observe": t_observe, "t_act": t_act, "detections": int(s.size)}
    for name, keep in (("act", act), ("observe", observe), ("ignore", ignore)):
        out[name] = {"count": int(keep.sum()), "tp": int((keep & c).sum()), "fp": int((keep & ~c).sum())}
    out["act_precision"] = out["act"]["tp"] / out["act"]["count"] if out["act"]["count"] else None
    out["coverage"] = out["act"]["count"] / s.size if s.size else None
    return out


def risk_coverage(scores: Any, correct: Any) -> pd.DataFrame:
    """Risk and coverage at every distinct score threshold, highest first.

    Columns ``threshold``, ``kept``, ``coverage``, ``risk``; ``aurc`` (area under the curve,
    the mean risk over the points weighted by the coverage each adds) is in ``df.attrs``."""
    s, c = _checked(scores, correct)
    order = np.argsort(-s, kind="stable")
    s, wrong = s[order], ~c[order]
    thresholds = np.unique(s)[::-1]
    kept = np.searchsorted(-s, -thresholds, side="right")  # detections with score >= threshold
    cum_wrong = np.concatenate([[0], np.cumsum(wrong)])
    df = pd.DataFrame({"threshold": thresholds, "kept": kept, "coverage": kept / max(s.size, 1),
                       "risk": cum_wrong[kept] / np.maximum(kept, 1)})
    added = np.diff(np.concatenate([[0.0], df["coverage"].to_numpy()]))
    df.attrs["aurc"] = float((added * df["risk"].to_numpy()).sum()) if s.size else float("nan")
    return df


def abstention_effect(table: pd.DataFrame, fired: Iterable[Any], t_act: float) -> dict[str, Any]:
    """What abstaining on the frames in ``fired`` changes for the detections acted on.

    ``table``: one row per detection with ``image_id``, ``score`` (calibrated) and ``correct``.
    Returns acted TP/FP without and with abstention, the false positives saved, the true positives
    given up, and coverage (share of frames whose detections may be acted on) before and after.
    """
    missing = {"image_id", "score", "correct"} - set(table.columns)
    if missing:
        raise ValueError(f"table lacks columns {sorted(missing)}")
    fired = set(fired)
    acted = table["score"].to_numpy(dtype=np.float64) >= t_act
    correct = table["correct"].to_numpy(dtype=bool)
    kept = acted & ~table["image_id"].isin(fired).to_numpy()
    frames = set(table["image_id"])
    return {"t_act": t_act, "frames": len(frames), "frames_abstained": len(frames & fired),
            "acted_tp": int((acted & correct).sum()), "acted_fp": int((acted & ~correct).sum()),
            "kept_tp": int((kept & correct).sum()), "kept_fp": int((kept & ~correct).sum()),
            "fp_saved": int((acted & ~kept & ~correct).sum()), "tp_lost": int((acted & ~kept & correct).sum()),
            "frame_coverage": (len(frames - fired) / len(frames)) if frames else None}


def detection_outcomes(dataset: Any, predictions: Any, iou_threshold: float = 0.5) -> pd.DataFrame:
    """One row per scored detection (true or false positive; crowd matches and detections past
    COCO's 100 per image left out): ``image_id``, ``category_id``, ``score``, ``correct``, from
    COCOeval's matcher (:func:`labkit.metrics.calibration.match_detections`)."""
    from labkit.metrics.calibration import match_detections

    scored = match_detections(dataset, predictions, iou_threshold=iou_threshold).scored
    return scored.assign(correct=scored["status"] == "tp").drop(columns="status").reset_index(drop=True)


def calibration_under_corruption(model: Any, dataset: Any, conditions: Iterable[tuple[str, int]], *, seed: int = 0,
                                 max_images: int | None = None, bins: int = 10) -> dict[str, Any]:
    """Fit temperature scaling on the clean images of ``dataset`` (val), then compare ECE before
    and after it on the clean images and on each ``(kind, severity)`` corruption of them.

    ``model`` is a :class:`labkit.robust.models.SuiteDetector`. Returns ``calibration``
    (:meth:`ScoreCalibration.to_dict`), ``ece`` (rows of :func:`ece_table`) and ``outcomes``
    (set name -> the :func:`detection_outcomes` table, for reliability diagrams and policies).
    """
    from labkit.data.sources import iter_frames
    from labkit.robust.suite import choose_images, corrupt_split

    chosen = choose_images(dataset, max_images, seed)
    clean = dict(iter_frames(chosen))
    outcomes = {"clean": detection_outcomes(chosen, model.predict(clean))}
    for kind, severity in conditions:
        images = corrupt_split(clean, kind, severity, seed)
        outcomes[f"{kind} {severity}"] = detection_outcomes(chosen, model.predict(images))
    cal = fit_temperature(outcomes["clean"]["score"], outcomes["clean"]["correct"])
    sets = {name: (t["score"], t["correct"]) for name, t in outcomes.items()}
    return {"calibration": cal.to_dict(), "ece": ece_table(cal, sets, bins).to_dict("records"), "outcomes": outcomes}


def abstention_under_corruption(model: Any, dataset: Any, conditions: Iterable[tuple[str, int]], *, t_act: float,
                                seed: int = 0, max_images: int | None = None,
                                calibration: ScoreCalibration | None = None) -> pd.DataFrame:
    """What abstaining on input-quality alarms does, clean and under each ``(kind, severity)``.

    The gate (:class:`labkit.robust.monitor.QualityGate`) is fitted on the input features of the
    clean images (limits at their 1st / 99th percentiles); each condition's frames that it flags
    abstain (:func:`abstention_effect` at ``t_act`` on the scores, calibrated when
    ``calibration`` is given). One row per set: ``set``, the effect's counts and ``frames_flagged``.
    """
    from labkit.data.sources import iter_frames
    from labkit.robust.monitor import QualityGate, input_features
    from labkit.robust.suite import choose_images, corrupt_split

    chosen = choose_images(dataset, max_images, seed)
    clean = dict(iter_frames(chosen))
    gate = QualityGate.from_reference([input_features(img) for img in clean.values()])
    sets = {"clean": clean, **{f"{k} {s}": corrupt_split(clean, k, s, seed) for k, s in conditions}}
    rows = []
    for name, images in sets.items():
        table = detection_outcomes(chosen, model.predict(images))
        if calibration is not None:
            table = table.assign(score=calibration(table["score"]))
        fired = {i for i, img in images.items() if gate.check(input_features(img))}
        rows.append({"set": name, "frames_flagged": len(fired), **abstention_effect(table, fired, t_act)})
    return pd.DataFrame(rows)
