"""Semantic segmentation with segmentation-models-pytorch, trained from a YAML config.

One function, :func:`train_semantic`, runs the whole recipe: it seeds everything, builds the
model (U-Net by default, DeepLabV3+ as an option; ``encoder_weights: null`` offline, ``imagenet``
for a ResNet encoder loads torchvision's ImageNet checkpoint through :mod:`labkit.weights`: local
copy or verified download, mirror honoured, clear error offline), trains with
the chosen loss (``ce``, ``dice``, ``focal`` or ``ce+dice``; the ignore index is excluded from every
one of them), evaluates per-class IoU on the validation split after each epoch
(:class:`labkit.metrics.segmentation.ConfusionMatrix`), logs it to ``log.csv`` and a figure, and
keeps ``last.pt`` / ``best.pt`` checkpoints that include the optimizer state, so an interrupted run
resumes where it stopped (``resume=True``). ``init_from`` starts from another run's weights
(fine-tuning); layers whose shapes differ (a head for another number of classes) keep their
fresh initialisation, and the manifest says which.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from labkit.configfile import YamlConfig
from labkit.device import check_device_name, resolve_device
from labkit.errors import DataError
from labkit.repro import config_hash, seed_everything, sha256_file, write_manifest
from labkit.segment.data import Preprocessing, SemanticDataset

LOSSES = ("ce", "dice", "focal", "ce+dice")
ARCHS = ("Unet", "DeepLabV3Plus")
#: Encoders whose ``encoder_weights: imagenet`` labkit can provide (torchvision's ImageNet classifiers,
#: whose layer names smp's ResNet encoders share).
IMAGENET_ENCODERS = ("resnet18",)


@dataclass
class SemanticConfig(YamlConfig):
    """Every knob of a run; the whole object goes into the run manifest and the checkpoints."""

    KIND = "segmentation"

    arch: str = "Unet"
    encoder: str = "resnet18"
    encoder_weights: str | None = None
    num_classes: int = 6
    class_names: list[str] = field(default_factory=lambda: ["background", "disc", "block", "cone", "rod", "star"])
    loss: str = "ce+dice"
    epochs: int = 10
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    augment_strength: float = 0.5
    size: int = 160
    ignore_index: int = 255
    seed: int = 0
    max_train_images: int | None = None
    max_val_images: int | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise DataError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        if self.loss not in LOSSES:
            raise DataError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if len(self.class_names) != self.num_classes:
            raise DataError(f"{len(self.class_names)} class names for {self.num_classes} classes")
        if self.encoder_weights is not None and (self.encoder_weights != "imagenet"
                                                 or self.encoder not in IMAGENET_ENCODERS):
            raise DataError(f"encoder_weights {self.encoder_weights!r} for encoder {self.encoder!r}: use null (train "
                            f"from scratch) or 'imagenet' with one of {IMAGENET_ENCODERS}")
        if check_device_name(self.device):
            raise DataError(check_device_name(self.device))

    @classmethod
    def from_yaml(cls, path: str | Path) -> "SemanticConfig":
        """Read a config file; unknown keys and bad values are errors naming the file."""
        return cls.load(Path(path))

    @property
    def preprocessing(self) -> Preprocessing:
        return Preprocessing(size=self.size, ignore_index=self.ignore_index)


def build_model(config: SemanticConfig, *, pretrained: bool = True) -> torch.nn.Module:
    """The segmentation-models-pytorch network the config describes (smp itself downloads nothing:
    ImageNet encoder weights come from :func:`load_imagenet_encoder`, unless ``pretrained`` is False
    because a checkpoint is about to overwrite every weight)."""
    import segmentation_models_pytorch as smp

    arch = getattr(smp, config.arch)
    model = arch(encoder_name=config.encoder, encoder_weights=None, classes=config.num_classes)
    if pretrained and config.encoder_weights == "imagenet":
        load_imagenet_encoder(model.encoder, config.encoder)
    return model


def load_imagenet_encoder(encoder: torch.nn.Module, name: str) -> None:
    """Copy torchvision's ImageNet weights of ``name`` (e.g. ``resnet18``) into an smp encoder.

    The file comes from :func:`labkit.weights.resolve_pretrained` (a local copy, else a download
    checked against the sha256 prefix in torchvision's file name; offline without a copy it raises
    :class:`labkit.weights.PretrainedUnavailable` saying where to put the file). Every encoder
    tensor must be filled: the classifier (``fc``) is the only part left out.
    """
    from labkit.weights import resolve_pretrained

    path = resolve_pretrained(name)
    state = torch.load(path, map_location="cpu", weights_only=True)
    own = encoder.state_dict()
    found = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    unset = sorted(set(own) - set(found))
    if unset:
        raise DataError(f"the ImageNet {name} weights leave {len(unset)} encoder tensors unset (first: {unset[0]})",
                        source=str(path))
    encoder.load_state_dict(found)


def build_loss(config: SemanticConfig) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Cross-entropy, Dice (Milletari et al. 2016), focal (Lin et al. 2017) or CE + Dice, all
    skipping ``ignore_index`` pixels."""
    from segmentation_models_pytorch.losses import DiceLoss, FocalLoss

    ce = torch.nn.CrossEntropyLoss(ignore_index=config.ignore_index)
    dice = DiceLoss("multiclass", ignore_index=config.ignore_index)
    focal = FocalLoss("multiclass", ignore_index=config.ignore_index)
    return {"ce": ce, "dice": dice, "focal": focal, "ce+dice": lambda p, t: ce(p, t) + dice(p, t)}[config.loss]


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: DataLoader, config: SemanticConfig, device: torch.device):
    """Confusion matrix over a loader (letterbox padding is ignore, so it does not count)."""
    from labkit.metrics.segmentation import ConfusionMatrix

    model.eval()
    cm = ConfusionMatrix(config.num_classes, ignore_index=config.ignore_index)
    for images, masks in loader:
        with torch.autocast(device.type, enabled=device.type == "cuda"):
            logits = model(images.to(device))
        cm.update(masks.numpy(), logits.argmax(1).cpu().numpy())
    return cm


def _loader(ds: SemanticDataset, config: SemanticConfig, shuffle: bool) -> DataLoader:
    gen = torch.Generator().manual_seed(config.seed)
    return DataLoader(ds, batch_size=config.batch_size, shuffle=shuffle, generator=gen, num_workers=0)


def _limit(ds: SemanticDataset, n: int | None) -> SemanticDataset:
    if n is not None:
        ds.records = ds.records[:n]
    return ds


def load_initial_weights(model: torch.nn.Module, path: str | Path) -> dict[str, Any]:
    """Copy the weights of checkpoint ``path`` into ``model`` wherever names and shapes agree.

    Returns ``{path, sha256, skipped}`` (``skipped``: parameters left as initialised).
    """
    state = torch.load(path, map_location="cpu", weights_only=False)
    own = model.state_dict()
    weights = {k: v for k, v in state["model"].items() if k in own and own[k].shape == v.shape}
    if not weights:
        raise DataError("no parameter of the checkpoint fits this model (another arch or encoder?)", source=str(path))
    model.load_state_dict(weights, strict=False)
    return {"path": str(path), "sha256": sha256_file(path), "skipped": sorted(set(own) - set(weights))}


def train_semantic(config: SemanticConfig, train_set, val_set, data_root: Path, out_dir: Path, *,
                   resume: bool = False, progress: bool = True, init_from: str | Path | None = None) -> dict[str, Any]:
    """Train and evaluate; returns the final summary (also written to ``summary.json``).

    ``train_set`` / ``val_set`` are :class:`labkit.data.annotations.Dataset` objects of the still
    images. ``out_dir`` receives ``manifest.json``, ``log.csv``, ``curves.png``, ``last.pt``,
    ``best.pt`` and ``summary.json``. ``init_from`` is a checkpoint whose weights the model
    starts from (see :func:`load_initial_weights`).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(config.seed)
    device = resolve_device(config.device)
    prep = config.preprocessing
    train_ds = _limit(SemanticDataset(train_set, data_root, prep, train=True, strength=config.augment_strength, seed=config.seed),
                      config.max_train_images)
    val_ds = _limit(SemanticDataset(val_set, data_root, prep, train=False), config.max_val_images)
    model = build_model(config)
    init = load_initial_weights(model, init_from) if init_from is not None else None
    model = model.to(device)
    loss_fn = build_loss(config)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = max(1, config.epochs * len(_loader(train_ds, config, True)))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps, pct_start=0.15)
    scaler = torch.amp.GradScaler(enabled=device.type == "cuda")
    start_epoch, best, rows = 0, -1.0, []
    last = out_dir / "last.pt"
    if resume and last.exists():
        state = torch.load(last, map_location=device, weights_only=False)
        if state["config_hash"] != config_hash(asdict(config)):
            raise DataError("checkpoint was made with a different config; start a new run folder", source=str(last))
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start_epoch, best, rows = state["epoch"] + 1, state["best_miou"], state["log"]
    write_manifest(out_dir / "manifest.json", seed=config.seed, config=asdict(config),
                   extra={"preprocessing": asdict(prep), "device_used": str(device), "init_from": init})
    t0 = time.perf_counter() - (rows[-1]["elapsed_s"] if rows else 0.0)
    for epoch in range(start_epoch, config.epochs):
        model.train()
        train_ds.epoch = epoch
        losses = []
        for images, masks in tqdm(_loader(train_ds, config, True), desc=f"epoch {epoch + 1}/{config.epochs}",
                                  disable=not progress, leave=False):
            images, masks = images.to(device), masks.to(device)
            with torch.autocast(device.type, enabled=device.type == "cuda"):
                loss = loss_fn(model(images), masks)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            losses.append(loss.item())
        cm = evaluate(model, _loader(val_ds, config, False), config, device)
        iou = cm.iou()
        row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_miou": cm.mean_iou(),
               "lr": sched.get_last_lr()[0], "elapsed_s": time.perf_counter() - t0,
               **{f"iou_{n}": (None if np.isnan(v) else float(v)) for n, v in zip(config.class_names, iou)}}
        rows.append(row)
        state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                 "epoch": epoch, "best_miou": max(best, row["val_miou"]), "log": rows,
                 "config": asdict(config), "config_hash": config_hash(asdict(config)), "preprocessing": asdict(prep)}
        torch.save(state, out_dir / "last.pt.tmp")
        (out_dir / "last.pt.tmp").replace(last)
        if row["val_miou"] > best:
            best = row["val_miou"]
            torch.save({k: state[k] for k in ("model", "config", "preprocessing", "epoch")}, out_dir / "best.pt")
        _write_log(rows, out_dir)
    summary = {"best_val_miou": best, "epochs": config.epochs, "steps": steps, "last": rows[-1] if rows else None,
               "train_images": len(train_ds), "val_images": len(val_ds), "device": str(device)}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _write_log(rows: list[dict[str, Any]], out_dir: Path) -> None:
    with open(out_dir / "log.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    from labkit.segment.plots import plot_training_log

    plot_training_log(rows, out_dir / "curves.png")


def load_checkpoint(path: str | Path, device: str = "auto") -> tuple[torch.nn.Module, SemanticConfig]:
    """A trained model (eval mode) and its config from ``best.pt`` / ``last.pt``."""
    state = torch.load(path, map_location=resolve_device(device), weights_only=False)
    config = SemanticConfig(**state["config"])
    model = build_model(config, pretrained=False)  # the checkpoint holds every weight: nothing to fetch
    model.load_state_dict(state["model"])
    return model.to(resolve_device(device)).eval(), config
