"""The model stages: a detector and an optional semantic segmenter, looked up by registry name.

:func:`resolve_checkpoint` is the one place where a registry name becomes a checkpoint file,
through :func:`labkit.models.load` (the cached build, else the verified shipped checkpoint, else
a build). A config may name an explicit ``weights``
file instead (a fine-tuned checkpoint, or a test's tiny network); the registry name still
says what kind of model it is.

Both stages take their input from :meth:`labkit.pipeline.loader.Frame.prepared` with the
:class:`~labkit.pipeline.preprocess.InputSpec` recorded here, and return results in the
original frame's pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from labkit.data.annotations import Detections
from labkit.data.boxes import clip_xyxy
from labkit.data.masks import box_to_mask, mask_to_rle
from labkit.errors import DataError
from labkit.pipeline.loader import Frame
from labkit.pipeline.preprocess import InputSpec
from labkit.repro import sha256_file

#: The registry models (:mod:`labkit.models`) a pipeline stage may name, and their role.
REGISTRY: dict[str, str] = {
    "detect-tiny": "detector",
    "detect-base": "detector",
    "segment-tiny": "segmenter",
    "segment-base": "segmenter",
}
#: Letterbox padding each model family was trained with (Ultralytics grey; the U-Net pads 0).
YOLO_PAD, UNET_PAD = 114, 0


def resolve_checkpoint(name: str, role: str, weights: str | Path | None = None) -> Path:
    """The checkpoint of registry model ``name`` for ``role`` (``detector`` / ``segmenter``):
    ``weights`` when given, else :func:`labkit.models.load` of exactly ``name`` (not its CI variant)."""
    if name not in REGISTRY:
        raise DataError(f"unknown model {name!r}; known {role}s: {sorted(n for n, r in REGISTRY.items() if r == role)}")
    kind = REGISTRY[name]
    if kind != role:
        raise DataError(f"model {name!r} is a {kind}, not a {role}")
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise DataError("no such checkpoint file", source=str(path))
        return path
    from labkit.models import load

    return load(name, progress=False, follow_budget=False).weights


def _stack(frames: Sequence[Frame], spec: InputSpec, device: torch.device) -> tuple[torch.Tensor, list]:
    prepared = [f.prepared(spec) for f in frames]
    x = torch.from_numpy(np.stack([p[0] for p in prepared])).to(device)
    return x, [p[1] for p in prepared]


@dataclass
class DetectorStage:
    """A YOLO detector with its post-processing settings (NMS IoU, confidence, max boxes)."""

    name: str
    checkpoint: Path
    spec: InputSpec
    settings: dict[str, Any]
    _detector: Any = field(repr=False)

    @classmethod
    def load(cls, name: str, *, weights: str | Path | None = None, device: str = "cpu", conf: float = 0.25,
             iou: float = 0.7, max_det: int = 100, agnostic: bool = False) -> "DetectorStage":
        from labkit.detect.predict import load_detector

        path = resolve_checkpoint(name, "detector", weights)
        det = load_detector(path, device=device)
        settings = {"conf": float(conf), "iou": float(iou), "max_det": int(max_det), "agnostic": bool(agnostic)}
        return cls(name, path, InputSpec(det.imgsz, YOLO_PAD), settings, det)

    @property
    def class_names(self) -> dict[int, str]:
        return self._detector.class_names

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "checkpoint": str(self.checkpoint), "sha256": sha256_file(self.checkpoint),
                "input": self.spec.to_dict(), "postprocess": dict(self.settings)}

    @torch.inference_mode()
    def __call__(self, frames: Sequence[Frame]) -> list[Detections]:
        from labkit.detect._ultralytics import ul

        det = self._detector
        x, geometries = _stack(frames, self.spec, det.device)
        out = ul("ultralytics.utils.nms").non_max_suppression(
            det.model(x.half() if det.half else x), self.settings["conf"], self.settings["iou"],
            agnostic=self.settings["agnostic"], max_det=self.settings["max_det"], nc=len(det.names),
            end2end=det.end2end)
        found = []
        for rows, g, frame in zip(out, geometries, frames):
            rows = rows.float().cpu().numpy().astype(np.float64)
            xyxy = clip_xyxy(g.to_original(rows[:, :4]), frame.width, frame.height)
            found.append(Detections.from_xyxy(xyxy, det.class_ids[rows[:, 5].astype(np.int64)], score=rows[:, 4]))
        return found


@dataclass
class SegmenterStage:
    """A semantic segmenter (U-Net) whose label map gives each detection its mask."""

    name: str
    checkpoint: Path
    spec: InputSpec
    class_names: list[str]
    _model: Any = field(repr=False)
    _device: torch.device = field(repr=False)

    @classmethod
    def load(cls, name: str, *, weights: str | Path | None = None, device: str = "cpu") -> "SegmenterStage":
        from labkit.device import resolve_device
        from labkit.segment.semantic import load_checkpoint

        path = resolve_checkpoint(name, "segmenter", weights)
        try:
            model, cfg = load_checkpoint(path, device=device)
        except (OSError, RuntimeError, KeyError, TypeError, ValueError) as exc:
            raise DataError(f"not a loadable segmentation checkpoint ({type(exc).__name__}: {exc})",
                            source=str(path)) from exc
        prep = cfg.preprocessing
        return cls(name, path, InputSpec(cfg.size, UNET_PAD, tuple(prep.mean), tuple(prep.std)), list(cfg.class_names),
                   model, resolve_device(device))

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "checkpoint": str(self.checkpoint), "sha256": sha256_file(self.checkpoint),
                "input": self.spec.to_dict(), "classes": list(self.class_names)}

    @torch.inference_mode()
    def __call__(self, frames: Sequence[Frame]) -> list[np.ndarray]:
        """``(H, W)`` uint8 label maps (class indices of :attr:`class_names`) in frame pixels."""
        x, geometries = _stack(frames, self.spec, self._device)
        logits = self._model(x).float()
        return [g.scores_to_original(lg).argmax(0).cpu().numpy().astype(np.uint8) for lg, g in zip(logits, geometries)]


def attach_masks(detections: Detections, labels: np.ndarray, segment_classes: Sequence[str],
                 class_names: Mapping[int, str]) -> tuple[Detections, dict[int, dict]]:
    """Give each detection the pixels of its class inside its box (COCO RLE), and return the
    label map as ``{category id: RLE}`` for classes other than index 0 (background).

    Segmenter classes are matched to detector categories by name; a detection whose class the
    segmenter does not know gets no mask (``None``), and so does a segmenter class no detector
    category carries (it is keyed by its index).
    """
    h, w = labels.shape
    index_of = {n: i for i, n in enumerate(segment_classes)}
    category_of = {name: cid for cid, name in class_names.items()}
    masks = []
    for box, cid in zip(detections.xywh, detections.class_id):
        k = index_of.get(class_names.get(int(cid), ""))
        masks.append(None if k is None else mask_to_rle((labels == k) & box_to_mask(box, h, w)))
    semantic = {}
    for k in np.unique(labels):
        if k != 0:
            semantic[int(category_of.get(segment_classes[k], k))] = mask_to_rle(labels == k)
    return detections.with_fields(segmentation=masks), semantic


def build_tracker(settings: Mapping[str, Any]) -> Any:
    """A fresh :class:`labkit.track.tracker.Tracker` for one sequence (the one place the pipeline
    constructs a tracker). ``record=True``: the per-frame track snapshot says which detection
    each track matched, which is how tracks find their masks."""
    from labkit.track.tracker import Tracker

    return Tracker(dict(settings), record=True)


def attach_tracks(detections: Detections, result: Any) -> Detections:
    """Copy the tracker's frame result onto the detections: each detection a live track matched
    (or started) this frame gets its ``track_id`` and ``data["track_state"]`` (``tentative`` /
    ``confirmed``); the others get ``-1`` and ``None``. Boxes, scores and masks stay the
    detector's, so detection AP does not depend on the tracker."""
    from labkit.track.lifecycle import TrackState

    n = len(detections)
    ids = np.full(n, -1, dtype=np.int64)
    states = np.full(n, None, dtype=object)
    snap = result.tracks
    for tid, state, index in zip(snap.track_id, snap.data["state"], snap.data["detection"]):
        if index >= 0:
            ids[index] = int(tid)
            states[index] = TrackState(int(state)).label
    return detections.with_fields(track_id=ids, track_state=states)
