"""Semantic-segmentation inference whose label maps come back in the ORIGINAL image's pixels.

Whole-image mode: each image is letterboxed with :class:`labkit.data.boxes.Letterbox` to the
square ``config.size`` canvas exactly as in training (bilinear resize, zero padding, then the
config's mean/std), a batch of canvases goes through the network in one forward pass, and the
letterbox is undone: the padding is cropped away and the class scores are resized to the
original size. ``resize="bilinear"`` (default) resizes the logits bilinearly and takes the
softmax and arg-max there, so boundaries are placed with sub-pixel precision;
``resize="nearest"`` takes the arg-max on the canvas and maps the label map back with
:meth:`Letterbox.inverse_mask` (nearest neighbour: blocky boundaries when the canvas is smaller
than the image, which the PointRend demo in :mod:`labkit.segment.pointrend` starts from).

Tiled mode (``tile=N``) is for images much larger than the training images: windows of ``N x N``
source pixels overlapping by ``overlap`` go through the same letterbox one by one (so the network
sees them at the scale ``config.size / N``: with the embedded 320x240 images trained at size
160, ``tile=320`` keeps the training scale) and their class probabilities are blended with
:func:`labkit.segment.tiling.predict_tiled`.

On a CUDA GPU the forward pass runs under ``torch.autocast`` (float16); on CPU in float32.
The confidence of a pixel is the largest softmax probability (a calibration question, not a
probability of being right).
"""

from __future__ import annotations

import json
import re
import time
from collections import deque
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from labkit.data.boxes import Letterbox
from labkit.device import resolve_device
from labkit.errors import DataError
from labkit.repro import sha256_file
from labkit.segment.data import Preprocessing
from labkit.segment.semantic import SemanticConfig
from labkit.segment.tiling import predict_tiled

Resize = Literal["bilinear", "nearest"]
#: Value of the letterbox padding before normalisation (training pads images with 0).
PAD_VALUE = 0


def _rgb(image: np.ndarray, index: int) -> np.ndarray:
    from labkit.data.sources import to_rgb

    return to_rgb(image, record=f"image {index}")


def network_input(image: np.ndarray, prep: Preprocessing) -> tuple[np.ndarray, Letterbox]:
    """An RGB uint8 image as the network's ``(3, S, S)`` float32 input, and its letterbox."""
    lb = Letterbox.fit(image.shape[:2], prep.size)
    canvas = lb.image(image, pad_value=PAD_VALUE).astype(np.float32) / 255.0
    canvas = (canvas - np.asarray(prep.mean, np.float32)) / np.asarray(prep.std, np.float32)
    return canvas.transpose(2, 0, 1), lb


@torch.inference_mode()
def _logits(model: torch.nn.Module, inputs: list[np.ndarray], device: torch.device) -> torch.Tensor:
    x = torch.from_numpy(np.stack(inputs)).to(device)
    with torch.autocast(device.type, enabled=device.type == "cuda"):
        out = model(x)
    return out.float()


def _undo_letterbox(logits: torch.Tensor, lb: Letterbox, resize: Resize) -> np.ndarray:
    """``(K, S, S)`` canvas logits -> ``(K, H, W)`` probabilities in the source pixels."""
    if resize == "nearest":
        probs = torch.softmax(logits, dim=0).cpu().numpy()
        labels = lb.inverse_mask(probs.argmax(0).astype(np.uint8))
        conf = lb.inverse_mask(probs.max(0))
        out = np.zeros((probs.shape[0],) + labels.shape, dtype=np.float32)
        np.put_along_axis(out, labels[None].astype(np.int64), conf[None], axis=0)
        return out  # one-hot times confidence: arg-max and max are those of the canvas
    h, w = lb.resized_hw
    crop = logits[:, lb.pad_y:lb.pad_y + h, lb.pad_x:lb.pad_x + w]
    resized = F.interpolate(crop[None], size=(lb.src_h, lb.src_w), mode="bilinear", align_corners=False)[0]
    return torch.softmax(resized, dim=0).cpu().numpy()


def predict_probabilities(model: torch.nn.Module, config: SemanticConfig, images: Sequence[np.ndarray], *,
                          device: torch.device, resize: Resize = "bilinear") -> list[np.ndarray]:
    """Class probabilities ``(K, H, W)`` float32 of a batch of RGB uint8 images (any sizes), in one
    forward pass; ``model`` must already be on ``device`` and in eval mode."""
    prep = config.preprocessing
    prepared = [network_input(img, prep) for img in images]
    logits = _logits(model, [x for x, _ in prepared], device)
    if logits.shape[1] != config.num_classes:
        raise DataError(f"model gives {logits.shape[1]} classes, the config says {config.num_classes}")
    return [_undo_letterbox(lg, lb, resize) for lg, (_, lb) in zip(logits, prepared)]


def _check_args(batch: int, tile: int | None, overlap: int, resize: str) -> None:
    if batch < 1:
        raise DataError(f"batch must be >= 1, got {batch}")
    if tile is not None and not 0 <= overlap < tile:
        raise DataError(f"need 0 <= overlap < tile, got tile={tile}, overlap={overlap}")
    if resize not in ("bilinear", "nearest"):
        raise DataError(f"resize must be 'bilinear' or 'nearest', got {resize!r}")


def iter_semantic(model: torch.nn.Module, config: SemanticConfig, images: Iterable[np.ndarray], *, batch: int = 8,
                  device: str = "auto", tile: int | None = None, overlap: int = 32,
                  resize: Resize = "bilinear") -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(labels uint8 (H, W), confidence float32 (H, W))`` per image, batch by batch, so a
    long stream never sits in memory; see :func:`predict_semantic`."""
    _check_args(batch, tile, overlap, resize)
    dev = resolve_device(device)
    model = model.to(dev).eval()
    pending: list[np.ndarray] = []

    def flush() -> Iterable[tuple[np.ndarray, np.ndarray]]:
        if tile is None:
            probs = predict_probabilities(model, config, pending, device=dev, resize=resize)
        else:
            window = lambda crop: predict_probabilities(model, config, [crop], device=dev, resize=resize)[0]  # noqa: E731
            probs = [predict_tiled(img, window, tile=tile, overlap=overlap, num_classes=config.num_classes)
                     for img in pending]
        pending.clear()
        for p in probs:
            yield p.argmax(0).astype(np.uint8), p.max(0).astype(np.float32)

    for i, image in enumerate(images):
        pending.append(_rgb(image, i))
        if len(pending) == batch:
            yield from flush()
    if pending:
        yield from flush()


def predict_semantic(model: torch.nn.Module, config: SemanticConfig, images: Sequence[np.ndarray], batch: int = 8,
                     device: str = "auto", tile: int | None = None, overlap: int = 32, *,
                     with_confidence: bool = False, resize: Resize = "bilinear"
                     ) -> list[np.ndarray] | tuple[list[np.ndarray], list[np.ndarray]]:
    """Label maps of RGB uint8 images, each ``(H, W)`` uint8 in its ORIGINAL size.

    Args:
        model: a trained network (e.g. from :func:`labkit.segment.semantic.load_checkpoint`).
        config: its :class:`SemanticConfig` (input size, normalisation, number of classes).
        images: ``(H, W, 3)`` RGB (or ``(H, W)`` grey) uint8 arrays of any sizes.
        batch: images per forward pass (whole-image mode).
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        tile, overlap: tiled mode, window and overlap in source pixels (see the module docstring).
        with_confidence: also return the per-pixel max-softmax confidence maps (float32).
        resize: how the scores return to the source size (see the module docstring).

    Returns:
        the label maps, or ``(label maps, confidence maps)`` when ``with_confidence``.
    """
    pairs = list(iter_semantic(model, config, images, batch=batch, device=device, tile=tile, overlap=overlap,
                               resize=resize))
    labels = [lab for lab, _ in pairs]
    return (labels, [conf for _, conf in pairs]) if with_confidence else labels


def evaluate_semantic(model: torch.nn.Module, config: SemanticConfig, dataset: Any, data_root: Any, *,
                      batch: int = 8, device: str = "auto", tile: int | None = None, overlap: int = 32,
                      resize: Resize = "bilinear", tolerance: float = 2.0, progress: bool = False) -> dict[str, Any]:
    """Scores of the model on a dataset whose images carry ``semantic_mask``, at ORIGINAL resolution.

    Region scores: :class:`labkit.metrics.segmentation.ConfusionMatrix` (IoU per class, mIoU over
    the classes present; Long et al., CVPR 2015). Boundary scores:
    :class:`labkit.metrics.boundary.BoundaryScores` (boundary F, Csurka et al., BMVC 2013, with
    ``tolerance`` pixels; Boundary IoU, Cheng et al., CVPR 2021). Ignore pixels (255) count in
    neither. Also returns ``confusion`` (pixel counts, rows the true class, columns the predicted
    one) and ``ms_per_image``: wall time of prediction (image decoding, pre- and
    post-processing included, metric computation excluded) divided by the number of images.
    """
    from tqdm.auto import tqdm

    from labkit.metrics.boundary import BoundaryScores
    from labkit.metrics.segmentation import ConfusionMatrix
    from labkit.segment.data import SemanticDataset

    samples = SemanticDataset(dataset, data_root, config.preprocessing, train=False)
    cm = ConfusionMatrix(config.num_classes, ignore_index=config.ignore_index)
    bs = BoundaryScores(config.num_classes, ignore_index=config.ignore_index, tolerance=tolerance)
    masks: deque[np.ndarray] = deque()

    def images() -> Iterable[np.ndarray]:
        for i in tqdm(range(len(samples)), desc="evaluate", disable=not progress, leave=False):
            image, mask = samples.sample(i)
            masks.append(mask)
            yield image

    seconds, start = 0.0, time.perf_counter()
    for i, (labels, _) in enumerate(iter_semantic(model, config, images(), batch=batch, device=device, tile=tile,
                                                  overlap=overlap, resize=resize)):
        seconds += time.perf_counter() - start
        source, mask = str(samples.records[i].extra["semantic_mask"]), masks.popleft()
        cm.update(mask, labels, source=source)
        bs.update(mask, labels, source=source)
        start = time.perf_counter()
    summary = bs.merge_into(cm.summary(config.class_names))
    summary["confusion"] = cm.matrix.tolist()
    summary["images"] = len(samples)
    summary["ms_per_image"] = 1000.0 * seconds / max(len(samples), 1)
    return summary


# ----------------------------------------------------------------------------- export
#: Sub-folders of an export: class-id PNGs, overlays, optional 8-bit confidence PNGs.
MASK_DIR, OVERLAY_DIR, CONFIDENCE_DIR = "masks", "overlays", "confidence"
SUMMARY = "summary.json"
#: Bins of the confidence histogram the export's quantiles come from (error <= 1 / bins).
CONFIDENCE_BINS = 1000


def checkpoint_info(path: str | Path) -> dict[str, str]:
    """``{path, sha256}`` of a checkpoint file: the id of the weights that made a prediction."""
    path = Path(path)
    if not path.is_file():
        raise DataError("no such checkpoint file", source=str(path))
    return {"path": str(path), "sha256": sha256_file(path)}


def dataset_version(path: str | Path) -> dict[str, Any] | None:
    """The generator manifest of the embedded dataset that ``path`` lies in (``path`` or one of
    its parents holds ``manifest.json`` written by ``labkit.data.synth``), else ``None``.

    Returns generator, version, seed, size and the sha256 of every annotation file.
    """
    for folder in [Path(path).resolve(), *Path(path).resolve().parents]:
        manifest = folder / "manifest.json"
        if manifest.is_file():
            try:
                info = json.loads(manifest.read_text(encoding="utf-8"))
            except ValueError:
                continue
            if isinstance(info, dict) and info.get("generator") == "labkit.data.synth":
                return {"root": str(folder), **{k: info.get(k) for k in ("generator", "generator_version", "seed", "size")},
                        "annotations_sha256": {k: v for k, v in info.get("sha256", {}).items()
                                               if k.startswith("annotations/")}}
    return None


def overlay_labels(image: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """An RGB copy of ``image`` with every class > 0 blended in its colour
    (:func:`labkit.viz.color_for`) and its region outlines drawn opaque."""
    from labkit.viz import color_for

    out = np.asarray(image, dtype=np.uint8).copy()
    if labels.shape != out.shape[:2]:
        raise DataError(f"label map {labels.shape} does not match the image {out.shape[:2]}")
    for cls in np.unique(labels):
        if cls == 0:
            continue
        region = labels == cls
        colour = np.array(color_for(int(cls)), dtype=np.float64)
        out[region] = ((1 - alpha) * out[region] + alpha * colour).astype(np.uint8)
        contours, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, tuple(int(c) for c in colour), 1)
    return out


def count_instances(labels: np.ndarray, num_classes: int, min_area: int = 10) -> np.ndarray:
    """Per class id, the connected regions (8-connectivity) of at least ``min_area`` pixels
    (class 0, background, counts 0)."""
    from labkit.segment.postprocess import connected_components

    counts = np.zeros(num_classes, dtype=np.int64)
    for cls in range(1, num_classes):
        n, comp = connected_components(labels == cls)
        if n:
            counts[cls] = int((np.bincount(comp.ravel(), minlength=n + 1)[1:] >= min_area).sum())
    return counts


class _Totals:
    """Dataset-level counts of an export: pixels and instances per class, confidence histogram."""

    def __init__(self, num_classes: int):
        self.pixels = np.zeros(num_classes, dtype=np.int64)
        self.instances = np.zeros(num_classes, dtype=np.int64)
        self.conf_sum = np.zeros(num_classes, dtype=np.float64)
        self.hist = np.zeros(CONFIDENCE_BINS, dtype=np.int64)

    def add(self, pixels: np.ndarray, instances: np.ndarray, labels: np.ndarray, confidence: np.ndarray | None) -> None:
        self.pixels += pixels
        self.instances += instances
        if confidence is not None:
            k = len(self.pixels)
            self.conf_sum += np.bincount(labels.ravel(), weights=confidence.ravel().astype(np.float64), minlength=k)[:k]
            bins = np.minimum((confidence.ravel() * CONFIDENCE_BINS).astype(np.int64), CONFIDENCE_BINS - 1)
            self.hist += np.bincount(bins, minlength=CONFIDENCE_BINS)

    def confidence(self, names: Sequence[str]) -> dict[str, Any] | None:
        total = int(self.hist.sum())
        if not total:
            return None
        cdf = np.cumsum(self.hist) / total
        quantile = lambda q: float((np.searchsorted(cdf, q) + 0.5) / CONFIDENCE_BINS)  # noqa: E731
        per_class = {n: (float(s / p) if p else None) for n, s, p in zip(names, self.conf_sum, self.pixels)}
        return {"mean": float(self.conf_sum.sum() / self.pixels.sum()), "median": quantile(0.5), "p05": quantile(0.05),
                "fraction_below_0.5": float(self.hist[:CONFIDENCE_BINS // 2].sum() / total),
                "per_class_mean": per_class, "quantile_resolution": 1.0 / CONFIDENCE_BINS}


def _unique_name(key: Any, taken: set[str]) -> str:
    text = str(key)
    stem, _, frame = text.partition("#")
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(stem).stem + (f"_{int(frame):06d}" if frame else "")) or "image"
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}_{n}"
    taken.add(candidate)
    return candidate


def write_predictions(out_dir: str | Path, items: Iterable[tuple[Any, np.ndarray, np.ndarray, np.ndarray | None]], *,
                      class_names: Sequence[str], checkpoint: Mapping[str, Any] | None = None,
                      dataset: Mapping[str, Any] | None = None, settings: Mapping[str, Any] | None = None,
                      min_area: int = 10, alpha: float = 0.5, save_confidence: bool = False) -> dict[str, Any]:
    """Write ``(key, RGB image, labels, confidence or None)`` items as a reviewable export.

    ``out_dir`` receives ``masks/<name>.png`` (class ids, uint8, lossless), ``overlays/<name>.jpg``,
    with ``save_confidence`` ``confidence/<name>.png`` (``round(255 * confidence)``), and
    ``summary.json``: per-class pixel and instance counts (:func:`count_instances` with
    ``min_area``), confidence statistics (mean, per-class mean, median and 5th percentile from a
    1000-bin histogram, fraction below 0.5), one row per image, and the provenance: ``checkpoint``
    (e.g. :func:`checkpoint_info`), ``dataset`` (e.g. :func:`dataset_version`), the inference
    ``settings`` (preprocessing, tiling ...) and a :func:`labkit.repro.run_manifest`.
    Works for any model's output (the QA lab exports :class:`~labkit.segment.simulate.NoisySegmenter`'s).
    """
    from labkit.artifacts import write_json
    from labkit.repro import run_manifest

    out = Path(out_dir)
    for sub in (MASK_DIR, OVERLAY_DIR) + ((CONFIDENCE_DIR,) if save_confidence else ()):
        (out / sub).mkdir(parents=True, exist_ok=True)
    k = len(class_names)
    totals, rows, taken = _Totals(k), [], set()
    for key, image, labels, confidence in items:
        if labels.dtype != np.uint8 or labels.shape != image.shape[:2] or (labels.size and labels.max() >= k):
            raise DataError(f"labels must be uint8 class ids < {k} of the image's size {image.shape[:2]}, got "
                            f"{labels.dtype} {labels.shape}", record=key)
        name = _unique_name(key, taken)
        cv2.imwrite(str(out / MASK_DIR / f"{name}.png"), labels)
        cv2.imwrite(str(out / OVERLAY_DIR / f"{name}.jpg"), cv2.cvtColor(overlay_labels(image, labels, alpha),
                                                                          cv2.COLOR_RGB2BGR))
        if save_confidence and confidence is not None:
            cv2.imwrite(str(out / CONFIDENCE_DIR / f"{name}.png"), np.round(confidence * 255).astype(np.uint8))
        pixels = np.bincount(labels.ravel(), minlength=k)[:k]
        instances = count_instances(labels, k, min_area)
        totals.add(pixels, instances, labels, confidence)
        rows.append({"key": str(key), "name": name, "width": int(labels.shape[1]), "height": int(labels.shape[0]),
                     "mask": f"{MASK_DIR}/{name}.png", "overlay": f"{OVERLAY_DIR}/{name}.jpg",
                     "pixels": dict(zip(class_names, pixels.tolist())),
                     "instances": dict(zip(class_names[1:], instances[1:].tolist())),
                     "mean_confidence": None if confidence is None else float(confidence.mean())})
    summary = {
        "images": len(rows), "classes": [{"id": i, "name": n} for i, n in enumerate(class_names)],
        "pixels_per_class": dict(zip(class_names, totals.pixels.tolist())),
        "instances_per_class": dict(zip(class_names[1:], totals.instances[1:].tolist())),
        "instance_rule": {"connectivity": 8, "min_area": min_area},
        "confidence": totals.confidence(class_names),
        "checkpoint": dict(checkpoint) if checkpoint is not None else None,
        "dataset": dict(dataset) if dataset is not None else None,
        "settings": dict(settings or {}),
        "run": run_manifest(seed=None, config=dict(settings or {})),
        "files": rows,
    }
    write_json(out / SUMMARY, summary)
    return summary


def export_predictions(model: torch.nn.Module, config: SemanticConfig, sources: Any, out_dir: str | Path, *,
                       checkpoint: str | Path | None = None, data_root: str | Path | None = None, batch: int = 8,
                       device: str = "auto", tile: int | None = None, overlap: int = 32, resize: Resize = "bilinear",
                       min_area: int = 10, alpha: float = 0.5, save_confidence: bool = False,
                       progress: bool = True) -> dict[str, Any]:
    """Predict on ``sources`` and :func:`write_predictions` into ``out_dir``; returns the summary.

    ``sources``: a :class:`~labkit.data.annotations.Dataset`, image file(s) or folder(s), or a
    mapping ``name -> RGB array`` (see :func:`labkit.data.sources.iter_frames`).
    ``checkpoint`` (the weights file) gives the checkpoint id; ``data_root`` the dataset version
    (default: found from the sources' location, when they lie in a generated dataset).
    """
    from labkit.data.annotations import Dataset
    from labkit.detect.predict import frames

    names = {r.id: r.file_name for r in sources} if isinstance(sources, Dataset) else {}
    keyed: deque[tuple[Any, np.ndarray]] = deque()

    def images() -> Iterable[np.ndarray]:
        for key, image in frames(sources, desc="segment", progress=progress):
            keyed.append((names.get(key, key), image))
            yield image

    def items() -> Iterable[tuple[Any, np.ndarray, np.ndarray, np.ndarray]]:
        for labels, confidence in iter_semantic(model, config, images(), batch=batch, device=device, tile=tile,
                                                overlap=overlap, resize=resize):
            key, image = keyed.popleft()
            yield key, image, labels, confidence

    where = data_root if data_root is not None else _source_location(sources)
    settings = {"preprocessing": asdict(config.preprocessing), "tile": tile, "overlap": overlap if tile else None,
                "resize": resize, "batch": batch, "device": str(resolve_device(device)), "arch": config.arch,
                "encoder": config.encoder}
    return write_predictions(out_dir, items(), class_names=config.class_names,
                             checkpoint=checkpoint_info(checkpoint) if checkpoint is not None else None,
                             dataset=dataset_version(where) if where is not None else None, settings=settings,
                             min_area=min_area, alpha=alpha, save_confidence=save_confidence)


def _source_location(sources: Any) -> Path | None:
    from labkit.data.annotations import Dataset

    if isinstance(sources, Dataset):
        return Path(sources.root) if sources.root is not None else None
    if isinstance(sources, (str, Path)):
        return Path(sources)
    if isinstance(sources, Sequence) and sources and isinstance(sources[0], (str, Path)):
        return Path(sources[0])
    return None
