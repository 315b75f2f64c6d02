"""The detection run config: one YAML file holds every knob of a training run.

``configs/detect_*.yaml`` are instances. Every field is recorded in the run manifest
(:func:`labkit.repro.write_manifest`), together with the full argument set Ultralytics resolved.
Anything Ultralytics accepts that labkit does not manage (``lr0``, ``mosaic``, ``hsv_h`` ...) goes
under ``overrides``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.configfile import YamlConfig
from labkit.device import amp_mode, check_device_name, resolve_device
from labkit.errors import DataError

#: Ultralytics arguments labkit sets itself; ``overrides`` may not contain them.
MANAGED_ARGS = frozenset({
    "model", "data", "epochs", "time", "imgsz", "batch", "seed", "deterministic", "workers", "device", "amp",
    "plots", "project", "name", "exist_ok", "resume", "save", "val",
})


@dataclass(frozen=True)
class DetectConfig(YamlConfig):
    """Every knob of one detector training run.

    Attributes:
        name: run name (folder name of the run and of the cached base model).
        model: an Ultralytics model YAML (``yolov8n.yaml``, ``yolo11n.yaml``: built from scratch,
            no download) or a local ``.pt`` checkpoint to fine-tune.
        dataset_size: embedded dataset size, ``"default"`` or ``"small"``.
        dataset_seed: seed of the embedded dataset generator.
        imgsz: square network input size (a multiple of 32).
        epochs: number of epochs: the whole training budget (never wall-clock minutes, so the
            same config, seed and data give the same weights on a busy or a quiet machine).
        batch: images per training batch.
        seed: training seed (Ultralytics seeds Python, NumPy and torch from it).
        device: ``"auto"`` (CUDA if present), ``"cpu"`` or ``"cuda"``.
        workers: dataloader worker processes (Ultralytics uses 0 on CPU anyway).
        eval_every: run labkit's COCO evaluation on the val split every k epochs (0: only at the end).
        eval_conf: confidence threshold of the predictions that evaluation scores.
        eval_iou: NMS IoU threshold of those predictions.
        overrides: further Ultralytics training arguments (not those in :data:`MANAGED_ARGS`).
    """

    KIND = "detection"

    name: str = "detector"
    model: str = "yolov8n.yaml"
    dataset_size: str = "small"
    dataset_seed: int = 0
    imgsz: int = 320
    epochs: int = 10
    batch: int = 16
    seed: int = 0
    device: str = "auto"
    workers: int = 0
    eval_every: int = 1
    eval_conf: float = 0.001
    eval_iou: float = 0.7
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if self.dataset_size not in ("default", "small"):
            problems.append(f"dataset_size must be 'default' or 'small', got {self.dataset_size!r}")
        if self.imgsz <= 0 or self.imgsz % 32:
            problems.append(f"imgsz must be a positive multiple of 32, got {self.imgsz}")
        if self.epochs < 1 or self.batch < 1 or self.eval_every < 0:
            problems.append("epochs and batch must be >= 1 and eval_every >= 0")
        if check_device_name(self.device):
            problems.append(check_device_name(self.device))
        clash = sorted(MANAGED_ARGS & set(self.overrides))
        if clash:
            problems.append(f"overrides may not set {clash}: they are config fields or set by labkit")
        if problems:
            raise DataError("; ".join(problems), record=self.name)

    def ultralytics_args(self, *, data_yaml: Path, run_dir: Path) -> dict[str, Any]:
        """Keyword arguments for ``YOLO(model).train(...)`` writing into ``run_dir``."""
        device = resolve_device(self.device)
        args = {
            "data": str(data_yaml), "epochs": self.epochs, "imgsz": self.imgsz, "batch": self.batch,
            "seed": self.seed, "deterministic": True, "workers": self.workers,
            "device": ultralytics_device(device), "amp": amp_mode(device), "plots": False,
            "project": str(run_dir.parent), "name": run_dir.name, "exist_ok": True, "save": True, "val": True,
        }
        return {**args, **self.overrides}


def ultralytics_device(device: Any) -> str:
    """Ultralytics' spelling of a device: ``"cpu"`` or the CUDA index (``"0"``)."""
    dev = resolve_device(device)
    return str(dev.index or 0) if dev.type == "cuda" else "cpu"
