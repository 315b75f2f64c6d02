"""The frame record: the one versioned data contract between pipeline stages, one per frame.

Every stage (loader -> detector -> segmenter -> tracker -> renderer / exporter) reads and
writes the same record; on disk the records of a run are JSON Lines (``predictions.jsonl``,
one record per line, keys sorted, so the same run gives the same bytes). A record::

    {"schema_version": "1.0", "frame_id": 7, "timestamp_s": 0.24, "source": "seq/img1/000007.jpg",
     "width": 320, "height": 240,
     "objects": [{"box_xywh": [x, y, w, h], "class_id": 1, "class_name": "disc", "score": 0.91,
                  "mask": {"size": [240, 320], "counts": "..."} | null,
                  "track_id": 4 | null, "track_state": "confirmed" | null}],
     "semantic": {"1": <RLE of every pixel of class 1>, ...} | null}

Boxes are COCO ``[x, y, width, height]`` in the ORIGINAL frame's pixels; masks are compressed
COCO RLE (:mod:`labkit.data.masks`) of the original frame size. ``frame_id`` is 1-based (the
MOTChallenge convention). :data:`SCHEMA` is a JSON Schema (draft 2020-12) checked with the
``jsonschema`` library; :func:`validate_record` adds the checks a schema cannot express (mask
sizes equal the frame size). In memory a record's objects are the canonical
:class:`~labkit.data.annotations.Detections` (:func:`record_to_detections`,
:func:`detections_to_record`): there is no second box type.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import jsonschema
import numpy as np

from labkit.data.annotations import Detections
from labkit.errors import DataError

SCHEMA_VERSION = "1.0"
TRACK_STATES = ("tentative", "confirmed", "lost")

_RLE = {
    "type": "object", "required": ["size", "counts"], "additionalProperties": False,
    "properties": {"size": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2, "maxItems": 2},
                   "counts": {"type": "string"}},
}
_OBJECT = {
    "type": "object", "additionalProperties": False,
    "required": ["box_xywh", "class_id", "class_name", "score", "mask", "track_id", "track_state"],
    "properties": {
        "box_xywh": {"type": "array", "minItems": 4, "maxItems": 4,
                     "prefixItems": [{"type": "number"}, {"type": "number"},
                                     {"type": "number", "minimum": 0}, {"type": "number", "minimum": 0}]},
        "class_id": {"type": "integer"},
        "class_name": {"type": "string"},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "mask": {"oneOf": [{"type": "null"}, _RLE]},
        "track_id": {"type": ["integer", "null"], "minimum": 0},
        "track_state": {"enum": [*TRACK_STATES, None]},
    },
}
#: JSON Schema of one frame record (version :data:`SCHEMA_VERSION`).
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "labkit pipeline frame record",
    "type": "object", "additionalProperties": False,
    "required": ["schema_version", "frame_id", "timestamp_s", "source", "width", "height", "objects", "semantic"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "frame_id": {"type": "integer", "minimum": 1},
        "timestamp_s": {"type": "number", "minimum": 0},
        "source": {"type": "string"},
        "width": {"type": "integer", "minimum": 1},
        "height": {"type": "integer", "minimum": 1},
        "objects": {"type": "array", "items": _OBJECT},
        "semantic": {"oneOf": [{"type": "null"},
                               {"type": "object", "propertyNames": {"pattern": "^[0-9]+$"},
                                "additionalProperties": _RLE}]},
    },
}
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def _where(path: Iterable[Any]) -> str:
    return "/".join(str(p) for p in path) or "<record>"


def validate_record(record: Any, *, source: str = "<memory>", line: int | None = None) -> dict[str, Any]:
    """Check one record against :data:`SCHEMA` and the frame-size rule; returns it.

    Raises :class:`DataError` naming ``source``, the line and the offending field.
    """
    where = None if line is None else f"line {line}"
    errors = sorted(_VALIDATOR.iter_errors(record), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        raise DataError(f"{_where(first.absolute_path)}: {first.message} (schema {SCHEMA_VERSION})",
                        source=source, record=where)
    size = [record["height"], record["width"]]
    masks = [(f"objects/{i}/mask", o["mask"]) for i, o in enumerate(record["objects"])]
    masks += [(f"semantic/{k}", rle) for k, rle in (record["semantic"] or {}).items()]
    for field, rle in masks:
        if rle is not None and list(rle["size"]) != size:
            raise DataError(f"{field}: mask size {rle['size']} differs from the frame size {size}",
                            source=source, record=where)
    return record


def detections_to_record(detections: Detections, *, frame_id: int, timestamp_s: float, source: str, width: int,
                         height: int, class_names: Mapping[int, str],
                         semantic: Mapping[int, dict] | None = None) -> dict[str, Any]:
    """One validated record from the objects of a frame.

    ``detections`` needs scores; its segmentations (if any) must be RLE of the frame size; track
    ids (``-1``: not tracked) and ``data["track_state"]`` are optional. ``semantic`` maps class id -> RLE of the
    frame's label map (a semantic segmenter's output), or ``None``.
    """
    if detections.score is None:
        raise DataError("predictions need scores", record=f"frame {frame_id}")
    states = detections.get("track_state")
    objects = []
    for i in range(len(detections)):
        cls = int(detections.class_id[i])
        objects.append({
            "box_xywh": [float(v) for v in detections.xywh[i]],
            "class_id": cls,
            "class_name": str(class_names.get(cls, cls)),
            "score": float(detections.score[i]),
            "mask": None if detections.segmentation is None else detections.segmentation[i],
            "track_id": None if detections.track_id is None or detections.track_id[i] < 0 else int(detections.track_id[i]),
            "track_state": None if states is None else states[i],
        })
    record = {"schema_version": SCHEMA_VERSION, "frame_id": int(frame_id), "timestamp_s": float(timestamp_s),
              "source": str(source), "width": int(width), "height": int(height), "objects": objects,
              "semantic": None if semantic is None else {str(int(k)): v for k, v in sorted(semantic.items())}}
    return validate_record(record, source=f"frame {frame_id}")


def record_to_detections(record: Mapping[str, Any]) -> Detections:
    """The objects of a (validated) record as :class:`Detections`: scores always; segmentations,
    track ids (``-1`` for an object without one) and ``data["track_state"]`` / ``data["class_name"]``
    when the record has them."""
    objs = record["objects"]
    n = len(objs)
    boxes = np.array([o["box_xywh"] for o in objs], dtype=np.float64).reshape(n, 4)
    masks = [o["mask"] for o in objs]
    tracks = [o["track_id"] for o in objs]
    data = {"class_name": np.array([o["class_name"] for o in objs], dtype=object)}
    if any(o["track_state"] is not None for o in objs):
        data["track_state"] = np.array([o["track_state"] for o in objs], dtype=object)
    return Detections(
        boxes, [o["class_id"] for o in objs], score=[o["score"] for o in objs],
        track_id=[-1 if t is None else t for t in tracks] if any(t is not None for t in tracks) else None,
        segmentation=masks if any(m is not None for m in masks) else None,
        data=data,
    )


def confirmed_tracks(record: Mapping[str, Any]) -> Detections:
    """The objects of a record that belong to a confirmed track (what MOT results and tracking
    metrics count)."""
    det = record_to_detections(record)
    states = det.get("track_state")
    if states is None:
        return Detections.empty(with_score=True).with_fields(track_id=np.zeros(0, dtype=np.int64))
    return det[np.array([s == "confirmed" for s in states], dtype=bool)]


def dumps(record: Mapping[str, Any]) -> str:
    """A record as one JSON line: sorted keys, no spaces, floats in their shortest exact form."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False)


def write_jsonl(path: str | Path, records: Iterable[Mapping[str, Any]]) -> Path:
    """Validate and write records as JSON Lines (atomically: temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for line, record in enumerate(records, start=1):
            f.write(dumps(validate_record(record, source=str(path), line=line)) + "\n")
    tmp.replace(path)
    return path


def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Read and validate the records of a JSON Lines file one by one; a blank line, bad JSON or
    a record that breaks the contract is a :class:`DataError` naming the file and line."""
    path = Path(path)
    try:
        f = open(path, encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot read predictions ({exc.strerror})", source=str(path)) from exc
    with f:
        last = 0
        for line, text in enumerate(f, start=1):
            if not text.strip():
                raise DataError("blank line (one JSON record per line expected)", source=str(path),
                                record=f"line {line}")
            try:
                record = json.loads(text)
            except ValueError as exc:
                raise DataError(f"not valid JSON ({exc})", source=str(path), record=f"line {line}") from None
            validate_record(record, source=str(path), line=line)
            if record["frame_id"] <= last:
                raise DataError(f"frame_id {record['frame_id']} does not follow frame {last}", source=str(path),
                                record=f"line {line}")
            last = record["frame_id"]
            yield record


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every record of a JSON Lines file (see :func:`iter_jsonl`)."""
    return list(iter_jsonl(path))
