"""The Faster R-CNN network and its inference: build from a config, load a checkpoint, predict, score.

Pixels: every image is letterboxed with :class:`labkit.data.boxes.Letterbox` to the square
``imgsz`` canvas YOLO sees (grey padding 114), and the network's own resize is set to
``min_size = max_size = imgsz`` so it leaves that canvas unchanged; predicted boxes go back to the
original image through :meth:`Letterbox.inverse_boxes` (exact), then are clipped to it.
Classes: network label ``k`` (1..K, 0 is background) is the k-th category of the train split
sorted by id; ``categories.json`` beside the weights records the order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Hashable, Mapping, Sequence

import numpy as np
import torch

from labkit.data.annotations import Dataset, Detections
from labkit.data.boxes import Letterbox, clip_xyxy
from labkit.data.sources import Source, to_rgb
from labkit.detect.evaluate import coco_summary
from labkit.detect.predict import PAD_VALUE, _batches, frames
from labkit.detect.twostage.config import FrcnnConfig
from labkit.device import resolve_device
from labkit.errors import DataError
from labkit.models.registry import Scores


def _load_backbone_weights(model: torch.nn.Module) -> None:
    from labkit.weights import resolve_pretrained

    state = torch.load(resolve_pretrained("mobilenet_v3_large"), map_location="cpu", weights_only=True)
    body = model.backbone.body
    own = body.state_dict()
    found = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    found = {k: v for k, v in found.items() if k in own and own[k].shape == v.shape}
    if not found:
        raise DataError("the ImageNet MobileNetV3 weights fit no backbone layer")
    body.load_state_dict(found, strict=False)


def build_model(config: FrcnnConfig, num_classes: int) -> torch.nn.Module:
    """The torchvision Faster R-CNN ``config`` describes, for ``num_classes`` object classes
    (plus background), with its resize set to leave an ``imgsz`` canvas unchanged."""
    from torchvision.models import detection
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import MultiScaleRoIAlign

    model = getattr(detection, config.arch)(
        weights=None, weights_backbone=None, num_classes=num_classes + 1, min_size=config.imgsz,
        max_size=config.imgsz, box_score_thresh=config.eval_conf, box_detections_per_img=config.max_det,
        box_batch_size_per_image=config.box_batch_size_per_image)
    if config.pretrained_backbone:
        _load_backbone_weights(model)
    if config.anchor_sizes is not None:
        old = model.rpn.anchor_generator
        model.rpn.anchor_generator = AnchorGenerator((tuple(config.anchor_sizes),) * len(old.sizes), old.aspect_ratios)
    heads = model.roi_heads
    pool = heads.box_roi_pool
    heads.box_roi_pool = MultiScaleRoIAlign(pool.featmap_names, pool.output_size, config.roi_sampling_ratio)
    resolution = pool.output_size[0]
    heads.box_head = TwoMLPHead(model.backbone.out_channels * resolution ** 2, config.representation_size)
    heads.box_predictor = FastRCNNPredictor(config.representation_size, num_classes + 1)
    return model


def count_parameters(model: torch.nn.Module) -> int:
    """Number of scalar parameters of a network."""
    return int(sum(p.numel() for p in model.parameters()))


def _to_tensor(canvas: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(canvas)).permute(2, 0, 1).float().div_(255.0)


@dataclass
class FrcnnDetector:
    """A trained Faster R-CNN ready for batched inference (see :func:`load_frcnn`).

    Attributes:
        model: the network in eval mode on ``device``.
        device: where it runs (bf16 autocast on CUDA).
        imgsz: square canvas the images are letterboxed to.
        categories: COCO category dicts; network label ``k`` is ``categories[k - 1]``.
    """

    model: torch.nn.Module
    device: torch.device
    imgsz: int
    categories: list[dict[str, Any]]

    @property
    def class_ids(self) -> np.ndarray:
        """``(K,)`` dataset category id of network labels 1..K."""
        return np.array([int(c["id"]) for c in self.categories], dtype=np.int64)

    @property
    def class_names(self) -> dict[int, str]:
        """Dataset category id -> class name."""
        return {int(c["id"]): str(c["name"]) for c in self.categories}

    def letterbox(self, image: np.ndarray) -> Letterbox:
        """The letterbox this detector applies to an image of ``image``'s size."""
        return Letterbox.fit(image.shape[:2], self.imgsz)

    @torch.inference_mode()
    def raw(self, canvases: Sequence[np.ndarray]) -> list[dict[str, torch.Tensor]]:
        """The network's output (boxes in canvas pixels, labels 1..K, scores) for RGB canvases."""
        x = [_to_tensor(c).to(self.device) for c in canvases]
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            return self.model(x)

    def __call__(self, images: Sequence[np.ndarray], *, conf: float = 0.001, max_det: int = 100) -> list[Detections]:
        """Detect objects in a batch of RGB uint8 images (any sizes); boxes in each image's pixels."""
        if not images:
            return []
        images = [to_rgb(img) for img in images]
        boxes = [self.letterbox(img) for img in images]
        self.model.roi_heads.score_thresh, self.model.roi_heads.detections_per_img = conf, max_det
        out = self.raw([lb.image(img, pad_value=PAD_VALUE) for lb, img in zip(boxes, images)])
        return [self._to_detections(o, lb) for o, lb in zip(out, boxes)]

    def _to_detections(self, out: Mapping[str, torch.Tensor], lb: Letterbox) -> Detections:
        xyxy = out["boxes"].float().cpu().numpy().astype(np.float64)
        labels = out["labels"].cpu().numpy().astype(np.int64)
        score = out["scores"].float().cpu().numpy().astype(np.float64)
        xyxy = clip_xyxy(lb.inverse_boxes(xyxy), lb.src_w, lb.src_h)
        return Detections.from_xyxy(xyxy, self.class_ids[labels - 1], score=score)


def load_frcnn(weights: str | Path, *, device: str = "auto") -> FrcnnDetector:
    """Load ``best.pt`` / ``weights.pt`` written by :func:`train_frcnn` for inference."""
    weights = Path(weights)
    if not weights.is_file():
        raise DataError("no such checkpoint file", source=str(weights))
    try:
        state = torch.load(weights, map_location="cpu", weights_only=False)
        config = FrcnnConfig.from_mapping({**state["config"], "pretrained_backbone": False}, source=str(weights))
        categories = list(state["categories"])
        model = build_model(config, len(categories))
        model.load_state_dict(state["model"])
    except (OSError, EOFError, RuntimeError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"not a labkit Faster R-CNN checkpoint ({type(exc).__name__}: {exc})",
                        source=str(weights)) from exc
    dev = resolve_device(device)
    return FrcnnDetector(model.to(dev).eval(), dev, config.imgsz, categories)


def predict_frcnn(detector: FrcnnDetector | str | Path, sources: Source, *, conf: float = 0.001, batch: int = 8,
                  max_det: int = 100, device: str = "auto", max_frames: int | None = None,
                  progress: bool = True) -> dict[Hashable, Detections]:
    """Like :func:`labkit.detect.predict.predict` for Faster R-CNN: ``{key: Detections}`` with
    scores, boxes in ORIGINAL pixels, in source order (any source ``predict`` accepts)."""
    if batch < 1:
        raise DataError(f"batch must be >= 1, got {batch}")
    det = detector if isinstance(detector, FrcnnDetector) else load_frcnn(detector, device=device)
    out: dict[Hashable, Detections] = {}
    for chunk in _batches(frames(sources, max_frames, desc="predict", progress=progress), batch):
        keys, images = zip(*chunk)
        out.update(zip(keys, det(list(images), conf=conf, max_det=max_det)))
    return out


def evaluate_frcnn(detector: FrcnnDetector | str | Path, dataset: Dataset, *, conf: float = 0.001, batch: int = 8,
                   device: str = "auto", progress: bool = False) -> dict[str, Any]:
    """The COCO summary of :func:`labkit.detect.evaluate.coco_summary` on ``dataset``: the same
    scoring as :func:`labkit.detect.evaluate.evaluate_detector` gives a YOLO checkpoint."""
    det = detector if isinstance(detector, FrcnnDetector) else load_frcnn(detector, device=device)
    return coco_summary(dataset, predict_frcnn(det, dataset, conf=conf, batch=batch, progress=progress))



def evaluate_cached(weights: Path, config: FrcnnConfig, data_root: Path, progress: bool = True) -> Scores:
    """The registry's evaluate step (``detect-frcnn``): COCO AP50 and AP50-95 on the val split."""
    from labkit.models.dataset import load_split

    coco = evaluate_frcnn(weights, load_split(data_root, "val"), conf=config.eval_conf, batch=max(config.batch, 8),
                          device=config.device, progress=progress)
    return Scores(metrics={"AP50": coco.get("AP50"), "AP50_95": coco.get("AP")}, details={"coco": coco})
