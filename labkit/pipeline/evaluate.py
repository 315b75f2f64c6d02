"""Scores of a pipeline run against ground truth, through the course's metric wrappers.

Ground truth comes from a MOTChallenge sequence's ``gt/gt.txt`` (boxes, classes, track ids;
``consider = 0`` boxes become COCO crowd regions, which neither count as misses nor punish a
detection; ``visibility`` is kept for the occlusion slice) or from a COCO instances file whose ``file_name`` entries end the frames' paths
(boxes, masks, optional ``track_id``). Only the frames of the run are scored.

* box AP and mask AP: COCO AP@[.5:.95], AP50, AP75 and AP by object size
  (:func:`labkit.metrics.detection.evaluate_coco`);
* mIoU: the per-class IoU of the label maps, averaged over classes present
  (:class:`labkit.metrics.segmentation.ConfusionMatrix`); the ground-truth map paints each
  instance mask with its class, pixels claimed by two classes or by a crowd region are ignored;
* tracking: HOTA, MOTA, IDF1, ID switches (:func:`labkit.metrics.tracking.evaluate_tracking`,
  TrackEval, class-agnostic) of the confirmed tracks, when the run has a tracker.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from labkit.data.annotations import Detections
from labkit.data.masks import segmentation_to_mask
from labkit.errors import DataError
from labkit.pipeline.records import confirmed_tracks, record_to_detections

IGNORE = 255
#: COCO summary numbers kept: AP over IoU .5:.95, at .5 and .75, and by object size (the size
#: slices: small < 32^2, medium < 96^2, large; ``None`` where no ground truth has that size).
AP_STATS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
#: TrackEval preprocessing for tracking scores: every class counts (no pedestrian filter), boxes
#: marked consider = 0 (crowd) are dropped with the predictions they match.
TRACKING_PREPROCESS = "mot15"


@dataclass
class Truth:
    """Ground truth per frame id (:class:`Detections` with ``data["iscrowd"]``), its categories
    and where it came from."""

    frames: dict[int, Detections]
    categories: list[dict[str, Any]]
    source: str

    @property
    def has_masks(self) -> bool:
        return all(d.segmentation is not None for d in self.frames.values() if len(d))

    @property
    def has_tracks(self) -> bool:
        return all(d.track_id is not None for d in self.frames.values() if len(d))


def truth_from_mot(gt_file: str | Path, records: Sequence[Mapping[str, Any]], class_names: Mapping[int, str]) -> Truth:
    """Ground truth of the run's frames from a MOTChallenge ``gt.txt``."""
    from labkit.data.mot import read_mot

    per_frame = read_mot(gt_file, "gt")
    frames = {}
    for r in records:
        gt = per_frame.get(r["frame_id"], Detections.empty())
        consider = gt.get("consider", np.ones(len(gt), dtype=np.int64))
        frames[r["frame_id"]] = Detections(gt.xywh, gt.class_id, track_id=gt.track_id if len(gt) else None,
                                           data={"iscrowd": 1 - consider,
                                                 "visibility": gt.get("visibility", np.ones(len(gt)))})
    return Truth(frames, [{"id": int(k), "name": v} for k, v in sorted(class_names.items())], str(gt_file))


def truth_from_coco(path: str | Path, records: Sequence[Mapping[str, Any]]) -> Truth:
    """Ground truth of the run's frames from a COCO file; every frame must have its image."""
    from labkit.data.coco import load_coco

    ds = load_coco(path)
    frames = {}
    for r in records:
        src = Path(r["source"]).as_posix()
        hits = [im for im in ds.images if src == im.file_name or src.endswith("/" + im.file_name.lstrip("/"))]
        if len(hits) != 1:
            raise DataError(f"{len(hits)} images match frame {r['frame_id']} ({r['source']}); need exactly one",
                            source=str(path))
        image = hits[0]
        if (image.width, image.height) != (r["width"], r["height"]):
            raise DataError(f"image {image.file_name} is {image.width}x{image.height}, the frame {r['width']}x{r['height']}",
                            source=str(path), record=image.id)
        gt = image.detections
        crowd = gt.get("iscrowd", np.zeros(len(gt), dtype=np.int64))
        tracks = gt.track_id if gt.track_id is not None else gt.get("track_id")
        data = {"iscrowd": np.asarray(crowd, dtype=np.int64)}
        visibility = gt.get("visibility")
        if visibility is not None and not any(v is None for v in visibility):
            data["visibility"] = np.asarray(visibility, dtype=np.float64)
        frames[r["frame_id"]] = Detections(gt.xywh, gt.class_id, segmentation=gt.segmentation,
                                           track_id=None if tracks is None else tracks.astype(np.int64), data=data)
    return Truth(frames, list(ds.categories), str(path))


def _coco_gt(truth: Truth, records: Sequence[Mapping[str, Any]], with_masks: bool) -> dict[str, Any]:
    images, anns = [], []
    for r in records:
        images.append({"id": r["frame_id"], "file_name": r["source"], "width": r["width"], "height": r["height"]})
        gt = truth.frames[r["frame_id"]]
        for i in range(len(gt)):
            a = {"id": len(anns) + 1, "image_id": r["frame_id"], "category_id": int(gt.class_id[i]),
                 "bbox": [float(v) for v in gt.xywh[i]], "area": float(gt.box_area[i]),
                 "iscrowd": int(gt.data["iscrowd"][i])}
            if with_masks:
                a["segmentation"] = gt.segmentation[i]
                a["area"] = float(segmentation_to_mask(gt.segmentation[i], r["height"], r["width"]).sum())
            anns.append(a)
    return {"images": images, "annotations": anns, "categories": truth.categories}


def _ap(report: Any) -> dict[str, Any]:
    d = report.to_dict()
    return {k: d["stats"][k] for k in AP_STATS} | {"num_gt": d["num_gt"], "num_predictions": d["num_predictions"]}


def semantic_truth(gt: Detections, height: int, width: int) -> np.ndarray:
    """A label map painted from instance masks; overlaps of two classes and crowd regions are
    :data:`IGNORE`."""
    labels = np.zeros((height, width), dtype=np.uint8)
    claimed = np.zeros((height, width), dtype=np.int64)
    masks = gt.masks(height, width)
    for m, cls, crowd in zip(masks, gt.class_id, gt.data["iscrowd"]):
        if crowd:
            continue
        clash = m & (labels != 0) & (labels != cls)
        labels[m] = cls
        claimed[clash] = 1
    for m, crowd in zip(masks, gt.data["iscrowd"]):
        if crowd:
            claimed[m] = 1
    labels[claimed.astype(bool)] = IGNORE
    return labels


def _semantic_pred(record: Mapping[str, Any]) -> np.ndarray:
    labels = np.zeros((record["height"], record["width"]), dtype=np.uint8)
    for cls, rle in sorted((record["semantic"] or {}).items(), key=lambda kv: int(kv[0])):
        labels[segmentation_to_mask(rle, record["height"], record["width"])] = int(cls)
    return labels


def evaluate_records(records: Sequence[Mapping[str, Any]], truth: Truth, *, tracked: bool = False) -> dict[str, Any]:
    """Every score the records and the ground truth allow (see the module docstring); tracking
    scores when ``tracked`` (the run had a tracker, even if it output no track)."""
    from labkit.metrics.detection import evaluate_coco

    preds = {r["frame_id"]: record_to_detections(r) for r in records}
    out: dict[str, Any] = {"ground_truth": truth.source, "frames": len(records)}
    out["box"] = _ap(evaluate_coco(_coco_gt(truth, records, False), preds, "bbox"))
    segmented = bool(records) and all(r["semantic"] is not None for r in records)
    if truth.has_masks and segmented and all(o["mask"] is not None for r in records for o in r["objects"]):
        masked = {k: d if len(d) else d.with_fields(segmentation=[]) for k, d in preds.items()}  # empty frames too
        out["mask"] = _ap(evaluate_coco(_coco_gt(truth, records, True), masked, "segm"))
    if truth.has_masks and segmented:
        from labkit.metrics.segmentation import ConfusionMatrix

        num_classes = 1 + max(int(c["id"]) for c in truth.categories)
        cm = ConfusionMatrix(num_classes, ignore_index=IGNORE)
        for r in records:
            cm.update(semantic_truth(truth.frames[r["frame_id"]], r["height"], r["width"]), _semantic_pred(r),
                      source=r["source"])
        names = ["background"] + [next((c["name"] for c in truth.categories if c["id"] == k), str(k))
                                  for k in range(1, num_classes)]
        summary = cm.summary(names)
        out["semantic"] = {k: summary[k] for k in ("mean_iou", "mean_dice", "pixel_accuracy", "per_class")}
    if truth.has_tracks and tracked:
        from labkit.metrics.tracking import evaluate_tracking

        gt = {k: v.with_fields(consider=1 - v.data["iscrowd"]) for k, v in truth.frames.items()}
        tracked = {r["frame_id"]: confirmed_tracks(r) for r in records}
        report = evaluate_tracking(gt, tracked, num_frames=len(records), preprocess=TRACKING_PREPROCESS,
                                   gt_source=truth.source, pred_source="predictions.jsonl (confirmed tracks)")
        out["tracking"] = report.summary() | {"preprocess": TRACKING_PREPROCESS}
    return out
