"""Batched YOLO inference whose boxes come back in the ORIGINAL image's pixels.

Each image is letterboxed with :class:`labkit.data.boxes.Letterbox` to a square ``imgsz`` canvas
(aspect ratio kept, grey padding 114 as in Ultralytics), a batch of canvases goes through the
network in one forward pass, non-maximum suppression keeps the best boxes, and
:meth:`Letterbox.inverse_boxes` maps them back exactly before clipping to the image. On a CUDA
GPU the network runs in half precision; on CPU in float32.

Class indices of the network become the dataset's category ids through ``categories.json``
(written next to every checkpoint labkit trains; see :func:`find_categories`); without it the
class id is the network's index (e.g. 0 = person for COCO-pretrained weights).
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Hashable, Iterable, Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from labkit.data.annotations import Detections
from labkit.data.boxes import Letterbox, clip_xyxy
from labkit.detect._ultralytics import ul
from labkit.data.sources import Source, count_frames, iter_frames, to_rgb
from labkit.device import resolve_device
from labkit.errors import DataError

#: Sidecar naming the dataset category of each network class index (list of COCO categories).
CATEGORY_FILE = "categories.json"
PAD_VALUE = 114


def find_categories(weights: str | Path) -> list[dict[str, Any]] | None:
    """The category list stored beside a checkpoint: ``categories.json`` in its folder or the
    folder above (an Ultralytics run keeps weights in ``<run>/weights/``); ``None`` if absent."""
    weights = Path(weights)
    for folder in (weights.parent, weights.parent.parent):
        path = folder / CATEGORY_FILE
        if path.is_file():
            cats = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(cats, list) or not all(isinstance(c, dict) and "id" in c for c in cats):
                raise DataError("expected a list of {id, name} categories", source=str(path))
            return cats
    return None


@dataclass
class Detector:
    """A loaded YOLO network ready for batched inference (see :func:`load_detector`).

    Attributes:
        model: the fused ``DetectionModel`` in eval mode on ``device``.
        device: where it runs; ``half`` is True on CUDA (fp16 weights and inputs).
        imgsz: square input size the images are letterboxed to.
        names: network class index -> class name.
        class_ids: ``(nc,)`` dataset category id of each class index.
        end2end: the head is NMS-free (YOLO26 style), so NMS only thresholds.
    """

    model: torch.nn.Module
    device: torch.device
    half: bool
    imgsz: int
    names: dict[int, str]
    class_ids: np.ndarray
    end2end: bool

    @property
    def class_names(self) -> dict[int, str]:
        """Dataset category id -> class name."""
        return {int(self.class_ids[i]): name for i, name in self.names.items()}

    def letterbox(self, image: np.ndarray) -> Letterbox:
        """The letterbox this detector applies to an image of ``image``'s size."""
        return Letterbox.fit(image.shape[:2], self.imgsz)

    def _batch_tensor(self, canvases: list[np.ndarray]) -> torch.Tensor:
        x = torch.from_numpy(np.stack(canvases)).to(self.device)
        x = x.permute(0, 3, 1, 2)  # BHWC -> BCHW; RGB, the channel order Ultralytics trains with
        return (x.half() if self.half else x.float()) / 255.0

    @torch.inference_mode()
    def __call__(self, images: Sequence[np.ndarray], *, conf: float = 0.001, iou: float = 0.7,
                 classes: Iterable[int] | None = None, max_det: int = 300, agnostic: bool = False) -> list[Detections]:
        """Detect objects in a batch of RGB uint8 images (any sizes); boxes in each image's pixels.

        ``agnostic`` runs NMS across classes (a box suppresses overlapping boxes of any class).
        """
        if not images:
            return []
        images = [to_rgb(img) for img in images]
        boxes = [self.letterbox(img) for img in images]
        x = self._batch_tensor([lb.image(img, pad_value=PAD_VALUE) for lb, img in zip(boxes, images)])
        nms = ul("ultralytics.utils.nms").non_max_suppression
        keep = None if classes is None else self.class_indices(classes)
        out = nms(self.model(x), conf, iou, classes=keep, agnostic=agnostic, max_det=max_det, nc=len(self.names),
                  end2end=self.end2end)
        return [self._to_detections(o.float().cpu().numpy().astype(np.float64), lb) for o, lb in zip(out, boxes)]

    def class_indices(self, category_ids: Iterable[int]) -> list[int]:
        """Network class indices of some dataset category ids (unknown ids are an error)."""
        lookup = {int(c): i for i, c in enumerate(self.class_ids)}
        wanted = [int(c) for c in category_ids]
        missing = [c for c in wanted if c not in lookup]
        if missing:
            raise DataError(f"class ids {missing} are not among the detector's {sorted(lookup)}")
        return [lookup[c] for c in wanted]

    def _to_detections(self, rows: np.ndarray, lb: Letterbox) -> Detections:
        xyxy = clip_xyxy(lb.inverse_boxes(rows[:, :4]), lb.src_w, lb.src_h)
        return Detections.from_xyxy(xyxy, self.class_ids[rows[:, 5].astype(np.int64)], score=rows[:, 4])


def load_detector(weights: str | Path, *, device: str = "auto", imgsz: int | None = None,
                  categories: list[dict[str, Any]] | None = None) -> Detector:
    """Load an Ultralytics detection checkpoint (``.pt``) for :meth:`Detector.__call__`.

    ``imgsz`` defaults to the size the checkpoint was trained at; ``categories`` (COCO category
    dicts in class-index order) defaults to :func:`find_categories`.
    """
    weights = Path(weights)
    if not weights.is_file():
        raise DataError("no such checkpoint file", source=str(weights))
    dev = resolve_device(device)
    try:
        model, _ = ul("ultralytics.nn.tasks").load_checkpoint(weights, device=dev)
    except (OSError, EOFError, RuntimeError, TypeError, ValueError, KeyError, AttributeError,
            pickle.UnpicklingError) as exc:
        raise DataError(f"not a loadable Ultralytics checkpoint ({type(exc).__name__}: {exc})",
                        source=str(weights)) from exc
    if getattr(model, "task", "detect") != "detect":
        raise DataError(f"not a detection model (task {model.task!r})", source=str(weights))
    model = model.fuse(verbose=False)  # conv+batch-norm folded; quiet, so --json output stays pure JSON
    half = dev.type == "cuda"
    model = model.half() if half else model.float()
    names = {int(k): str(v) for k, v in dict(model.names).items()}
    cats = categories if categories is not None else find_categories(weights)
    if cats is None:
        class_ids = np.arange(len(names), dtype=np.int64)
    else:
        if len(cats) != len(names):
            raise DataError(f"{len(cats)} categories for a network with {len(names)} classes", source=str(weights))
        class_ids = np.array([int(c["id"]) for c in cats], dtype=np.int64)
    size = int(imgsz or model.args.get("imgsz", 640))
    stride = int(max(model.stride))
    if size % stride:
        raise DataError(f"imgsz {size} is not a multiple of the network stride {stride}", source=str(weights))
    return Detector(model, dev, half, size, names, class_ids, bool(getattr(model.model[-1], "end2end", False)))


def _batches(items: Iterable[tuple[Hashable, np.ndarray]], size: int) -> Iterator[list[tuple[Hashable, np.ndarray]]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def frames(sources: Source, max_frames: int | None = None, *, desc: str = "frames",
           progress: bool = True) -> Iterator[tuple[Hashable, np.ndarray]]:
    """``(key, RGB image)`` of ``sources`` (see :func:`labkit.data.sources.iter_frames`), at most
    ``max_frames`` of them, with a tqdm bar."""
    total = count_frames(sources)
    total = total if max_frames is None else min(total, max_frames)
    with tqdm(total=total, desc=desc, unit="img", disable=not progress) as bar:
        for item in islice(iter_frames(sources), max_frames):
            yield item
            bar.update(1)


def predict_iter(weights: str | Path | Detector, sources: Source, *, conf: float = 0.001, iou: float = 0.7,
                 classes: Iterable[int] | None = None, batch: int = 8, device: str = "auto",
                 imgsz: int | None = None, max_det: int = 300, max_frames: int | None = None,
                 progress: bool = True, agnostic: bool = False) -> Iterator[tuple[Hashable, np.ndarray, Detections]]:
    """Like :func:`predict`, but yields ``(key, RGB image, Detections)`` one by one (frames of a
    long video never all sit in memory)."""
    if batch < 1:
        raise DataError(f"batch must be >= 1, got {batch}")
    det = weights if isinstance(weights, Detector) else load_detector(weights, device=device, imgsz=imgsz)
    keep = None if classes is None else list(classes)
    for chunk in _batches(frames(sources, max_frames, desc="predict", progress=progress), batch):
        keys, images = zip(*chunk)
        found = det(list(images), conf=conf, iou=iou, classes=keep, max_det=max_det, agnostic=agnostic)
        yield from zip(keys, images, found)


def predict(weights: str | Path | Detector, sources: Source, *, conf: float = 0.001, iou: float = 0.7,
            classes: Iterable[int] | None = None, batch: int = 8, device: str = "auto", imgsz: int | None = None,
            max_det: int = 300, max_frames: int | None = None, progress: bool = True,
            agnostic: bool = False) -> dict[Hashable, Detections]:
    """Run a detector over ``sources`` in batches; boxes in ORIGINAL pixels.

    Args:
        weights: a checkpoint path or an already loaded :class:`Detector`.
        sources: a :class:`~labkit.data.annotations.Dataset` (keys: image ids), an image / video /
            folder path or a list of them (keys: path strings, ``"<video>#<n>"`` for frames), or a
            mapping ``key -> RGB array``.
        conf: minimum confidence (0.001 keeps the low-score tail that AP needs).
        iou: NMS IoU threshold.
        classes: keep only these dataset category ids.
        batch: images per forward pass.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"`` (ignored for a loaded :class:`Detector`).
        imgsz: network input size (default: the training size).
        max_det: most detections kept per image.
        max_frames: stop after this many images/frames.
        progress: show a tqdm bar.
        agnostic: class-agnostic NMS (default: per class).

    Returns:
        ``{key: Detections}`` with scores, in source order.
    """
    return {key: d for key, _, d in predict_iter(weights, sources, conf=conf, iou=iou, classes=classes, batch=batch,
                                                 device=device, imgsz=imgsz, max_det=max_det, max_frames=max_frames,
                                                 progress=progress, agnostic=agnostic)}
