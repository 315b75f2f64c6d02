"""THE dataset validator: every problem in a COCO file (and its images and masks) as a finding.

The checks follow the COCO data format (https://cocodataset.org/#format-data): an image entry
needs ``id, file_name, width, height``; an annotation ``id, image_id, category_id, bbox
[x, y, w, h], area, iscrowd`` and optionally ``segmentation`` (polygons, or RLE whose
``size`` is ``[height, width]``); a category ``id, name``. Size classes are COCOeval's
(``small`` area < 32², ``medium`` < 96², else ``large``; ``pycocotools.cocoeval.Params``).

The validator reads the raw JSON, so it accepts input that
:func:`labkit.data.coco.coco_to_dataset` would reject, and it never raises on malformed
content: every problem becomes a :class:`Finding` naming the file and the record (the id, or
``"images[3]"`` when the entry has no usable id). Only a path that is not readable JSON
raises :class:`~labkit.errors.DataError`. :data:`CODES` lists every finding code.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
from tqdm.auto import tqdm

from labkit.data.boxes import xywh_to_xyxy
from labkit.data.coco import read_json
from labkit.data.images import image_size, load_label_mask
from labkit.data.masks import rle_bbox, segmentation_area, segmentation_to_rle
from labkit.errors import DataError
from labkit.metrics.iou import box_iou

#: Finding code -> (severity, what it means). ``error`` makes a report not ``ok``.
CODES: dict[str, tuple[str, str]] = {
    "not-an-object": ("error", "the file does not hold a JSON object"),
    "missing-key": ("error", "a top-level key (images, annotations, categories) is missing"),
    "wrong-type": ("error", "a top-level key is not a list"),
    "bad-entry": ("error", "a list element is not a JSON object"),
    "image-missing-field": ("error", "an image entry lacks id, file_name, width or height"),
    "image-bad-field": ("error", "an image field has the wrong type or value"),
    "duplicate-image-id": ("error", "two image entries share an id"),
    "duplicate-file-name": ("warning", "two image entries name the same file"),
    "category-missing-field": ("error", "a category lacks id or name"),
    "category-bad-field": ("error", "a category field has the wrong type"),
    "duplicate-category-id": ("error", "two categories share an id"),
    "duplicate-category-name": ("warning", "two categories share a name"),
    "ann-missing-field": ("error", "an annotation lacks id, image_id, category_id, bbox, area or iscrowd"),
    "ann-bad-field": ("error", "an annotation field has the wrong type or value"),
    "duplicate-ann-id": ("error", "two annotations share an id"),
    "unknown-image-id": ("error", "an annotation refers to an image that is not listed"),
    "unknown-category-id": ("error", "an annotation refers to a category that is not listed"),
    "bbox-nan": ("error", "a box coordinate is NaN or infinite"),
    "bbox-nonpositive": ("error", "a box has zero or negative width or height"),
    "bbox-out-of-bounds": ("error", "a box extends beyond the image by more than the tolerance"),
    "segm-bad-format": ("error", "a segmentation is neither valid polygons nor a valid RLE"),
    "rle-size-mismatch": ("error", "an RLE's size differs from the image's [height, width]"),
    "rle-bad-counts": ("error", "an RLE's run lengths do not cover height x width pixels"),
    "segm-out-of-bounds": ("error", "polygon points lie outside the image"),
    "segm-empty": ("error", "a segmentation covers no pixel"),
    "mask-box-mismatch": ("error", "the box and the tight box of the mask overlap too little"),
    "area-mismatch": ("warning", "'area' differs from the mask's pixel area"),
    "duplicate-track-id": ("error", "a track id occurs twice in one image (video frame)"),
    "image-no-annotations": ("info", "an image has no annotations (fine for background images)"),
    "files-not-checked": ("info", "image files were not checked (no image folder known)"),
    "file-missing": ("error", "an image file listed in the JSON does not exist"),
    "file-unreadable": ("error", "an image file is truncated or not an image"),
    "size-mismatch": ("error", "width/height differ from the image file (after EXIF orientation)"),
    "mask-missing": ("error", "a semantic mask file does not exist"),
    "mask-unreadable": ("error", "a semantic mask is unreadable or not single-channel"),
    "mask-size-mismatch": ("error", "a semantic mask's size differs from its image"),
    "mask-bad-values": ("error", "a semantic mask holds values that are no class id and not ignore"),
    "no-annotation-files": ("error", "a dataset folder has no annotations/*.json"),
}

IGNORE_INDEX = 255  #: semantic-mask value meaning "not evaluated"
SMALL_AREA, MEDIUM_AREA = 32 ** 2, 96 ** 2  #: COCOeval area-range limits (pixels)
_IMAGE_FIELDS = ("id", "file_name", "width", "height")
_ANN_FIELDS = ("id", "image_id", "category_id", "bbox", "area", "iscrowd")


@dataclass(frozen=True)
class Finding:
    """One problem: ``severity`` (error/warning/info), ``code`` (a key of :data:`CODES`),
    ``file`` it is in and ``record`` at fault (an id, ``"images[3]"``, ``"line 7"``...)."""

    severity: str
    code: str
    message: str
    file: str
    record: Any = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ValidationReport:
    """Findings plus statistics per split (keyed by annotation-file stem, or ``name``)."""

    findings: list[Finding] = field(default_factory=list)
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No error-level finding (warnings and info do not count)."""
        return not any(f.severity == "error" for f in self.findings)

    def count(self, severity: str) -> int:
        return sum(f.severity == severity for f in self.findings)

    def has(self, code: str, record: Any = None) -> bool:
        """Whether a finding with this code (and, if given, this record) exists."""
        return any(f.code == code and (record is None or f.record == record) for f in self.findings)

    def merge(self, other: "ValidationReport") -> "ValidationReport":
        return ValidationReport(self.findings + other.findings, {**self.stats, **other.stats})

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "errors": self.count("error"), "warnings": self.count("warning"),
                "info": self.count("info"), "findings": [f.to_dict() for f in self.findings], "stats": self.stats}

    def to_markdown(self, max_findings: int = 50) -> str:
        """A verdict line, a table of the first ``max_findings`` findings and the statistics."""
        verdict = "OK" if self.ok else "FAILED"
        lines = [f"# Validation report: {verdict}", "",
                 f"{self.count('error')} error(s), {self.count('warning')} warning(s), {self.count('info')} info.", ""]
        order = {"error": 0, "warning": 1, "info": 2}
        shown = sorted(self.findings, key=lambda f: order.get(f.severity, 3))[:max_findings]
        if shown:
            lines += ["| severity | code | file | record | message |", "| --- | --- | --- | --- | --- |"]
            lines += [f"| {f.severity} | {f.code} | {f.file} | {f.record} | {f.message.replace('|', '/')} |" for f in shown]
            if len(self.findings) > len(shown):
                lines.append(f"\n... and {len(self.findings) - len(shown)} more finding(s).")
        for split, s in self.stats.items():
            lines += ["", f"## {split}", ""]
            lines += [f"- {key.replace('_', ' ')}: {_inline(value)}" for key, value in s.items()]
        return "\n".join(lines) + "\n"


def _inline(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "none"
    return str(value)


class _Collector:
    """Findings of one file; the severity comes from :data:`CODES`."""

    def __init__(self, file: str):
        self.file = file
        self.findings: list[Finding] = []

    def add(self, code: str, record: Any, message: str) -> None:
        self.findings.append(Finding(CODES[code][0], code, message, self.file, record))


# ----------------------------------------------------------------------------- small checks
def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.number)) and not isinstance(v, bool)


def _rid(entry: Mapping, key: str, index: int) -> Any:
    """The record id of a list entry: its ``id`` when usable, else ``key[index]``."""
    value = entry.get("id")
    return value if _is_int(value) or isinstance(value, str) else f"{key}[{index}]"


def _hashable(v: Any) -> bool:
    return v is None or isinstance(v, (int, float, str, bool, np.number))


def rle_counts_from_string(counts: str) -> list[int]:
    """Decode a compressed COCO RLE string to run lengths (the algorithm of ``rleFrString`` in
    pycocotools' ``maskApi.c``: 5 bits per char + continuation bit, runs after the second
    stored as differences). Raises ``ValueError`` on a malformed string."""
    runs: list[int] = []
    p = 0
    while p < len(counts):
        x, k, more = 0, 0, True
        while more:
            if p >= len(counts):
                raise ValueError("the string ends inside a run length")
            c = ord(counts[p]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"character {counts[p]!r} is not in the RLE alphabet")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p, k = p + 1, k + 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(runs) > 2:
            x += runs[-2]
        if x < 0:
            raise ValueError("a run length is negative")
        runs.append(x)
    return runs


# ----------------------------------------------------------------------------- entries
def _check_images(images: list, c: _Collector) -> dict[Any, dict]:
    """Image entries -> ``{id: entry}`` of the usable ones (width/height None when invalid)."""
    valid: dict[Any, dict] = {}
    files: dict[str, Any] = {}
    for i, img in enumerate(images):
        if not isinstance(img, Mapping):
            c.add("bad-entry", f"images[{i}]", f"image entry is a {type(img).__name__}, not an object")
            continue
        rid = _rid(img, "images", i)
        missing = [k for k in _IMAGE_FIELDS if k not in img]
        if missing:
            c.add("image-missing-field", rid, f"image entry lacks {', '.join(missing)}")
        if "id" in img and not _is_int(img["id"]):
            c.add("image-bad-field", rid, f"id must be an integer, got {img['id']!r}")
        name = img.get("file_name")
        if "file_name" in img and (not isinstance(name, str) or not name):
            c.add("image-bad-field", rid, f"file_name must be a non-empty string, got {name!r}")
            name = None
        size = {}
        for key in ("width", "height"):
            v = img.get(key)
            if key in img and not (_is_int(v) and v > 0):
                c.add("image-bad-field", rid, f"{key} must be a positive integer, got {v!r}")
            size[key] = int(v) if _is_int(v) and v > 0 else None
        if not _is_int(img.get("id")):
            continue
        if img["id"] in valid:
            c.add("duplicate-image-id", img["id"], f"image id {img['id']} is used by more than one entry")
            continue
        if isinstance(name, str):
            if name in files:
                c.add("duplicate-file-name", img["id"], f"file {name!r} is also listed by image {files[name]}")
            files.setdefault(name, img["id"])
        valid[img["id"]] = {**img, "file_name": name, **size}
    return valid


def _check_categories(categories: list, c: _Collector) -> dict[int, str]:
    valid: dict[int, str] = {}
    names: dict[str, int] = {}
    for i, cat in enumerate(categories):
        if not isinstance(cat, Mapping):
            c.add("bad-entry", f"categories[{i}]", f"category entry is a {type(cat).__name__}, not an object")
            continue
        rid = _rid(cat, "categories", i)
        missing = [k for k in ("id", "name") if k not in cat]
        if missing:
            c.add("category-missing-field", rid, f"category lacks {', '.join(missing)}")
        if "id" in cat and not _is_int(cat["id"]):
            c.add("category-bad-field", rid, f"id must be an integer, got {cat['id']!r}")
        name = cat.get("name")
        if "name" in cat and (not isinstance(name, str) or not name):
            c.add("category-bad-field", rid, f"name must be a non-empty string, got {name!r}")
        if not _is_int(cat.get("id")):
            continue
        if cat["id"] in valid:
            c.add("duplicate-category-id", cat["id"], f"category id {cat['id']} is used by more than one category")
            continue
        if isinstance(name, str) and name:
            if name in names:
                c.add("duplicate-category-name", cat["id"], f"name {name!r} is also category {names[name]}")
            names.setdefault(name, cat["id"])
        valid[cat["id"]] = name if isinstance(name, str) and name else f"category {cat['id']}"
    return valid


def _check_bbox(bbox: Any, img: dict | None, tol: float, c: _Collector, rid: Any) -> list[float] | None:
    """The box if it is 4 finite numbers with positive size (bounds are only reported)."""
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
        c.add("ann-bad-field", rid, f"bbox must be a list of 4 numbers [x, y, w, h], got {bbox!r}")
        return None
    box = [float(v) for v in bbox]
    if not all(math.isfinite(v) for v in box):
        c.add("bbox-nan", rid, f"bbox {box} has a NaN or infinite coordinate")
        return None
    if box[2] <= 0 or box[3] <= 0:
        c.add("bbox-nonpositive", rid, f"bbox {box} has zero or negative width/height")
        return None
    if img is not None and img["width"] and img["height"]:
        x, y, w, h = box
        over = max(-x, -y, x + w - img["width"], y + h - img["height"])
        if over > tol:
            c.add("bbox-out-of-bounds", rid, f"bbox {box} extends {over:.2f} px beyond the "
                  f"{img['width']}x{img['height']} image (tolerance {tol} px)")
    return box


def _segmentation_rle(segm: Any, h: int, w: int, tol: float, c: _Collector, rid: Any) -> dict | None:
    """Check a segmentation's structure before pycocotools sees it (it trusts its input: runs
    longer than the image overflow its decoder); the compressed RLE when sound, else None."""
    if isinstance(segm, list):
        for poly in segm:
            if (not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2
                    or not all(_is_number(v) and math.isfinite(v) for v in poly)):
                c.add("segm-bad-format", rid, "each polygon must be a flat list of >= 6 finite numbers, "
                      f"an even count (x1, y1, x2, y2, ...); got {str(poly)[:60]}")
                return None
        pts = np.concatenate([np.asarray(p, dtype=np.float64) for p in segm]).reshape(-1, 2)
        if pts[:, 0].min() < -tol or pts[:, 1].min() < -tol or pts[:, 0].max() > w + tol or pts[:, 1].max() > h + tol:
            c.add("segm-out-of-bounds", rid, f"polygon points span x {pts[:, 0].min():.1f}..{pts[:, 0].max():.1f}, "
                  f"y {pts[:, 1].min():.1f}..{pts[:, 1].max():.1f}, outside the {w}x{h} image")
            return None
        return segmentation_to_rle(segm, h, w)
    if not isinstance(segm, Mapping) or "size" not in segm or "counts" not in segm:
        c.add("segm-bad-format", rid, f"segmentation must be a polygon list or an RLE {{size, counts}}, got {str(segm)[:60]}")
        return None
    size, counts = segm["size"], segm["counts"]
    if not isinstance(size, list) or len(size) != 2 or not all(_is_int(v) for v in size):
        c.add("segm-bad-format", rid, f"RLE size must be [height, width], got {size!r}")
        return None
    if list(size) != [h, w]:
        c.add("rle-size-mismatch", rid, f"RLE size {size} differs from the image size [height, width] = {[h, w]}")
        return None
    if isinstance(counts, str):
        try:
            runs = rle_counts_from_string(counts)
        except ValueError as exc:
            c.add("segm-bad-format", rid, f"compressed RLE counts are malformed ({exc})")
            return None
    elif isinstance(counts, list) and all(_is_int(v) and v >= 0 for v in counts):
        runs = counts
    else:
        c.add("segm-bad-format", rid, "RLE counts must be a string or a list of non-negative integers")
        return None
    if sum(runs) != h * w:
        c.add("rle-bad-counts", rid, f"RLE runs cover {sum(runs)} pixels, the image has {h}x{w} = {h * w}")
        return None
    return segmentation_to_rle(dict(segm), h, w)


def _check_mask_vs_box(rle: dict, ann: Mapping, box: list[float] | None, thresholds: tuple[float, float],
                       c: _Collector, rid: Any) -> None:
    h, w = rle["size"]
    area = segmentation_area(rle, h, w)
    if area == 0:
        c.add("segm-empty", rid, "the segmentation covers no pixel")
        return
    tight = rle_bbox(rle)
    iou_min, area_tol = thresholds
    iou = float(box_iou(xywh_to_xyxy(np.array(box)), xywh_to_xyxy(np.array(tight)))[0, 0]) if box is not None else 1.0
    if iou < iou_min:
        c.add("mask-box-mismatch", rid, f"bbox {[round(v, 2) for v in box]} vs the mask's tight box {tight}: "
              f"IoU {iou:.3f} < {iou_min}")
    stated = ann.get("area")
    if _is_number(stated) and math.isfinite(stated) and stated >= 0 and abs(stated - area) > area_tol * max(area, 1.0):
        c.add("area-mismatch", rid, f"area {stated} vs the mask's {area:.0f} pixels")


def _check_annotations(anns: list, images: dict, categories: dict[int, str], c: _Collector,
                       tol: float, thresholds: tuple[float, float]) -> list[dict]:
    """Annotation entries -> the usable ones (known image, known category, sound box)."""
    seen: set = set()
    tracks: set = set()
    usable = []
    for i, ann in enumerate(tqdm(anns, desc="annotations", leave=False, disable=None if len(anns) > 5000 else True)):
        if not isinstance(ann, Mapping):
            c.add("bad-entry", f"annotations[{i}]", f"annotation is a {type(ann).__name__}, not an object")
            continue
        rid = _rid(ann, "annotations", i)
        missing = [k for k in _ANN_FIELDS if k not in ann]
        if missing:
            c.add("ann-missing-field", rid, f"annotation lacks {', '.join(missing)}")
        if "id" in ann:
            if not _is_int(ann["id"]):
                c.add("ann-bad-field", rid, f"id must be an integer, got {ann['id']!r}")
            elif ann["id"] in seen:
                c.add("duplicate-ann-id", ann["id"], f"annotation id {ann['id']} is used more than once")
            else:
                seen.add(ann["id"])
        for key in ("image_id", "category_id"):
            if key in ann and not _is_int(ann[key]):
                c.add("ann-bad-field", rid, f"{key} must be an integer, got {ann[key]!r}")
        image_id = ann.get("image_id")
        img = images.get(image_id) if _is_int(image_id) else None
        if _is_int(image_id) and img is None:
            c.add("unknown-image-id", rid, f"image_id {image_id} is not in 'images'")
        cat = ann.get("category_id")
        if _is_int(cat) and cat not in categories:
            c.add("unknown-category-id", rid, f"category_id {cat} is not in 'categories'")
        if "iscrowd" in ann and ann["iscrowd"] not in (0, 1):
            c.add("ann-bad-field", rid, f"iscrowd must be 0 or 1, got {ann['iscrowd']!r}")
        area = ann.get("area")
        if "area" in ann and not (_is_number(area) and math.isfinite(area) and area >= 0):
            c.add("ann-bad-field", rid, f"area must be a finite number >= 0, got {area!r}")
        _check_extras(ann, image_id, tracks, c, rid)
        box = _check_bbox(ann["bbox"], img, tol, c, rid) if "bbox" in ann else None
        segm = ann.get("segmentation")
        if segm not in (None, []) and img is not None and img["width"] and img["height"]:
            try:
                rle = _segmentation_rle(segm, img["height"], img["width"], tol, c, rid)
                if rle is not None:
                    _check_mask_vs_box(rle, ann, box, thresholds, c, rid)
            except Exception as exc:  # pycocotools on input it cannot parse: a finding, not a crash
                c.add("segm-bad-format", rid, f"pycocotools cannot read the segmentation ({type(exc).__name__}: {exc})")
        if img is not None and _is_int(cat) and cat in categories and box is not None:
            usable.append({"image_id": image_id, "category_id": cat, "box": box, "iscrowd": ann.get("iscrowd") == 1,
                           "area": float(area) if _is_number(area) and math.isfinite(area) else box[2] * box[3]})
    return usable


def _check_extras(ann: Mapping, image_id: Any, tracks: set, c: _Collector, rid: Any) -> None:
    """Optional fields labkit uses: ``track_id`` (unique per frame) and ``visibility`` in [0, 1]."""
    if "track_id" in ann:
        t = ann["track_id"]
        if not _is_int(t):
            c.add("ann-bad-field", rid, f"track_id must be an integer, got {t!r}")
        elif _hashable(image_id):
            if (image_id, t) in tracks:
                c.add("duplicate-track-id", rid, f"track id {t} occurs twice in image {image_id}")
            tracks.add((image_id, t))
    if "visibility" in ann:
        v = ann["visibility"]
        if not (_is_number(v) and 0.0 <= v <= 1.0):
            c.add("ann-bad-field", rid, f"visibility must be a number in [0, 1], got {v!r}")


# ----------------------------------------------------------------------------- files
def _check_image_file(img: dict, root: Path, c: _Collector) -> None:
    path = root / img["file_name"]
    if not path.is_file():
        c.add("file-missing", img["id"], f"image file {path} does not exist")
        return
    try:
        w, h = image_size(path, decode=True)
    except DataError as exc:
        c.add("file-unreadable", img["id"], str(exc))
        return
    if img["width"] and img["height"] and (w, h) != (img["width"], img["height"]):
        hint = " (the file's EXIF orientation rotates it)" if (h, w) == (img["width"], img["height"]) else ""
        c.add("size-mismatch", img["id"], f"entry says {img['width']}x{img['height']}, {path.name} is {w}x{h}{hint}")


def _check_label_mask(path: Path, size: tuple[int, int] | None, known: set[int], c: _Collector, record: Any,
                      pixel_counts: Counter | None = None) -> None:
    """One semantic mask: exists, single-channel, ``size`` = (width, height), values in ``known``."""
    if not path.is_file():
        c.add("mask-missing", record, f"mask file {path} does not exist")
        return
    try:
        mask = load_label_mask(path)
    except DataError as exc:
        c.add("mask-unreadable", record, str(exc))
        return
    if size is not None and (mask.shape[1], mask.shape[0]) != size:
        c.add("mask-size-mismatch", record, f"{path.name} is {mask.shape[1]}x{mask.shape[0]}, the image {size[0]}x{size[1]}")
    values, counts = np.unique(mask, return_counts=True)
    bad = sorted(int(v) for v in values if int(v) not in known)
    if bad:
        c.add("mask-bad-values", record, f"{path.name} holds values {bad[:10]} outside the known ids {sorted(known)}")
    if pixel_counts is not None:
        pixel_counts.update({int(v): int(n) for v, n in zip(values, counts)})


def _check_files(images: dict, image_root: Path, mask_root: Path | None, known: set[int], c: _Collector, name: str) -> None:
    for img in tqdm(list(images.values()), desc=f"checking files ({name})", leave=False, disable=None):
        if img["file_name"] is None:
            continue
        _check_image_file(img, image_root, c)
        mask = img.get("semantic_mask")
        if mask is not None and mask_root is not None:
            size = (img["width"], img["height"]) if img["width"] and img["height"] else None
            _check_label_mask(mask_root / str(mask), size, known, c, img["id"])


# ----------------------------------------------------------------------------- statistics
def _stats(images: dict, categories: dict[int, str], usable: list[dict]) -> dict[str, Any]:
    per_image = Counter(a["image_id"] for a in usable)
    sizes = Counter("small" if a["area"] < SMALL_AREA else "medium" if a["area"] < MEDIUM_AREA else "large" for a in usable)
    classes = Counter(a["category_id"] for a in usable)
    return {
        "images": len(images),
        "objects": len(usable),
        "crowd": sum(a["iscrowd"] for a in usable),
        "class_counts": {categories[k]: classes.get(k, 0) for k in sorted(categories)},
        "size_histogram": {k: sizes.get(k, 0) for k in ("small", "medium", "large")},
        "boxes_per_image": dict(sorted(Counter(per_image.get(i, 0) for i in images).items())),
    }


# ----------------------------------------------------------------------------- entry points
def _default_image_root(path: Path) -> Path:
    """Where a COCO file's images are: in a generated dataset ``DIR/annotations/X.json`` that
    is ``DIR/sequences`` for ``sequences_*`` files and ``DIR/images`` otherwise; failing
    that, the JSON's own folder."""
    guess = path.parent.parent / ("sequences" if path.stem.startswith("sequences") else "images")
    return guess if guess.is_dir() else path.parent


def validate_coco(path_or_dict: str | Path | Mapping[str, Any], *, image_root: str | Path | None = None,
                  check_files: bool = True, mask_root: str | Path | None = None, name: str | None = None,
                  bbox_tolerance: float = 1.0, min_mask_box_iou: float = 0.5,
                  area_tolerance: float = 0.25) -> ValidationReport:
    """Validate a COCO instances file (path) or an already parsed dict.

    ``image_root`` is the folder ``file_name`` is relative to; for a path it defaults to
    ``<json dir>/../images`` (``../sequences`` for ``sequences_*`` files) when that exists,
    else the JSON's folder. With ``check_files`` every image is decoded in full
    (truncation, size after EXIF) and every ``semantic_mask`` entry is read from
    ``mask_root`` (default: the parent of ``image_root``, the generated-dataset layout).
    ``bbox_tolerance`` (px) is how far a box may stick out of the image; ``min_mask_box_iou``
    the least IoU between a box and its mask's tight box (real COCO val2014 boxes reach 0.73
    on tiny objects, pixel rounding); ``area_tolerance`` the relative difference of ``area``
    from the mask area that is still silent (COCO val2014: at most 0.17).
    """
    if isinstance(path_or_dict, (str, Path)):
        path = Path(path_or_dict)
        coco, source, name = read_json(path), str(path), name or path.stem
        image_root = _default_image_root(path) if image_root is None else image_root
    else:
        coco, source, name = path_or_dict, "<memory>", name or "data"
    c = _Collector(source)
    if not isinstance(coco, Mapping):
        c.add("not-an-object", None, f"the top level is a {type(coco).__name__}, not a COCO object")
        return ValidationReport(c.findings, {name: {}})
    lists = {}
    for key in ("images", "annotations", "categories"):
        if key not in coco:
            c.add("missing-key", key, f"missing top-level key '{key}'")
        elif not isinstance(coco[key], list):
            c.add("wrong-type", key, f"'{key}' must be a list, got {type(coco[key]).__name__}")
        lists[key] = coco[key] if isinstance(coco.get(key), list) else []
    images = _check_images(lists["images"], c)
    categories = _check_categories(lists["categories"], c)
    usable = _check_annotations(lists["annotations"], images, categories, c, bbox_tolerance,
                                (min_mask_box_iou, area_tolerance))
    annotated = {a.get("image_id") for a in lists["annotations"] if isinstance(a, Mapping) and _hashable(a.get("image_id"))}
    for image_id in images:
        if image_id not in annotated:
            c.add("image-no-annotations", image_id, f"image {image_id} has no annotations")
    if check_files and image_root is None:
        c.add("files-not-checked", None, "no image folder given (image_root), so files were not checked")
    elif check_files:
        image_root = Path(image_root)
        mask_root = Path(mask_root) if mask_root is not None else image_root.parent
        _check_files(images, image_root, mask_root, {0, IGNORE_INDEX, *categories}, c, name)
    return ValidationReport(c.findings, {name: _stats(images, categories, usable)})


def validate_dataset(ds: Any, **options: Any) -> ValidationReport:
    """Validate a :class:`~labkit.data.annotations.Dataset` (written to COCO first), with its
    ``root`` as image folder; ``options`` go to :func:`validate_coco`."""
    from labkit.data.coco import dataset_to_coco

    options.setdefault("image_root", ds.root)
    options.setdefault("name", Path(ds.source).stem if ds.source != "<memory>" else "data")
    report = validate_coco(dataset_to_coco(ds), **options)
    return ValidationReport([Finding(f.severity, f.code, f.message, ds.source, f.record) for f in report.findings],
                            report.stats)


def validate_semantic_masks(pairs: Iterable[tuple[str | Path, str | Path]], known_ids: Iterable[int], *,
                            name: str = "masks", source: str = "<pairs>") -> ValidationReport:
    """Check ``(image, label mask)`` file pairs: both readable, same size, mask values in
    ``known_ids``. Stats: image count and pixels per value (class frequencies)."""
    c = _Collector(source)
    known = {int(v) for v in known_ids}
    pixels: Counter = Counter()
    pairs = list(pairs)
    for image, mask in tqdm(pairs, desc=f"checking masks ({name})", leave=False, disable=None):
        image, mask = Path(image), Path(mask)
        try:
            size = image_size(image, decode=True)
        except DataError as exc:
            c.add("file-unreadable" if image.is_file() else "file-missing", image.name, str(exc))
            size = None
        _check_label_mask(mask, size, known, c, image.name, pixels)
    stats = {"images": len(pairs), "pixels_per_value": dict(sorted(pixels.items()))}
    return ValidationReport(c.findings, {name: stats})


def validate_dataset_dir(root: str | Path, *, check_files: bool = True) -> ValidationReport:
    """Validate a generated dataset folder: every ``annotations/*.json`` (``instances_*`` against
    ``images/``, ``sequences_*`` against ``sequences/``) and the semantic masks they list."""
    root = Path(root)
    if not root.is_dir():
        raise DataError("not a dataset folder", source=str(root))
    files = sorted((root / "annotations").glob("*.json"))
    if not files:
        c = _Collector(str(root / "annotations"))
        c.add("no-annotation-files", "annotations", "no annotations/*.json in the dataset folder")
        return ValidationReport(c.findings)
    report = ValidationReport()
    for path in files:
        report = report.merge(validate_coco(path, mask_root=root, check_files=check_files))
    return report


def plot_stats(report: ValidationReport, path: str | Path, *, max_classes: int = 15) -> Path:
    """Write a PNG: per split, objects per class (the ``max_classes`` most frequent), COCO size
    classes and images by number of boxes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    splits = [(k, s) for k, s in report.stats.items() if "class_counts" in s]
    if not splits:
        raise DataError("the report has no detection statistics to plot")
    fig = Figure(figsize=(14, 3.5 * len(splits)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(splits), 3, squeeze=False)
    for (ax_cls, ax_size, ax_boxes), (split, s) in zip(axes, splits):
        classes = sorted(s["class_counts"].items(), key=lambda kv: -kv[1])[:max_classes][::-1]
        ax_cls.barh([k for k, _ in classes], [v for _, v in classes], color="#4c72b0")
        shown = f"top {len(classes)} of {len(s['class_counts'])}" if len(classes) < len(s["class_counts"]) else "all"
        ax_cls.set_title(f"{split}: objects per class ({shown})", fontsize=10)
        ax_cls.tick_params(axis="y", labelsize=8)
        ax_size.bar(list(s["size_histogram"]), list(s["size_histogram"].values()), color="#55a868")
        ax_size.set_title(f"{split}: COCO size class (area < 32², < 96², larger)", fontsize=10)
        ax_boxes.bar([str(k) for k in s["boxes_per_image"]], list(s["boxes_per_image"].values()), color="#c44e52")
        ax_boxes.set_title(f"{split}: images by number of boxes", fontsize=10)
        ax_boxes.tick_params(axis="x", labelsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
