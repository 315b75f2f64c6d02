"""An exam-grade detection report: every setting that moves the numbers, written next to them.

A detection score is only reproducible when the reader knows how the predictions were made and
how they were scored. :class:`EvalSettings` holds the prediction side (checkpoint and its sha256,
dataset version and split, network input size, score threshold, NMS type and IoU, detections
kept per image); the :class:`~labkit.metrics.detection.CocoReport` holds the scoring side (IoU
thresholds, recall points, area ranges, max-detections settings, evaluator). :func:`write_detection_report`
writes both, with the COCO summary, per-class and per-size AP and (optionally) VOC AP@0.5, to
``<stem>.md`` and ``<stem>.json``.

:func:`predict_split` runs a detector with exactly the settings' knobs, so that a "before / after"
comparison can change one field (``dataclasses.replace``) and :func:`settings_diff` can prove
that nothing else moved.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from labkit.artifacts import artifacts_dir, project_root, write_json
from labkit.data.annotations import Dataset, Detections
from labkit.detect.predict import Detector, predict
from labkit.errors import DataError
from labkit.metrics.detection import CocoReport, json_number
from labkit.metrics.errors import SIZE_LABELS, size_label
from labkit.metrics.voc import VocReport
from labkit.repro import sha256_file

#: NMS variants :func:`predict_split` runs (Ultralytics' greedy NMS, per class or across classes).
NMS_TYPES = ("class-aware", "class-agnostic")
#: COCO area ranges in square pixels, as COCOeval defines them.
AREA_RANGES = {"all": (0.0, 1e10), "small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e10)}
#: Rows of the settings table: field -> human label (the JSON uses the field names).
SETTING_LABELS = {
    "checkpoint": "checkpoint", "checkpoint_sha256": "checkpoint sha256", "dataset": "dataset version",
    "dataset_sha256": "split annotations sha256", "split": "split", "num_images": "images evaluated",
    "imgsz": "image size (network input, square letterbox)", "conf": "score threshold", "nms": "NMS type",
    "nms_iou": "NMS IoU", "max_det": "max detections per image (after NMS)",
    "iou_thresholds": "IoU thresholds (COCO AP)", "recall_points": "recall points", "coco_max_dets": "COCO max detections",
    "area_ranges": "area ranges (px^2)", "evaluator": "evaluator", "crowd": "crowd regions", "voc": "VOC AP setting",
}


@dataclass(frozen=True)
class EvalSettings:
    """How predictions were made for an evaluation (see :func:`evaluation_settings`).

    Attributes:
        checkpoint: weights file (relative to the project when inside it); ``checkpoint_sha256`` its bytes' hash.
        dataset: dataset name and generator version, size and seed (from its ``manifest.json``).
        dataset_sha256: sha256 of the split's annotation file.
        split: the split evaluated; ``num_images`` its number of images.
        imgsz: square network input size each image is letterboxed to.
        conf: score threshold (detections below it are dropped before NMS).
        nms: ``"class-aware"`` (boxes suppress only boxes of their class) or ``"class-agnostic"``.
        nms_iou: IoU above which NMS suppresses the lower-scoring box.
        max_det: detections kept per image after NMS.
    """

    checkpoint: str
    checkpoint_sha256: str
    dataset: str
    dataset_sha256: str
    split: str
    num_images: int
    imgsz: int
    conf: float = 0.001
    nms: str = "class-aware"
    nms_iou: float = 0.7
    max_det: int = 300

    def __post_init__(self) -> None:
        if self.nms not in NMS_TYPES:
            raise DataError(f"nms must be one of {NMS_TYPES}, got {self.nms!r}")
        if not 0.0 <= self.conf <= 1.0 or not 0.0 < self.nms_iou <= 1.0:
            raise DataError(f"conf must be in [0, 1] and nms_iou in (0, 1], got {self.conf} and {self.nms_iou}")
        if self.imgsz < 32 or self.imgsz % 32 or self.max_det < 1:
            raise DataError(f"imgsz must be a multiple of 32 and max_det >= 1, got {self.imgsz} and {self.max_det}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _display_path(path: Path) -> str:
    path = path.resolve()
    try:
        return path.relative_to(project_root().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def dataset_version(data_root: str | Path) -> str:
    """``"<name> <generator_version> (size <size>, seed <seed>)"`` from a dataset's ``manifest.json``
    (the folder name when there is no manifest)."""
    manifest = Path(data_root) / "manifest.json"
    if not manifest.is_file():
        return Path(data_root).name
    m = json.loads(manifest.read_text(encoding="utf-8"))
    return f"{m.get('name', '?')} {m.get('generator_version', '?')} (size {m.get('size', '?')}, seed {m.get('seed', '?')})"


def evaluation_settings(weights: str | Path, data_root: str | Path, split: str = "val", *, imgsz: int,
                        conf: float = 0.001, nms: str = "class-aware", nms_iou: float = 0.7,
                        max_det: int = 300) -> EvalSettings:
    """The :class:`EvalSettings` of evaluating ``weights`` on ``annotations/instances_<split>.json``
    of ``data_root``: hashes the checkpoint and the split's annotation file, reads the dataset
    version from its manifest and counts the split's images."""
    weights, root = Path(weights), Path(data_root)
    ann = root / "annotations" / f"instances_{split}.json"
    for path in (weights, ann):
        if not path.is_file():
            raise DataError("file not found", source=str(path))
    images = json.loads(ann.read_text(encoding="utf-8")).get("images", [])
    return EvalSettings(checkpoint=_display_path(weights), checkpoint_sha256=sha256_file(weights),
                        dataset=dataset_version(root), dataset_sha256=sha256_file(ann), split=split,
                        num_images=len(images), imgsz=int(imgsz), conf=float(conf), nms=nms,
                        nms_iou=float(nms_iou), max_det=int(max_det))


def settings_diff(before: EvalSettings, after: EvalSettings) -> dict[str, tuple[Any, Any]]:
    """Fields whose values differ: ``{field: (before, after)}`` (empty when identical)."""
    a, b = before.to_dict(), after.to_dict()
    return {k: (a[k], b[k]) for k in a if a[k] != b[k]}


def predict_split(detector: Detector, dataset: Dataset, settings: EvalSettings, *, batch: int = 8,
                  progress: bool = False) -> dict[int, Detections]:
    """Predict every image of ``dataset`` with the knobs of ``settings`` (input size, score
    threshold, NMS type and IoU, max detections); boxes in original pixels.

    The detector's input size is set to ``settings.imgsz`` for this call only. Raises
    :class:`~labkit.errors.DataError` when ``dataset`` is not the split the settings name
    (different number of images).
    """
    if len(dataset) != settings.num_images:
        raise DataError(f"the settings describe {settings.num_images} images, the dataset has {len(dataset)}",
                        source=dataset.source)
    det = detector if detector.imgsz == settings.imgsz else dataclasses.replace(detector, imgsz=settings.imgsz)
    return predict(det, dataset, conf=settings.conf, iou=settings.nms_iou, batch=batch, max_det=settings.max_det,
                   agnostic=settings.nms == "class-agnostic", progress=progress)


# --------------------------------------------------------------------------- the report
def _scoring_settings(report: CocoReport, voc: Mapping[str, VocReport] | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "iou_thresholds": [round(float(t), 4) for t in report.iou_thresholds],
        "recall_points": int(len(report.recall_thresholds)),
        "coco_max_dets": list(report.max_dets),
        "area_ranges": {k: [v[0], v[1]] for k, v in AREA_RANGES.items()},
        "evaluator": f"COCOeval ({report.backend} backend), iou_type {report.iou_type}",
        "crowd": "iscrowd=1 regions ignored (detections on them count neither as TP nor FP)",
    }
    if voc:
        first = next(iter(voc.values()))
        out["voc"] = {"iou_threshold": first.iou_threshold, "interpolations": [v.interpolation for v in voc.values()],
                      "pixel_plus_one": first.pixel_plus_one}
    return out


def _num(value: float) -> float | None:
    return json_number(float(value))


def size_counts(gt: Dataset) -> dict[str, int]:
    """Non-crowd ground-truth objects per COCO size bucket (by annotated area, else box area)."""
    counts = dict.fromkeys(SIZE_LABELS, 0)
    for rec in gt.images:
        det = rec.detections
        crowd = det.get("iscrowd")
        area = det.get("area")
        areas = det.box_area if area is None else area
        for i, a in enumerate(areas):
            if crowd is None or int(crowd[i]) == 0:
                counts[size_label(float(a if a is not None else det.box_area[i]))] += 1
    return counts


def report_payload(report: CocoReport, settings: EvalSettings, *, voc: Mapping[str, VocReport] | None = None,
                   gt: Dataset | None = None, title: str = "Detection evaluation report") -> dict[str, Any]:
    """The JSON content of :func:`write_detection_report` (settings, COCO, per size, VOC)."""
    areas = [a for a in ("small", "medium", "large") if a in report.area_labels]
    per_size = {a: {"AP": _num(report.stats[f"AP{a[0]}"]), "AR100": _num(report.stats[f"AR{a[0]}"]),
                    "per_class_AP": {report.category_names.get(c, str(c)): _num(report.class_ap(c, area=a))
                                     for c in report.category_ids}} for a in areas}
    if gt is not None:
        for a, n in size_counts(gt).items():
            per_size[a]["num_gt"] = n
    payload: dict[str, Any] = {
        "title": title,
        "settings": {**settings.to_dict(), **_scoring_settings(report, voc)},
        "coco": report.to_dict(),
        "per_size": per_size,
    }
    if voc:
        names = report.category_names
        payload["voc"] = {key: {"mAP": _num(v.mean_ap), "per_class": {names.get(c, str(c)): _num(r.ap)
                                                                       for c, r in v.classes.items()}}
                          for key, v in voc.items()}
    return payload


def _fmt(value: Any, digits: int | None = 3) -> str:
    """A value for a Markdown cell: ``digits`` decimals (None: shortest form, for settings)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:g}" if digits is None else f"{value:.{digits}f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v, digits)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v, digits) for v in value) + "]"
    return str(value)


def report_markdown(payload: Mapping[str, Any], digits: int = 3) -> str:
    """Markdown for a :func:`report_payload`: settings table, COCO summary, per class, per size, VOC."""
    s = payload["settings"]
    lines = [f"# {payload['title']}", "", "## Evaluation settings", "", "| setting | value |", "|---|---|"]
    lines += [f"| {label} | {_fmt(s[key], None)} |" for key, label in SETTING_LABELS.items() if key in s]
    coco = payload["coco"]
    stats = coco["stats"]
    lines += ["", "## COCO summary", "",
              f"{coco['num_images']} images, {coco['num_gt']} objects, {coco['num_predictions']} predictions.", "",
              "| " + " | ".join(stats) + " |", "|" + "---|" * len(stats),
              "| " + " | ".join(_fmt(v, digits) for v in stats.values()) + " |", "",
              "## Per class", "", "| id | class | GT | predictions | AP | AP50 | AP75 |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['category_id']} | {r['name']} | {r['num_gt']} | {r['num_predictions']} | {_fmt(r['AP'], digits)} | "
              f"{_fmt(r['AP50'], digits)} | {_fmt(r['AP75'], digits)} |" for r in coco["per_class"]]
    sizes = payload["per_size"]
    lines += ["", "## Per object size (COCO area ranges)", "",
              "| size | GT | AP | AR100 | per-class AP |", "|---|---|---|---|---|"]
    lines += [f"| {a} | {v.get('num_gt', 'n/a')} | {_fmt(v['AP'], digits)} | {_fmt(v['AR100'], digits)} | "
              f"{_fmt(v['per_class_AP'], digits)} |" for a, v in sizes.items()]
    if "voc" in payload:
        lines += ["", "## PASCAL VOC AP at IoU 0.5", "", "| interpolation | mAP | per class |", "|---|---|---|"]
        lines += [f"| {k} | {_fmt(v['mAP'], digits)} | {_fmt(v['per_class'], digits)} |" for k, v in payload["voc"].items()]
    lines += ["", "Undefined values (no ground truth in a class or size range) are `n/a` here and `null` in the JSON.", ""]
    return "\n".join(lines)


def write_detection_report(report: CocoReport, settings: EvalSettings, out_dir: str | Path | None = None, *,
                           voc: Mapping[str, VocReport] | None = None, gt: Dataset | None = None,
                           stem: str = "detection_report", title: str = "Detection evaluation report",
                           digits: int = 3) -> tuple[Path, Path]:
    """Write ``<out_dir>/<stem>.md`` and ``<stem>.json``: every evaluation setting and the results.

    Args:
        report: the COCO evaluation of the predictions :func:`predict_split` made with ``settings``.
        settings: how the predictions were made (:func:`evaluation_settings`).
        out_dir: target folder (default :func:`labkit.artifacts.artifacts_dir`).
        voc: optional VOC reports by name (e.g. ``{"all_point": ..., "11_point": ...}``), same predictions.
        gt: the evaluated split, to count ground-truth objects per size bucket.
        stem, title, digits: file stem, heading, decimals in the Markdown (the JSON keeps full precision).

    Returns:
        ``(markdown_path, json_path)``.
    """
    if report.num_images != settings.num_images:
        raise DataError(f"the report scores {report.num_images} images, the settings describe {settings.num_images}")
    folder = Path(out_dir) if out_dir is not None else artifacts_dir()
    payload = report_payload(report, settings, voc=voc, gt=gt, title=title)
    json_path = write_json(folder / f"{stem}.json", payload)
    md_path = folder / f"{stem}.md"
    md_path.write_text(report_markdown(payload, digits), encoding="utf-8")
    return md_path, json_path
