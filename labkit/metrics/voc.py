"""PASCAL VOC average precision, with both interpolations and both box conventions.

Definition (M. Everingham et al., "The PASCAL Visual Object Classes (VOC) Challenge", IJCV 2010,
Sec. 4.2, and the devkit's ``VOCevaldet.m`` / ``VOCap.m``): per class, all detections of the test
set are sorted by decreasing score; each is a true positive if its best-overlapping ground-truth
box of that class in its image has IoU >= the threshold (0.5 in VOC) and was not matched by an
earlier detection, else a false positive (a duplicate is a false positive). Objects flagged
``difficult`` are neither: detections matched to them are ignored, and they are not counted as
positives. Precision/recall follow from the cumulative counts and

- ``"all_point"`` (VOC 2010 onwards): AP is the area under the precision envelope
  ``p_interp(r) = max_{r' >= r} p(r')``, summed at every recall change.
- ``"11_point"`` (VOC 2007): AP is the mean of ``p_interp`` at recall 0, 0.1, ..., 1.

VOC and COCO side by side (COCO: :mod:`labkit.metrics.detection`):

============================  =================================  ==============================================
                              VOC (this module)                  COCO
============================  =================================  ==============================================
IoU threshold                 one (0.5)                          ten, .50:.05:.95, averaged (also AP50, AP75)
interpolation                 all points (2010+) or 11 points    101 recall points
box size                      ``x2 - x1 + 1`` (pixel indices)    ``w`` (continuous coordinates)
                              with ``pixel_plus_one=True``
matching                      best-IoU GT, then "taken?" test    best IoU among *unmatched* GT
                              (taken -> false positive)
ignored objects               ``difficult``                      ``iscrowd`` regions; objects outside the area range
detections per image          all                                at most 100 (max_dets)
averaging                     mean over classes (mAP)            mean over classes, IoUs (and sizes for APs/m/l)
============================  =================================  ==============================================

The box convention alone moves numbers: in R. Padilla's 7-image example (IoU 0.3) one detection
has IoU 0.3034 with "+1" widths and 0.2953 without, and AP goes from 24.57 % to 22.54 %.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from labkit.data.annotations import Dataset, Detections
from labkit.errors import DataError
from labkit.metrics.iou import box_iou

#: The two interpolations: VOC 2010+ ("all_point") and VOC 2007 ("11_point").
INTERPOLATIONS = ("all_point", "11_point")


def average_precision(recall: np.ndarray, precision: np.ndarray, interpolation: str = "all_point") -> float:
    """VOC AP from a precision/recall curve (points in detection order, recall non-decreasing)."""
    rec = np.asarray(recall, dtype=np.float64)
    prec = np.asarray(precision, dtype=np.float64)
    if interpolation == "11_point":
        return float(np.mean([prec[rec >= t].max() if (rec >= t).any() else 0.0 for t in np.linspace(0, 1, 11)]))
    if interpolation != "all_point":
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mpre = np.concatenate([[0.0], prec, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # precision envelope
    change = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[change] - mrec[change - 1]) * mpre[change]))


@dataclass
class VocClassResult:
    """One class: AP plus the curve it came from (one point per scored detection)."""

    class_id: int
    ap: float
    num_positives: int
    precision: np.ndarray
    recall: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    scores: np.ndarray


@dataclass
class VocReport:
    """Per-class VOC results and their mean (mAP over classes with positives)."""

    classes: dict[int, VocClassResult]
    iou_threshold: float
    interpolation: str
    pixel_plus_one: bool

    @property
    def mean_ap(self) -> float:
        aps = [c.ap for c in self.classes.values() if c.num_positives > 0]
        return float(np.mean(aps)) if aps else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"iou_threshold": self.iou_threshold, "interpolation": self.interpolation,
                "pixel_plus_one": self.pixel_plus_one, "mAP": self.mean_ap,
                "per_class": [{"class_id": c.class_id, "AP": c.ap, "num_positives": c.num_positives,
                               "num_detections": int(c.scores.size)} for c in self.classes.values()]}


def _as_mapping(gt: Dataset | Mapping[int, Detections]) -> Mapping[int, Detections]:
    return {r.id: r.detections for r in gt.images} if isinstance(gt, Dataset) else gt


def _voc_class(cid: int, gt: Mapping[int, Detections], preds: Mapping[int, Detections],
               iou_threshold: float, pixel_plus_one: bool, interpolation: str) -> VocClassResult:
    gts = {i: d[d.class_id == cid] for i, d in gt.items()}
    difficult = {i: np.asarray(d.get("difficult", np.zeros(len(d))), dtype=bool) for i, d in gts.items()}
    taken = {i: np.zeros(len(d), dtype=bool) for i, d in gts.items()}
    dets = [(i, d[d.class_id == cid]) for i, d in preds.items()]
    image = np.concatenate([np.full(len(d), i) for i, d in dets]) if dets else np.zeros(0, np.int64)
    boxes = np.concatenate([d.xyxy for _, d in dets]) if dets else np.zeros((0, 4))
    scores = np.concatenate([d.score for _, d in dets]) if dets else np.zeros(0)
    order = np.argsort(-scores, kind="stable")
    tp, fp = np.zeros(order.size), np.zeros(order.size)
    for rank, j in enumerate(order):
        g = gts.get(int(image[j]))
        iou = box_iou(boxes[j], g.xyxy, pixel_plus_one=pixel_plus_one)[0] if g is not None and len(g) else np.zeros(0)
        if iou.size == 0 or iou.max() < iou_threshold:
            fp[rank] = 1
            continue
        best = int(np.argmax(iou))
        if difficult[int(image[j])][best]:
            continue  # matched a difficult object: ignored
        if taken[int(image[j])][best]:
            fp[rank] = 1  # duplicate
        else:
            tp[rank] = taken[int(image[j])][best] = 1
    keep = (tp + fp) > 0
    tp, fp, sorted_scores = tp[keep], fp[keep], scores[order][keep]
    npos = int(sum((~difficult[i]).sum() for i in gts))
    ctp, cfp = np.cumsum(tp), np.cumsum(fp)
    recall = ctp / npos if npos else np.zeros_like(ctp)
    precision = ctp / (ctp + cfp)  # every kept rank is a TP or an FP, so never 0 / 0
    ap = average_precision(recall, precision, interpolation) if npos else float("nan")
    return VocClassResult(cid, ap, npos, precision, recall, tp, fp, sorted_scores)


def voc_evaluate(gt: Dataset | Mapping[int, Detections], predictions: Mapping[int, Detections], *,
                 iou_threshold: float = 0.5, interpolation: str = "all_point",
                 pixel_plus_one: bool = False) -> VocReport:
    """VOC AP per class of ``predictions`` (``{image_id: Detections}`` with scores) against ``gt``.

    Ground-truth objects may carry ``data["difficult"]`` (bool). ``pixel_plus_one`` applies the
    devkit's "+1" to widths, heights and intersections (boxes are ``[x, y, x + w, y + h]``).
    A class without positives gets AP NaN and is left out of :attr:`VocReport.mean_ap`.
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    gt_map = _as_mapping(gt)
    for image_id, det in predictions.items():
        if image_id not in gt_map:
            raise DataError("predictions refer to an image that is not in the ground truth", record=f"image {image_id}")
        if det.score is None:
            raise DataError("predictions need scores", record=f"image {image_id}")
        if len(det) and not np.isfinite(det.xywh).all():
            raise DataError("a predicted box has a NaN or infinite coordinate", record=f"image {image_id}")
    classes = sorted({int(c) for d in gt_map.values() for c in d.class_id} |
                     {int(c) for d in predictions.values() for c in d.class_id})
    return VocReport({c: _voc_class(c, gt_map, predictions, iou_threshold, pixel_plus_one, interpolation)
                      for c in classes}, iou_threshold, interpolation, pixel_plus_one)
