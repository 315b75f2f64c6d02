"""Instance segmentation with Ultralytics YOLO-seg, and how it compares with the semantic U-Net.

Training (:func:`train_instance`): the model is built from its YAML (``yolov8n-seg.yaml``: random
init, nothing downloaded) and trained on the embedded still images, exported to YOLO-seg polygon
labels by :func:`labkit.data.yolo.export_yolo` (``segments=True``; RLE masks are traced to one
polygon per object, crowd regions skipped). The run config is a
:class:`labkit.detect.config.DetectConfig` (same fields, ``model`` a ``*-seg`` YAML or
checkpoint); Ultralytics runs with ``plots=False`` and no fp16 AMP (its AMP check downloads a model),
under :func:`labkit.detect._ultralytics.local_fonts`.

Inference (:class:`InstanceSegmenter`): images are letterboxed with
:class:`labkit.data.boxes.Letterbox` to the square ``imgsz`` canvas (grey 114 padding), NMS keeps
the best boxes with their 32 mask coefficients, and each mask is assembled as in YOLACT
(D. Bolya et al., "YOLACT: Real-time Instance Segmentation", ICCV 2019): ``coefficients @
prototypes`` at a quarter of the canvas resolution, upsampled bilinearly to the canvas, the
letterbox padding cropped away, resized bilinearly to the ORIGINAL image, thresholded at logit 0
and cut to the (inverse-letterboxed) box. Objects whose mask comes out empty are dropped, as
Ultralytics does. Results are :class:`~labkit.data.annotations.Detections` with RLE masks.

Comparison (:func:`compare_semantic_instance`) scores both models on the same images:
COCO mask AP (:func:`labkit.metrics.detection.evaluate_coco`, ``iou_type="segm"``; the U-Net's
label map becomes instances by connected components, :func:`label_map_to_instances`), boundary F
and Boundary IoU (:class:`labkit.metrics.boundary.BoundaryScores`) and mIoU on label maps (YOLO-seg's
instances are painted into one, :func:`instances_to_label_map`), and milliseconds per image.
Semantic class ids are the dataset's category ids (0 = background), as in the embedded dataset.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from labkit.artifacts import artifacts_dir, fresh_dir
from labkit.data.annotations import Dataset, Detections
from labkit.data.boxes import Letterbox, clip_xyxy
from labkit.data.masks import mask_to_rle
from labkit.detect._ultralytics import local_fonts, ul
from labkit.detect.config import DetectConfig
from labkit.detect.predict import CATEGORY_FILE, PAD_VALUE, find_categories
from labkit.detect.train import MANIFEST, TrainingInterrupted, resumable
from labkit.device import resolve_device
from labkit.errors import DataError
from labkit.models.dataset import dataset_root, fingerprint, load_split
from labkit.models.registry import Scores, Trained
from labkit.repro import write_manifest
from labkit.weights import resolve_model

WEIGHTS = "weights.pt"
#: Masks decoded at once (bounds the float memory to ``chunk x H x W``).
_MASK_CHUNK = 32


# ----------------------------------------------------------------------------- training
def export_instance_data(data_root: str | Path, out_dir: str | Path) -> tuple[Path, list[dict[str, Any]]]:
    """Export the train and val splits as YOLO-seg polygon labels under ``out_dir/yolo`` (images
    symlinked) and write ``categories.json``; returns the ``data.yaml`` path and the categories."""
    from labkit.data.yolo import CATEGORY_ID_KEY, export_yolo

    out = Path(out_dir)
    summary = export_yolo({s: load_split(data_root, s) for s in ("train", "val")}, out / "yolo", segments=True,
                          images="symlink")
    data_yaml = Path(summary["data_yaml"])
    config = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    ids, names = config[CATEGORY_ID_KEY], config["names"]
    categories = [{"id": int(ids[k]), "name": str(names[k])} for k in sorted(names)]
    (out / CATEGORY_FILE).write_text(json.dumps(categories, indent=2), encoding="utf-8")
    return data_yaml, categories


def train_instance(config: DetectConfig | Mapping[str, Any] | str | Path, *, data_root: str | Path | None = None,
                   run_dir: str | Path | None = None, stop_after_epoch: int | None = None) -> Path:
    """Train YOLO-seg from a config (``configs/segment_instance*.yaml``) for its ``epochs``, or
    resume the unfinished run in ``run_dir`` from ``weights/last.pt`` (what an interrupted
    ``make models-rebuild`` leaves); returns ``weights/best.pt`` (``weights/last.pt`` when
    ``stop_after_epoch`` interrupted it on purpose, after that epoch's checkpoint).

    ``run_dir`` (default ``<artifacts>/runs/segment/<name>``) receives ``manifest.json``,
    ``categories.json``, the ``yolo/`` export and Ultralytics' run (``weights/``, ``results.csv``).
    """
    cfg = DetectConfig.load(config)
    if "-seg" not in Path(cfg.model).stem:
        raise DataError(f"model {cfg.model!r} is not a segmentation model (expected e.g. yolov8n-seg.yaml)",
                        record=cfg.name)
    run = Path(run_dir) if run_dir is not None else artifacts_dir() / "runs" / "segment" / cfg.name
    last = run / "weights" / "last.pt"
    resume = resumable(run)
    if not resume:
        root = dataset_root(cfg.dataset_size, cfg.dataset_seed, data_root)
        fresh_dir(run, marker=MANIFEST, what="labkit run")
        data_yaml, _ = export_instance_data(root, run)
        args = cfg.ultralytics_args(data_yaml=data_yaml, run_dir=run)
        write_manifest(run / MANIFEST, seed=cfg.seed, config=cfg.to_dict(),
                       extra={"data_root": str(root), "dataset": fingerprint(root), "ultralytics_args": args})
    model = ul().YOLO(str(last) if resume else resolve_model(cfg.model))

    def stop(trainer: Any) -> None:
        if stop_after_epoch is not None and stop_after_epoch <= trainer.epoch + 1 < trainer.epochs:
            raise TrainingInterrupted(f"stopped after epoch {trainer.epoch + 1} of {trainer.epochs}")

    model.add_callback("on_model_save", stop)
    try:
        with local_fonts():
            if resume:
                model.train(resume=True)
            else:
                model.train(**args)
    except TrainingInterrupted:
        return last
    best = run / "weights" / "best.pt"
    return best if best.is_file() else last


# ----------------------------------------------------------------------------- inference
@dataclass
class InstanceSegmenter:
    """A loaded YOLO-seg network for batched inference (see :func:`load_instance_model`).

    Attributes:
        model: the fused ``SegmentationModel`` in eval mode on ``device`` (fp16 on CUDA).
        imgsz: square canvas size; ``class_ids``: dataset category id of each class index.
    """

    model: torch.nn.Module
    device: torch.device
    half: bool
    imgsz: int
    class_ids: np.ndarray
    end2end: bool

    @torch.inference_mode()
    def __call__(self, images: Sequence[np.ndarray], *, conf: float = 0.001, iou: float = 0.7,
                 max_det: int = 100) -> list[Detections]:
        """Instances in a batch of RGB uint8 images (any sizes): boxes and RLE masks in each
        image's ORIGINAL pixels, with scores."""
        from labkit.data.sources import to_rgb

        if not images:
            return []
        images = [to_rgb(img, record=f"image {i}") for i, img in enumerate(images)]
        boxes = [Letterbox.fit(img.shape[:2], self.imgsz) for img in images]
        x = torch.from_numpy(np.stack([lb.image(img, pad_value=PAD_VALUE) for lb, img in zip(boxes, images)]))
        x = x.to(self.device).permute(0, 3, 1, 2)
        x = (x.half() if self.half else x.float()) / 255.0
        out = self.model(x)
        head, protos = out[0] if isinstance(out[0], tuple) else out
        nms = ul("ultralytics.utils.nms").non_max_suppression
        rows = nms(head, conf, iou, max_det=max_det, nc=len(self.class_ids), end2end=self.end2end)
        return [self._decode(r.float(), p.float(), lb) for r, p, lb in zip(rows, protos, boxes)]

    def _decode(self, rows: torch.Tensor, protos: torch.Tensor, lb: Letterbox) -> Detections:
        xyxy = clip_xyxy(lb.inverse_boxes(rows[:, :4].cpu().numpy().astype(np.float64)), lb.src_w, lb.src_h)
        masks = np.zeros((len(rows), lb.src_h, lb.src_w), dtype=bool)
        nm, mh, mw = protos.shape
        h, w = lb.resized_hw
        for start in range(0, len(rows), _MASK_CHUNK):
            logits = (rows[start:start + _MASK_CHUNK, 6:] @ protos.view(nm, -1)).view(-1, 1, mh, mw)
            canvas = F.interpolate(logits, size=(lb.out_h, lb.out_w), mode="bilinear", align_corners=False)
            crop = canvas[:, :, lb.pad_y:lb.pad_y + h, lb.pad_x:lb.pad_x + w]
            masks[start:start + _MASK_CHUNK] = (F.interpolate(crop, size=(lb.src_h, lb.src_w), mode="bilinear",
                                                              align_corners=False)[:, 0] > 0).cpu().numpy()
        cols, lines = np.arange(lb.src_w), np.arange(lb.src_h)
        for i, (x1, y1, x2, y2) in enumerate(xyxy):  # cut each mask to its box, as YOLACT's crop does
            masks[i] &= ((lines >= y1) & (lines < y2))[:, None] & ((cols >= x1) & (cols < x2))[None, :]
        keep = masks.any(axis=(1, 2))
        scores = rows[:, 4].cpu().numpy().astype(np.float64)
        classes = self.class_ids[rows[:, 5].cpu().numpy().astype(np.int64)]
        return Detections.from_xyxy(xyxy[keep], classes[keep], score=scores[keep],
                                    segmentation=[mask_to_rle(m) for m in masks[keep]])


def load_instance_model(weights: str | Path, *, device: str = "auto", imgsz: int | None = None,
                        categories: list[dict[str, Any]] | None = None) -> InstanceSegmenter:
    """Load an Ultralytics segmentation checkpoint; ``imgsz`` defaults to its training size and
    ``categories`` to the ``categories.json`` beside it (else category id = class index)."""
    weights = Path(weights)
    if not weights.is_file():
        raise DataError("no such checkpoint file", source=str(weights))
    dev = resolve_device(device)
    model, _ = ul("ultralytics.nn.tasks").load_checkpoint(weights, device=dev, fuse=True)
    if getattr(model, "task", None) != "segment":
        raise DataError(f"not a segmentation model (task {getattr(model, 'task', None)!r})", source=str(weights))
    half = dev.type == "cuda"
    model = model.half() if half else model.float()
    names = dict(model.names)
    cats = categories if categories is not None else find_categories(weights)
    if cats is not None and len(cats) != len(names):
        raise DataError(f"{len(cats)} categories for a network with {len(names)} classes", source=str(weights))
    class_ids = np.array([int(c["id"]) for c in cats] if cats else sorted(names), dtype=np.int64)
    size = int(imgsz or model.args.get("imgsz", 640))
    if size % int(max(model.stride)):
        raise DataError(f"imgsz {size} is not a multiple of the network stride {int(max(model.stride))}",
                        source=str(weights))
    return InstanceSegmenter(model, dev, half, size, class_ids, bool(getattr(model.model[-1], "end2end", False)))


# ----------------------------------------------------------------------------- label maps <-> instances
def instances_to_label_map(detections: Detections, height: int, width: int, min_score: float = 0.5) -> np.ndarray:
    """Paint the masks scoring at least ``min_score`` into an ``(H, W)`` uint8 label map (class id
    per pixel, 0 elsewhere); where masks overlap, the higher score wins."""
    labels = np.zeros((height, width), dtype=np.uint8)
    det = detections if detections.score is None else detections[detections.score >= min_score]
    if len(det) == 0:
        return labels
    order = np.argsort(det.score, kind="stable") if det.score is not None else np.arange(len(det))
    masks = det.masks(height, width)
    for i in order:
        labels[masks[i]] = det.class_id[i]
    return labels


def label_map_to_instances(labels: np.ndarray, confidence: np.ndarray, num_classes: int,
                           min_area: int = 10) -> Detections:
    """Instances from a semantic label map: every connected region (8-connectivity) of a class > 0
    with at least ``min_area`` pixels, scored by its mean confidence."""
    from labkit.segment.postprocess import connected_components

    masks, classes, scores = [], [], []
    for cls in range(1, num_classes):
        count, comp = connected_components(labels == cls)
        for k in range(1, count + 1):
            region = comp == k
            if region.sum() >= min_area:
                masks.append(region)
                classes.append(cls)
                scores.append(float(confidence[region].mean()))
    if not masks:
        return Detections(np.zeros((0, 4)), [], score=np.zeros(0), segmentation=[])
    return Detections.from_masks(np.stack(masks), classes, score=scores)


# ----------------------------------------------------------------------------- evaluation
def _ground_truth(dataset: Dataset, data_root: str | Path) -> Iterable[tuple[int, np.ndarray, np.ndarray]]:
    """``(image id, RGB image, semantic ground-truth mask)`` of every image (same sizes checked)."""
    from labkit.segment.data import Preprocessing, SemanticDataset

    samples = SemanticDataset(dataset, Path(data_root), Preprocessing(), train=False)
    for i, rec in enumerate(samples.records):
        image, mask = samples.sample(i)
        yield rec.id, image, mask


@dataclass
class Scored:
    """One model scored on a dataset: the table ``row`` (mask AP / AP50, boundary F, Boundary IoU,
    mIoU, ms/image, images, instances), its ``predictions`` (image id -> instances) and the COCO
    ``segm`` ``report`` they gave (per-class AP: ``report.per_class()``)."""

    row: dict[str, Any]
    predictions: dict[int, Detections]
    report: Any


def _score(dataset: Dataset, predictions: dict[int, Detections], label_maps: Mapping[int, np.ndarray],
           masks: Mapping[int, np.ndarray], num_classes: int, seconds: float, tolerance: float) -> Scored:
    from labkit.metrics.boundary import BoundaryScores
    from labkit.metrics.detection import evaluate_coco
    from labkit.metrics.segmentation import ConfusionMatrix

    report = evaluate_coco(dataset, predictions, iou_type="segm")
    cm, bs = ConfusionMatrix(num_classes), BoundaryScores(num_classes, tolerance=tolerance)
    for image_id, gt in masks.items():
        cm.update(gt, label_maps[image_id], source=f"image {image_id}")
        bs.update(gt, label_maps[image_id], source=f"image {image_id}")
    nan_none = lambda v: None if v is None or np.isnan(v) else float(v)  # noqa: E731
    row = {"mask_AP": nan_none(report.stats["AP"]), "mask_AP50": nan_none(report.stats["AP50"]),
           "boundary_F": nan_none(np.nanmean(bs.boundary_f())), "boundary_IoU": nan_none(np.nanmean(bs.boundary_iou())),
           "mIoU": nan_none(cm.mean_iou()), "ms_per_image": 1000.0 * seconds / max(len(masks), 1),
           "images": len(masks), "instances": int(sum(len(d) for d in predictions.values()))}
    return Scored(row, predictions, report)


def score_instances(model: InstanceSegmenter | str | Path, dataset: Dataset, data_root: str | Path, *,
                    num_classes: int = 6, conf: float = 0.001, iou: float = 0.7, batch: int = 8,
                    device: str = "auto", min_score: float = 0.5, tolerance: float = 2.0) -> Scored:
    """YOLO-seg on a dataset with ``semantic_mask`` images: COCO mask AP / AP50, and boundary F,
    Boundary IoU and mIoU of the painted label maps (masks scoring >= ``min_score``), ms/image."""
    seg = model if isinstance(model, InstanceSegmenter) else load_instance_model(model, device=device)
    preds, maps, masks, seconds = {}, {}, {}, 0.0
    items = list(_ground_truth(dataset, data_root))
    for start in range(0, len(items), batch):
        chunk = items[start:start + batch]
        t0 = time.perf_counter()
        found = seg([image for _, image, _ in chunk], conf=conf, iou=iou)
        seconds += time.perf_counter() - t0
        for (image_id, image, gt), det in zip(chunk, found):
            preds[image_id], masks[image_id] = det, gt
            maps[image_id] = instances_to_label_map(det, *gt.shape, min_score=min_score)
    return _score(dataset, preds, maps, masks, num_classes, seconds, tolerance)


def score_semantic_instances(model: torch.nn.Module, config: Any, dataset: Dataset, data_root: str | Path, *,
                             batch: int = 8, device: str = "auto", min_area: int = 10,
                             tolerance: float = 2.0) -> Scored:
    """The U-Net scored like an instance model: its label maps as they are (boundary F, mIoU) and
    their connected regions as instances (COCO mask AP; :func:`label_map_to_instances`)."""
    from labkit.segment.predict import iter_semantic

    preds, maps, masks, seconds = {}, {}, {}, 0.0
    items = list(_ground_truth(dataset, data_root))
    t0 = time.perf_counter()
    for (image_id, _, gt), (labels, confidence) in zip(items, iter_semantic(
            model, config, [image for _, image, _ in items], batch=batch, device=device)):
        preds[image_id] = label_map_to_instances(labels, confidence, config.num_classes, min_area)
        seconds += time.perf_counter() - t0
        maps[image_id], masks[image_id] = labels, gt
        t0 = time.perf_counter()
    return _score(dataset, preds, maps, masks, config.num_classes, seconds, tolerance)


@dataclass
class Comparison:
    """Both models scored on the same images (:func:`compare_semantic_instance`).

    ``table``: one row per model (pandas DataFrame indexed by model name); ``scored``: each
    model's :class:`Scored` (predictions and COCO report), so nothing is predicted twice.
    """

    table: Any
    scored: dict[str, Scored]

    def per_class_ap(self) -> Any:
        """Mask AP per class (rows) and model (columns), plus the number of ground-truth objects."""
        import pandas as pd

        table = pd.DataFrame({name: {r["name"]: r["AP"] for r in s.report.per_class()}
                              for name, s in self.scored.items()})
        first = next(iter(self.scored.values()))
        table["objects"] = pd.Series({r["name"]: r["num_gt"] for r in first.report.per_class()})
        return table

    def count_errors(self, dataset: Dataset, min_score: float = 0.5) -> Any:
        """Mean absolute error of the per-image object count, per class (rows) and model (columns).

        A prediction counts when it scores at least ``min_score``; crowd regions are not objects.
        The column ``predict nothing`` is the error of answering zero everywhere (the mean number
        of objects per image): a model must beat it to have learnt anything about counts.
        """
        import pandas as pd

        def count(det: Detections, cls: int, threshold: float | None) -> int:
            keep = det.class_id == cls
            if threshold is not None and det.score is not None:
                keep &= det.score >= threshold
            return int(keep.sum())

        for name, s in self.scored.items():
            missing = [rec.id for rec in dataset.images if rec.id not in s.predictions]
            if missing:
                raise DataError(f"{len(missing)} image(s) of the dataset have no prediction from {name!r} (first id "
                                f"{missing[0]}): count on the dataset the comparison was scored on",
                                source=dataset.source)
        rows = []
        for rec in dataset.images:
            truth = rec.detections[rec.detections.get("iscrowd") == 0]
            for cls, name in dataset.category_names.items():
                n = count(truth, cls, None)
                rows.append({"class": name, "predict nothing": n,
                             **{m: abs(count(s.predictions[rec.id], cls, min_score) - n)
                                for m, s in self.scored.items()}})
        return pd.DataFrame(rows).groupby("class", sort=False).mean()


def compare_semantic_instance(semantic_ckpt: str | Path, instance_weights: str | Path, dataset: Dataset,
                              data_root: str | Path, *, device: str = "auto", batch: int = 8, min_score: float = 0.5,
                              min_area: int = 10, tolerance: float = 2.0) -> Comparison:
    """Score the U-Net (``semantic U-Net + components``) and YOLO-seg (``instance YOLO-seg``) on
    ``dataset``: mask AP, mask AP50, boundary F, Boundary IoU, mIoU and ms/image per model."""
    import pandas as pd

    from labkit.segment.semantic import load_checkpoint

    unet, config = load_checkpoint(semantic_ckpt, device=device)
    scored = {
        "semantic U-Net + components": score_semantic_instances(
            unet, config, dataset, data_root, batch=batch, device=device, min_area=min_area, tolerance=tolerance),
        "instance YOLO-seg": score_instances(
            instance_weights, dataset, data_root, num_classes=config.num_classes, batch=batch, device=device,
            min_score=min_score, tolerance=tolerance),
    }
    table = pd.DataFrame([{"model": name, **s.row} for name, s in scored.items()]).set_index("model")
    return Comparison(table, scored)


# ----------------------------------------------------------------------------- the registry's steps
def train_cached(config: DetectConfig, data_root: Path, out: Path, progress: bool = True) -> Trained:
    """The registry's train step (``segment-instance``): train (or resume) in ``out/run`` and put
    ``weights.pt`` and ``categories.json`` in ``out``."""
    from labkit.detect.base import steps_done

    best = train_instance(config, data_root=data_root, run_dir=out / "run")
    shutil.copyfile(best, out / WEIGHTS)
    shutil.copyfile(out / "run" / CATEGORY_FILE, out / CATEGORY_FILE)
    timing = run_time(out / "run")
    return Trained(epochs=timing["epochs"], steps=steps_done(timing["epochs"], len(load_split(data_root, "train")),
                                                            config.batch),
                   train_minutes=timing["train_minutes"], device=str(resolve_device(config.device)))


def evaluate_cached(weights: Path, config: DetectConfig, data_root: Path, progress: bool = True) -> Scores:
    """The registry's evaluate step: val mask AP / AP50, boundary F, Boundary IoU and mIoU."""
    row = score_instances(weights, load_split(data_root, "val"), data_root, conf=config.eval_conf, iou=config.eval_iou,
                          device=config.device).row
    return Scores(metrics={"mask_AP50": row.get("mask_AP50"), "mask_AP": row.get("mask_AP")}, details={"val": row})


def run_time(run_dir: str | Path) -> dict[str, float | int]:
    """``{epochs, train_minutes}`` of an Ultralytics run, from its ``results.csv`` (one row per
    finished epoch; ``time`` is the seconds since training started)."""
    import pandas as pd

    path = Path(run_dir) / "results.csv"
    try:
        log = pd.read_csv(path).rename(columns=str.strip)
        return {"epochs": int(log["epoch"].iloc[-1]), "train_minutes": float(log["time"].iloc[-1]) / 60.0}
    except (OSError, KeyError, IndexError, ValueError) as exc:
        raise DataError(f"no finished epoch with a time in the training log ({exc})", source=str(path)) from exc
