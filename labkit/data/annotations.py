"""The one annotation model every chapter uses.

:class:`Detections` holds the objects of one image (or one video frame) as parallel arrays,
in the spirit of ``supervision.Detections``: boxes always, and optionally scores, track ids,
instance masks (COCO polygons or RLE, rasterised on demand), keypoints and any further
per-object field in ``data``. :class:`ImageRecord` ties detections to an image file, and
:class:`Dataset` is a list of image records plus the category table, i.e. a COCO file.

Boxes are stored the COCO way, ``[x, y, width, height]`` in pixels with ``(x, y)`` the
top-left corner (COCO data format, https://cocodataset.org/#format-data), so that reading
and writing COCO or MOTChallenge files is lossless; :attr:`Detections.xyxy` gives corners.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from labkit.errors import DataError

#: Keys of ``Detections.data`` that COCO defines and labkit knows how to read and write.
COCO_ANNOTATION_FIELDS = ("id", "area", "iscrowd")


def _as_1d(values: Any, n: int, dtype: Any, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=dtype).reshape(-1)
    if arr.shape[0] != n:
        raise DataError(f"'{name}' has {arr.shape[0]} entries but there are {n} boxes")
    return arr


@dataclass
class Detections:
    """Objects in one image: boxes plus optional per-object fields, all of length ``N``.

    Attributes:
        xywh: ``(N, 4)`` float64 boxes, COCO convention (top-left x, y, width, height; pixels).
        class_id: ``(N,)`` int64 category ids (the ids of the dataset's category table).
        score: ``(N,)`` float64 confidences for predictions (in ``[0, 1]`` for COCO results; raw
            detector scores such as MOT ``det.txt`` values may exceed 1), else ``None``.
        track_id: ``(N,)`` int64 identities across frames, else ``None``.
        segmentation: per-object COCO segmentation (polygon list or RLE dict, or ``None`` for an
            object without a mask), else ``None``. Rasterise with :meth:`masks`.
        keypoints: ``(N, K, 3)`` float64 ``(x, y, visibility)`` keypoints, else ``None``.
        data: further per-object arrays of length ``N`` (e.g. ``id``, ``iscrowd``, ``area``,
            ``visibility``); object arrays hold arbitrary JSON values, ``None`` meaning absent.
    """

    xywh: np.ndarray
    class_id: np.ndarray
    score: np.ndarray | None = None
    track_id: np.ndarray | None = None
    segmentation: list | None = None
    keypoints: np.ndarray | None = None
    data: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        xywh = np.asarray(self.xywh, dtype=np.float64)
        if xywh.size == 0:
            xywh = xywh.reshape(0, 4)
        if xywh.ndim != 2 or xywh.shape[1] != 4:
            raise DataError(f"boxes must have shape (N, 4), got {xywh.shape}")
        n = xywh.shape[0]
        self.xywh = xywh
        self.class_id = _as_1d(self.class_id, n, np.int64, "class_id")
        if self.score is not None:
            self.score = _as_1d(self.score, n, np.float64, "score")
        if self.track_id is not None:
            self.track_id = _as_1d(self.track_id, n, np.int64, "track_id")
        if self.segmentation is not None:
            self.segmentation = list(self.segmentation)
            if len(self.segmentation) != n:
                raise DataError(f"'segmentation' has {len(self.segmentation)} entries but there are {n} boxes")
        if self.keypoints is not None:
            kp = np.asarray(self.keypoints, dtype=np.float64)
            if kp.size == 0:
                kp = kp.reshape(n, 0, 3)
            if kp.ndim != 3 or kp.shape[0] != n or kp.shape[2] != 3:
                raise DataError(f"keypoints must have shape (N, K, 3) with N={n}, got {kp.shape}")
            self.keypoints = kp
        fixed = {}
        for key, values in self.data.items():
            arr = np.asarray(values) if not isinstance(values, np.ndarray) else values
            if arr.ndim == 0 or arr.shape[0] != n:
                raise DataError(f"data field '{key}' has shape {arr.shape} but there are {n} boxes")
            fixed[key] = arr
        self.data = fixed

    # ----------------------------------------------------------------- construction
    @classmethod
    def empty(cls, *, with_score: bool = False) -> "Detections":
        """No objects (with an empty score array when ``with_score``, i.e. an empty prediction)."""
        return cls(np.zeros((0, 4)), np.zeros(0, np.int64), score=np.zeros(0) if with_score else None)

    @classmethod
    def from_xyxy(cls, xyxy: Any, class_id: Any, **fields: Any) -> "Detections":
        """Build from corner boxes ``[x1, y1, x2, y2]`` (pixels)."""
        from labkit.data.boxes import xyxy_to_xywh

        return cls(xyxy_to_xywh(np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)), class_id, **fields)

    @classmethod
    def from_masks(cls, masks: np.ndarray, class_id: Any, **fields: Any) -> "Detections":
        """Build from ``(N, H, W)`` boolean instance masks: boxes are the tight mask boxes and
        segmentations are compressed COCO RLE."""
        from labkit.data.masks import mask_to_rle, rle_bbox

        masks = np.asarray(masks).astype(bool)
        if masks.ndim != 3:
            raise DataError(f"masks must have shape (N, H, W), got {masks.shape}")
        rles = [mask_to_rle(m) for m in masks]
        boxes = np.array([rle_bbox(r) for r in rles], dtype=np.float64).reshape(-1, 4)
        return cls(boxes, class_id, segmentation=rles, **fields)

    @staticmethod
    def concat(items: Sequence["Detections"]) -> "Detections":
        """Stack several detections; optional fields survive only if every item has them."""
        items = list(items)
        if not items:
            return Detections.empty()

        def cat(name: str) -> np.ndarray | None:
            parts = [getattr(d, name) for d in items]
            return None if any(p is None for p in parts) else np.concatenate(parts)

        segm = None
        if all(d.segmentation is not None for d in items):
            segm = [s for d in items for s in d.segmentation]
        keys = set.intersection(*(set(d.data) for d in items))
        data = {k: np.concatenate([d.data[k] for d in items]) for k in sorted(keys)}
        kps = None
        if all(d.keypoints is not None for d in items) and len({d.keypoints.shape[1] for d in items}) == 1:
            kps = np.concatenate([d.keypoints for d in items])
        return Detections(
            np.concatenate([d.xywh for d in items]),
            np.concatenate([d.class_id for d in items]),
            score=cat("score"),
            track_id=cat("track_id"),
            segmentation=segm,
            keypoints=kps,
            data=data,
        )

    # ----------------------------------------------------------------- access
    def __len__(self) -> int:
        return int(self.xywh.shape[0])

    def __getitem__(self, index: Any) -> "Detections":
        """Subset by integer, slice, index array or boolean mask; always returns Detections."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        idx = np.arange(len(self))[index]
        return Detections(
            self.xywh[idx],
            self.class_id[idx],
            score=None if self.score is None else self.score[idx],
            track_id=None if self.track_id is None else self.track_id[idx],
            segmentation=None if self.segmentation is None else [self.segmentation[i] for i in idx],
            keypoints=None if self.keypoints is None else self.keypoints[idx],
            data={k: v[idx] for k, v in self.data.items()},
        )

    @property
    def xyxy(self) -> np.ndarray:
        """``(N, 4)`` corner boxes ``[x1, y1, x2, y2]`` in pixels."""
        from labkit.data.boxes import xywh_to_xyxy

        return xywh_to_xyxy(self.xywh)

    @property
    def box_area(self) -> np.ndarray:
        """``(N,)`` box areas ``w * h`` in square pixels."""
        return self.xywh[:, 2] * self.xywh[:, 3]

    def masks(self, height: int, width: int) -> np.ndarray:
        """Rasterise the segmentations to ``(N, H, W)`` bool; an object without one is its box."""
        from labkit.data.masks import box_to_mask, segmentation_to_mask

        out = np.zeros((len(self), height, width), dtype=bool)
        for i in range(len(self)):
            segm = None if self.segmentation is None else self.segmentation[i]
            out[i] = box_to_mask(self.xywh[i], height, width) if segm is None else segmentation_to_mask(segm, height, width)
        return out

    def get(self, key: str, default: Any = None) -> np.ndarray | Any:
        """A per-object field of ``data`` (e.g. ``"iscrowd"``), or ``default`` when absent."""
        return self.data.get(key, default)

    def with_fields(self, **changes: Any) -> "Detections":
        """A copy with some fields replaced (``data`` entries may be given by name too)."""
        base = {
            "xywh": self.xywh, "class_id": self.class_id, "score": self.score, "track_id": self.track_id,
            "segmentation": self.segmentation, "keypoints": self.keypoints, "data": dict(self.data),
        }
        for key, value in changes.items():
            if key in base:
                base[key] = value
            else:
                base["data"][key] = value
        return Detections(**base)


@dataclass
class ImageRecord:
    """One image (or video frame) and its objects.

    ``extra`` keeps every other field of the COCO image entry (``scene_id``, ``camera_id``,
    ``frame_index``, ``sequence`` ...) so a COCO round trip loses nothing.
    """

    id: int
    file_name: str
    width: int
    height: int
    detections: Detections = field(default_factory=Detections.empty)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Dataset:
    """A COCO-style dataset: category table, image records and free-form ``info``.

    ``root`` is the folder image ``file_name`` entries are relative to (``None`` if unknown);
    ``source`` names the file it came from, for error messages.
    """

    categories: list[dict[str, Any]]
    images: list[ImageRecord]
    info: dict[str, Any] = field(default_factory=dict)
    licenses: list[dict[str, Any]] | None = None
    root: Path | None = None
    source: str = "<memory>"

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self):
        return iter(self.images)

    @property
    def category_names(self) -> dict[int, str]:
        """Category id -> name."""
        return {int(c["id"]): str(c["name"]) for c in self.categories}

    def image_path(self, record: ImageRecord) -> Path:
        """Absolute path of an image's file (needs ``root``)."""
        if self.root is None:
            raise DataError("dataset has no image root folder", source=self.source, record=record.id)
        return Path(self.root) / record.file_name

    def by_id(self) -> dict[int, ImageRecord]:
        """Image id -> record."""
        return {r.id: r for r in self.images}

    def num_objects(self) -> int:
        """Total number of annotated objects."""
        return sum(len(r.detections) for r in self.images)

    def subset(self, image_ids: Iterable[int]) -> "Dataset":
        """The records whose ids are listed, in dataset order, sharing categories and root."""
        wanted = set(int(i) for i in image_ids)
        return Dataset(
            self.categories, [r for r in self.images if r.id in wanted], dict(self.info),
            self.licenses, self.root, self.source,
        )
