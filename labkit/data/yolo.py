"""Ultralytics YOLO dataset layout <-> :class:`~labkit.data.annotations.Dataset`.

Layout (Ultralytics docs, "Object Detection Datasets" and "Instance Segmentation Datasets",
https://docs.ultralytics.com/datasets/detect/ and https://docs.ultralytics.com/datasets/segment/)::

    OUT/data.yaml               path (absolute), one key per split, names {index: name}
    OUT/images/<split>/<file_name>
    OUT/labels/<split>/<file_name with .txt>

Each label line is one object. Detection: ``class cx cy w h``; segmentation: ``class x1 y1 x2
y2 ...`` (one polygon, >= 3 points). All coordinates are normalised by the image width/height
and lie in ``[0, 1]``; ``class`` is a 0-based index. YOLO has no category ids, so the export
maps the dataset's category ids, sorted, to indices ``0..K-1`` and records the mapping in
``data.yaml`` under :data:`CATEGORY_ID_KEY`; the import maps back (a foreign ``data.yaml``
without that key gets category id = index).

What the format cannot hold is handled openly (the export returns the counts):

- crowd regions (``iscrowd=1``) are skipped, as the Ultralytics COCO converter does;
- boxes are clipped to the image, since YOLO coordinates must lie in ``[0, 1]``;
- segment labels hold one polygon per object: several polygons are joined by zero-width
  bridges between their nearest points, RLE masks are traced to polygons (lossy, see
  :func:`labkit.data.masks.mask_to_polygons`), and an object without a mask becomes its box.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np
import yaml

from labkit.data.annotations import Dataset, Detections, ImageRecord
from labkit.data.boxes import clip_xyxy, cxcywh_to_xyxy, xyxy_to_cxcywh, xyxy_to_xywh
from labkit.data.images import image_size
from labkit.data.masks import mask_to_polygons, segmentation_to_mask
from labkit.configfile import read_yaml_mapping
from labkit.errors import DataError

#: Key of ``data.yaml`` holding ``{yolo index: category id}`` (Ultralytics ignores it).
CATEGORY_ID_KEY = "labkit_category_ids"
#: Image suffixes Ultralytics trains on (``ultralytics.data.utils.IMG_FORMATS``).
IMAGE_SUFFIXES = frozenset({".bmp", ".dng", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp", ".pfm", ".heic"})
#: Significant digits written for normalised coordinates (error <= 5e-11 * image size).
_DIGITS = 10

ImageMode = Literal["copy", "symlink", "none"]


# ----------------------------------------------------------------------------- export
def _class_index(categories: list[dict[str, Any]], source: str) -> dict[int, int]:
    ids = sorted(int(c["id"]) for c in categories)
    if len(set(ids)) != len(ids):
        raise DataError("duplicate category ids in the category table", source=source)
    return {cid: k for k, cid in enumerate(ids)}


def _merge_polygons(polys: list[np.ndarray]) -> np.ndarray:
    """Join ``(P, 2)`` rings into one ring through zero-width bridges between nearest points."""
    ring = polys[0]
    for nxt in polys[1:]:
        d = ((ring[:, None, :] - nxt[None, :, :]) ** 2).sum(-1)
        a, b = np.unravel_index(int(d.argmin()), d.shape)
        detour = np.concatenate([np.roll(nxt, -b, axis=0), nxt[b:b + 1], ring[a:a + 1]])
        ring = np.concatenate([ring[:a + 1], detour, ring[a + 1:]])
    return ring


def _object_polygon(segm: Any, xyxy: np.ndarray, height: int, width: int) -> np.ndarray:
    """The one ``(P, 2)`` pixel polygon written for an object (see the module docstring)."""
    if isinstance(segm, list) and segm:
        polys = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in segm]
    elif segm is not None:
        polys = [np.asarray(p).reshape(-1, 2) for p in mask_to_polygons(segmentation_to_mask(segm, height, width))]
    else:
        polys = []
    polys = [p for p in polys if len(p) >= 3]
    if not polys:
        x1, y1, x2, y2 = xyxy
        polys = [np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])]
    return _merge_polygons(polys)


def _fmt(values: np.ndarray) -> str:
    return " ".join(f"{v:.{_DIGITS}g}" for v in values)


def _label_lines(rec: ImageRecord, index: dict[int, int], segments: bool, source: str, counts: dict[str, int]) -> list[str]:
    det = rec.detections
    crowd = det.get("iscrowd", np.zeros(len(det)))
    scale = np.array([rec.width, rec.height], dtype=np.float64)
    lines = []
    for i in range(len(det)):
        if crowd[i] == 1:  # absent fields (None, missing) are not crowd
            counts["skipped_crowd"] += 1
            continue
        cid = int(det.class_id[i])
        if cid not in index:
            raise DataError(f"category id {cid} is not in the category table", source=source, record=rec.id)
        raw = det.xyxy[i]
        xyxy = clip_xyxy(raw, rec.width, rec.height)
        counts["clipped_boxes"] += int(not np.array_equal(raw, xyxy))
        if segments:
            segm = None if det.segmentation is None else det.segmentation[i]
            poly = np.clip(_object_polygon(segm, xyxy, rec.height, rec.width) / scale, 0.0, 1.0)
            lines.append(f"{index[cid]} {_fmt(poly.reshape(-1))}")
        else:
            box = xyxy_to_cxcywh(xyxy) / np.tile(scale, 2)
            lines.append(f"{index[cid]} {_fmt(box)}")
        counts["objects"] += 1
    return lines


def _place_image(src: Path, dst: Path, mode: ImageMode) -> None:
    if mode == "none":
        return
    if not src.is_file():
        raise DataError("image file not found", source=str(src))
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    if mode == "copy":
        shutil.copy2(src, dst)
    else:
        os.symlink(src.resolve(), dst)


def export_yolo(splits: Mapping[str, Dataset], out_dir: str | Path, *, segments: bool = False,
                images: ImageMode = "copy") -> dict[str, Any]:
    """Write datasets (``{split name: Dataset}``) in the Ultralytics layout under ``out_dir``.

    ``segments=True`` writes polygon (YOLO-seg) labels instead of boxes. ``images`` copies the
    image files, symlinks them, or (``"none"``) writes labels and ``data.yaml`` only. Every
    split must share one category table. Returns ``{data_yaml, images, objects,
    skipped_crowd, clipped_boxes}`` (counts over all splits).
    """
    if images not in ("copy", "symlink", "none"):
        raise DataError(f"images must be 'copy', 'symlink' or 'none', got {images!r}")
    if not splits:
        raise DataError("no split to export")
    first = next(iter(splits.values()))
    for name, ds in splits.items():
        if ds.categories != first.categories:
            raise DataError(f"split '{name}' has a different category table from the first split", source=ds.source)
    index = _class_index(first.categories, first.source)
    out = Path(out_dir).resolve()
    counts = {"images": 0, "objects": 0, "skipped_crowd": 0, "clipped_boxes": 0}
    for name, ds in splits.items():
        written: set[Path] = set()
        for rec in ds.images:
            rel = Path(rec.file_name)
            label = out / "labels" / name / rel.with_suffix(".txt")
            if label in written:
                raise DataError(f"two images map to the label file {label}", source=ds.source, record=rec.id)
            written.add(label)
            lines = _label_lines(rec, index, segments, ds.source, counts)
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
            if images != "none":
                _place_image(ds.image_path(rec), out / "images" / name / rel, images)
            counts["images"] += 1
    names = {index[int(c["id"])]: str(c["name"]) for c in first.categories}
    config = {"path": str(out), **{name: f"images/{name}" for name in splits},
              "names": dict(sorted(names.items())), CATEGORY_ID_KEY: {k: cid for cid, k in sorted(index.items())}}
    data_yaml = out / "data.yaml"
    data_yaml.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return {"data_yaml": data_yaml, **counts}


# ----------------------------------------------------------------------------- import
def _read_config(data_yaml: Path) -> dict[str, Any]:
    config = read_yaml_mapping(data_yaml)
    if not isinstance(config, dict) or "names" not in config:
        raise DataError("a YOLO data.yaml must be a mapping with 'names'", source=str(data_yaml))
    return config


def _categories(config: dict[str, Any], source: str) -> list[dict[str, Any]]:
    names = config["names"]
    if isinstance(names, list):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or sorted(names) != list(range(len(names))):
        raise DataError("'names' must be a list or a mapping {0: name, 1: name, ...}", source=source)
    ids = config.get(CATEGORY_ID_KEY) or {k: k for k in names}
    if sorted(ids) != sorted(names):
        raise DataError(f"'{CATEGORY_ID_KEY}' must map every class index to a category id", source=source)
    return [{"id": int(ids[k]), "name": str(names[k])} for k in sorted(names)]


def label_path(image: Path) -> Path:
    """The label file of an image: the last ``images`` folder becomes ``labels``, suffix ``.txt``
    (``ultralytics.data.utils.img2label_paths``)."""
    parts = list(image.parts)
    if "images" not in parts:
        raise DataError("image path has no 'images' folder to map to 'labels'", source=str(image))
    k = len(parts) - 1 - parts[::-1].index("images")
    parts[k] = "labels"
    return Path(*parts).with_suffix(".txt")


def _parse_line(text: str, n_classes: int, source: str, line: int) -> tuple[int, np.ndarray]:
    rec = f"line {line}"
    fields = text.split()
    if len(fields) != 5 and (len(fields) < 7 or len(fields) % 2 == 0):
        raise DataError(f"{len(fields)} values; expected 'class cx cy w h' (5) or 'class x1 y1 x2 y2 x3 y3 ...' "
                        "(odd, >= 7)", source=source, record=rec)
    try:
        values = [float(f) for f in fields]
    except ValueError:
        raise DataError(f"not all values are numbers: {text.strip()!r}", source=source, record=rec) from None
    if not all(math.isfinite(v) for v in values):
        raise DataError(f"non-finite value in {text.strip()!r}", source=source, record=rec)
    cls = values[0]
    if not cls.is_integer() or not 0 <= cls < n_classes:
        raise DataError(f"class {fields[0]!r} is not an index in [0, {n_classes - 1}]", source=source, record=rec)
    coords = np.array(values[1:])
    if coords.min() < 0 or coords.max() > 1:
        raise DataError("coordinates must be normalised to [0, 1]", source=source, record=rec)
    if len(fields) == 5 and (coords[2] <= 0 or coords[3] <= 0):
        raise DataError(f"box has zero or negative size w={coords[2]}, h={coords[3]}", source=source, record=rec)
    return int(cls), coords


def read_label_file(path: Path, width: int, height: int, n_classes: int) -> Detections:
    """One YOLO label file -> pixel :class:`Detections` (0-based class indices in ``class_id``).

    Segment lines give a polygon ``segmentation`` and, as Ultralytics does, the polygon's
    extent as box. Raises :class:`DataError` naming the file and line for a bad line.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot read file ({exc.strerror})", source=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"not a UTF-8 text file ({exc.reason})", source=str(path)) from exc
    parsed = [_parse_line(t, n_classes, str(path), k) for k, t in enumerate(text.splitlines(), 1) if t.strip()]
    if not parsed:
        return Detections.empty()
    scale = np.array([width, height], dtype=np.float64)
    boxes, segms = [], []
    for _, coords in parsed:
        if len(coords) == 4:
            boxes.append(cxcywh_to_xyxy(coords * np.tile(scale, 2)))
            segms.append(None)
        else:
            pts = coords.reshape(-1, 2) * scale
            boxes.append(np.concatenate([pts.min(0), pts.max(0)]))
            segms.append([[float(v) for v in pts.reshape(-1)]])
    return Detections(xyxy_to_xywh(np.array(boxes)), [c for c, _ in parsed],
                      segmentation=segms if any(s is not None for s in segms) else None)


def import_yolo(data_yaml: str | Path, split: str) -> Dataset:
    """Read one split of a YOLO dataset into a :class:`Dataset`.

    The dataset root is ``path`` from the YAML (absolute, or relative to the YAML's folder;
    the YAML's folder when absent); ``<split>`` must name one image folder under it. Images
    are found recursively; an image without a label file has no objects. ``file_name`` is
    relative to the split's image folder (the :attr:`Dataset.root`), image ids count from 1
    in sorted file order, and width/height come from the files (after EXIF orientation).
    """
    data_yaml = Path(data_yaml)
    config = _read_config(data_yaml)
    source = str(data_yaml)
    categories = _categories(config, source)
    root = Path(config.get("path") or data_yaml.parent)
    root = root if root.is_absolute() else data_yaml.parent / root
    entry = config.get(split)
    if not isinstance(entry, str) or not entry:
        raise DataError(f"split '{split}' must name one image folder, got {entry!r}", source=source)
    image_dir = root / entry
    if not image_dir.is_dir():
        raise DataError(f"image folder {image_dir} not found", source=source, record=split)
    files = sorted(p for p in image_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    class_ids = np.array([c["id"] for c in categories], dtype=np.int64)
    records, next_ann = [], 1
    for image_id, path in enumerate(files, start=1):
        w, h = image_size(path)
        label = label_path(path)
        det = read_label_file(label, w, h, len(categories)) if label.is_file() else Detections.empty()
        ids = np.arange(next_ann, next_ann + len(det), dtype=np.int64)
        next_ann += len(det)
        det = det.with_fields(class_id=class_ids[det.class_id], id=ids)
        records.append(ImageRecord(image_id, path.relative_to(image_dir).as_posix(), w, h, det))
    return Dataset(categories, records, info={"description": f"YOLO split '{split}' of {data_yaml}"},
                   root=image_dir, source=source)
