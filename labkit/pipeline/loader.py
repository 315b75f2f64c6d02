"""The frame loader: the first stage, turning a source into numbered, time-stamped RGB frames.

Sources (:func:`open_source` decides from the path):

* a MOTChallenge sequence folder (holds ``seqinfo.ini``): its ``imDir`` images in name order,
  timestamps from ``frameRate``; ground truth ``gt/gt.txt`` when present;
* a folder of images: the image files directly inside it, in name order, timestamps from
  ``fps``;
* a video file: every decoded frame, timestamps from the container's frame rate (``fps`` when
  the header has none);
* a camera index (``0``, ``1`` ...): ``max_frames`` frames from that device
  (:func:`labkit.pipeline.run.run` saves them, so the run can be rendered and scored again).

Frames are numbered from 1 (the MOTChallenge convention) and carry the ``source`` string that
:mod:`labkit.pipeline.render` uses to find the pixels again: the image path, or
``<video>#<n>``. Each model's :class:`~labkit.pipeline.preprocess.InputSpec` is applied to a
frame by :meth:`Frame.prepared` (once per spec, then cached).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from labkit.data.images import load_image
from labkit.data.mot import read_seqinfo
from labkit.data.sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from labkit.errors import DataError, LabkitError
from labkit.pipeline.preprocess import Geometry, InputSpec


class SourceError(LabkitError):
    """A source path the loader does not know how to read (a usage error: exit code 2)."""


@dataclass
class Frame:
    """One frame: 1-based id, timestamp in seconds, where it came from, RGB uint8 pixels."""

    frame_id: int
    timestamp_s: float
    source: str
    image: np.ndarray
    _inputs: dict[InputSpec, tuple[np.ndarray, Geometry]] = field(default_factory=dict, repr=False)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    def prepared(self, spec: InputSpec) -> tuple[np.ndarray, Geometry]:
        """The network input for ``spec`` and the geometry back to this frame's pixels."""
        if spec not in self._inputs:
            self._inputs[spec] = spec.prepare(self.image)
        return self._inputs[spec]


@dataclass(frozen=True)
class FrameSource:
    """A readable source: its kind (``mot``, ``images``, ``video`` or ``camera``), path (the
    camera index for a camera), frame rate, the image files (not for videos) and the MOT
    ground-truth file when there is one."""

    kind: str
    path: Path
    fps: float
    files: tuple[Path, ...] = ()
    gt_file: Path | None = None

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": str(self.path), "fps": self.fps,
                "frames": len(self.files) if self.kind not in ("video", "camera") else None,
                "ground_truth": None if self.gt_file is None else str(self.gt_file)}


def _images_in(folder: Path) -> tuple[Path, ...]:
    files = tuple(sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
    if not files:
        raise DataError("the folder holds no image file", source=str(folder))
    return files


def open_source(path: str | Path, *, fps: float = 25.0) -> FrameSource:
    """Recognise a source (see the module docstring); anything else is a :class:`SourceError`."""
    if str(path).isdigit() and not Path(path).exists():
        cap = cv2.VideoCapture(int(str(path)))
        try:
            if not cap.isOpened():
                raise DataError(f"cannot open camera {path}", source=f"camera {path}")
            rate = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        finally:
            cap.release()
        return FrameSource("camera", Path(str(path)), rate if rate > 0 else float(fps))
    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    if path.is_dir():
        if (path / "seqinfo.ini").is_file():
            info = read_seqinfo(path / "seqinfo.ini")
            gt = path / "gt" / "gt.txt"
            return FrameSource("mot", path, float(info["fps"]), _images_in(path / info["im_dir"]),
                               gt if gt.is_file() else None)
        return FrameSource("images", path, float(fps), _images_in(path))
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        cap = cv2.VideoCapture(str(path))
        try:
            if not cap.isOpened():
                raise DataError("cannot open the video", source=str(path))
            rate = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        finally:
            cap.release()
        return FrameSource("video", path, rate if rate > 0 else float(fps))
    if suffix in IMAGE_SUFFIXES:
        raise SourceError(f"{path}: a single image is not a frame source; give its folder")
    known = sorted(VIDEO_SUFFIXES)
    raise SourceError(f"{path}: unknown source type {suffix or '(no suffix)'!r}; give a MOTChallenge sequence "
                      f"folder (with seqinfo.ini), a folder of images or a video file ({', '.join(known)})")


def _video(source: FrameSource) -> Iterator[Frame]:
    camera = source.kind == "camera"
    cap = cv2.VideoCapture(int(str(source.path)) if camera else str(source.path))
    name = f"camera:{source.path}" if camera else str(source.path)
    try:
        index = 0
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            index += 1
            yield Frame(index, (index - 1) / source.fps, f"{name}#{index}", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    if index == 0:
        raise DataError("the video has no readable frame", source=name)


def iter_source(source: FrameSource, max_frames: int | None = None) -> Iterator[Frame]:
    """The frames of ``source`` in order (at most ``max_frames``); an unreadable image is a
    :class:`DataError` naming its file."""
    if source.kind == "camera" and max_frames is None:
        raise SourceError(f"camera {source.path}: a camera never ends; give a number of frames (--max-frames)")
    if source.kind in ("video", "camera"):
        yield from islice(_video(source), max_frames)
        return
    for index, path in enumerate(source.files[:max_frames], start=1):
        yield Frame(index, (index - 1) / source.fps, str(path), load_image(path))


def read_frame(source: str) -> np.ndarray:
    """The RGB pixels a record's ``source`` names (an image path or ``<video>#<n>``)."""
    stem, sep, number = source.rpartition("#")
    if sep and number.isdigit() and Path(stem).suffix.lower() in VIDEO_SUFFIXES:
        cap = cv2.VideoCapture(stem)
        try:
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(number) - 1)
            ok, bgr = cap.read()
        finally:
            cap.release()
        if not ok:
            raise DataError(f"cannot read frame {number}", source=stem)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return load_image(source)
