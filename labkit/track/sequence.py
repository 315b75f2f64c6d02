"""A MOTChallenge sequence folder, and strict reading of its detection / ground-truth files.

Layout (A. Milan et al., "MOT16", arXiv:1603.00831)::

    DIR/seqinfo.ini      name, frame rate, length, image size (optional here, see below)
    DIR/img1/000001.jpg  frames (optional: without them the tracker runs motion-only)
    DIR/det/det.txt      public detections (optional)
    DIR/gt/gt.txt        ground truth (optional)

Without ``seqinfo.ini`` (the TUD files of MOT15 as shipped by some mirrors) the length is the
number of frames in ``img1/`` and the size that of the first frame; :attr:`Sequence.info_source`
says which. Beyond :func:`labkit.data.mot.read_mot`'s checks (column count, non-finite numbers,
negative sizes, an id twice in a frame), :func:`read_sequence_file` refuses rows out of frame
order and frame numbers beyond the sequence length, naming the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labkit.data.annotations import Detections
from labkit.data.mot import read_mot, read_seqinfo
from labkit.errors import DataError

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class Sequence:
    """One sequence folder: name, length, frame size, fps and the files found in it."""

    root: Path
    name: str
    length: int
    width: int
    height: int
    fps: int
    frames_dir: Path | None
    det_file: Path | None
    gt_file: Path | None
    info_source: str  #: "seqinfo.ini" or "img1 folder"

    def frame_paths(self) -> list[Path]:
        """Frame files in order (empty when the folder has no frames)."""
        if self.frames_dir is None:
            return []
        return sorted(p for p in self.frames_dir.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)

    def read_frame(self, frame: int) -> np.ndarray:
        """RGB frame ``frame`` (1-based)."""
        import cv2

        paths = self.frame_paths()
        if not 1 <= frame <= len(paths):
            raise DataError(f"no frame {frame} (the folder has {len(paths)})", source=str(self.frames_dir))
        image = cv2.imread(str(paths[frame - 1]), cv2.IMREAD_COLOR)
        if image is None:
            raise DataError("cannot decode image", source=str(paths[frame - 1]))
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def open_sequence(root: str | Path, *, require_frames: bool = False) -> Sequence:
    """Inspect a MOTChallenge sequence folder (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError("sequence folder not found", source=str(root))
    seqinfo = root / "seqinfo.ini"
    info = read_seqinfo(seqinfo) if seqinfo.is_file() else None
    frames_dir = root / (info["im_dir"] if info else "img1")
    has_frames = frames_dir.is_dir() and any(p.suffix.lower() in FRAME_SUFFIXES for p in frames_dir.iterdir())
    if require_frames and not has_frames:
        raise DataError("frames folder missing or empty (needed for this command)", source=str(frames_dir))
    det = root / "det" / "det.txt"
    gt = root / "gt" / "gt.txt"
    if info is None:
        if not has_frames:
            raise DataError("neither seqinfo.ini nor frames in img1/: cannot tell the sequence length", source=str(root))
        import cv2

        paths = sorted(p for p in frames_dir.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
        first = cv2.imread(str(paths[0]), cv2.IMREAD_COLOR)
        if first is None:
            raise DataError("cannot decode image", source=str(paths[0]))
        info = {"name": root.name, "length": len(paths), "width": first.shape[1], "height": first.shape[0], "fps": 25}
        source = "img1 folder"
    else:
        source = "seqinfo.ini"
    return Sequence(root, info["name"], int(info["length"]), int(info["width"]), int(info["height"]), int(info["fps"]),
                    frames_dir if has_frames else None, det if det.is_file() else None, gt if gt.is_file() else None,
                    source)


def check_row_order(path: str | Path, length: int | None) -> None:
    """Rows must come in non-decreasing frame order, with frames ``<= length`` (when known)."""
    path = Path(path)
    previous = 0
    for line, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        frame = int(float(raw.split(",", 1)[0]))
        if frame < previous:
            raise DataError(f"frame {frame} after frame {previous}: rows must be sorted by frame", source=str(path),
                            record=f"line {line}")
        if length is not None and frame > length:
            raise DataError(f"frame {frame} is beyond the sequence length {length} (seqinfo.ini)", source=str(path),
                            record=f"line {line}")
        previous = frame


def read_sequence_file(path: str | Path, kind: str, length: int | None, *, layout: str = "mot16") -> dict[int, Detections]:
    """:func:`~labkit.data.mot.read_mot` plus the order and range checks above. An empty file is
    valid: no detections in any frame (the tracks coast, then die)."""
    frames = read_mot(path, kind, layout=layout)  # type: ignore[arg-type]
    check_row_order(path, length)
    return frames


def sequence_from_video(video: str | Path, out_dir: str | Path, *, max_frames: int | None = None) -> Path:
    """Write the frames of a video file (e.g. OpenCV's ``vtest.avi``) as a MOTChallenge sequence
    folder, ``out_dir/img1/000001.jpg ...`` plus ``seqinfo.ini`` (name = the file's stem, frame rate
    from the container, 25 when it states none), so every sequence command can track it; frames
    after ``max_frames`` are left out. Returns ``out_dir``; a video without a readable frame is a
    :class:`DataError`."""
    import cv2

    from labkit.data.mot import write_seqinfo

    video, out = Path(video), Path(out_dir)
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise DataError("cannot open the video", source=str(video))
    (out / "img1").mkdir(parents=True, exist_ok=True)
    count, shape = 0, None
    try:
        fps = int(round(capture.get(cv2.CAP_PROP_FPS) or 0)) or 25
        while max_frames is None or count < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            count, shape = count + 1, frame.shape
            cv2.imwrite(str(out / "img1" / f"{count:06d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
    finally:
        capture.release()
    if count == 0:
        raise DataError("the video has no readable frame", source=str(video))
    for stale in sorted((out / "img1").glob("*.jpg"))[count:]:
        stale.unlink()
    write_seqinfo(out / "seqinfo.ini", name=video.stem, length=count, fps=fps, width=shape[1], height=shape[0])
    return out
