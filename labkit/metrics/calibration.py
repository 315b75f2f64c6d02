"""Are detector scores probabilities? Precision versus score threshold and a reliability check.

A detection is **correct** when COCOeval's matcher makes it a true positive at IoU >= ``t``
(default 0.5; area "all", at most ``max_det`` detections per image and class, COCO's cut):
detections are taken in
decreasing score order per image and class, each claiming the best-overlapping unmatched ground
truth of its class. Detections matched to crowd regions are ignored (neither correct nor wrong),
as are detections beyond the ``max_det`` cut. Everything else is wrong.

**Reliability** (calibration; M. P. Naeini, G. Cooper, M. Hauskrecht, "Obtaining Well Calibrated
Probabilities Using Bayesian Binning", AAAI 2015; C. Guo et al., "On Calibration of Modern
Neural Networks", ICML 2017; for detection F. Küppers et al., "Multivariate Confidence
Calibration for Object Detection", CVPR-W 2020): split [0, 1] into ``B`` equal-width score bins
(bin ``b`` holds scores in ``[b/B, (b+1)/B)``, the last bin also holds 1.0); in each bin compare the
mean score (confidence) with the fraction of correct detections (precision). A calibrated
detector has the two equal in every bin. The **expected calibration error** is

    ECE = sum_b (n_b / N) * |precision_b - confidence_b|

and the **maximum calibration error** MCE = max_b |precision_b - confidence_b| over non-empty bins.

**Precision versus threshold**: keeping detections with score >= ``s`` gives ``TP(s)`` and
``FP(s)``; precision ``TP / (TP + FP)`` and recall ``TP / #GT`` (non-crowd ground truth). Because the
matcher works in score order, a detection's verdict does not depend on the detections below it,
so one matching serves every threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from labkit.data.annotations import Dataset, Detections
from labkit.metrics.coco_inputs import prepare_ground_truth, prepare_results
from labkit.metrics.detection import coco_objects, quiet


@dataclass
class MatchedDetections:
    """Every detection's verdict (see :func:`match_detections`).

    Attributes:
        table: one row per detection: ``image_id``, ``category_id``, ``score``, ``status``
            (``"tp"``, ``"fp"``, ``"ignored"`` on a crowd region, ``"not_evaluated"`` beyond max_det).
        num_gt: non-crowd ground-truth objects (the denominator of recall).
        iou_threshold: the IoU a true positive needs.
    """

    table: pd.DataFrame
    num_gt: int
    iou_threshold: float

    @property
    def scored(self) -> pd.DataFrame:
        """The true and false positives only (the rows calibration and precision are about)."""
        return self.table[self.table["status"].isin(["tp", "fp"])]

    @property
    def scores(self) -> np.ndarray:
        return self.scored["score"].to_numpy(dtype=np.float64)

    @property
    def correct(self) -> np.ndarray:
        return (self.scored["status"] == "tp").to_numpy()


def match_detections(gt: Dataset | Mapping | str | Path,
                     predictions: Mapping[int, Detections] | Sequence[Mapping] | str | Path, *,
                     iou_threshold: float = 0.5, max_det: int = 100) -> MatchedDetections:
    """Mark each prediction as a true positive, false positive, ignored or not evaluated, with
    COCOeval's own matcher (pycocotools) at one IoU threshold. Inputs as for
    :func:`labkit.metrics.detection.evaluate_coco` (checked the same way)."""
    from pycocotools.cocoeval import COCOeval

    ground_truth = prepare_ground_truth(gt, iou_type="bbox")
    preds = prepare_results(predictions, ground_truth)
    status = np.full(len(preds.records), "not_evaluated", dtype=object)
    if preds.records:
        coco_gt, coco_dt = coco_objects(ground_truth, preds, "pycocotools")
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.params.iouThrs = np.array([float(iou_threshold)])
        ev.params.areaRng, ev.params.areaRngLbl = [[0, 1e10]], ["all"]
        ev.params.maxDets = [int(max_det)]
        with quiet():
            ev.evaluate()
        for e in ev.evalImgs:
            if e is None:
                continue
            k = np.asarray(e["dtIds"], dtype=np.int64) - 1  # loadRes numbers results 1, 2, ... in input order
            hit, ignored = np.asarray(e["dtMatches"][0]) > 0, np.asarray(e["dtIgnore"][0], dtype=bool)
            status[k] = np.where(ignored, "ignored", np.where(hit, "tp", "fp"))
    table = pd.DataFrame({"image_id": [int(r["image_id"]) for r in preds.records],
                          "category_id": [int(r["category_id"]) for r in preds.records],
                          "score": [float(r["score"]) for r in preds.records], "status": status.astype(str)})
    num_gt = int((ground_truth.ann_iscrowd == 0).sum())
    return MatchedDetections(table, num_gt, float(iou_threshold))


@dataclass
class Reliability:
    """A reliability diagram's numbers (see :func:`reliability`).

    Attributes:
        bins: one row per bin: ``low``, ``high``, ``count``, ``confidence`` (mean score),
            ``precision`` (fraction correct), ``gap`` (precision - confidence); NaN in empty bins.
        ece, mce: expected and maximum calibration error.
        count: detections scored.
    """

    bins: pd.DataFrame
    ece: float
    mce: float
    count: int

    def plot(self, target: Any = None, *, title: str = "reliability of detection scores") -> Any:
        """Precision per bin (bars) against the diagonal of perfect calibration, with the number of
        detections per bin on a log-scaled right axis. ``target``: an ``Axes`` to draw on or None
        (new figure). Returns the Figure."""
        from matplotlib.axes import Axes
        from matplotlib.figure import Figure

        fig = target.figure if isinstance(target, Axes) else Figure(figsize=(5, 4.5))
        ax = target if isinstance(target, Axes) else fig.add_subplot()
        b = self.bins
        width = (b["high"] - b["low"]).to_numpy()
        ax.bar(b["low"], b["precision"].fillna(0), width=width, align="edge", edgecolor="black", alpha=0.7,
               label="precision in bin")
        ax.plot(b["confidence"], b["confidence"], "o", color="tab:red", ms=3, label="mean score in bin")
        ax.plot([0, 1], [0, 1], "--", color="0.4", label="perfect calibration")
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="detection score", ylabel="fraction correct",
               title=f"{title}\nECE {self.ece:.3f}, MCE {self.mce:.3f}, {self.count} detections")
        counts = ax.twinx()
        counts.step(np.append(b["low"], 1.0), np.append(b["count"], b["count"].iloc[-1]), where="post", color="0.5",
                    lw=1, label="detections per bin (right axis)")
        counts.set_yscale("symlog", linthresh=1)
        counts.set_ylabel("detections per bin", color="0.4")
        lines = ax.get_legend_handles_labels()
        more = counts.get_legend_handles_labels()
        ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7, loc="upper left")
        ax.grid(alpha=0.3)
        return fig


def reliability(scores: np.ndarray, correct: np.ndarray, bins: int = 10) -> Reliability:
    """Bin scores into ``bins`` equal-width bins of [0, 1] and compare mean score with precision.

    Raises ``ValueError`` for mismatched lengths, scores outside [0, 1] or ``bins < 1``.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    c = np.asarray(correct, dtype=bool).ravel()
    if s.shape != c.shape:
        raise ValueError(f"{s.size} scores but {c.size} correctness flags")
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    if s.size and (s.min() < 0 or s.max() > 1):
        raise ValueError("scores must lie in [0, 1]")
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.minimum((s * bins).astype(np.int64), bins - 1)
    rows = []
    for b in range(bins):
        inside = index == b
        n = int(inside.sum())
        conf = float(s[inside].mean()) if n else float("nan")
        prec = float(c[inside].mean()) if n else float("nan")
        rows.append({"low": edges[b], "high": edges[b + 1], "count": n, "confidence": conf, "precision": prec,
                     "gap": prec - conf})
    table = pd.DataFrame(rows)
    filled = table[table["count"] > 0]
    ece = float((filled["count"] / s.size * filled["gap"].abs()).sum()) if s.size else float("nan")
    mce = float(filled["gap"].abs().max()) if s.size else float("nan")
    return Reliability(table, ece, mce, int(s.size))


def expected_calibration_error(scores: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """ECE of :func:`reliability`."""
    return reliability(scores, correct, bins).ece


def threshold_sweep(scores: np.ndarray, correct: np.ndarray, num_gt: int,
                    thresholds: Sequence[float] | np.ndarray | None = None) -> pd.DataFrame:
    """Precision, recall and F1 of the detections with score >= each threshold.

    Columns: ``threshold``, ``kept``, ``tp``, ``fp``, ``precision`` (NaN when nothing is kept),
    ``recall`` (TP / ``num_gt``), ``f1``. Default thresholds: 0, 0.05, ..., 0.95.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    c = np.asarray(correct, dtype=bool).ravel()
    if s.shape != c.shape:
        raise ValueError(f"{s.size} scores but {c.size} correctness flags")
    ts = np.round(np.arange(0.0, 1.0, 0.05), 2) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    rows = []
    for t in ts:
        keep = s >= t
        tp, kept = int(c[keep].sum()), int(keep.sum())
        precision = tp / kept if kept else float("nan")
        recall = tp / num_gt if num_gt else float("nan")
        f1 = 2 * precision * recall / (precision + recall) if kept and num_gt and precision + recall > 0 else 0.0
        rows.append({"threshold": float(t), "kept": kept, "tp": tp, "fp": kept - tp, "precision": precision,
                     "recall": recall, "f1": f1})
    return pd.DataFrame(rows)


def choose_threshold(sweep: pd.DataFrame, min_precision: float | None = None) -> float:
    """An operating score threshold from a :func:`threshold_sweep`.

    With ``min_precision``: the lowest threshold whose precision reaches it (the most recall at
    that precision); without, or when no threshold reaches it: the threshold of the best F1
    (the lowest such on ties).
    """
    if min_precision is not None:
        ok = sweep[sweep["precision"] >= min_precision]
        if len(ok):
            return float(ok["threshold"].min())
    best = sweep["f1"].max()
    return float(sweep.loc[sweep["f1"] == best, "threshold"].min())
