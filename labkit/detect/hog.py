"""The classical baseline: OpenCV's HOG + linear-SVM pedestrian detector.

Method: N. Dalal and B. Triggs, "Histograms of Oriented Gradients for Human Detection", CVPR
2005. A 64x128 window is described by gradient-orientation histograms (9 bins, 8x8-pixel cells,
2x2-cell blocks, L2-Hys normalised) and scored by a linear SVM trained on INRIA people
(``cv2.HOGDescriptor_getDefaultPeopleDetector``); the window slides over an image pyramid and
overlapping hits are merged (``groupRectangles``). It finds upright, roughly full-body people
of at least 64x128 pixels and nothing else.

Detections get ``class_id`` 1 (COCO's "person"), ``score`` = logistic(SVM margin) in (0, 1)
(monotone, so rankings and AP are unchanged) and the raw margin in ``data["svm_margin"]``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Hashable, Mapping

import cv2
import numpy as np

from labkit.data.annotations import Detections
from labkit.detect.predict import frames
from labkit.data.sources import Source, to_rgb

PERSON = 1


def people_detector() -> cv2.HOGDescriptor:
    """The default 64x128 HOG descriptor with OpenCV's pretrained people SVM."""
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    return hog


def detect_people(image: np.ndarray, *, max_side: int | None = 640, win_stride: int = 8, padding: int = 8,
                  scale: float = 1.05, hit_threshold: float = 0.0, group_threshold: int = 2,
                  hog: cv2.HOGDescriptor | None = None) -> Detections:
    """People in one RGB (or grey) uint8 image, boxes in its pixels.

    Args:
        max_side: shrink the image so its longer side is at most this before detecting (speed;
            boxes are scaled back exactly). ``None`` keeps the full size.
        win_stride: window step in pixels.
        padding: pixels of padding around the image in the pyramid.
        scale: pyramid step (>1; smaller is slower and finds more sizes).
        hit_threshold: SVM margin a window needs.
        group_threshold: ``groupRectangles``' minimum neighbours for a merged box (0: no merging).
        hog: a descriptor from :func:`people_detector` (re-used across calls when given).
    """
    img = cv2.cvtColor(to_rgb(image), cv2.COLOR_RGB2GRAY)
    h, w = img.shape
    factor = 1.0 if max_side is None else min(1.0, max_side / max(h, w))
    if factor < 1.0:
        img = cv2.resize(img, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_AREA)
    hog = hog or people_detector()
    rects, margins = hog.detectMultiScale(img, hitThreshold=hit_threshold, winStride=(win_stride, win_stride),
                                          padding=(padding, padding), scale=scale, groupThreshold=group_threshold)
    if len(rects) == 0:
        return Detections.empty(with_score=True)
    # Scale back: resized pixel p covers original pixels [p / f_x, (p + 1) / f_x).
    fx, fy = w / img.shape[1], h / img.shape[0]
    xywh = np.asarray(rects, dtype=np.float64).reshape(-1, 4) * np.array([fx, fy, fx, fy])
    margin = np.asarray(margins, dtype=np.float64).reshape(-1)
    return Detections(xywh, np.full(len(xywh), PERSON), score=1.0 / (1.0 + np.exp(-margin)),
                      data={"svm_margin": margin})


def hog_predict(sources: Source, *, max_frames: int | None = None, progress: bool = True,
                **options: float | int | None) -> dict[Hashable, Detections]:
    """:func:`detect_people` over images / folders / videos (see :mod:`labkit.data.sources`)."""
    hog = people_detector()
    return {key: detect_people(img, hog=hog, **options)
            for key, img in frames(sources, max_frames, desc="HOG", progress=progress)}


def hog_beside(model: Any, sources: Mapping[str, Source], *, max_frames: Mapping[str, int | None] | None = None,
               conf: float = 0.25) -> tuple[Any, dict[str, dict[str, dict[Hashable, Detections]]]]:
    """The HOG people detector and a learned detector (``model``: weights or a loaded detector for
    :func:`labkit.detect.predict.predict`, boxes kept from ``conf``) on the same frames.

    ``sources`` names each source (e.g. ``{"photos": [...], "vtest.avi": [video]}``); ``max_frames``
    caps the frames read per name. Returns a pandas table, one row per name (``frames``, ``HOG
    people``, ``HOG ms/frame``, ``learned boxes``, ``learned ms/frame``: wall clock of each whole
    run, reading and pre-/post-processing included), and every detection as
    ``{name: {"HOG": {frame key: Detections}, "learned": {...}}}``.
    """
    import pandas as pd

    from labkit.detect.predict import predict

    limits = dict(max_frames or {})
    rows, found = {}, {}
    for name, source in sources.items():
        start = time.perf_counter()
        hog = hog_predict(source, max_frames=limits.get(name), progress=False)
        hog_ms = 1000 * (time.perf_counter() - start) / max(len(hog), 1)
        start = time.perf_counter()
        learned = predict(model, source, conf=conf, max_frames=limits.get(name), progress=False)
        learned_ms = 1000 * (time.perf_counter() - start) / max(len(learned), 1)
        rows[name] = {"frames": len(hog), "HOG people": sum(len(d) for d in hog.values()), "HOG ms/frame": hog_ms,
                      "learned boxes": sum(len(d) for d in learned.values()), "learned ms/frame": learned_ms}
        found[name] = {"HOG": hog, "learned": learned}
    return pd.DataFrame(rows).T, found


def vtest_video() -> Path | None:
    """OpenCV's sample pedestrian video from Debian's ``opencv-doc`` package, if installed."""
    path = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
    return path if path.is_file() else None


def ultralytics_assets() -> Path:
    """The sample images (``bus.jpg``, ``zidane.jpg``) shipped inside the Ultralytics package."""
    import importlib.util

    spec = importlib.util.find_spec("ultralytics")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("ultralytics is not installed")
    return Path(spec.origin).parent / "assets"
