"""Comparing detectors on the same images: speed per image and the object sizes AP rests on."""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np

from labkit.data.annotations import Dataset
from labkit.errors import DataError


def ms_per_image(detect: Callable[[list[np.ndarray]], Any], images: Sequence[np.ndarray], *, batch: int = 1,
                 warmup: int = 1) -> float:
    """Wall-clock milliseconds per image of ``detect`` (a callable taking a list of RGB images,
    e.g. a YOLO :class:`~labkit.detect.predict.Detector` or a :class:`FrcnnDetector`) over
    ``images`` in chunks of ``batch``, after ``warmup`` untimed calls on the first chunk.
    Letterboxing, the network and post-processing are all inside the timing."""
    if batch < 1 or not images:
        raise DataError("ms_per_image needs batch >= 1 and at least one image")
    chunks = [list(images[i:i + batch]) for i in range(0, len(images), batch)]
    for _ in range(warmup):
        detect(chunks[0])
    start = time.perf_counter()
    for chunk in chunks:
        detect(chunk)
    return 1000.0 * (time.perf_counter() - start) / len(images)


def size_counts(dataset: Dataset) -> dict[str, int]:
    """Non-crowd objects of ``dataset`` by COCO size range (area < 32², < 96², larger), using the
    annotation ``area`` as COCO does (the box area where it is missing): how many objects each of
    APs / APm / APl rests on."""
    counts = {"small": 0, "medium": 0, "large": 0}
    for rec in dataset:
        det = rec.detections
        crowd, area = det.get("iscrowd"), det.get("area")
        for i in range(len(det)):
            if crowd is not None and bool(crowd[i]):
                continue
            a = float(area[i]) if area is not None and area[i] is not None else float(det.box_area[i])
            counts["small" if a < 32 ** 2 else "medium" if a < 96 ** 2 else "large"] += 1
    return counts
