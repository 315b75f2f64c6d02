"""The two-stage comparison path: torchvision Faster R-CNN trained on the course data.

Faster R-CNN (Ren et al. 2015) first proposes regions (the RPN), then classifies and refines a
fixed-size crop of features for each proposal (RoIAlign + a box head). The course trains
torchvision's MobileNetV3-Large FPN variant from scratch (``weights=None``,
``weights_backbone=None``: nothing is downloaded) on the same embedded dataset as the YOLO base
detector, and scores it with the same COCO evaluation
(:func:`labkit.detect.evaluate.coco_summary`), so the one-stage / two-stage trade-off is measured.

Pixels: every image is letterboxed with :class:`labkit.data.boxes.Letterbox` to the square
``imgsz`` canvas YOLO sees (grey padding 114), and the network's own resize is set to
``min_size = max_size = imgsz`` so it leaves that canvas unchanged; predicted boxes go back to the
original image through :meth:`Letterbox.inverse_boxes` (exact), then are clipped to it.
Classes: network label ``k`` (1..K, 0 is background) is the k-th category of the train split
sorted by id; ``categories.json`` beside the weights records the order.

Training (:func:`train_frcnn`): SGD with momentum, linear warm-up, then a cosine decay whose
progress is the larger of "steps done / steps planned" and "minutes spent / ``time_minutes``",
so a time budget ends on a small learning rate too; training stops after ``epochs``, as soon as
the budget is spent (even within an epoch), or once the next epoch would overrun it by more than
half an epoch. Mixed precision (bf16) on a CUDA GPU when ``amp``, float32 on CPU. Crowd regions
are left out of the targets (torchvision has no "ignore" boxes). A run folder holds::

    manifest.json          labkit.repro manifest: config, dataset sha256s, device, sessions
    last.pt                after every epoch: weights, optimizer, RNG state, log (resumable)
    best.pt                the weights of the evaluated epoch with the best val COCO AP
    categories.json        dataset category of each network label
    learning_curves.csv    per epoch: losses, learning rate, minutes, val COCO AP (evaluated epochs)
    result.json            written when training finished

:func:`build_frcnn_detector` caches a finished model like the YOLO base detector
(:func:`labkit.detect.base.cache_dir`: keyed by config + dataset sha256s)::

    <artifacts>/models/<name>-<hash>/weights.pt, categories.json, metrics.json (written last), run/
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from labkit.artifacts import MODEL_METRICS, artifacts_dir, finished_model, read_model_metrics, write_json
from labkit.configfile import YamlConfig, config_path
from labkit.data.annotations import Dataset, Detections
from labkit.data.boxes import Letterbox, clip_xyxy
from labkit.data.images import load_image
from labkit.detect.base import WEIGHTS, ap_vs_minutes, cache_dir
from labkit.detect.config import amp_mode, resolve_device
from labkit.detect.data import dataset_root, fingerprint, load_split
from labkit.detect.evaluate import COCO_KEYS, coco_summary
from labkit.detect.predict import CATEGORY_FILE, PAD_VALUE, _batches, frames
from labkit.detect.sources import Source, to_rgb
from labkit.detect.train import MANIFEST, RESULT, TrainResult, fresh_run_dir
from labkit.errors import DataError
from labkit.repro import seed_everything, write_manifest

#: torchvision builders the config may name (both MobileNetV3-Large + FPN).
ARCHS = ("fasterrcnn_mobilenet_v3_large_320_fpn", "fasterrcnn_mobilenet_v3_large_fpn")
#: Anchor sizes per feature map in those builders (the box head expects this many per location).
N_ANCHOR_SIZES = 5
FRCNN_CONFIG = config_path("detect_frcnn.yaml")
LAST, BEST, LOG = "last.pt", "best.pt", "learning_curves.csv"


@dataclass(frozen=True)
class FrcnnConfig(YamlConfig):
    """Every knob of one Faster R-CNN run (``configs/detect_frcnn*.yaml``).

    Attributes:
        name: run name (and prefix of the cached model's folder).
        arch: a torchvision builder from :data:`ARCHS`.
        pretrained_backbone: start the backbone from ImageNet weights
            (:func:`labkit.weights.resolve_pretrained` ``"mobilenet_v3_large"``; offline without a
            local copy that is a clear error). ``False``: from scratch, like the YOLO base model.
        dataset_size, dataset_seed: the embedded dataset (``"default"`` or ``"small"``).
        imgsz: square canvas the images are letterboxed to (a multiple of 32).
        epochs: number of epochs (upper bound when ``time_minutes`` is set).
        time_minutes: training-time budget (evaluation time excluded).
        batch: images per step.
        lr, momentum, weight_decay: SGD settings; ``lr`` is the peak after warm-up.
        warmup_iters: steps of linear learning-rate warm-up.
        grad_clip: gradient-norm clipping (``None``: off).
        hflip: probability of a horizontal flip of a training image.
        anchor_sizes: RPN anchor sizes in canvas pixels (5 of them; ``None``: torchvision's
            32..512, made for COCO objects, large for the course's small shapes).
        representation_size: width of the two-layer box head (torchvision: 1024).
        box_batch_size_per_image: proposals sampled per image to train the box head (torchvision: 512).
        roi_sampling_ratio: bilinear samples per RoIAlign bin side (torchvision: 2; 1 is 4x cheaper,
            and RoIAlign's backward pass dominates a CPU training step).
        seed: seeds Python, NumPy, torch, the shuffling and the flips.
        device: ``"auto"`` (CUDA if present), ``"cpu"`` or ``"cuda"``.
        amp: bf16 mixed precision on a CUDA GPU that supports it (ignored on CPU).
        eval_every: COCO evaluation on val every k epochs (0: only after the last one).
        eval_conf: lowest score kept by the box head when evaluating (AP needs the low tail).
        max_det: detections kept per image (COCO counts 100).
    """

    KIND = "Faster R-CNN"

    name: str = "frcnn-mnv3"
    arch: str = "fasterrcnn_mobilenet_v3_large_320_fpn"
    pretrained_backbone: bool = False
    dataset_size: str = "small"
    dataset_seed: int = 0
    imgsz: int = 320
    epochs: int = 10
    time_minutes: float | None = None
    batch: int = 8
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_iters: int = 50
    grad_clip: float | None = 10.0
    hflip: float = 0.5
    anchor_sizes: list[int] | None = None
    representation_size: int = 1024
    box_batch_size_per_image: int = 512
    roi_sampling_ratio: int = 2
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    eval_every: int = 1
    eval_conf: float = 0.001
    max_det: int = 100

    def __post_init__(self) -> None:
        problems = []
        if self.arch not in ARCHS:
            problems.append(f"arch must be one of {ARCHS}, got {self.arch!r}")
        if self.dataset_size not in ("default", "small"):
            problems.append(f"dataset_size must be 'default' or 'small', got {self.dataset_size!r}")
        if not isinstance(self.imgsz, int) or self.imgsz <= 0 or self.imgsz % 32:
            problems.append(f"imgsz must be a positive multiple of 32, got {self.imgsz}")
        if self.epochs < 1 or self.batch < 1 or self.eval_every < 0 or self.warmup_iters < 0:
            problems.append("epochs and batch must be >= 1, eval_every and warmup_iters >= 0")
        if self.time_minutes is not None and self.time_minutes <= 0:
            problems.append(f"time_minutes must be positive, got {self.time_minutes}")
        if self.lr <= 0 or not 0 <= self.hflip <= 1 or not 0 <= self.eval_conf < 1 or self.max_det < 1:
            problems.append("lr must be > 0, hflip in [0, 1], eval_conf in [0, 1) and max_det >= 1")
        if self.anchor_sizes is not None and (len(self.anchor_sizes) != N_ANCHOR_SIZES
                                              or any(not isinstance(s, int) or s <= 0 for s in self.anchor_sizes)):
            problems.append(f"anchor_sizes must be {N_ANCHOR_SIZES} positive integers, got {self.anchor_sizes}")
        if min(self.representation_size, self.box_batch_size_per_image, self.roi_sampling_ratio) < 1:
            problems.append("representation_size, box_batch_size_per_image and roi_sampling_ratio must be >= 1")
        if self.device not in ("auto", "cpu", "cuda"):
            problems.append(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if problems:
            raise DataError("; ".join(problems), record=self.name)


def load_frcnn_config(config: FrcnnConfig | Mapping[str, Any] | str | Path = FRCNN_CONFIG) -> FrcnnConfig:
    """Accept a :class:`FrcnnConfig`, a mapping of its fields or a YAML path."""
    return FrcnnConfig.load(config)


# ----------------------------------------------------------------------------- the network
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
    dev = torch.device("cuda:0" if resolve_device(device) == "cuda" else "cpu")
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


# ----------------------------------------------------------------------------- training
def label_categories(dataset: Dataset) -> list[dict[str, Any]]:
    """The categories in network-label order (sorted by id: label 1 is the smallest id)."""
    ordered = sorted(dataset.categories, key=lambda c: int(c["id"]))
    return [{"id": int(c["id"]), "name": str(c["name"])} for c in ordered]


class FrcnnTrainSet(torch.utils.data.Dataset):
    """Training pairs ``(CHW float image in [0, 1], {"boxes": xyxy canvas pixels, "labels": 1..K})``.

    Each image is letterboxed to the ``imgsz`` canvas; crowd objects and boxes thinner than a
    canvas pixel are left out; a horizontal flip with probability ``hflip`` is drawn from a
    generator seeded by ``(seed, epoch, index)``, so an epoch is the same whether or not the run
    was resumed. Set :attr:`epoch` before each epoch.
    """

    def __init__(self, dataset: Dataset, imgsz: int, *, hflip: float = 0.0, seed: int = 0) -> None:
        self.dataset, self.imgsz, self.hflip, self.seed, self.epoch = dataset, imgsz, hflip, seed, 0
        self.label_of = {c["id"]: k for k, c in enumerate(label_categories(dataset), start=1)}

    def __len__(self) -> int:
        return len(self.dataset)

    def target(self, index: int) -> tuple[Letterbox, np.ndarray, np.ndarray]:
        """The letterbox, canvas boxes ``(N, 4)`` and labels ``(N,)`` of image ``index`` (before flipping)."""
        rec = self.dataset.images[index]
        lb = Letterbox.fit((rec.height, rec.width), self.imgsz)
        det = rec.detections
        crowd = det.get("iscrowd")
        keep = np.ones(len(det), bool) if crowd is None else np.array([not bool(c) for c in crowd], bool)
        boxes = clip_xyxy(lb.boxes(det.xyxy[keep]), self.imgsz, self.imgsz)
        labels = np.array([self.label_of[int(c)] for c in det.class_id[keep]], dtype=np.int64)
        real = (boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)
        return lb, boxes[real], labels[real]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        rec = self.dataset.images[index]
        image = load_image(self.dataset.image_path(rec))
        if image.shape[:2] != (rec.height, rec.width):
            raise DataError(f"image is {image.shape[:2]}, annotations say {(rec.height, rec.width)}",
                            source=self.dataset.source, record=rec.id)
        lb, boxes, labels = self.target(index)
        canvas = lb.image(image, pad_value=PAD_VALUE)
        if self.hflip and np.random.default_rng([self.seed, self.epoch, index]).random() < self.hflip:
            canvas = canvas[:, ::-1]
            boxes = np.stack([self.imgsz - boxes[:, 2], boxes[:, 1], self.imgsz - boxes[:, 0], boxes[:, 3]], axis=1)
        return _to_tensor(canvas), {"boxes": torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                                    "labels": torch.as_tensor(labels)}


def _collate(batch: list[Any]) -> tuple[tuple[Any, ...], ...]:
    return tuple(zip(*batch))


def learning_rate(config: FrcnnConfig, step: int, total_steps: int, train_seconds: float) -> float:
    """Warm-up, then cosine decay to 5% of ``lr``; progress is the larger of the step fraction and
    the fraction of ``time_minutes`` spent."""
    warm = min(1.0, (step + 1) / config.warmup_iters) if config.warmup_iters else 1.0
    progress = step / max(1, total_steps)
    if config.time_minutes is not None:
        progress = max(progress, train_seconds / (60.0 * config.time_minutes))
    return config.lr * warm * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0))))


def resumable_frcnn(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds an unfinished Faster R-CNN run with a ``last.pt``."""
    return (Path(run_dir) / LAST).is_file() and not (Path(run_dir) / RESULT).is_file()


def _save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def _resume_state(run: Path, cfg: FrcnnConfig, sha: dict[str, str]) -> dict[str, Any]:
    if not resumable_frcnn(run):
        raise DataError("nothing to resume: no unfinished run with a last.pt", source=str(run))
    state = torch.load(run / LAST, map_location="cpu", weights_only=False)
    if state["config"] != cfg.to_dict():
        raise DataError("the config differs from the one this run started with; resume with the same config",
                        source=str(run / LAST))
    if state["dataset_sha256"] != sha:
        raise DataError("the dataset differs from the one this run started on", source=str(run / LAST))
    return state


def train_frcnn(config: FrcnnConfig | Mapping[str, Any] | str | Path = FRCNN_CONFIG, *,
                data_root: str | Path | None = None, run_dir: str | Path | None = None, resume: bool = False,
                stop_after_epoch: int | None = None, progress: bool = True) -> TrainResult:
    """Train (or resume) Faster R-CNN; see the module docstring for the run folder.

    Args:
        config: a :class:`FrcnnConfig`, a mapping of its fields, or a YAML path.
        data_root: dataset folder (default: the embedded dataset the config names).
        run_dir: run folder (default ``<artifacts>/runs/detect/<name>``); a fresh run replaces an
            earlier labkit run there, any other non-empty folder is an error.
        resume: continue the interrupted run in ``run_dir`` from ``last.pt`` (same config and data).
        stop_after_epoch: interrupt after this epoch's checkpoint and log are written.
        progress: tqdm bars.

    Returns a :class:`labkit.detect.train.TrainResult` (``metrics`` holds ``result.json``).
    """
    cfg = load_frcnn_config(config)
    run = Path(run_dir) if run_dir is not None else artifacts_dir() / "runs" / "detect" / cfg.name
    root = dataset_root(cfg, data_root)
    sha = fingerprint(root)
    state = _resume_state(run, cfg, sha) if resume else None
    if state is None:
        fresh_run_dir(run)
    train_set, val = load_split(root, "train"), load_split(root, "val")
    categories = label_categories(train_set)
    device = torch.device("cuda:0" if resolve_device(cfg.device) == "cuda" else "cpu")
    bf16 = cfg.amp and amp_mode(device.type) == "bf16"
    seed_everything(cfg.seed, deterministic_torch=False)
    model = build_model(cfg, len(categories)).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    data = FrcnnTrainSet(train_set, cfg.imgsz, hflip=cfg.hflip, seed=cfg.seed)
    steps_per_epoch = math.ceil(len(data) / cfg.batch)
    epoch, step, train_s, wall_s, rows, best, sessions = 0, 0, 0.0, 0.0, [], None, []
    lr, over, stats = cfg.lr, False, {}
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        epoch, step, train_s, wall_s = state["epoch"], state["step"], state["train_seconds"], state["wall_seconds"]
        rows, best, sessions = state["log"], state["best"], state["sessions"]
    sessions = sessions + [{"resume": resume, "started_unix": round(time.time(), 3)}]
    record = {"data_root": str(root), "dataset_sha256": sha, "sessions": sessions, "device_used": str(device),
              "bf16": bf16, "categories": categories, "parameters": count_parameters(model),
              "train_images": len(data), "val_images": len(val)}
    write_manifest(run / MANIFEST, seed=cfg.seed, config=cfg.to_dict(), extra=record)
    write_json(run / CATEGORY_FILE, categories)
    session_start = time.perf_counter() - wall_s
    while epoch < cfg.epochs:
        data.epoch = epoch
        loader = torch.utils.data.DataLoader(data, batch_size=cfg.batch, shuffle=True, collate_fn=_collate,
                                             generator=torch.Generator().manual_seed(cfg.seed * 1000 + epoch))
        model.train()
        t0, sums, done, spent = time.perf_counter(), {}, 0, False
        bar = tqdm(loader, desc=f"{cfg.name} epoch {epoch + 1}/{cfg.epochs}", disable=not progress, leave=False)
        for images, targets in bar:
            lr = learning_rate(cfg, step, cfg.epochs * steps_per_epoch, train_s + time.perf_counter() - t0)
            for group in opt.param_groups:
                group["lr"] = lr
            images = [im.to(device) for im in images]
            targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                losses = model(images, targets)
            loss = sum(losses.values())
            if not torch.isfinite(loss):
                raise DataError(f"the loss became {loss.item()} at step {step}; lower lr or raise warmup_iters",
                                source=str(run))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            step, done = step + 1, done + 1
            for k, v in {"loss": loss, **losses}.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
            if cfg.time_minutes is not None and train_s + time.perf_counter() - t0 >= 60.0 * cfg.time_minutes:
                spent = True  # the budget is over: end within the epoch
                break
        epoch_s = time.perf_counter() - t0
        train_s += epoch_s
        epoch += 1
        over = spent or (cfg.time_minutes is not None and train_s + 0.5 * train_s / epoch > 60.0 * cfg.time_minutes)
        final = epoch >= cfg.epochs or over
        stats = {}
        t_eval = time.perf_counter()
        if final or (cfg.eval_every and epoch % cfg.eval_every == 0):
            det = FrcnnDetector(model.eval(), device, cfg.imgsz, categories)
            stats = coco_summary(val, predict_frcnn(det, val, conf=cfg.eval_conf, max_det=cfg.max_det,
                                                    batch=max(cfg.batch, 8), progress=False))
        row = {"epoch": epoch, "train_minutes": round(train_s / 60.0, 4), "lr": lr,
               "steps": done, **{f"train/{k}": v / max(1, done) for k, v in sums.items()},
               "coco_eval_seconds": round(time.perf_counter() - t_eval, 2),
               **{f"coco/{k}": stats.get(k) for k in COCO_KEYS}}
        rows.append(row)
        ap = stats.get("AP")
        if ap is not None and (best is None or ap > best["AP"]):
            best = {"epoch": epoch, "AP": ap, "coco": stats}
            _save({"model": model.state_dict(), "config": cfg.to_dict(), "categories": categories, "epoch": epoch},
                  run / BEST)
        pd.DataFrame(rows).to_csv(run / LOG, index=False)
        wall_s = time.perf_counter() - session_start
        _save({"model": model.state_dict(), "optimizer": opt.state_dict(), "torch_rng": torch.get_rng_state(),
               "epoch": epoch, "step": step, "train_seconds": train_s, "wall_seconds": wall_s, "log": rows,
               "best": best, "sessions": sessions, "config": cfg.to_dict(), "categories": categories,
               "dataset_sha256": sha}, run / LAST)
        if final:
            break
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            return TrainResult(run, run / LAST, epoch, interrupted=True)
    if best is None:  # every evaluated epoch had an undefined AP (no val objects): keep the last weights
        _save({"model": model.state_dict(), "config": cfg.to_dict(), "categories": categories, "epoch": epoch},
              run / BEST)
        best = {"epoch": epoch, "AP": None, "coco": stats}
    result = {"weights": BEST, "epochs": epoch, "best_epoch": best["epoch"], "train_minutes": train_s / 60.0,
              "wall_minutes": (time.perf_counter() - session_start) / 60.0, "coco": best["coco"],
              "device": str(device), "bf16": bf16, "parameters": count_parameters(model),
              "stopped_by_time": bool(over)}
    write_json(run / RESULT, result)
    write_manifest(run / MANIFEST, seed=cfg.seed, config=cfg.to_dict(), extra={**record, "result": result})
    return TrainResult(run, run / BEST, epoch, interrupted=False, metrics=result)


# ----------------------------------------------------------------------------- the cached model
def build_frcnn_detector(config: FrcnnConfig | Mapping[str, Any] | str | Path = FRCNN_CONFIG,
                         data_root: str | Path | None = None, *, cache_root: str | Path | None = None,
                         progress: bool = True) -> Path:
    """Train Faster R-CNN once per (config, dataset), or finish an interrupted build, and return
    its cached ``weights.pt`` (see the module docstring). ``metrics.json`` beside it holds the val
    COCO summary, the epochs, ``train_minutes`` and ``build_minutes`` (training + evaluation)."""
    cfg = load_frcnn_config(config)
    root = dataset_root(cfg, data_root)
    out = cache_dir(cfg, root, cache_root)
    if finished_model(out / WEIGHTS):
        return out / WEIGHTS
    run = out / "run"
    if not (run / RESULT).is_file():
        train_frcnn(cfg, data_root=root, run_dir=run, resume=resumable_frcnn(run), progress=progress)
    result = json.loads((run / RESULT).read_text(encoding="utf-8"))
    shutil.copyfile(run / result["weights"], out / WEIGHTS)
    shutil.copyfile(run / CATEGORY_FILE, out / CATEGORY_FILE)
    metrics = {
        "name": cfg.name, "hash": out.name.rsplit("-", 1)[-1], "arch": cfg.arch, "device": result["device"],
        "AP50": result["coco"].get("AP50"), "AP50_95": result["coco"].get("AP"), "coco": result["coco"],
        "train_minutes": result["train_minutes"], "build_minutes": result["wall_minutes"],
        "epochs": result["epochs"], "best_epoch": result["best_epoch"], "parameters": result["parameters"],
        "stopped_by_time": result["stopped_by_time"],
        "ap_vs_minutes": ap_vs_minutes(pd.read_csv(run / LOG)),
        "config": cfg.to_dict(), "dataset_sha256": fingerprint(root),
    }
    write_json(out / MODEL_METRICS, metrics)
    return out / WEIGHTS


def frcnn_metrics(weights: str | Path) -> dict[str, Any]:
    """The ``metrics.json`` of a cached Faster R-CNN (given its ``weights.pt``)."""
    return read_model_metrics(weights)


# ----------------------------------------------------------------------------- comparing detectors
def ms_per_image(detect: Callable[[list[np.ndarray]], Any], images: Sequence[np.ndarray], *, batch: int = 1,
                 warmup: int = 1) -> float:
    """Wall-clock milliseconds per image of ``detect`` (a callable taking a list of RGB images,
    e.g. a YOLO :class:`~labkit.detect.predict.Detector` or a :class:`FrcnnDetector`) over
    ``images`` in chunks of ``batch``, after ``warmup`` untimed calls on the first chunk.
    Letterboxing, the network and post-processing are all inside the timing."""
    if batch < 1 or not images:
        raise DataError("ms_per_image needs batch >= 1 and at least one image")
    chunks = [list(images[i:i + batch]) for i in range(0, len(images), batch)]
    for _ in range(warmup):
        detect(chunks[0])
    start = time.perf_counter()
    for chunk in chunks:
        detect(chunk)
    return 1000.0 * (time.perf_counter() - start) / len(images)


def size_counts(dataset: Dataset) -> dict[str, int]:
    """Non-crowd objects of ``dataset`` by COCO size range (area < 32², < 96², larger), using the
    annotation ``area`` as COCO does (the box area where it is missing): how many objects each of
    APs / APm / APl rests on."""
    counts = {"small": 0, "medium": 0, "large": 0}
    for rec in dataset:
        det = rec.detections
        crowd, area = det.get("iscrowd"), det.get("area")
        for i in range(len(det)):
            if crowd is not None and bool(crowd[i]):
                continue
            a = float(area[i]) if area is not None and area[i] is not None else float(det.box_area[i])
            counts["small" if a < 32 ** 2 else "medium" if a < 96 ** 2 else "large"] += 1
    return counts
