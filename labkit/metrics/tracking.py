"""Multi-object-tracking scores (HOTA, CLEAR MOT, Identity) computed by TrackEval's own metric classes.

labkit builds TrackEval's per-sequence ``data`` dict from in-memory sequences of the canonical
model (``{frame: Detections}``, frames 1-based as in MOTChallenge) and hands it to
``trackeval.metrics.HOTA / CLEAR / Identity .eval_sequence``; several sequences are merged with
the classes' ``combine_sequences``. The numbers are therefore TrackEval's (J. Luiten, A. Hoffhues,
https://github.com/JonathonLuiten/TrackEval), reproduced to 1e-9 by ``tests/test_metrics_tracking.py``
against TrackEval's file-based ``Evaluator`` + ``MotChallenge2DBox`` and against the official
MOTChallenge devkit numbers for TUD-Campus / TUD-Stadtmitte.

Definitions:

- HOTA, DetA, AssA, LocA, DetRe/DetPr, AssRe/AssPr: J. Luiten et al., "HOTA: A Higher Order Metric
  for Evaluating Multi-Object Tracking", IJCV 2021. Each is a curve over the localisation
  thresholds alpha = 0.05, 0.10, ..., 0.95; the headline number is the mean over alpha.
- MOTA, MOTP, IDSW, Frag, MT/PT/ML, FP, FN: K. Bernardin, R. Stiefelhagen, "Evaluating Multiple
  Object Tracking Performance: The CLEAR MOT Metrics", EURASIP JIVP 2008, with the MOTChallenge
  conventions (A. Milan et al., "MOT16: A Benchmark for Multi-Object Tracking", arXiv:1603.00831):
  IoU >= threshold (0.5) for a match, MOTP is the mean IoU of matches (higher is better), MT/ML
  mean tracked for > 80 % / < 20 % of the object's frames.
- IDF1, IDP, IDR: E. Ristani et al., "Performance Measures and a Data Set for Multi-Target,
  Multi-Camera Tracking", ECCV 2016 workshops.

Similarity is the IoU of the boxes (:func:`labkit.metrics.iou.box_iou`, continuous coordinates;
bit-identical to TrackEval's ``_calculate_box_ious`` for boxes of non-negative size, which the
tests check), or any callable ``f(gt_xywh, pred_xywh) -> (G, P)`` with values in [0, 1].

Preprocessing (``preprocess=``), the in-memory twin of ``MotChallenge2DBox.get_preprocessed_seq_data``:

============  =====================================================================================
``"mot17"``   TrackEval's MOT16/MOT17 rule. Per frame, predictions are Hungarian-matched (IoU >= 0.5)
              to *all* gt boxes; predictions matched to a distractor class (2 person_on_vehicle,
              7 static_person, 8 distractor, 12 reflection) are removed. Then only gt boxes of class
              1 (pedestrian) whose ``consider`` flag (MOT column 7) is non-zero are kept. gt classes
              must be MOTChallenge ids 1..13.
``"mot20"``   as ``"mot17"`` with 6 non_mot_vehicle also a distractor (TrackEval's MOT20 rule).
``"mot15"``   only gt boxes with ``consider == 0`` are removed (TrackEval's behaviour for MOT15 and
              whenever its ``DO_PREPROC`` is off).
``"none"``    nothing is removed: every gt box is an object to track, whatever its class.
============  =====================================================================================

A gt without a ``consider`` field counts as all-considered. The prediction class column is not
used. Frames absent from the dicts are empty frames; the sequence has ``num_frames`` frames
(default: the last frame seen). Bad input raises :class:`~labkit.errors.DataError` naming the
source and frame: frames outside ``1..num_frames``, a track id twice in one frame, missing
track ids, a similarity outside [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
from scipy.optimize import linear_sum_assignment
from tqdm import tqdm
from trackeval.metrics import CLEAR, HOTA, Identity

from labkit.data.annotations import Detections
from labkit.errors import DataError
from labkit.metrics.iou import box_iou

Frames = Mapping[int, Detections]
Similarity = Callable[[np.ndarray, np.ndarray], np.ndarray]

#: MOTChallenge class ids (column 8 of gt.txt), as in TrackEval's MotChallenge2DBox.
MOT_CLASSES = {1: "pedestrian", 2: "person_on_vehicle", 3: "car", 4: "bicycle", 5: "motorbike",
               6: "non_mot_vehicle", 7: "static_person", 8: "distractor", 9: "occluder",
               10: "occluder_on_ground", 11: "occluder_full", 12: "reflection", 13: "crowd"}
_MOT17_DISTRACTORS = (2, 7, 8, 12)


@dataclass(frozen=True)
class Preprocessing:
    """One preprocessing rule (see the module docstring's table)."""

    distractor_classes: tuple[int, ...]
    pedestrian_only: bool
    drop_zero_marked: bool


PREPROCESSING = {
    "mot17": Preprocessing(_MOT17_DISTRACTORS, True, True),
    "mot20": Preprocessing(tuple(sorted(_MOT17_DISTRACTORS + (6,))), True, True),
    "mot15": Preprocessing((), False, True),
    "none": Preprocessing((), False, False),
}

#: TrackEval's comparison tolerance (``np.finfo("float").eps``), reused so thresholds agree exactly.
EPS = np.finfo("float").eps


@dataclass
class TrackingSequence:
    """One sequence to score: gt and predicted frames plus where they came from (for errors)."""

    gt: Frames
    pred: Frames
    num_frames: int | None = None
    gt_source: str = "<gt>"
    pred_source: str = "<pred>"


def _frame_numbers(frames: Frames, num_frames: int, source: str) -> None:
    for frame in frames:
        if not isinstance(frame, (int, np.integer)) or not 1 <= frame <= num_frames:
            raise DataError(f"frame {frame} is outside the sequence's frames 1..{num_frames}",
                            source=source, record=f"frame {frame}")


def _track_ids(dets: Detections, source: str, frame: int) -> np.ndarray:
    if len(dets) == 0:
        return np.zeros(0, dtype=np.int64)
    if dets.track_id is None:
        raise DataError("detections have no track ids", source=source, record=f"frame {frame}")
    ids, counts = np.unique(dets.track_id, return_counts=True)
    if (counts > 1).any():
        hint = " (id -1 marks a detection file, not tracker output)" if -1 in ids[counts > 1] else ""
        raise DataError(f"track id(s) {ids[counts > 1].tolist()} appear more than once in one frame{hint}",
                        source=source, record=f"frame {frame}")
    return dets.track_id


def _similarity(similarity: str | Similarity, gt: Detections, pred: Detections, where: str) -> np.ndarray:
    if similarity == "iou":
        return box_iou(gt.xyxy, pred.xyxy)
    if not callable(similarity):
        raise ValueError(f"similarity must be 'iou' or a callable, got {similarity!r}")
    sim = np.asarray(similarity(gt.xywh, pred.xywh), dtype=np.float64)
    if sim.shape != (len(gt), len(pred)) or (sim.size and (sim.min() < 0 or sim.max() > 1)):
        raise DataError(f"similarity must be a ({len(gt)}, {len(pred)}) array in [0, 1]", source=where)
    return sim


def _distractor_matches(sim: np.ndarray, gt_classes: np.ndarray, rule: Preprocessing) -> np.ndarray:
    """Columns of predictions matched (Hungarian, IoU >= 0.5) to distractor-class gt boxes."""
    scores = sim.copy()
    scores[scores < 0.5 - EPS] = 0
    rows, cols = linear_sum_assignment(-scores)
    matched = scores[rows, cols] > 0 + EPS
    rows, cols = rows[matched], cols[matched]
    return cols[np.isin(gt_classes[rows], rule.distractor_classes)]


def _gt_keep(gt: Detections, rule: Preprocessing) -> np.ndarray:
    keep = np.ones(len(gt), dtype=bool)
    consider = gt.get("consider")
    if rule.drop_zero_marked and consider is not None:
        keep &= np.asarray(consider, dtype=np.float64).astype(np.int64) != 0  # TrackEval's int() truncation
    if rule.pedestrian_only:
        keep &= gt.class_id == 1
    return keep


def _check_mot_classes(gt: Detections, source: str, frame: int) -> None:
    bad = gt.class_id[(gt.class_id < min(MOT_CLASSES)) | (gt.class_id > max(MOT_CLASSES))]
    if bad.size:
        raise DataError(f"gt class ids {np.unique(bad).tolist()} are not MOTChallenge classes 1..13; MOT17/MOT20 "
                        "preprocessing needs them (use preprocess='mot15' or 'none' for other data)",
                        source=source, record=f"frame {frame}")


def _relabel(per_frame: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """Map ids to 0..n-1 (TrackEval's contiguous labels); also return the original id values."""
    values = np.unique(np.concatenate(per_frame)) if per_frame else np.zeros(0, dtype=np.int64)
    return [np.searchsorted(values, ids).astype(int) for ids in per_frame], values.astype(np.int64)


def trackeval_data(seq: TrackingSequence, *, similarity: str | Similarity = "iou", preprocess: str = "mot17",
                   name: str = "sequence") -> dict[str, Any]:
    """TrackEval's per-sequence ``data`` dict, built from memory with the chosen preprocessing.

    Besides TrackEval's keys (``num_timesteps``, ``num_gt_ids``, ``num_tracker_ids``,
    ``num_gt_dets``, ``num_tracker_dets``, ``gt_ids``, ``tracker_ids``, ``similarity_scores``,
    ``seq``) it holds ``gt_id_values`` / ``tracker_id_values`` (original id of each contiguous
    label) and ``removed_gt`` / ``removed_pred`` (boxes dropped by the preprocessing).
    """
    if preprocess not in PREPROCESSING:
        raise ValueError(f"preprocess must be one of {sorted(PREPROCESSING)}, got {preprocess!r}")
    rule = PREPROCESSING[preprocess]
    num_frames = seq.num_frames
    if num_frames is None:
        num_frames = max([int(f) for f in (*seq.gt.keys(), *seq.pred.keys())], default=0)
    _frame_numbers(seq.gt, num_frames, seq.gt_source)
    _frame_numbers(seq.pred, num_frames, seq.pred_source)
    gt_ids, tracker_ids, sims = [], [], []
    removed_gt = removed_pred = 0
    for frame in range(1, num_frames + 1):
        gt = seq.gt.get(frame, Detections.empty())
        pred = seq.pred.get(frame, Detections.empty())
        g_ids = _track_ids(gt, seq.gt_source, frame)
        p_ids = _track_ids(pred, seq.pred_source, frame)
        sim = _similarity(similarity, gt, pred, f"{seq.gt_source} vs {seq.pred_source}, frame {frame}")
        if rule.pedestrian_only and len(gt):
            _check_mot_classes(gt, seq.gt_source, frame)
        if rule.distractor_classes and len(gt) and len(pred):
            drop = _distractor_matches(sim, gt.class_id, rule)
            p_ids, sim = np.delete(p_ids, drop), np.delete(sim, drop, axis=1)
            removed_pred += len(drop)
        keep = _gt_keep(gt, rule)
        removed_gt += int((~keep).sum())
        gt_ids.append(g_ids[keep])
        tracker_ids.append(p_ids)
        sims.append(sim[keep])
    gt_labels, gt_values = _relabel(gt_ids)
    tracker_labels, tracker_values = _relabel(tracker_ids)
    return {
        "seq": name, "num_timesteps": num_frames,
        "gt_ids": gt_labels, "tracker_ids": tracker_labels, "similarity_scores": sims,
        "num_gt_ids": len(gt_values), "num_tracker_ids": len(tracker_values),
        "num_gt_dets": int(sum(len(i) for i in gt_labels)), "num_tracker_dets": int(sum(len(i) for i in tracker_labels)),
        "gt_id_values": gt_values, "tracker_id_values": tracker_values,
        "removed_gt": removed_gt, "removed_pred": removed_pred,
    }


def _metrics(threshold: float) -> dict[str, Any]:
    config = {"THRESHOLD": threshold, "PRINT_CONFIG": False}
    return {"HOTA": HOTA(), "CLEAR": CLEAR(config), "Identity": Identity(config)}


def _plain(value: Any) -> Any:
    """TrackEval's numpy results as JSON-ready Python numbers / lists."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


#: Headline numbers: output name -> (TrackEval metric, field). Curves are reported as their mean over alpha.
SUMMARY_FIELDS = {
    "HOTA": ("HOTA", "HOTA"), "DetA": ("HOTA", "DetA"), "AssA": ("HOTA", "AssA"), "LocA": ("HOTA", "LocA"),
    "DetRe": ("HOTA", "DetRe"), "DetPr": ("HOTA", "DetPr"), "AssRe": ("HOTA", "AssRe"), "AssPr": ("HOTA", "AssPr"),
    "HOTA(0)": ("HOTA", "HOTA(0)"),
    "MOTA": ("CLEAR", "MOTA"), "MOTP": ("CLEAR", "MOTP"), "MODA": ("CLEAR", "MODA"),
    "Recall": ("CLEAR", "CLR_Re"), "Precision": ("CLEAR", "CLR_Pr"),
    "TP": ("CLEAR", "CLR_TP"), "FP": ("CLEAR", "CLR_FP"), "FN": ("CLEAR", "CLR_FN"),
    "IDSW": ("CLEAR", "IDSW"), "Frag": ("CLEAR", "Frag"), "MT": ("CLEAR", "MT"), "PT": ("CLEAR", "PT"),
    "ML": ("CLEAR", "ML"),
    "IDF1": ("Identity", "IDF1"), "IDP": ("Identity", "IDP"), "IDR": ("Identity", "IDR"),
    "IDTP": ("Identity", "IDTP"), "IDFP": ("Identity", "IDFP"), "IDFN": ("Identity", "IDFN"),
}
#: Summary fields that count events or objects (reported as ints; TrackEval keeps some as floats).
COUNT_FIELDS = ("TP", "FP", "FN", "IDSW", "Frag", "MT", "PT", "ML", "IDTP", "IDFP", "IDFN")
#: HOTA's localisation thresholds alpha = 0.05, 0.10, ..., 0.95 (TrackEval's ``array_labels``).
ALPHAS = np.array(HOTA().array_labels, dtype=np.float64)
#: HOTA fields that are curves over alpha.
CURVE_FIELDS = ("HOTA", "DetA", "AssA", "LocA", "DetRe", "DetPr", "AssRe", "AssPr")


@dataclass
class TrackingReport:
    """TrackEval results per sequence and combined over all of them.

    ``results[name][metric][field]`` holds TrackEval's raw fields (``metric`` in HOTA / CLEAR /
    Identity; ``name`` a sequence or ``"COMBINED"``), ``counts[name]`` the frames, boxes, ids and
    preprocessing removals of each sequence.
    """

    results: dict[str, dict[str, dict[str, Any]]]
    counts: dict[str, dict[str, int]]
    settings: dict[str, Any]

    COMBINED = "COMBINED"

    @property
    def alphas(self) -> np.ndarray:
        """HOTA's localisation thresholds 0.05 ... 0.95."""
        return ALPHAS.copy()

    @property
    def sequence_names(self) -> list[str]:
        return [k for k in self.results if k != self.COMBINED]

    def summary(self, sequence: str | None = None) -> dict[str, float | int]:
        """Headline numbers of one sequence (default: the combination of all sequences)."""
        res = self.results[sequence or self.COMBINED]
        out: dict[str, float | int] = {}
        for name, (metric, key) in SUMMARY_FIELDS.items():
            value = res[metric][key]
            if key in CURVE_FIELDS:
                out[name] = float(np.mean(value))
            else:
                out[name] = int(round(value)) if name in COUNT_FIELDS else float(value)
        return out

    def curves(self, sequence: str | None = None) -> dict[str, np.ndarray]:
        """The HOTA family as curves over :attr:`alphas`."""
        res = self.results[sequence or self.COMBINED]["HOTA"]
        return {k: np.asarray(res[k], dtype=np.float64) for k in CURVE_FIELDS}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: settings, alphas, and per sequence (and COMBINED) summary, counts and curves."""
        return {
            "settings": dict(self.settings),
            "alphas": self.alphas.tolist(),
            "sequences": {
                name: {"summary": self.summary(name), "counts": self.counts.get(name, {}),
                       "curves": {k: v.tolist() for k, v in self.curves(name).items()}}
                for name in self.results
            },
        }

    def to_markdown(self, columns: tuple[str, ...] = ("HOTA", "DetA", "AssA", "LocA", "MOTA", "MOTP", "IDF1",
                                                        "IDSW", "Frag", "FP", "FN", "MT", "PT", "ML")) -> str:
        """One row per sequence (plus COMBINED when there are several); fractions as percentages."""
        names = self.sequence_names + ([self.COMBINED] if len(self.sequence_names) > 1 else [])
        lines = [f"preprocess: {self.settings['preprocess']}, match threshold (CLEAR/Identity): "
                 f"{self.settings['threshold']}", "",
                 "| sequence | " + " | ".join(columns) + " |", "| --- |" + " --- |" * len(columns)]
        for name in names:
            s = self.summary(name)
            cells = [str(s[c]) if c in COUNT_FIELDS else f"{100 * s[c]:.2f}" for c in columns]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        removed = {n: c for n, c in self.counts.items() if c["removed_gt"] or c["removed_pred"]}
        for name, c in removed.items():
            lines.append(f"\n{name}: preprocessing removed {c['removed_gt']} gt and {c['removed_pred']} predicted boxes")
        return "\n".join(lines)

    def plot_alpha_curves(self, sequence: str | None = None, ax: Any = None) -> Any:
        """Plot HOTA, DetA, AssA, LocA (solid) and DetRe/DetPr/AssRe/AssPr (dashed) against alpha."""
        import matplotlib.pyplot as plt

        ax = ax if ax is not None else plt.subplots(figsize=(6, 4))[1]
        for name, values in self.curves(sequence).items():
            style = "-" if name in ("HOTA", "DetA", "AssA", "LocA") else "--"
            ax.plot(self.alphas, values, style, label=f"{name} ({values.mean():.3f})")
        ax.set(xlabel="localisation threshold alpha (IoU)", ylabel="score", xlim=(0, 1), ylim=(0, 1.02),
               title=f"HOTA curves - {sequence or self.COMBINED}")
        ax.legend(loc="lower left", fontsize="small")
        return ax


def evaluate_sequences(sequences: Mapping[str, TrackingSequence], *, similarity: str | Similarity = "iou",
                       preprocess: str = "mot17", threshold: float = 0.5) -> TrackingReport:
    """Score several sequences and combine them with TrackEval's ``combine_sequences``."""
    if not sequences:
        raise ValueError("no sequences to evaluate")
    if TrackingReport.COMBINED in sequences:
        raise ValueError(f"{TrackingReport.COMBINED!r} is reserved for the combination of all sequences")
    metrics = _metrics(threshold)
    results: dict[str, dict[str, dict[str, Any]]] = {}
    counts: dict[str, dict[str, int]] = {}
    for name, seq in tqdm(sequences.items(), desc="sequences", unit="seq", disable=None if len(sequences) > 1 else True):
        data = trackeval_data(seq, similarity=similarity, preprocess=preprocess, name=name)
        results[name] = {m: metric.eval_sequence(data) for m, metric in metrics.items()}
        counts[name] = {k: int(data[k]) for k in ("num_timesteps", "num_gt_dets", "num_tracker_dets", "num_gt_ids",
                                                  "num_tracker_ids", "removed_gt", "removed_pred")}
    results[TrackingReport.COMBINED] = {
        m: metric.combine_sequences({name: results[name][m] for name in sequences}) for m, metric in metrics.items()}
    plain = {n: {m: {k: _plain(v) for k, v in r.items()} for m, r in res.items()} for n, res in results.items()}
    settings = {"preprocess": preprocess, "threshold": threshold,
                "similarity": similarity if isinstance(similarity, str) else getattr(similarity, "__name__", "custom")}
    return TrackingReport(plain, counts, settings)


def evaluate_tracking(gt: Frames, pred: Frames, *, num_frames: int | None = None,
                      similarity: str | Similarity = "iou", preprocess: str = "mot17", threshold: float = 0.5,
                      name: str = "sequence", gt_source: str = "<gt>", pred_source: str = "<pred>") -> TrackingReport:
    """Score one sequence: ``gt`` / ``pred`` map 1-based frame numbers to Detections with track ids."""
    seq = TrackingSequence(gt, pred, num_frames, gt_source, pred_source)
    return evaluate_sequences({name: seq}, similarity=similarity, preprocess=preprocess, threshold=threshold)
