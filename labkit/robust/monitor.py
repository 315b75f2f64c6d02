"""Monitoring hooks: per-frame input and output features as JSON Lines, and windowed drift alarms.

**Input features** of an RGB frame (grey = ITU-R BT.601 luma, OpenCV's ``RGB2GRAY``):

- ``blur``: variance of the Laplacian (J. L. Pech-Pacheco et al., "Diatom autofocusing in
  brightfield microscopy: a comparative study", ICPR 2000): low = blurred;
- ``brightness``: mean grey level (0-255);
- ``contrast``: RMS contrast, the standard deviation of the grey levels (E. Peli, "Contrast in
  complex images", JOSA A 1990);
- ``blockiness``: JPEG blocking, the mean absolute grey step across the 8-pixel block borders
  divided by the mean step between the other neighbouring columns / rows, each plus one grey
  level so that flat blocks give a finite number (the idea of Z. Wang, A. C. Bovik and
  B. L. Evans, "Blind measurement of blocking artifacts in images", ICIP 2000): about 1 without
  blocking (and on a flat frame), larger as compression shows its 8x8 grid.

**Output features** of a frame's detections: ``detections`` (count), ``mean_score`` and a
``score_hist`` (counts in equal-width bins of [0, 1], the last bin holding 1.0).

**Drift** of a feature between a reference sample and the last ``window`` frames:

- PSI, the population stability index, ``sum_b (q_b - p_b) ln(q_b / p_b)`` over bins ``b`` with
  reference shares ``p`` and current shares ``q`` (B. Yurdakul, "Statistical properties of the
  population stability index", 2018); on samples, the bins are the reference's quantiles and
  every bin count gets a pseudo-count of 0.5 (Jeffreys smoothing), so that a bin a short window
  happens to miss does not blow up the logarithm. Usual reading: < 0.1 stable, 0.1-0.25
  moderate, > 0.25 shifted.
- the two-sample Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``): the largest gap between the
  two empirical CDFs and its p-value.

A feature raises an alarm on a frame when its window's PSI exceeds ``psi_alarm`` or the KS
p-value falls below ``ks_alpha``. PSI has a noise floor: for unchanged data its expected value is
about ``(B - 1) (1/n + 1/N)`` (B bins, window n, reference N), so a 10-bin PSI over 30 frames
(about 0.3) would cry wolf at 0.25; the defaults (5 bins, 50 frames: about 0.1) keep it below.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import cv2
import numpy as np
import pandas as pd
from scipy import stats

from labkit.errors import DataError

INPUT_FEATURES = ("blur", "brightness", "contrast", "blockiness")
BLOCK = 8


def _grey(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise DataError(f"expected an RGB or grey uint8 image, got {img.dtype} {img.shape}")
    return (cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img).astype(np.float64)


def blockiness(grey: np.ndarray, block: int = BLOCK) -> float:
    """(Mean |step| across block borders + 1) / (mean |step| elsewhere + 1), over columns and rows
    (NaN when the image is smaller than two blocks)."""
    steps_x = np.abs(np.diff(grey, axis=1))  # step between column j and j + 1
    steps_y = np.abs(np.diff(grey, axis=0))
    border_x = (np.arange(steps_x.shape[1]) % block) == block - 1
    border_y = (np.arange(steps_y.shape[0]) % block) == block - 1
    if not border_x.any() or not border_y.any():
        return float("nan")
    across = np.concatenate([steps_x[:, border_x].ravel(), steps_y[border_y, :].ravel()])
    within = np.concatenate([steps_x[:, ~border_x].ravel(), steps_y[~border_y, :].ravel()])
    return float((across.mean() + 1.0) / (within.mean() + 1.0))


def input_features(image: np.ndarray) -> dict[str, float]:
    """``blur``, ``brightness``, ``contrast``, ``blockiness`` of one RGB (or grey) uint8 frame."""
    grey = _grey(image)
    return {"blur": float(cv2.Laplacian(grey, cv2.CV_64F).var()), "brightness": float(grey.mean()),
            "contrast": float(grey.std()), "blockiness": blockiness(grey)}


def output_features(scores: Sequence[float] | np.ndarray, bins: int = 10) -> dict[str, Any]:
    """``detections``, ``mean_score`` (None without detections) and ``score_hist`` of one frame's scores."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.size and (s.min() < 0 or s.max() > 1):
        raise DataError("detection scores must lie in [0, 1]")
    index = np.minimum((s * bins).astype(np.int64), bins - 1)
    return {"detections": int(s.size), "mean_score": float(s.mean()) if s.size else None,
            "score_hist": np.bincount(index, minlength=bins).astype(int).tolist()}


def frame_record(frame: Any, image: np.ndarray, scores: Sequence[float] | None = None) -> dict[str, Any]:
    """One JSON Lines record: ``frame`` (an index or name), the input features and, when
    ``scores`` are given, the output features."""
    record: dict[str, Any] = {"frame": frame, **input_features(image)}
    if scores is not None:
        record.update(output_features(scores))
    return record


def write_jsonl(path: str | Path, records: Iterable[Mapping[str, Any]]) -> Path:
    """Write one JSON object per line (NaN written as null)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for r in records:
            clean = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
            f.write(json.dumps(clean) + "\n")
    return path


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSON Lines file; a bad line is a :class:`DataError` naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataError("no such JSON Lines file", source=str(path))
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise DataError(f"not JSON ({exc})", source=str(path), record=f"line {number}") from exc
        if not isinstance(value, dict):
            raise DataError("each line must be a JSON object", source=str(path), record=f"line {number}")
        records.append(value)
    return records


# --------------------------------------------------------------------------------------- drift
def psi_from_counts(reference: Sequence[float], current: Sequence[float], eps: float = 1e-4,
                    pseudo_count: float = 0.0) -> float:
    """PSI of two histograms over the same bins (counts or shares): ``pseudo_count`` is added to
    every bin first, then shares below ``eps`` are raised to it."""
    p = np.asarray(reference, dtype=np.float64) + pseudo_count
    q = np.asarray(current, dtype=np.float64) + pseudo_count
    if p.shape != q.shape or p.ndim != 1 or p.size == 0:
        raise ValueError(f"need two histograms with the same bins, got {p.shape} and {q.shape}")
    if p.sum() <= 0 or q.sum() <= 0 or (p < 0).any() or (q < 0).any():
        raise ValueError("histograms need non-negative counts and a positive total")
    p, q = np.maximum(p / p.sum(), eps), np.maximum(q / q.sum(), eps)
    return float(np.sum((q - p) * np.log(q / p)))


def decile_edges(reference: Sequence[float], bins: int = 10) -> np.ndarray:
    """Inner bin edges: the reference's quantiles at 1/bins, ..., (bins-1)/bins, duplicates merged."""
    return np.unique(np.quantile(np.asarray(reference, dtype=np.float64), np.arange(1, bins) / bins))


def psi(reference: Sequence[float], current: Sequence[float], bins: int = 10, pseudo_count: float = 0.5) -> float:
    """PSI of ``current`` against ``reference`` over the reference's quantile bins (a value equal
    to an edge falls in the bin above it), each bin count plus ``pseudo_count``."""
    ref, cur = _finite(reference, "reference"), _finite(current, "current")
    edges = decile_edges(ref, bins)
    count = lambda x: np.bincount(np.searchsorted(edges, x, side="right"), minlength=edges.size + 1)  # noqa: E731
    return psi_from_counts(count(ref), count(cur), pseudo_count=pseudo_count)


def ks(reference: Sequence[float], current: Sequence[float]) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value (``scipy.stats.ks_2samp``, two-sided)."""
    res = stats.ks_2samp(_finite(reference, "reference"), _finite(current, "current"))
    return float(res.statistic), float(res.pvalue)


def _finite(values: Sequence[float], what: str) -> np.ndarray:
    arr = np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        raise ValueError(f"the {what} sample has no finite value")
    return arr


@dataclass
class DriftMonitor:
    """Windowed drift alarms on per-frame features against a reference sample.

    Args:
        reference: feature name -> reference values (e.g. the features of a calm stretch of video).
        window: frames in the current window; statistics start once it is full.
        psi_alarm: alarm when PSI > this (0.25: "significant shift").
        ks_alpha: alarm when the KS p-value < this.
        bins: PSI bins (reference quantiles).
    """

    reference: Mapping[str, Sequence[float]]
    window: int = 50
    psi_alarm: float = 0.25
    ks_alpha: float = 0.001
    bins: int = 5
    _recent: dict[str, deque] = field(default_factory=dict, init=False, repr=False)
    _seen: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.window < 2:
            raise ValueError(f"window must be >= 2, got {self.window}")
        if not self.reference:
            raise ValueError("the reference has no feature")
        self.reference = {k: _finite(v, f"reference '{k}'") for k, v in self.reference.items()}
        self._recent = {k: deque(maxlen=self.window) for k in self.reference}

    def update(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Add one frame's features; return ``{frame, alarm, <feature>_psi, <feature>_ks_p, ...}``
        (statistics None until the window is full; ``alarms`` lists the features that fired)."""
        self._seen += 1
        out: dict[str, Any] = {"frame": record.get("frame", self._seen - 1), "alarms": []}
        for name, values in self._recent.items():
            if name not in record:
                raise DataError(f"frame record lacks the monitored feature '{name}'", record=out["frame"])
            value = record[name]
            if value is not None and np.isfinite(value):
                values.append(float(value))
            full = len(values) == self.window
            p = psi(self.reference[name], values, self.bins) if full else None
            d, pv = ks(self.reference[name], values) if full else (None, None)
            out.update({f"{name}_psi": p, f"{name}_ks": d, f"{name}_ks_p": pv})
            if full and (p > self.psi_alarm or pv < self.ks_alpha):
                out["alarms"].append(name)
        out["alarm"] = bool(out["alarms"])
        return out

    def run(self, records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
        """:meth:`update` over a stream; one row per frame."""
        return pd.DataFrame([self.update(r) for r in records])


def first_alarm(table: pd.DataFrame) -> Any:
    """The ``frame`` of the first alarm in a :meth:`DriftMonitor.run` table, else None."""
    hits = table[table["alarm"]]
    return None if hits.empty else hits["frame"].iloc[0]


@dataclass(frozen=True)
class QualityGate:
    """Fires on a frame whose input feature leaves its allowed range (the input-quality monitor
    the abstention policy listens to). ``limits``: feature -> ``(low, high)``, either may be None."""

    limits: Mapping[str, tuple[float | None, float | None]]

    @classmethod
    def from_reference(cls, records: Sequence[Mapping[str, Any]], low: Sequence[str] = ("blur", "brightness", "contrast"),
                       high: Sequence[str] = ("brightness", "blockiness"), k: float = 1.5) -> "QualityGate":
        """Tukey's fences (J. W. Tukey, "Exploratory Data Analysis", 1977) of reference frames: a
        feature in ``low`` fires below ``Q1 - k IQR``, one in ``high`` above ``Q3 + k IQR``
        (quartiles by ``numpy.quantile``, linear interpolation; IQR = Q3 - Q1)."""
        limits = {}
        for name in dict.fromkeys([*low, *high]):
            values = _finite([r.get(name) for r in records], f"reference '{name}'")
            q1, q3 = np.quantile(values, [0.25, 0.75])
            limits[name] = (float(q1 - k * (q3 - q1)) if name in low else None,
                            float(q3 + k * (q3 - q1)) if name in high else None)
        return cls(limits)

    def check(self, record: Mapping[str, Any]) -> list[str]:
        """The features of ``record`` outside their limits (empty: the frame is fine)."""
        out = []
        for name, (lo, hi) in self.limits.items():
            value = record.get(name)
            if value is None or not np.isfinite(value):
                continue
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                out.append(name)
        return out


def first_sustained(flags: Sequence[bool], frames: int) -> int | None:
    """Index of the frame on which ``flags`` has been true for ``frames`` consecutive frames (the
    last frame of the first such run), else None: an alarm that needs N frames of evidence, so a
    single odd frame does not raise it. ``frames`` must be >= 1."""
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    run = 0
    for index, flag in enumerate(flags):
        run = run + 1 if flag else 0
        if run == frames:
            return index
    return None
