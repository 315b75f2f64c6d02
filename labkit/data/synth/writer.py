"""Writing the generated files: images, masks, COCO JSON, and the hashes and sizes of a folder.

Everything written here is a deterministic function of its input (no timestamps), so the
same seed gives byte-identical files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import cv2
import numpy as np

from labkit.data.synth.shapes import CATEGORIES
from labkit.repro import sha256_file


def _imwrite(path: Path, array: np.ndarray, params: list[int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), array, params):
        raise OSError(f"OpenCV could not write {path}")


def write_jpeg(path: Path, rgb: np.ndarray, quality: int) -> None:
    """Save a uint8 RGB image as baseline JPEG of the given quality."""
    _imwrite(path, np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])


def write_png(path: Path, array: np.ndarray) -> None:
    """Save a uint8/uint16 grey (H x W) or RGB(A) array as PNG (channels given in RGB order)."""
    if array.ndim == 3:
        code = cv2.COLOR_RGBA2BGRA if array.shape[2] == 4 else cv2.COLOR_RGB2BGR
        array = cv2.cvtColor(array, code)
    _imwrite(path, array, [cv2.IMWRITE_PNG_COMPRESSION, 6])


def write_json(path: Path, payload: Any, *, indent: int | None = None) -> None:
    """Dump JSON (compact unless ``indent``) with a trailing newline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    separators = None if indent else (",", ":")
    path.write_text(json.dumps(payload, indent=indent, separators=separators) + "\n", encoding="utf-8")


def coco_file(items: Iterable[tuple[dict, list[dict]]], info: dict[str, Any]) -> dict[str, Any]:
    """A COCO dict from ``(image entry, annotations)`` pairs: image ids 1..N and annotation
    ids 1..M are given in order (ids are unique within one file)."""
    images, annotations = [], []
    for image_id, (image, anns) in enumerate(items, start=1):
        images.append({"id": image_id, **image})
        for ann in anns:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, **ann})
    return {"info": info, "images": images, "annotations": annotations, "categories": CATEGORIES}


def folder_bytes(root: Path) -> tuple[int, int]:
    """(number of files, total bytes) under ``root``."""
    sizes = [p.stat().st_size for p in root.rglob("*") if p.is_file()]
    return len(sizes), sum(sizes)


def sha256_files(root: Path, patterns: Iterable[str]) -> dict[str, str]:
    """sha256 of every file under ``root`` matching a glob pattern, keyed by relative path."""
    paths = sorted({p for pattern in patterns for p in root.glob(pattern) if p.is_file()})
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in paths}
