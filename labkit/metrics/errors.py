"""Where does the AP go? Detection error analysis in the spirit of TIDE.

Definitions (D. Bolya, S. Foley, J. Hays, J. Hoffman, "TIDE: A General Toolbox for Identifying
Object Detection Errors", ECCV 2020, Sec. 2), with foreground IoU ``t_f = 0.5`` and background
IoU ``t_b = 0.1``. True positives are those of COCOeval's own matcher at ``t_f`` (pycocotools,
area "all", the largest max-dets); every other evaluated detection is a false positive,
classified by the first rule that applies (the order of TIDE's code):

- ``loc``  (localisation): IoU with a ground truth of its class is in ``[t_b, t_f)``;
- ``cls``  (classification): IoU >= ``t_f`` with a ground truth of another class;
- ``dupe`` (duplicate): IoU >= ``t_f`` with a ground truth of its class already matched by a
  higher-scoring detection;
- ``bkg``  (background): IoU < ``t_b`` with every ground truth (or the image has none);
- ``both`` (classification and localisation): anything else, i.e. IoU in ``[t_b, t_f)`` with a
  ground truth of another class.

A ground truth that no detection matched is ``miss`` (missed) unless a ``cls`` or ``loc`` error
targets it (fixing that error would find it). Detections matched to crowd regions are ignored,
as in COCO; detections beyond the max-dets cut are not evaluated.

The AP gained by fixing one error type (``delta``) re-runs the reference evaluator
(:func:`labkit.metrics.detection.evaluate_prepared`) on a corrected copy, as TIDE defines the
fixes: ``cls`` gets the target's class and ``loc`` the target's box (only the highest-scoring
``cls``/``loc`` error per unmatched target is fixed, the others and those whose target is already
matched are removed); ``dupe``, ``bkg`` and ``both`` detections are removed; ``miss`` objects are
removed from the ground truth. The AP itself always comes from the reference evaluator, on the
TIDE-matched IoU (``AP50`` for ``t_f = 0.5``). Unlike TIDE, negative deltas are not clipped.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from labkit.data.annotations import Dataset, Detections
from labkit.data.masks import segmentation_to_rle
from labkit.metrics.coco_inputs import GroundTruth, Predictions, prepare_ground_truth, prepare_results
from labkit.metrics.detection import coco_objects, evaluate_prepared, json_number, quiet, stat_names
from labkit.metrics.iou import coco_iou

#: Error types, in TIDE's order, with their long names.
ERROR_TYPES = {"cls": "classification", "loc": "localisation", "both": "classification + localisation",
               "dupe": "duplicate", "bkg": "background", "miss": "missed ground truth"}
#: COCO's size ranges (area in square pixels): small < 32², medium < 96², large otherwise.
SIZE_LABELS = ("small", "medium", "large")


def size_label(area: float) -> str:
    """COCO size bucket of an area (boundaries belong to the larger bucket)."""
    return "small" if area < 32**2 else "medium" if area < 96**2 else "large"


@dataclass
class ErrorCase:
    """One error. For a false positive: the prediction (``result_index`` = ``result #k``), its
    ``box`` (``[x, y, w, h]``) and ``score``, and the ground truth it was judged against
    (``gt_*``, None for ``bkg``); for ``miss``: the ground truth only. ``class_id`` is the
    predicted class (false positives) or the object's class (misses); ``size`` follows the
    prediction's area (false positives) or the object's (misses)."""

    kind: str
    image_id: int
    class_id: int
    size: str
    iou: float
    score: float | None = None
    box: list[float] | None = None
    result_index: int | None = None
    gt_id: int | None = None
    gt_class: int | None = None
    gt_box: list[float] | None = None


@dataclass
class ErrorReport:
    """Counts of each error type (overall, per class, per size) and the metric gained by fixing it."""

    cases: list[ErrorCase]
    metric: str
    base: float
    delta: dict[str, float]
    fixed_stats: dict[str, dict[str, float]]
    num_true_positives: int
    num_ignored: int
    num_not_evaluated: int
    pos_threshold: float
    bg_threshold: float

    @property
    def counts(self) -> dict[str, int]:
        """Error type -> number of cases."""
        return {k: sum(c.kind == k for c in self.cases) for k in ERROR_TYPES}

    @property
    def counts_by_class(self) -> dict[str, dict[int, int]]:
        """Error type -> {class id (predicted, or the missed object's) -> number of cases}."""
        return {k: dict(sorted(Counter(c.class_id for c in self.cases if c.kind == k).items())) for k in ERROR_TYPES}

    @property
    def counts_by_size(self) -> dict[str, dict[str, int]]:
        """Error type -> {small/medium/large -> number of cases}."""
        return {k: {s: sum(c.kind == k and c.size == s for c in self.cases) for s in SIZE_LABELS} for k in ERROR_TYPES}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no per-case list; see :func:`error_gallery`)."""
        return {"metric": self.metric, "base": json_number(self.base),
                "delta": {k: json_number(v) for k, v in self.delta.items()}, "counts": self.counts,
                "counts_by_class": {k: {str(c): n for c, n in v.items()} for k, v in self.counts_by_class.items()},
                "counts_by_size": self.counts_by_size, "true_positives": self.num_true_positives,
                "ignored": self.num_ignored, "not_evaluated": self.num_not_evaluated,
                "pos_threshold": self.pos_threshold, "bg_threshold": self.bg_threshold}

    def to_markdown(self) -> str:
        """A table: error type, count, counts per size, and the metric gained by fixing it."""
        lines = [f"{self.metric} = {self.base:.3f}; {self.num_true_positives} true positives, "
                 f"{self.num_ignored} ignored (crowd), {self.num_not_evaluated} beyond max_dets", "",
                 f"| error | count | small | medium | large | d{self.metric} |", "|---|---|---|---|---|---|"]
        by_size = self.counts_by_size
        for k, name in ERROR_TYPES.items():
            sizes = " | ".join(str(by_size[k][s]) for s in SIZE_LABELS)
            lines.append(f"| {name} | {self.counts[k]} | {sizes} | {self.delta[k]:+.4f} |")
        return "\n".join(lines)


# --------------------------------------------------------------------------- matching
@dataclass
class _Match:
    """COCOeval's verdict per result (``status``: 0 not evaluated, 1 TP, 2 FP, 3 ignored) and
    the matched ground-truth ids."""

    status: np.ndarray
    matched_gt: set[int]
    coco_gt: Any
    coco_dt: Any


def _coco_match(gt: GroundTruth, preds: Predictions, pos_threshold: float, max_det: int) -> _Match:
    from pycocotools.cocoeval import COCOeval

    coco_gt, coco_dt = coco_objects(gt, preds, "pycocotools")
    ev = COCOeval(coco_gt, coco_dt, gt.iou_type)
    ev.params.iouThrs = np.array([pos_threshold])
    ev.params.areaRng, ev.params.areaRngLbl = [[0, 1e10]], ["all"]
    ev.params.maxDets = [max_det]
    with quiet():
        ev.evaluate()
    status = np.zeros(len(preds.records), dtype=np.int8)
    matched: set[int] = set()
    for e in ev.evalImgs:
        if e is None:
            continue
        k = np.asarray(e["dtIds"], dtype=np.int64) - 1  # loadRes numbers results 1, 2, ... in order
        hit, ignored = np.asarray(e["dtMatches"][0]) > 0, np.asarray(e["dtIgnore"][0], dtype=bool)
        status[k] = np.where(ignored, 3, np.where(hit, 1, 2))
        matched.update(int(g) for g, m in zip(e["gtIds"], e["gtMatches"][0]) if m > 0)
    return _Match(status, matched, coco_gt, coco_dt)


def _geometry(ann: dict, coco: Any, iou_type: str) -> Any:
    return ann["bbox"] if iou_type == "bbox" else coco.annToRLE(ann)


def _classify(gt: GroundTruth, preds: Predictions, match: _Match, pos: float, bg: float) -> list[ErrorCase]:
    """TIDE's rules for every false positive, image by image."""
    gts_by_image: dict[int, list[dict]] = {}
    for ann in match.coco_gt.dataset["annotations"]:
        if not ann["iscrowd"]:
            gts_by_image.setdefault(ann["image_id"], []).append(ann)
    fps = np.flatnonzero(match.status == 2)
    cases = []
    for image_id in tqdm(np.unique(preds.image_id[fps]).tolist(), desc="error types", unit="img", disable=None):
        ks = fps[preds.image_id[fps] == image_id]
        dts = [match.coco_dt.anns[int(k) + 1] for k in ks]
        gts = gts_by_image.get(image_id, [])
        iou = coco_iou([_geometry(d, match.coco_dt, gt.iou_type) for d in dts],
                       [_geometry(g, match.coco_gt, gt.iou_type) for g in gts])
        gt_cls = np.array([g["category_id"] for g in gts], dtype=np.int64)
        used = np.array([g["id"] in match.matched_gt for g in gts], dtype=bool)
        for row, k, d in zip(iou, ks, dts):
            kind, target = _rule(row, gt_cls == d["category_id"], used, pos, bg)
            case = ErrorCase(kind=kind, image_id=image_id, class_id=d["category_id"], size=size_label(d["area"]),
                             iou=0.0, score=d["score"], box=list(map(float, d["bbox"])), result_index=int(k))
            if target is not None:
                g = gts[target]
                case.iou, case.gt_id, case.gt_class = float(row[target]), g["id"], g["category_id"]
                case.gt_box = list(map(float, g["bbox"]))
            cases.append(case)
    return cases


def _rule(iou: np.ndarray, same: np.ndarray, used: np.ndarray, pos: float, bg: float) -> tuple[str, int | None]:
    """TIDE's decision for one false positive given its IoU with each (non-crowd) ground truth."""
    if iou.size == 0:
        return "bkg", None
    same_iou, other_iou = np.where(same, iou, -1.0), np.where(same, -1.0, iou)
    j = int(np.argmax(same_iou))
    if bg <= same_iou[j] < pos:
        return "loc", j
    j = int(np.argmax(other_iou))
    if other_iou[j] >= pos:
        return "cls", j
    dupe_iou = np.where(same & used, iou, -1.0)
    j = int(np.argmax(dupe_iou))
    if dupe_iou[j] >= pos:
        return "dupe", j
    if iou.max() < bg:
        return "bkg", None
    return "both", int(np.argmax(iou))


def _misses(match: _Match, cases: list[ErrorCase]) -> list[ErrorCase]:
    """Unmatched, non-crowd ground truth that no ``cls``/``loc`` error could recover."""
    usable = {c.gt_id for c in cases if c.kind in ("cls", "loc") and c.gt_id not in match.matched_gt}
    return [ErrorCase(kind="miss", image_id=g["image_id"], class_id=g["category_id"], size=size_label(g["area"]),
                      iou=0.0, gt_id=g["id"], gt_class=g["category_id"], gt_box=list(map(float, g["bbox"])))
            for g in match.coco_gt.dataset["annotations"]
            if not g["iscrowd"] and g["id"] not in match.matched_gt and g["id"] not in usable]


# --------------------------------------------------------------------------- fixing
def _fixed_inputs(kind: str, gt: GroundTruth, preds: Predictions, cases: list[ErrorCase],
                  matched: set[int]) -> tuple[GroundTruth, Predictions]:
    """The inputs with every error of ``kind`` fixed the TIDE way."""
    if kind == "miss":
        missed = {c.gt_id for c in cases if c.kind == "miss"}
        return gt.without_annotations(np.array([a["id"] in missed for a in gt.coco["annotations"]], dtype=bool)), preds
    records: list[dict | None] = list(preds.records)
    if kind in ("cls", "loc"):
        best: dict[int, ErrorCase] = {}
        for c in cases:  # the highest-scoring cls/loc error per unmatched target is the one fixed
            if c.kind in ("cls", "loc") and c.gt_id not in matched and (c.gt_id not in best or c.score > best[c.gt_id].score):
                best[c.gt_id] = c
        anns = {a["id"]: a for a in gt.coco["annotations"]}
        for c in cases:
            if c.kind == kind:
                fixed = best.get(c.gt_id) is c
                records[c.result_index] = _corrected(records[c.result_index], anns[c.gt_id], kind, gt) if fixed else None
    else:
        for c in cases:
            if c.kind == kind:
                records[c.result_index] = None
    return gt, Predictions.from_records([r for r in records if r is not None], preds.source)


def _corrected(record: dict, target: dict, kind: str, gt: GroundTruth) -> dict:
    if kind == "cls":
        return dict(record, category_id=target["category_id"])
    out = dict(record)
    if "bbox" in out:
        out["bbox"] = list(target["bbox"])
    if gt.iou_type == "segm":
        h, w = gt.image_sizes[target["image_id"]]
        out["segmentation"] = segmentation_to_rle(target["segmentation"], h, w)
    return out


def analyze_errors(gt: Dataset | Mapping | str | Path,
                   predictions: Mapping[int, Detections] | Sequence[Mapping] | str | Path, *,
                   iou_type: str = "bbox", pos_threshold: float = 0.5, bg_threshold: float = 0.1,
                   metric: str | None = None, backend: str = "faster",
                   max_dets: Sequence[int] = (1, 10, 100)) -> ErrorReport:
    """Classify every false positive and missed object, and measure what fixing each type gains.

    Inputs are those of :func:`labkit.metrics.detection.evaluate_coco` (checked the same way).
    ``metric`` is the stat the gains are measured on; default ``AP50`` / ``AP75`` when
    ``pos_threshold`` is 0.5 / 0.75, else ``AP``. A gain is NaN when the metric is undefined
    (no ground truth left, e.g. after removing the misses of a model that found nothing).
    """
    ground_truth = prepare_ground_truth(gt, iou_type=iou_type)
    preds = prepare_results(predictions, ground_truth)
    names = stat_names(max_dets)
    metric = metric or {0.5: "AP50", 0.75: "AP75"}.get(round(pos_threshold, 6), "AP")
    if metric not in names:
        raise ValueError(f"metric must be one of {names}, got {metric!r}")
    match = _coco_match(ground_truth, preds, pos_threshold, int(max_dets[-1]))
    cases = _classify(ground_truth, preds, match, pos_threshold, bg_threshold)
    cases += _misses(match, cases)
    base = evaluate_prepared(ground_truth, preds, backend=backend, max_dets=max_dets).stats
    fixed = {}
    for kind in tqdm(ERROR_TYPES, desc="fixing error types", disable=None):
        fixed_gt, fixed_preds = _fixed_inputs(kind, ground_truth, preds, cases, match.matched_gt)
        fixed[kind] = evaluate_prepared(fixed_gt, fixed_preds, backend=backend, max_dets=max_dets).stats
    return ErrorReport(cases, metric, base[metric], {k: s[metric] - base[metric] for k, s in fixed.items()}, fixed,
                       int((match.status == 1).sum()), int((match.status == 3).sum()), int((match.status == 0).sum()),
                       pos_threshold, bg_threshold)


def error_gallery(report: ErrorReport, per_type: int = 4, *, kinds: Sequence[str] | None = None,
                  order: str = "score", seed: int = 0) -> dict[str, list[ErrorCase]]:
    """Up to ``per_type`` examples of each error type, for plotting (image id, box, score, the
    ground truth it was judged against). ``order="score"`` takes the most confident false
    positives (largest objects for misses); ``order="random"`` samples with ``seed``."""
    if order not in ("score", "random"):
        raise ValueError(f"order must be 'score' or 'random', got {order!r}")
    rng = np.random.default_rng(seed)
    out = {}
    for kind in kinds or ERROR_TYPES:
        if kind not in ERROR_TYPES:
            raise ValueError(f"unknown error type {kind!r}; expected one of {list(ERROR_TYPES)}")
        pool = [c for c in report.cases if c.kind == kind]
        if order == "random":
            pool = [pool[i] for i in rng.permutation(len(pool))]
        else:
            pool.sort(key=lambda c: -(c.score if c.score is not None else c.gt_box[2] * c.gt_box[3]))
        out[kind] = pool[:per_type]
    return out
