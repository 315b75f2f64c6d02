"""The models a robustness suite scores, behind one small interface, and the one place that finds them.

:func:`resolve_model` turns a name into a :class:`SuiteDetector` or :class:`SuiteSegmenter`; it
(with :func:`_build_known`) is the only code that knows where models come from: the model
registry ``labkit.models``, or a checkpoint path.

Both wrappers score in-memory images (``{image_id: RGB uint8}``, e.g. corrupted copies of a split)
against the split's labels:

- detector: COCO AP / AP50 (and COCO's size ranges APs / APm / APl) through
  :func:`labkit.detect.evaluate.coco_summary` (labkit.metrics.detection; COCO's definitions);
- segmenter: mIoU (:class:`labkit.metrics.segmentation.ConfusionMatrix`, Long et al., CVPR 2015)
  and mean boundary F (:class:`labkit.metrics.boundary.BoundaryScores`, Csurka et al., BMVC 2013)
  at the original resolution, as :func:`labkit.segment.predict.evaluate_semantic` scores files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from labkit.data.annotations import Dataset, Detections
from labkit.errors import DataError, LabkitError

#: Model names the suite knows (the registry's names) and their recipes: the YOLO detectors and
#: the U-Nets (the Faster R-CNN and YOLO-seg models score differently and are not in the suite).
KNOWN_MODELS: dict[str, str] = {
    "detect-base": "detect_base.yaml",
    "detect-tiny": "detect_tiny.yaml",
    "detect-yolo11n": "detect_yolo11n.yaml",
    "segment-base": "segment_base.yaml",
    "segment-tiny": "segment_tiny.yaml",
}


class UnknownModel(LabkitError):
    """A model name that is neither a known name nor a checkpoint file (a usage error: exit 2)."""


@dataclass
class SuiteDetector:
    """A YOLO detector (:class:`labkit.detect.predict.Detector`) scored with COCO AP."""

    name: str
    detector: Any
    batch: int = 8
    #: images of the split the suite scores by default (seeded subset)
    default_images: int = 32
    task: str = "detect"
    #: the metric whose error (1 - value) the corruption errors use
    primary: str = "AP"
    metrics: tuple[str, ...] = ("AP", "AP50")

    def predict(self, images: Mapping[int, np.ndarray]) -> dict[int, Detections]:
        from labkit.detect.predict import predict

        return predict(self.detector, dict(images), conf=0.001, iou=0.7, batch=self.batch, progress=False)

    def score(self, dataset: Dataset, predictions: Mapping[int, Detections], data_root: Path) -> dict[str, float | None]:
        """COCO summary of the predictions on ``dataset``'s images: AP, AP50, APs, APm, APl."""
        from labkit.detect.evaluate import coco_summary

        ids = {r.id for r in dataset.images}
        summary = coco_summary(dataset, {k: v for k, v in predictions.items() if k in ids})
        return {k: summary.get(k) for k in ("AP", "AP50", "APs", "APm", "APl")}


@dataclass
class SuiteSegmenter:
    """A semantic segmenter (network + :class:`labkit.segment.semantic.SemanticConfig`)."""

    name: str
    model: Any
    config: Any
    batch: int = 8
    #: fewer than the detector: the U-Net's pass and the boundary F cost about twice as much per image
    default_images: int = 16
    task: str = "segment"
    primary: str = "mean_iou"
    metrics: tuple[str, ...] = ("mean_iou", "mean_boundary_f")
    _cached_for: Any = field(default=None, repr=False)
    _per_image: dict = field(default_factory=dict, repr=False)

    def predict(self, images: Mapping[int, np.ndarray]) -> dict[int, np.ndarray]:
        from labkit.segment.predict import iter_semantic

        keys = list(images)
        labels = iter_semantic(self.model, self.config, (images[k] for k in keys), batch=self.batch, device="cpu")
        return {k: lab for k, (lab, _) in zip(keys, labels)}

    def score(self, dataset: Dataset, predictions: Mapping[int, np.ndarray], data_root: Path) -> dict[str, float | None]:
        """mIoU and mean boundary F of the label maps against each image's ``semantic_mask``.

        Pixel counts are kept per image for the last ``predictions`` scored, so scoring slices
        (subsets of the same images) only adds them up again."""
        from labkit.metrics.boundary import BoundaryScores
        from labkit.metrics.segmentation import ConfusionMatrix

        if self._cached_for is not predictions:
            self._cached_for, self._per_image = predictions, {}
        cm = ConfusionMatrix(self.config.num_classes, ignore_index=self.config.ignore_index)
        bs = BoundaryScores(self.config.num_classes, ignore_index=self.config.ignore_index)
        for rec in dataset.images:
            if rec.id not in self._per_image:
                self._per_image[rec.id] = self._image_counts(dataset, rec, predictions[rec.id], data_root)
            one_cm, one_bs = self._per_image[rec.id]
            cm.matrix += one_cm.matrix
            for name in ("f_sum", "f_images", "band_intersection", "band_union"):
                setattr(bs, name, getattr(bs, name) + getattr(one_bs, name))
        summary = bs.merge_into(cm.summary(self.config.class_names))
        return {k: summary.get(k) for k in self.metrics}

    def _image_counts(self, dataset: Dataset, rec: Any, labels: np.ndarray, data_root: Path) -> tuple[Any, Any]:
        from labkit.data.images import load_label_mask
        from labkit.metrics.boundary import BoundaryScores
        from labkit.metrics.segmentation import ConfusionMatrix

        if rec.extra.get("semantic_mask") is None:
            raise DataError("image has no 'semantic_mask' field", source=dataset.source, record=rec.id)
        path = Path(data_root) / rec.extra["semantic_mask"]
        mask = load_label_mask(path)
        cm = ConfusionMatrix(self.config.num_classes, ignore_index=self.config.ignore_index)
        bs = BoundaryScores(self.config.num_classes, ignore_index=self.config.ignore_index)
        return cm.update(mask, labels, source=str(path)), bs.update(mask, labels, source=str(path))


SuiteModel = SuiteDetector | SuiteSegmenter


def _is_segmenter_checkpoint(path: Path) -> bool:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # any unpickling failure: not a checkpoint at all
        raise DataError(f"not a loadable checkpoint ({type(exc).__name__}: {exc})", source=str(path)) from exc
    return isinstance(state, dict) and isinstance(state.get("config"), dict) and "arch" in state["config"]


def _from_checkpoint(path: Path, name: str) -> SuiteModel:
    if path.suffix.lower() == ".onnx":
        from labkit.detect.predict import find_categories
        from labkit.robust.export import exported_config, onnx_detector, onnx_segmenter, onnx_task

        if onnx_task(path) == "segment":
            module = onnx_segmenter(path)
            return SuiteSegmenter(name, module, exported_config(module))
        return SuiteDetector(name, onnx_detector(path, find_categories(path)))
    if _is_segmenter_checkpoint(path):
        from labkit.segment.semantic import load_checkpoint

        model, config = load_checkpoint(path, device="cpu")
        return SuiteSegmenter(name, model, config)
    from labkit.detect.predict import load_detector

    return SuiteDetector(name, load_detector(path, device="cpu"))


def _build_known(name: str) -> tuple[Path, Path]:
    """Weights and dataset folder of a known model name, through the model registry
    (:func:`labkit.models.load`: the shipped checkpoint, or built once and cached)."""
    from labkit.models import load
    from labkit.models.dataset import dataset_root

    found = load(name, progress=False)
    config = found.config
    return found.weights, dataset_root(config.dataset_size, config.dataset_seed)


def resolve_model(name: str) -> tuple[SuiteModel, Path | None]:
    """The model called ``name`` and the dataset folder it was built on (``None`` when unknown).

    ``name`` is one of :data:`KNOWN_MODELS` (loaded through the model registry ``labkit.models``) or the
    path of a checkpoint: a U-Net ``best.pt`` (it stores its config), an Ultralytics detection
    ``.pt``, or an ONNX export of either (:mod:`labkit.robust.export`; run in ONNX Runtime).
    Anything else raises :class:`UnknownModel` listing the known names.
    """
    if name in KNOWN_MODELS:
        weights, data_root = _build_known(name)
        return _from_checkpoint(Path(weights), name), Path(data_root)
    path = Path(name)
    if path.is_file():
        return _from_checkpoint(path, path.parent.name or path.stem), None
    raise UnknownModel(f"unknown model {name!r}: neither a known name ({', '.join(KNOWN_MODELS)}) "
                       "nor an existing checkpoint file")


def model_weights(name: str) -> Path:
    """The checkpoint file behind ``name`` (what :func:`resolve_model` loads): built or found for a
    known name, the path itself for an existing checkpoint file, else :class:`UnknownModel`.
    For exporting the same model elsewhere (:func:`labkit.robust.export.export_detector`)."""
    if name in KNOWN_MODELS:
        return Path(_build_known(name)[0])
    if Path(name).is_file():
        return Path(name)
    raise UnknownModel(f"unknown model {name!r}: neither a known name ({', '.join(KNOWN_MODELS)}) "
                       "nor an existing checkpoint file")
