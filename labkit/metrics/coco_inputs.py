"""Validated, normalised inputs for the COCO reference evaluators (pycocotools, faster-coco-eval).

The reference libraries trust their inputs: a NaN box, an unknown category id or a prediction on
an image that is not in the ground truth gives an assertion deep inside the library, or worse, a
silently wrong number (results of unknown categories are dropped without a word; an annotation id
of 0 is read as "unmatched" by COCOeval's matcher). Everything is therefore checked here first,
column-wise with NumPy so that the check costs little next to the evaluation, and every problem
raises :class:`~labkit.errors.DataError` naming the file and the record (``images[k]``,
``annotation <id>``, ``result #k`` = the k-th entry of the results list, counted from 0).

The output is a fresh, minimal COCO dict (the libraries modify the dicts they are given) with
plain Python numbers, so the caller's data is never touched.

COCO formats: https://cocodataset.org/#format-data (ground truth) and
https://cocodataset.org/#format-results (results).
"""

from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, NoReturn, Sequence

import numpy as np

from labkit.data.annotations import Dataset, Detections
from labkit.data.coco import dataset_to_coco, read_json
from labkit.data.masks import segmentation_to_rle
from labkit.errors import DataError

#: The IoU types labkit evaluates: boxes, or instance masks (COCO ``iouType``).
IOU_TYPES = ("bbox", "segm")


@dataclass
class GroundTruth:
    """A checked COCO ground truth: the minimal dict handed to the evaluators, plus columns.

    ``coco`` holds ``images`` (``id``, ``width``, ``height``), ``categories`` (``id``, ``name``) and
    ``annotations`` (``id``, ``image_id``, ``category_id``, ``bbox``, ``area``, ``iscrowd`` and, for
    ``segm``, ``segmentation``). Use :meth:`fresh_coco` for each evaluation: the libraries write
    into the annotation dicts.
    """

    coco: dict[str, Any]
    iou_type: str
    source: str
    image_ids: np.ndarray
    image_sizes: dict[int, tuple[int, int]]
    category_ids: np.ndarray
    ann_category: np.ndarray
    ann_iscrowd: np.ndarray

    @property
    def category_names(self) -> dict[int, str]:
        """Category id -> name."""
        return {c["id"]: c["name"] for c in self.coco["categories"]}

    def fresh_coco(self) -> dict[str, Any]:
        """A copy of ``coco`` whose annotation dicts are new."""
        return {"images": self.coco["images"], "categories": self.coco["categories"],
                "annotations": [dict(a) for a in self.coco["annotations"]]}

    def without_annotations(self, drop: np.ndarray) -> "GroundTruth":
        """The same ground truth with the annotations flagged in the boolean ``drop`` removed."""
        keep = np.flatnonzero(~np.asarray(drop, dtype=bool))
        anns = [self.coco["annotations"][k] for k in keep]
        return replace(self, coco={**self.coco, "annotations": anns},
                       ann_category=self.ann_category[keep], ann_iscrowd=self.ann_iscrowd[keep])


@dataclass
class Predictions:
    """Checked COCO results (``image_id``, ``category_id``, ``score``, ``bbox`` and/or
    ``segmentation``) plus their id/score columns; ``records[k]`` is result ``#k``."""

    records: list[dict]
    source: str
    image_id: np.ndarray
    category_id: np.ndarray
    score: np.ndarray

    @classmethod
    def from_records(cls, records: list[dict], source: str) -> "Predictions":
        """Wrap records that are already checked (e.g. a modified copy of ``Predictions.records``)."""
        cols = [np.array([r[k] for r in records], dtype=t) for k, t in
                (("image_id", np.int64), ("category_id", np.int64), ("score", np.float64))]
        return cls(records, source, *cols)

    def fresh_records(self) -> list[dict]:
        """New dicts (``loadRes`` writes ``id``, ``area`` ... into the ones it gets)."""
        return [dict(r) for r in self.records]


# --------------------------------------------------------------------------- column helpers
def _is_int(value: Any) -> bool:
    """an integer"""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value: Any) -> bool:
    """a number"""
    return _is_int(value) or isinstance(value, (float, np.floating))


def _is_box(value: Any) -> bool:
    """a list of 4 numbers [x, y, w, h]"""
    return isinstance(value, (list, tuple)) and len(value) == 4 and all(_is_number(x) for x in value)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small acyclic dicts: its passes
    over every live object would otherwise cost more than the checks themselves."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


#: Marks a key a record does not have.
_ABSENT = object()


class _Table:
    """One list of JSON records (images, annotations or results) and how to name record ``k``."""

    def __init__(self, records: Sequence[Any], source: str, name: Callable[[int], str]):
        self.records, self.source, self.name = records, source, name
        if not all(type(r) is dict for r in records):  # the exact-type test is the fast path
            bad = [k for k, r in enumerate(records) if not isinstance(r, Mapping)]
            if bad:
                raise DataError("entry is not a JSON object", source=source, record=name(bad[0]))

    def fail(self, k: int, message: str) -> NoReturn:
        raise DataError(message, source=self.source, record=self.name(k))

    def require(self, key: str, why: str = "") -> None:
        missing = [k for k, r in enumerate(self.records) if key not in r]
        if missing:
            self.fail(missing[0], f"lacks '{key}'{why}")

    def _bad_value(self, key: str, values: list, check: Callable[[Any], bool], what: str, why: str) -> None:
        """Name the first record whose value fails ``check`` (called once the fast path failed)."""
        k = next((k for k, v in enumerate(values) if v is _ABSENT or not check(v)), None)
        if k is None:
            raise DataError(f"{what} values are out of range", source=self.source)
        self.fail(k, f"lacks '{key}'{why}" if values[k] is _ABSENT else f"{what} must be {check.__doc__}, got {values[k]!r}")

    def column(self, key: str, what: str, *, integer: bool, default: Any = _ABSENT, why: str = "") -> np.ndarray:
        """The values of ``key`` as an int64 / float64 array; a missing or non-number value names
        its record (``default`` stands in for a missing key, if given)."""
        values = [r.get(key, default) for r in self.records]
        arr = np.array(values) if values else np.zeros(0, np.int64 if integer else np.float64)
        if arr.ndim != 1 or arr.dtype.kind not in ("iu" if integer else "iuf"):
            self._bad_value(key, values, _is_int if integer else _is_number, what, why)
        if not integer:
            arr = arr.astype(np.float64)
            if not np.isfinite(arr).all():
                k = _first(~np.isfinite(arr))
                self.fail(k, f"{what} is not finite ({values[k]!r})")
        return arr.astype(np.int64) if integer else arr

    def boxes(self, why: str = "") -> np.ndarray:
        """``(N, 4)`` finite ``[x, y, w, h]`` boxes with ``w, h >= 0`` whose corners ``x + w``,
        ``y + h`` and area ``w * h`` are finite too (1e308 is a finite float; twice it is not)."""
        values = [r.get("bbox", _ABSENT) for r in self.records]
        try:
            arr = np.array(values) if values else np.zeros((0, 4))
        except ValueError:
            arr = np.zeros(0, dtype=object)
        if arr.shape != (len(values), 4) or arr.dtype.kind not in "iuf":
            self._bad_value("bbox", values, _is_box, "bbox", why)
        arr = arr.astype(np.float64)
        if not np.isfinite(arr).all():
            k = _first(~np.isfinite(arr).all(axis=1))
            self.fail(k, f"bbox has a NaN or infinite coordinate: {values[k]!r}")
        if (arr[:, 2:] < 0).any():
            k = _first((arr[:, 2:] < 0).any(axis=1))
            self.fail(k, f"bbox has a negative width or height: {values[k]!r}")
        with np.errstate(over="ignore", invalid="ignore"):  # the evaluators compute corners and area
            derived = np.stack([arr[:, 0] + arr[:, 2], arr[:, 1] + arr[:, 3], arr[:, 2] * arr[:, 3]], axis=1)
        if not np.isfinite(derived).all():
            k = _first(~np.isfinite(derived).all(axis=1))
            self.fail(k, f"bbox overflows: its corner x + w, y + h or its area w * h is not a finite number, "
                         f"so every IoU with it would be 0 or NaN: {values[k]!r}")
        return arr

    def unique(self, ids: np.ndarray, what: str) -> None:
        order = np.argsort(ids, kind="stable")
        dup = np.flatnonzero(ids[order][1:] == ids[order][:-1])
        if dup.size:
            self.fail(int(order[dup[0] + 1]), f"duplicate {what} {int(ids[order][dup[0]])}")

    def known(self, ids: np.ndarray, allowed: np.ndarray, message: str) -> None:
        bad = ~np.isin(ids, allowed)
        if bad.any():
            k = _first(bad)
            self.fail(k, message.format(int(ids[k])))


# --------------------------------------------------------------------------- segmentation
def _check_segmentation(segm: Any, height: int, width: int, fail: Callable[[str], NoReturn]) -> dict | list:
    """A polygon list or an RLE of an image's size; returned as given (RLE: ``str`` counts)."""
    if isinstance(segm, dict):
        size = segm.get("size")
        if "counts" not in segm or not isinstance(size, (list, tuple)) or len(size) != 2:
            fail(f"RLE segmentation needs 'counts' and a 2-element 'size', got keys {sorted(segm)}")
        if [size[0], size[1]] != [height, width]:
            fail(f"mask size {list(size)} (height, width) differs from the image size {[height, width]}")
        counts = segm["counts"]
        if isinstance(counts, bytes):
            return {"size": [height, width], "counts": counts.decode("ascii")}
        if not isinstance(counts, (str, list)):
            fail(f"RLE 'counts' must be a string or a list of run lengths, got {type(counts).__name__}")
        return segm
    if isinstance(segm, list) and segm and all(
            isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 and all(_is_number(v) for v in p) for p in segm):
        if not np.isfinite(np.concatenate([np.asarray(p, dtype=np.float64) for p in segm])).all():
            fail("polygon has a NaN or infinite coordinate")
        return segm
    fail("segmentation must be an RLE dict or a list of polygons, each with >= 3 (x, y) points")


# --------------------------------------------------------------------------- ground truth
def _load(obj: Any, what: str, memory_name: str) -> tuple[Any, str]:
    if isinstance(obj, (str, Path)):
        return read_json(obj), str(obj)
    if isinstance(obj, Dataset):
        return dataset_to_coco(obj), obj.source
    if isinstance(obj, (Mapping, list)):
        return obj, memory_name
    raise TypeError(f"{what} must be a path, a Dataset, a dict or a list, got {type(obj).__name__}")


@_no_gc()
def prepare_ground_truth(gt: Dataset | Mapping | str | Path, *, iou_type: str = "bbox") -> GroundTruth:
    """Check a COCO ground truth (Dataset, parsed dict or JSON path) and normalise it.

    Raises :class:`DataError` (file + record) for: empty or malformed files; missing
    ``images``/``annotations``/``categories``; duplicate image, category or annotation ids;
    annotation ids < 1 (COCOeval marks unmatched objects with id 0); annotations on unknown images
    or of unknown categories; NaN/inf or negative-size boxes; missing, NaN or negative ``area``
    (COCO's small/medium/large ranges use it); ``iscrowd`` not 0/1; and, for ``segm``, missing
    segmentations or masks whose size is not the image's. A missing ``iscrowd`` means 0.
    """
    if iou_type not in IOU_TYPES:
        raise ValueError(f"iou_type must be one of {IOU_TYPES}, got {iou_type!r}")
    coco, source = _load(gt, "ground truth", "<ground-truth dict>")
    if not isinstance(coco, Mapping):
        raise DataError("a COCO ground-truth file must hold a JSON object", source=source)
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            raise DataError(f"top-level '{key}' must be a list", source=source)

    images = _Table(coco["images"], source, lambda k: f"images[{k}]")
    image_ids = images.column("id", "image id", integer=True)
    images.unique(image_ids, "image id")
    hw = np.stack([images.column("height", "height", integer=True), images.column("width", "width", integer=True)], 1)
    if (hw <= 0).any():
        k = _first((hw <= 0).any(axis=1))
        images.fail(k, f"width and height must be positive, got {int(hw[k, 1])} x {int(hw[k, 0])}")

    cats = _Table(coco["categories"], source, lambda k: f"categories[{k}]")
    cat_ids = cats.column("id", "category id", integer=True)
    cats.unique(cat_ids, "category id")

    anns = _Table(coco["annotations"], source, lambda k: f"annotations[{k}]")
    ann_ids = anns.column("id", "annotation id", integer=True)
    anns.name = lambda k: f"annotation {int(ann_ids[k])}"
    if (ann_ids < 1).any():
        anns.fail(_first(ann_ids < 1), "annotation ids must be >= 1 (COCOeval reads id 0 as 'unmatched')")
    anns.unique(ann_ids, "annotation id")
    ann_image = anns.column("image_id", "image_id", integer=True)
    anns.known(ann_image, image_ids, "refers to image id {}, which is not in 'images'")
    ann_cat = anns.column("category_id", "category_id", integer=True)
    anns.known(ann_cat, cat_ids, "has category id {}, which is not in 'categories'")
    boxes = anns.boxes()
    area = anns.column("area", "area", integer=False, why=" (COCO's small/medium/large ranges are defined on it)")
    if (area < 0).any():
        anns.fail(_first(area < 0), f"area is negative ({area[_first(area < 0)]})")
    crowd = anns.column("iscrowd", "iscrowd", integer=True, default=0)
    if not np.isin(crowd, (0, 1)).all():
        anns.fail(_first(~np.isin(crowd, (0, 1))), "iscrowd must be 0 or 1")

    sizes = {int(i): (int(h), int(w)) for i, (h, w) in zip(image_ids, hw)}
    records = [{"id": i, "image_id": im, "category_id": c, "bbox": b, "area": a, "iscrowd": z}
               for i, im, c, b, a, z in zip(ann_ids.tolist(), ann_image.tolist(), ann_cat.tolist(),
                                            boxes.tolist(), area.tolist(), crowd.tolist())]
    if iou_type == "segm":
        anns.require("segmentation", " (needed for iou_type='segm')")
        for k, (raw, rec) in enumerate(zip(coco["annotations"], records)):
            h, w = sizes[rec["image_id"]]
            rec["segmentation"] = _check_segmentation(raw["segmentation"], h, w, lambda m, k=k: anns.fail(k, m))
    names = [str(c.get("name", c["id"])) for c in coco["categories"]]
    return GroundTruth(
        coco={"images": [{"id": int(i), "height": int(h), "width": int(w)} for i, (h, w) in zip(image_ids, hw)],
              "categories": [{"id": int(c), "name": n} for c, n in zip(cat_ids, names)],
              "annotations": records},
        iou_type=iou_type, source=source, image_ids=image_ids, image_sizes=sizes, category_ids=cat_ids,
        ann_category=ann_cat, ann_iscrowd=crowd,
    )


# --------------------------------------------------------------------------- predictions
def _detections_to_records(predictions: Mapping[Any, Detections], gt: GroundTruth, source: str) -> list[dict]:
    """``{image_id: Detections}`` -> COCO results; ``segm`` results carry the mask only, so that
    their area (for the size ranges) is the mask's, as for the ground truth."""
    records: list[dict] = []
    for image_id, det in predictions.items():
        if not _is_int(image_id):
            raise DataError(f"image ids must be integers, got {image_id!r}", source=source)
        if not isinstance(det, Detections):
            raise DataError(f"expected Detections, got {type(det).__name__}", source=source, record=f"image {image_id}")
        if det.score is None:
            raise DataError("predictions need scores", source=source, record=f"image {image_id}")
        if gt.iou_type == "segm":
            if det.segmentation is None or any(s is None for s in det.segmentation):
                raise DataError("iou_type='segm' needs a segmentation for every prediction", source=source,
                                record=f"image {image_id}")
            geometry = [{"segmentation": s} for s in det.segmentation]
        else:
            geometry = [{"bbox": b} for b in det.xywh.tolist()]
        image_id = int(image_id)
        records.extend({"image_id": image_id, "category_id": c, "score": s, **g}
                       for c, s, g in zip(det.class_id.tolist(), det.score.tolist(), geometry))
    return records


@_no_gc()
def prepare_results(predictions: Mapping[int, Detections] | Sequence[Mapping] | str | Path,
                    gt: GroundTruth) -> Predictions:
    """Check predictions against the ground truth and normalise them to COCO results.

    ``predictions`` is ``{image_id: Detections}`` (with scores), a COCO results list, or a path
    to a results JSON file. Raises :class:`DataError` (file + ``result #k``) for: a file that is
    empty, malformed or not a list; results on images not in the ground truth; unknown category
    ids; missing, NaN or out-of-``[0, 1]`` scores; NaN/inf or negative-size boxes; ``bbox`` on
    some results but not others; and, for ``segm``, missing masks or masks of the wrong size.
    Polygon and uncompressed-RLE masks are compressed (pycocotools' ``loadRes`` only reads
    compressed RLE); a ``bbox`` given with a mask is kept, so the detection's area for the size
    ranges is the box area (pycocotools' rule), else the mask area.
    """
    if isinstance(predictions, Mapping):
        source = "<predictions>"
        if "annotations" in predictions or "images" in predictions:
            raise DataError("expected {image_id: Detections} or a COCO results list, got a COCO dataset dict",
                            source=source)
        records = _detections_to_records(predictions, gt, source)
    else:
        records, source = _load(predictions, "predictions", "<results list>")
    if not isinstance(records, list):
        raise DataError("a results file must hold a JSON list of {image_id, category_id, bbox|segmentation, score}",
                        source=source)
    table = _Table(records, source, lambda k: f"result #{k}")
    image_id = table.column("image_id", "image_id", integer=True)
    table.known(image_id, gt.image_ids, "refers to image id {}, which is not in the ground truth")
    category_id = table.column("category_id", "category_id", integer=True)
    table.known(category_id, gt.category_ids, "has category id {}, which is not in the ground truth's categories")
    score = table.column("score", "score", integer=False)
    outside = (score < 0) | (score > 1)
    if outside.any():
        table.fail(_first(outside), f"score {score[_first(outside)]} is outside [0, 1]")

    columns = zip(image_id.tolist(), category_id.tolist(), score.tolist())
    if gt.iou_type == "bbox" or any("bbox" in r for r in records):
        boxes = table.boxes(" while other results have one" if gt.iou_type == "segm" else "").tolist()
        out = [{"image_id": i, "category_id": c, "score": s, "bbox": b} for (i, c, s), b in zip(columns, boxes)]
    else:
        out = [{"image_id": i, "category_id": c, "score": s} for i, c, s in columns]
    if gt.iou_type == "segm":
        table.require("segmentation", " (needed for iou_type='segm')")
        for k, (raw, rec) in enumerate(zip(records, out)):
            h, w = gt.image_sizes[rec["image_id"]]
            segm = _check_segmentation(raw["segmentation"], h, w, lambda m, k=k: table.fail(k, m))
            if not (isinstance(segm, dict) and isinstance(segm["counts"], str)):
                try:
                    segm = segmentation_to_rle(segm, h, w)
                except DataError as exc:
                    table.fail(k, f"unreadable mask ({exc})")
            rec["segmentation"] = segm
    return Predictions(out, source, image_id, category_id, score)
