"""The data a course model is trained on: where it is, and the fingerprint its cache key and
``metrics.json`` record.

One :func:`dataset_root` and one :func:`fingerprint` for every model in the registry (YOLO,
Faster R-CNN, U-Net, YOLO-seg): a model built on one dataset is never reused for another.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from labkit.data.annotations import Dataset
from labkit.data.coco import load_coco
from labkit.errors import DataError
from labkit.repro import sha256_file

#: Splits a base model trains and validates on.
TRAIN_SPLITS = ("train", "val")


def dataset_root(size: str = "default", seed: int = 0, data_root: str | Path | None = None) -> Path:
    """``data_root`` if given (it must hold ``annotations/``), else the embedded dataset of that size
    and seed (generated on first use by :func:`labkit.data.synth.ensure_dataset`)."""
    if data_root is not None:
        root = Path(data_root)
        if not (root / "annotations").is_dir():
            raise DataError("not a dataset folder (no annotations/ inside)", source=str(root))
        return root
    from labkit.data.synth import ensure_dataset

    return Path(ensure_dataset(seed=seed, size=size))


def load_split(data_root: str | Path, split: str) -> Dataset:
    """The still-image COCO split ``annotations/instances_<split>.json`` (images under ``images/``)."""
    root = Path(data_root)
    return load_coco(root / "annotations" / f"instances_{split}.json", image_root=root / "images")


def fingerprint(data_root: str | Path, splits: tuple[str, ...] = TRAIN_SPLITS) -> dict[str, Any]:
    """What a model trained on a dataset depends on: the sha256 of each split's annotation file
    (``annotations/instances_<split>.json``; the images are generated with them), plus the
    generator version, seed and size from ``manifest.json`` when the dataset has one. Timings in the
    manifest are left out, so regenerating the same dataset gives the same fingerprint."""
    root = Path(data_root)
    files = [root / "annotations" / f"instances_{s}.json" for s in splits]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise DataError(f"dataset files missing: {missing}", source=str(root))
    found: dict[str, Any] = {}
    manifest = root / "manifest.json"
    if manifest.is_file():
        try:
            values = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(f"the dataset manifest is not readable JSON ({exc})", source=str(manifest)) from exc
        if isinstance(values, dict):
            found = {k: values.get(k) for k in ("generator_version", "seed", "size")}
    return {**found, "sha256": {f.relative_to(root).as_posix(): sha256_file(f) for f in files}}
