"""Score a detector with labkit's COCO evaluation, on boxes mapped back to original pixels.

Metrics are COCO's (https://cocodataset.org/#detection-eval): AP averaged over IoU thresholds
0.50:0.05:0.95, 101 recall points and the categories present; AP50 at IoU 0.5 only; at most
100 detections per image; crowd regions (``iscrowd=1``) are ignored rather than counted as
misses.

Why Ultralytics' own ``metrics/mAP50(B)`` / ``metrics/mAP50-95(B)`` (logged beside these in
``learning_curves.csv``) come out slightly different on the same checkpoint:

- it scores up to ``max_det=300`` detections per image, COCO the 100 best;
- its ground truth is the exported YOLO labels: crowd regions are skipped by the export, so a
  detection on a crowd region counts as a false positive there, while COCO ignores it; boxes are
  also clipped to the image and stored as rounded normalised numbers;
- it validates on "rect" batches (each batch letterboxed to its own stride-aligned shape with
  minimal padding), while labkit letterboxes every image into the square ``imgsz`` canvas, so the
  network sees slightly different pixels and predicts slightly different boxes;
- its AP integrates the interpolated precision envelope with the trapezoid rule over 101 recall
  points (``ultralytics.utils.metrics.compute_ap``), COCO averages the envelope's values at the
  101 points, and its greedy matching differs from COCOeval's in tie-breaking.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

from labkit.data.annotations import Dataset, Detections
from labkit.detect.predict import Detector, load_detector, predict

#: Keys of the COCO summary kept in the logs.
COCO_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100")


def evaluate_detector(weights: str | Path | Detector, dataset: Dataset, *, conf: float = 0.001, iou: float = 0.7,
                      batch: int = 8, device: str = "auto", imgsz: int | None = None,
                      progress: bool = False) -> dict[str, Any]:
    """Predict on every image of ``dataset`` and evaluate with
    :func:`labkit.metrics.detection.evaluate_coco` (``iou_type="bbox"``).

    Returns the COCO summary (:data:`COCO_KEYS`; ``None`` where undefined, e.g. APs when no
    object is small) plus ``images`` and ``detections`` counts.
    """
    det = weights if isinstance(weights, Detector) else load_detector(weights, device=device, imgsz=imgsz)
    return coco_summary(dataset, predict(det, dataset, conf=conf, iou=iou, batch=batch, progress=progress))


def coco_summary(dataset: Dataset, predictions: Mapping[int, Detections]) -> dict[str, Any]:
    """Score ``{image_id: Detections}`` (boxes in original pixels, with scores) against ``dataset``
    with :func:`labkit.metrics.detection.evaluate_coco` (``iou_type="bbox"``): every detector of
    the course (YOLO and Faster R-CNN alike) is scored by this one function.

    Returns the COCO summary (:data:`COCO_KEYS`; ``None`` where undefined, e.g. APs when no
    object is small) plus ``images`` and ``detections`` counts.
    """
    from labkit.metrics.detection import evaluate_coco

    report = evaluate_coco(dataset, predictions, iou_type="bbox")
    stats = {k: None if math.isnan(v) else float(v) for k in COCO_KEYS if (v := report.stats.get(k)) is not None}
    return {**stats, "images": len(predictions), "detections": int(sum(len(d) for d in predictions.values()))}
