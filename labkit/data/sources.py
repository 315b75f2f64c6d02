"""Where images come from for inference: a dataset, image files, folders, videos or arrays.

Every frame is yielded as ``(key, RGB uint8 image)``, the canonical array of
:mod:`labkit.data.images` (EXIF orientation applied, 16-bit and alpha handled there). Keys: the image id for a
:class:`~labkit.data.annotations.Dataset`, the path string for an image file, ``"<video>#<n>"``
(1-based frame number) for a video frame, and the mapping key for in-memory arrays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Hashable, Iterator, Mapping, Sequence, Union

import cv2
import numpy as np

from labkit.data.annotations import Dataset
from labkit.data.images import load_image
from labkit.errors import DataError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm"})

Source = Union[Dataset, str, Path, Mapping[Hashable, np.ndarray], Sequence[Union[str, Path]]]


def to_rgb(image: np.ndarray, *, record: object = None) -> np.ndarray:
    """An in-memory 8-bit image (grey ``HxW``/``HxWx1`` or RGB ``HxWx3``) -> contiguous RGB uint8."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise DataError(f"images must be uint8, got {img.dtype}", record=record)
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
        return np.ascontiguousarray(np.repeat(img.reshape(img.shape[:2])[:, :, None], 3, axis=2))
    if img.ndim == 3 and img.shape[2] == 3:
        return np.ascontiguousarray(img)
    raise DataError(f"expected an RGB (H, W, 3) or grey (H, W) image, got shape {img.shape} "
                    "(load files with labkit.data.images.load_image)", record=record)


def _video_frames(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DataError("cannot open the video", source=str(path))
    try:
        index = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            index += 1
            yield f"{path}#{index}", cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()
    if index == 0:
        raise DataError("the video has no readable frame", source=str(path))


def _video_length(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    try:
        return max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
    finally:
        cap.release()


def _expand_path(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
        if not files:
            raise DataError("the folder holds no image or video file", source=str(path))
        return files
    if not path.exists():
        raise DataError("no such file or folder", source=str(path))
    if path.suffix.lower() not in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
        raise DataError(f"unknown image/video suffix {path.suffix!r}", source=str(path))
    return [path]


def _paths(source: Source) -> list[Path]:
    items = [source] if isinstance(source, (str, Path)) else list(source)  # type: ignore[arg-type]
    return [p for item in items for p in _expand_path(Path(item))]


def count_frames(source: Source) -> int:
    """How many frames :func:`iter_frames` will yield (video lengths from their headers)."""
    if isinstance(source, Dataset):
        return len(source)
    if isinstance(source, Mapping):
        return len(source)
    return sum(_video_length(p) if p.suffix.lower() in VIDEO_SUFFIXES else 1 for p in _paths(source))


def iter_frames(source: Source) -> Iterator[tuple[Hashable, np.ndarray]]:
    """Yield ``(key, RGB image)`` for every image or video frame of ``source``.

    A dataset image whose decoded size differs from its record's ``width``/``height`` raises
    :class:`DataError` (its boxes could not be compared with predictions).
    """
    if isinstance(source, Dataset):
        for rec in source:
            path = source.image_path(rec)
            img = load_image(path)
            if img.shape[:2] != (rec.height, rec.width):
                raise DataError(f"image is {img.shape[1]}x{img.shape[0]} but the record says {rec.width}x{rec.height}",
                                source=str(path), record=rec.id)
            yield rec.id, img
        return
    if isinstance(source, Mapping):
        for key, img in source.items():
            yield key, to_rgb(img, record=key)
        return
    for path in _paths(source):
        if path.suffix.lower() in VIDEO_SUFFIXES:
            yield from _video_frames(path)
        else:
            yield str(path), load_image(path)
