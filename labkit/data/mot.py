"""MOTChallenge text files (``gt.txt``, ``det.txt``, tracker results) and ``seqinfo.ini``.

One row per box, comma separated, as defined for MOT16/17/20 (A. Milan et al., "MOT16: A
Benchmark for Multi-Object Tracking", arXiv:1603.00831, Tables 2-4; P. Dendorfer et al.,
"MOT20", arXiv:2003.09003)::

    frame, id, bb_left, bb_top, bb_width, bb_height, conf, class, visibility[, unused]

* ground truth (``kind="gt"``): ``conf`` is the 0/1 *consider* flag (0 = ignore this box in
  evaluation), ``class`` the category, ``visibility`` the visible fraction in ``[0, 1]``.
* detections and tracker results (``kind="pred"``): ``conf`` is the detector's raw confidence
  (any real number, e.g. 51.8 or -1), ``id`` is ``-1`` for detection files, and columns 8-10
  are ``-1`` (the MOT15/16 world coordinates ``x, y, z``, unused in 2-D evaluation).

Frames are 1-based. ``-1`` in the class column means "not given" and reads as class 1 (the one
class of the pedestrian benchmarks), as TrackEval does. Layouts accepted (older files are
shorter): gt 6-10 columns, pred 7-10 columns; missing gt columns read as consider = 1,
class = 1, visibility = 1.0, and so does ``-1`` (the MOT15 files' "not given"). The MOT15
ground truth of some sequences holds world coordinates in columns 8-10; read those with
``layout="mot15"``, which ignores columns 8-10.

An empty file is valid (a tracker that output nothing, a sequence without objects) and
reads as an empty dict. Frames without rows are absent from the dict: the sequence length
comes from ``seqinfo.ini`` (:func:`read_seqinfo`).
"""

from __future__ import annotations

import configparser
import math
from pathlib import Path
from typing import Literal, Mapping

import numpy as np

from labkit.data.annotations import Detections
from labkit.errors import DataError

Kind = Literal["gt", "pred"]
Layout = Literal["mot16", "mot15"]

_MIN_COLUMNS = {"gt": 6, "pred": 7}
_MAX_COLUMNS = 10
_SEQINFO_KEYS = {  # seqinfo.ini key -> (our name, type)
    "name": ("name", str), "imDir": ("im_dir", str), "frameRate": ("fps", int),
    "seqLength": ("length", int), "imWidth": ("width", int), "imHeight": ("height", int), "imExt": ("im_ext", str),
}


def _parse_row(fields: list[str], source: str, line: int) -> list[float]:
    values = []
    for k, text in enumerate(fields, start=1):
        try:
            v = float(text)
        except ValueError:
            raise DataError(f"column {k} is not a number ({text!r})", source=source, record=f"line {line}") from None
        if not math.isfinite(v):
            raise DataError(f"column {k} is not finite ({text!r})", source=source, record=f"line {line}")
        values.append(v)
    return values


def _integer(value: float, what: str, source: str, line: int) -> int:
    if not float(value).is_integer():
        raise DataError(f"{what} must be an integer, got {value!r}", source=source, record=f"line {line}")
    return int(value)


def _read_rows(path: Path, kind: Kind) -> list[tuple[int, list[float]]]:
    """Non-blank rows as floats, with their 1-based line numbers; checks the column count."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot read file ({exc.strerror})", source=source) from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"not a UTF-8 text file ({exc.reason})", source=source) from exc
    rows: list[tuple[int, list[float]]] = []
    width = None
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        fields = [f.strip() for f in raw.split(",")]
        n = len(fields)
        if not _MIN_COLUMNS[kind] <= n <= _MAX_COLUMNS:
            raise DataError(
                f"{n} columns; a MOTChallenge {kind} row has {_MIN_COLUMNS[kind]} to {_MAX_COLUMNS} "
                "(frame, id, x, y, w, h, conf, class, visibility, unused)", source=source, record=f"line {line}")
        if width is not None and n != width:
            raise DataError(f"{n} columns, but the rows before have {width}", source=source, record=f"line {line}")
        width = n
        rows.append((line, _parse_row(fields, source, line)))
    return rows


def _optional(values: list[float], column: int, default: float) -> float:
    """Column ``column`` (1-based) or ``default`` when the row is shorter or holds -1."""
    if len(values) < column or values[column - 1] == -1:
        return default
    return values[column - 1]


def read_mot(path: str | Path, kind: Kind, *, layout: Layout = "mot16") -> dict[int, Detections]:
    """Read a MOTChallenge file into ``{frame: Detections}`` (frames ascending, 1-based).

    ``kind="gt"``: ``track_id`` = column 2, ``class_id`` = column 8, ``data["consider"]``
    (int 0/1) = column 7, ``data["visibility"]`` (float) = column 9, ``score`` None.
    ``kind="pred"``: ``score`` = column 7 (raw, unbounded), ``track_id`` = column 2 (-1 in
    detection files), ``class_id`` = column 8 (1 when -1 or absent).
    ``layout="mot15"`` ignores columns 8-10 (world coordinates in MOT15 ground truth).

    Raises :class:`DataError` naming the file and line for a wrong column count, a field that
    is not a finite number, a non-integer frame/id/class, frame < 1, negative width or height,
    a consider flag other than 0/1, a visibility outside [0, 1], or an id repeated in a frame.
    """
    if kind not in _MIN_COLUMNS:
        raise DataError(f"kind must be 'gt' or 'pred', got {kind!r}", source=str(path))
    path = Path(path)
    source = str(path)
    per_frame: dict[int, list[tuple]] = {}
    seen: set[tuple[int, int]] = set()
    for line, v in _read_rows(path, kind):
        frame = _integer(v[0], "frame", source, line)
        if frame < 1:
            raise DataError(f"frame {frame} < 1 (MOTChallenge frames start at 1)", source=source, record=f"line {line}")
        track = _integer(v[1], "id", source, line)
        if v[4] < 0 or v[5] < 0:
            raise DataError(f"negative box size w={v[4]}, h={v[5]}", source=source, record=f"line {line}")
        if track >= 0:
            if (frame, track) in seen:
                raise DataError(f"id {track} appears twice in frame {frame}", source=source, record=f"line {line}")
            seen.add((frame, track))
        cols = v if layout == "mot16" else v[:7]
        cls = _integer(_optional(cols, 8, 1.0), "class", source, line)
        if kind == "gt":
            consider = _integer(_optional(cols, 7, 1.0), "consider flag", source, line)
            visibility = _optional(cols, 9, 1.0)
            if consider not in (0, 1):
                raise DataError(f"consider flag (column 7) must be 0 or 1, got {consider}", source=source, record=f"line {line}")
            if not 0.0 <= visibility <= 1.0:
                raise DataError(f"visibility (column 9) {visibility} is outside [0, 1]", source=source, record=f"line {line}")
            extra = (consider, visibility)
        else:
            extra = (v[6],)
        per_frame.setdefault(frame, []).append((v[2:6], cls, track, extra))
    return {frame: _frame_detections(per_frame[frame], kind) for frame in sorted(per_frame)}


def _frame_detections(rows: list[tuple], kind: Kind) -> Detections:
    boxes = np.array([r[0] for r in rows], dtype=np.float64)
    cls = np.array([r[1] for r in rows], dtype=np.int64)
    tracks = np.array([r[2] for r in rows], dtype=np.int64)
    if kind == "gt":
        data = {"consider": np.array([r[3][0] for r in rows], dtype=np.int64),
                "visibility": np.array([r[3][1] for r in rows], dtype=np.float64)}
        return Detections(boxes, cls, track_id=tracks, data=data)
    return Detections(boxes, cls, score=np.array([r[3][0] for r in rows], dtype=np.float64), track_id=tracks)


def _fmt(value: float) -> str:
    """Integers as integers, other floats in the shortest form that reads back exactly."""
    value = float(value)
    if not math.isfinite(value):
        raise DataError(f"cannot write a non-finite value ({value!r})")
    return str(int(value)) if value.is_integer() else repr(value)


def write_mot(frames: Mapping[int, Detections], path: str | Path, kind: Kind) -> Path:
    """Write ``{frame: Detections}`` as a MOTChallenge file, the exact inverse of :func:`read_mot`.

    gt rows have 9 columns (``frame, id, x, y, w, h, consider, class, visibility``;
    ``consider`` and ``visibility`` from ``data``, default 1). pred rows have 10 columns
    (``frame, id, x, y, w, h, score, class, -1, -1``; id -1 when there are no track ids).
    Rows are sorted by frame, then track id. The file is written atomically (temp + rename).
    """
    if kind not in _MIN_COLUMNS:
        raise DataError(f"kind must be 'gt' or 'pred', got {kind!r}", source=str(path))
    path = Path(path)
    lines = []
    for frame in sorted(frames):
        if int(frame) < 1:
            raise DataError(f"frame {frame} < 1 (MOTChallenge frames start at 1)", source=str(path))
        det = frames[frame]
        n = len(det)
        if kind == "gt" and det.track_id is None:
            raise DataError("ground truth needs track ids", source=str(path), record=f"frame {frame}")
        if kind == "pred" and det.score is None:
            raise DataError("predictions need scores", source=str(path), record=f"frame {frame}")
        tracks = det.track_id if det.track_id is not None else np.full(n, -1, dtype=np.int64)
        for i in np.argsort(tracks, kind="stable"):
            head = [str(int(frame)), str(int(tracks[i]))] + [_fmt(c) for c in det.xywh[i]]
            if kind == "gt":
                consider = det.data.get("consider", np.ones(n, dtype=np.int64))[i]
                visibility = det.data.get("visibility", np.ones(n))[i]
                tail = [str(int(consider)), str(int(det.class_id[i])), _fmt(visibility)]
            else:
                tail = [_fmt(det.score[i]), str(int(det.class_id[i])), "-1", "-1"]
            lines.append(",".join(head + tail))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    tmp.replace(path)
    return path


def read_seqinfo(path: str | Path) -> dict:
    """Parse a ``seqinfo.ini`` (section ``[Sequence]``) into ``{name, im_dir, fps, length, width,
    height, im_ext}``; a missing key or a non-integer number raises :class:`DataError`."""
    path = Path(path)
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keep the camelCase keys
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except OSError as exc:
        raise DataError(f"cannot read file ({exc.strerror})", source=str(path)) from exc
    except configparser.Error as exc:
        raise DataError(f"not a valid ini file ({exc.message.splitlines()[0]})", source=str(path)) from exc
    if not parser.has_section("Sequence"):
        raise DataError("no [Sequence] section", source=str(path))
    section = parser["Sequence"]
    out: dict = {}
    for key, (name, typ) in _SEQINFO_KEYS.items():
        if key not in section:
            raise DataError(f"missing key '{key}'", source=str(path), record="[Sequence]")
        try:
            out[name] = typ(section[key].strip())
        except ValueError:
            raise DataError(f"'{key}' must be an integer, got {section[key]!r}", source=str(path), record="[Sequence]") from None
    return out


def write_seqinfo(path: str | Path, *, name: str, length: int, fps: int, width: int, height: int,
                  im_dir: str = "img1", im_ext: str = ".jpg") -> Path:
    """Write a ``seqinfo.ini`` in the MOTChallenge layout (``key=value``, no spaces), atomically."""
    values = {"name": name, "imDir": im_dir, "frameRate": int(fps), "seqLength": int(length),
              "imWidth": int(width), "imHeight": int(height), "imExt": im_ext}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("[Sequence]\n" + "".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    tmp.replace(path)
    return path
