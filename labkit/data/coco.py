"""COCO JSON <-> :class:`~labkit.data.annotations.Dataset`, losslessly.

Reading then writing a COCO file gives back the same JSON content: every image and
annotation field labkit does not model is kept (``ImageRecord.extra``, ``Detections.data``).
Detection results ("results format", https://cocodataset.org/#format-results) are a flat
list of ``{image_id, category_id, bbox|segmentation, score}``; see :func:`detections_to_results`
and :func:`results_to_detections`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from labkit.data.annotations import Dataset, Detections, ImageRecord
from labkit.data.masks import segmentation_area
from labkit.errors import DataError

_IMAGE_KEYS = ("id", "file_name", "width", "height")
_ANN_MODELLED = ("image_id", "category_id", "bbox", "segmentation", "score", "track_id", "keypoints")


def read_json(path: str | Path) -> Any:
    """Parse a JSON file, turning an unreadable, non-UTF-8, empty or malformed file into a
    :class:`DataError` naming it (JSON text is UTF-8: RFC 8259, section 8.1)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot read file ({exc.strerror})", source=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"not a UTF-8 text file (byte {exc.start}: {exc.reason}); JSON must be UTF-8",
                        source=str(path)) from exc
    if not text.strip():
        raise DataError("file is empty", source=str(path))
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", source=str(path)) from exc


def _number(value: Any, what: str, source: str, record: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f"{what} must be a number, got {value!r}", source=source, record=record)
    if not math.isfinite(value):
        raise DataError(f"{what} is not finite ({value!r})", source=source, record=record)
    return float(value)


def _bbox(value: Any, source: str, record: Any) -> list[float]:
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise DataError(f"bbox must be a list of 4 numbers [x, y, w, h], got {value!r}", source=source, record=record)
    return [_number(v, "bbox coordinate", source, record) for v in value]


def _keypoints(value: Any, source: str, record: Any) -> np.ndarray:
    """A COCO keypoints list ``[x1, y1, v1, x2, ...]`` -> ``(K, 3)`` float64."""
    try:
        flat = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"keypoints must be a list of numbers, got {value!r}", source=source, record=record) from exc
    if flat.size % 3:
        raise DataError(f"keypoints must be (x, y, visibility) triples, got {flat.size} values", source=source, record=record)
    return flat.reshape(-1, 3)


def _detections(anns: list[dict], source: str) -> Detections:
    if not anns:
        return Detections.empty()
    n = len(anns)
    boxes = np.array([_bbox(a.get("bbox"), source, a.get("id")) for a in anns], dtype=np.float64).reshape(n, 4)
    cls = [a["category_id"] for a in anns]
    has = {k: [k in a for a in anns] for k in ("score", "track_id", "segmentation", "keypoints")}
    fields: dict[str, Any] = {}
    if any(has["score"]) and not all(has["score"]):
        missing = next(a.get("id") for a, h in zip(anns, has["score"]) if not h)
        raise DataError("'score' is missing while other records have it", source=source, record=missing)
    if all(has["score"]):
        fields["score"] = [_number(a["score"], "score", source, a.get("id")) for a in anns]
    if all(has["track_id"]):
        fields["track_id"] = [a["track_id"] for a in anns]
    if any(has["segmentation"]):
        fields["segmentation"] = [a.get("segmentation") for a in anns]
    if all(has["keypoints"]):
        kps = [_keypoints(a["keypoints"], source, a.get("id")) for a in anns]
        if len({k.shape for k in kps}) == 1:
            fields["keypoints"] = np.stack(kps)
    extra_keys: list[str] = []
    for a in anns:
        for k in a:
            if k not in _ANN_MODELLED and k not in extra_keys:
                extra_keys.append(k)
    # the order of the first record's keys is kept in data, so writing back is stable
    data = {}
    for k in extra_keys:
        col = np.empty(n, dtype=object)
        col[:] = [a.get(k, _MISSING) for a in anns]
        data[k] = col
    if any(has["keypoints"]) and "keypoints" not in fields:
        col = np.empty(n, dtype=object)
        col[:] = [a.get("keypoints", _MISSING) for a in anns]
        data["keypoints"] = col
    if any(has["track_id"]) and not all(has["track_id"]):
        col = np.empty(n, dtype=object)
        col[:] = [a.get("track_id", _MISSING) for a in anns]
        data["track_id"] = col
    try:
        return Detections(boxes, cls, data=data, **fields)
    except (TypeError, ValueError) as exc:
        raise DataError(f"malformed annotation fields ({exc})", source=source) from exc


class _Missing:
    """Marks a field a record did not have (distinct from JSON null)."""

    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


def coco_to_dataset(coco: Mapping[str, Any], *, root: str | Path | None = None, source: str = "<memory>") -> Dataset:
    """Build a :class:`Dataset` from a parsed COCO dict (images, annotations, categories).

    Raises :class:`DataError` naming ``source`` and the record for structural problems
    (missing keys, annotations on unknown images, non-numeric boxes). Semantic checks
    (boxes out of bounds, unknown categories ...) belong to :mod:`labkit.data.validate`.
    """
    if not isinstance(coco, Mapping):
        raise DataError("a COCO file must hold a JSON object", source=source)
    for key in ("images", "annotations", "categories"):
        if key not in coco:
            raise DataError(f"missing top-level key '{key}'", source=source)
        if not isinstance(coco[key], list):
            raise DataError(f"'{key}' must be a list", source=source)
    per_image: dict[int, list[dict]] = {}
    images: list[ImageRecord] = []
    for img in coco["images"]:
        if not isinstance(img, Mapping):
            raise DataError("image entry is not an object", source=source, record=img)
        for key in _IMAGE_KEYS:
            if key not in img:
                raise DataError(f"image entry lacks '{key}'", source=source, record=img.get("id", img.get("file_name")))
        if img["id"] in per_image:
            raise DataError("duplicate image id", source=source, record=img["id"])
        per_image[img["id"]] = []
        extra = {k: v for k, v in img.items() if k not in _IMAGE_KEYS}
        images.append(ImageRecord(img["id"], img["file_name"], img["width"], img["height"], extra=extra))
    for ann in coco["annotations"]:
        if not isinstance(ann, Mapping):
            raise DataError("annotation entry is not an object", source=source, record=ann)
        for key in ("image_id", "category_id", "bbox"):
            if key not in ann:
                raise DataError(f"annotation lacks '{key}'", source=source, record=ann.get("id"))
        if ann["image_id"] not in per_image:
            raise DataError(f"annotation refers to unknown image id {ann['image_id']!r}", source=source, record=ann.get("id"))
        per_image[ann["image_id"]].append(dict(ann))
    for rec in images:
        rec.detections = _detections(per_image[rec.id], source)
    extra_top = {k: v for k, v in coco.items() if k not in ("images", "annotations", "categories", "info", "licenses")}
    info = dict(coco.get("info", {}))
    if extra_top:
        info["_extra_top_level"] = extra_top
    return Dataset(
        categories=[dict(c) for c in coco["categories"]],
        images=images,
        info=info,
        licenses=coco.get("licenses"),
        root=Path(root) if root is not None else None,
        source=source,
    )


def load_coco(path: str | Path, image_root: str | Path | None = None) -> Dataset:
    """Read a COCO instances file. ``image_root`` defaults to ``<json dir>/../images`` when that
    folder exists, else the JSON's own folder."""
    path = Path(path)
    if image_root is None:
        guess = path.parent.parent / "images"
        image_root = guess if guess.is_dir() else path.parent
    return coco_to_dataset(read_json(path), root=image_root, source=str(path))


def _ann_dicts(rec: ImageRecord, next_id: list[int]) -> list[dict]:
    d = rec.detections
    out = []
    for i in range(len(d)):
        ann: dict[str, Any] = {}
        for key, col in d.data.items():
            value = col[i]
            if value is _MISSING:
                continue
            ann[key] = value.item() if isinstance(value, np.generic) else value
        if "id" not in ann:
            ann["id"] = next_id[0]
            next_id[0] += 1
        ann["image_id"] = rec.id
        ann["category_id"] = int(d.class_id[i])
        ann["bbox"] = [float(v) for v in d.xywh[i]]
        segm = None if d.segmentation is None else d.segmentation[i]
        if segm is not None:
            ann["segmentation"] = segm
        if "area" not in ann:
            ann["area"] = segmentation_area(segm, rec.height, rec.width) if segm is not None else float(d.box_area[i])
        if "iscrowd" not in ann:
            ann["iscrowd"] = 0
        if d.score is not None:
            ann["score"] = float(d.score[i])
        if d.track_id is not None:
            ann["track_id"] = int(d.track_id[i])
        if d.keypoints is not None:
            ann["keypoints"] = [float(v) for v in d.keypoints[i].reshape(-1)]
        out.append(ann)
    return out


def dataset_to_coco(ds: Dataset) -> dict[str, Any]:
    """:class:`Dataset` -> COCO dict. Annotations without an ``id`` get fresh ids after the
    largest existing one; ``area`` and ``iscrowd`` are filled in when absent."""
    info = dict(ds.info)
    extra_top = info.pop("_extra_top_level", {})
    used = [int(v) for r in ds.images for v in r.detections.data.get("id", []) if v is not _MISSING and v is not None]
    next_id = [max(used, default=0) + 1]
    coco: dict[str, Any] = {"info": info}
    if ds.licenses is not None:
        coco["licenses"] = ds.licenses
    coco["images"] = [{"id": r.id, "file_name": r.file_name, "width": r.width, "height": r.height, **r.extra} for r in ds.images]
    coco["annotations"] = [a for r in ds.images for a in _ann_dicts(r, next_id)]
    coco["categories"] = ds.categories
    coco.update(extra_top)
    return coco


def save_coco(ds: Dataset, path: str | Path) -> Path:
    """Write a dataset as COCO JSON (atomically: a temp file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(dataset_to_coco(ds)), encoding="utf-8")
    tmp.replace(path)
    return path


def detections_to_results(predictions: Mapping[int, Detections], *, with_masks: bool = False) -> list[dict]:
    """Per-image predictions -> COCO results list (``bbox``, ``score``, optional ``segmentation``)."""
    results = []
    for image_id, det in predictions.items():
        if det.score is None:
            raise DataError("predictions need scores", record=f"image {image_id}")
        for i in range(len(det)):
            r = {"image_id": int(image_id), "category_id": int(det.class_id[i]),
                 "bbox": [float(v) for v in det.xywh[i]], "score": float(det.score[i])}
            if with_masks:
                if det.segmentation is None or det.segmentation[i] is None:
                    raise DataError("segm results need a segmentation for every prediction", record=f"image {image_id}")
                r["segmentation"] = det.segmentation[i]
            results.append(r)
    return results


def results_to_detections(results: Iterable[Mapping[str, Any]], image_ids: Iterable[int], *, source: str = "<memory>") -> dict[int, Detections]:
    """COCO results list -> ``{image_id: Detections}`` (every listed image present, maybe empty).

    Raises :class:`DataError` for results on images not in ``image_ids``, missing or
    out-of-range scores, and malformed boxes.
    """
    ids = [int(i) for i in image_ids]
    grouped: dict[int, list[dict]] = {i: [] for i in ids}
    if not isinstance(results, list):
        raise DataError("a results file must hold a JSON list", source=source)
    for k, r in enumerate(results):
        rec = f"result #{k}"
        if not isinstance(r, Mapping):
            raise DataError("result is not an object", source=source, record=rec)
        for key in ("image_id", "category_id", "score"):
            if key not in r:
                raise DataError(f"result lacks '{key}'", source=source, record=rec)
        if "bbox" not in r and "segmentation" not in r:
            raise DataError("result has neither 'bbox' nor 'segmentation'", source=source, record=rec)
        if r["image_id"] not in grouped:
            raise DataError(f"result refers to image id {r['image_id']!r}, which is not in the ground truth", source=source, record=rec)
        s = _number(r["score"], "score", source, rec)
        if not 0.0 <= s <= 1.0:
            raise DataError(f"score {s} is outside [0, 1]", source=source, record=rec)
        if "bbox" in r:
            x, y, w, h = _bbox(r["bbox"], source, rec)
            if w < 0 or h < 0:
                raise DataError(f"bbox has negative size {[x, y, w, h]}", source=source, record=rec)
        grouped[r["image_id"]].append(dict(r, id=k + 1))
    out = {}
    for image_id, anns in grouped.items():
        for a in anns:
            a.setdefault("bbox", [0.0, 0.0, 0.0, 0.0])
        det = _detections(anns, source) if anns else Detections.empty(with_score=True)
        out[image_id] = det
    return out
