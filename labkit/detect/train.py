"""Train an Ultralytics YOLO detector from a :class:`~labkit.detect.config.DetectConfig`.

The model is built from its YAML (``yolov8n.yaml``, ``yolo11n.yaml``: random init, nothing
downloaded) or fine-tuned from a local ``.pt``. The embedded dataset's train/val COCO splits are
exported to the YOLO layout inside the run folder. A run folder holds::

    manifest.json          labkit.repro manifest: config, Ultralytics arguments, dataset sha256s, sessions
    categories.json        dataset category of each network class index (read by predict)
    yolo/                  the YOLO export (data.yaml, labels, copied images, COCO instances_<split>.json)
    weights/last.pt        checkpoint after every epoch (resumable), weights/best.pt
    results.csv            Ultralytics' per-epoch log; epochs.csv labkit's (minutes, COCO AP)
    learning_curves.csv    both merged, and learning_curves.png (see labkit.detect.curves)
    result.json            written when training finished: final labkit and Ultralytics metrics

Interrupting a run (a killed kernel, Ctrl-C, or ``stop_after_epoch`` which simulates one) loses
nothing: every completed epoch's checkpoint and log rows are on disk, and ``resume=True``
continues from ``weights/last.pt`` with its optimizer state, epoch counter and best fitness
(Ultralytics ``resume``), appending to the same logs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from tqdm.auto import tqdm

from labkit.artifacts import artifacts_dir, fresh_dir, write_json
from labkit.data.annotations import Dataset
from labkit.data.coco import read_json
from labkit.detect._ultralytics import local_fonts, ul
from labkit.detect.config import DetectConfig
from labkit.detect.curves import LABKIT_LOG, append_row, learning_curves, write_learning_curves
from labkit.detect.data import EXPORT_DIR, export_for_training, exported_split
from labkit.detect.evaluate import COCO_KEYS, evaluate_detector
from labkit.device import resolve_device
from labkit.errors import DataError, LabkitError
from labkit.models.dataset import dataset_root, fingerprint
from labkit.repro import write_manifest
from labkit.weights import resolve_model

MANIFEST = "manifest.json"
RESULT = "result.json"
#: Ultralytics' own validation metrics copied into ``result.json``.
ULTRALYTICS_KEYS = ("metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)")


class TrainingInterrupted(LabkitError):
    """Training stopped on purpose after an epoch (``stop_after_epoch``); resume to continue."""


@dataclass
class TrainResult:
    """What a (possibly interrupted) training call left behind.

    ``weights`` is ``best.pt`` when training finished, else ``last.pt``; ``metrics`` holds the
    contents of ``result.json`` (empty when interrupted); ``epochs`` counts completed epochs.
    """

    run_dir: Path
    weights: Path
    epochs: int
    interrupted: bool
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def curves_csv(self) -> Path:
        return self.run_dir / "learning_curves.csv"

    @property
    def curves_png(self) -> Path:
        return self.run_dir / "learning_curves.png"


def default_run_dir(config: DetectConfig) -> Path:
    """``<artifacts>/runs/detect/<name>``."""
    return artifacts_dir() / "runs" / "detect" / config.name


def resumable(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds an unfinished run whose ``weights/last.pt`` still has its
    optimizer state (Ultralytics strips it when training ends)."""
    import torch

    last = Path(run_dir) / "weights" / "last.pt"
    if (Path(run_dir) / RESULT).is_file() or not last.is_file():
        return False
    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    return int(ckpt.get("epoch", -1)) >= 0 and ckpt.get("optimizer") is not None


def fresh_run_dir(run_dir: Path) -> None:
    """Empty ``run_dir`` for a new run; a non-empty folder that is not a labkit run is never deleted."""
    fresh_dir(run_dir, marker=MANIFEST, what="labkit run")


class _EpochLogger:
    """Ultralytics callbacks writing labkit's per-epoch row (minutes, COCO AP) after each checkpoint,
    and ticking one progress bar per epoch (tqdm: elapsed time and ETA; on stderr, so ``--json``
    output stays clean) that shows even when Ultralytics' own log is off (``YOLO_VERBOSE=False``)."""

    def __init__(self, run_dir: Path, val: Dataset, config: DetectConfig, stop_after_epoch: int | None):
        self.run_dir, self.val, self.config, self.stop_after_epoch = run_dir, val, config, stop_after_epoch
        previous = learning_curves(run_dir)
        minutes = previous.get("train_minutes")
        self.offset_s = 60.0 * float(minutes.dropna().iloc[-1]) if minutes is not None and minutes.notna().any() else 0.0
        self.session_start = time.time()
        self.eval_s = 0.0
        self.bar: Any = None

    def callbacks(self) -> dict[str, Callable[[Any], None]]:
        return {"on_train_start": self.on_train_start, "on_model_save": self.on_model_save,
                "on_train_end": self.on_train_end}

    def on_train_start(self, trainer: Any) -> None:
        self.session_start = time.time()
        self.bar = tqdm(total=trainer.epochs, initial=trainer.start_epoch, desc=f"{self.config.name} training",
                        unit="epoch")

    def on_train_end(self, trainer: Any) -> None:
        if self.bar is not None:
            self.bar.close()

    def on_model_save(self, trainer: Any) -> None:
        epoch = trainer.epoch + 1
        final = bool(trainer.stop) or epoch >= trainer.epochs
        every = self.config.eval_every
        stats: Mapping[str, float | None] = {}
        t0 = time.time()
        if final or (every and epoch % every == 0):
            stats = evaluate_detector(trainer.last, self.val, conf=self.config.eval_conf, iou=self.config.eval_iou,
                                      device=resolve_device(self.config.device), batch=max(self.config.batch, 8))
        eval_s = time.time() - t0
        self.eval_s += eval_s
        train_s = self.offset_s + time.time() - self.session_start - self.eval_s
        row = {"epoch": epoch, "train_minutes": round(train_s / 60.0, 4), "coco_eval_seconds": round(eval_s, 2),
               **{f"coco/{k}": stats.get(k) for k in COCO_KEYS}}
        append_row(self.run_dir / LABKIT_LOG, row)
        write_learning_curves(self.run_dir)
        if self.bar is not None:
            self.bar.set_postfix({k: round(v, 3) for k, v in stats.items() if k in ("AP50", "AP") and v is not None})
            self.bar.update(1)
        if self.stop_after_epoch is not None and epoch >= self.stop_after_epoch and not final:
            self.on_train_end(trainer)
            raise TrainingInterrupted(f"stopped after epoch {epoch} of {trainer.epochs} (resume to continue)")


def _history(run_dir: Path, config: DetectConfig) -> dict[str, Any]:
    """What a resumed run keeps from its manifest: its data source and earlier sessions. The
    config must be the one the run started with."""
    manifest = read_json(run_dir / MANIFEST)
    if manifest.get("config") != config.to_dict():
        raise DataError("the config differs from the one this run started with; resume with the same config",
                        source=str(run_dir / MANIFEST))
    return {k: manifest[k] for k in ("data_root", "dataset_sha256", "sessions")}


def _finish(run_dir: Path, trainer: Any, val: Dataset, config: DetectConfig) -> dict[str, Any]:
    best = trainer.best if trainer.best.exists() else trainer.last
    coco = evaluate_detector(best, val, conf=config.eval_conf, iou=config.eval_iou,
                             device=resolve_device(config.device), batch=max(config.batch, 8))
    curves = learning_curves(run_dir)
    metrics = trainer.metrics or {}
    result = {
        "weights": best.relative_to(run_dir).as_posix(),
        "epochs": int(curves["epoch"].max()),
        "best_epoch": int(trainer.stopper.best_epoch),
        "train_minutes": float(curves["train_minutes"].dropna().iloc[-1]),
        "coco": coco,
        "ultralytics": {k: float(metrics[k]) for k in ULTRALYTICS_KEYS if k in metrics},
    }
    write_json(run_dir / RESULT, result)
    return result


def train(config: DetectConfig | Mapping[str, Any] | str | Path, *, data_root: str | Path | None = None,
          run_dir: str | Path | None = None, resume: bool = False,
          stop_after_epoch: int | None = None) -> TrainResult:
    """Train (or resume) a detector; see the module docstring for what the run folder holds.

    Args:
        config: a :class:`DetectConfig`, a mapping of its fields, or a YAML path.
        data_root: dataset folder (default: the embedded dataset the config names); a resumed
            run uses its own copy and ignores it.
        run_dir: run folder (default: :func:`default_run_dir`). A fresh run replaces an earlier
            labkit run there; any other non-empty folder is an error.
        resume: continue the interrupted run in ``run_dir`` from ``weights/last.pt``.
        stop_after_epoch: interrupt after this epoch's checkpoint and logs are written (to
            split training over sessions, or to test resuming).
    """
    cfg = DetectConfig.load(config)
    run = Path(run_dir) if run_dir is not None else default_run_dir(cfg)
    last = run / "weights" / "last.pt"
    if resume:
        if not resumable(run):
            raise DataError("nothing to resume: no unfinished run with a resumable weights/last.pt", source=str(run))
        history = _history(run, cfg)
    else:
        root = dataset_root(cfg.dataset_size, cfg.dataset_seed, data_root)
        history = {"data_root": str(root), "dataset_sha256": fingerprint(root), "sessions": []}
        fresh_run_dir(run)
        export_for_training(root, run)
    history["sessions"] = history["sessions"] + [{"resume": resume, "started_unix": round(time.time(), 3)}]
    args = cfg.ultralytics_args(data_yaml=run / EXPORT_DIR / "data.yaml", run_dir=run)
    record = {**history, "ultralytics_args": args}
    write_manifest(run / MANIFEST, seed=cfg.seed, config=cfg.to_dict(), extra=record)
    val = exported_split(run, "val")
    model = ul().YOLO(str(last) if resume else resolve_model(cfg.model))
    for event, fn in _EpochLogger(run, val, cfg, stop_after_epoch).callbacks().items():
        model.add_callback(event, fn)
    try:
        with local_fonts():
            if resume:
                model.train(resume=True, device=args["device"])
            else:
                model.train(**args)
    except TrainingInterrupted:
        epochs = int(learning_curves(run)["epoch"].max())
        return TrainResult(run, last, epochs, interrupted=True)
    trainer = model.trainer
    result = _finish(run, trainer, val, cfg)
    write_manifest(run / MANIFEST, seed=cfg.seed, config=cfg.to_dict(),
                   extra={**record, "ultralytics_resolved_args": dict(vars(trainer.args)), "result": result})
    return TrainResult(run, run / result["weights"], result["epochs"], interrupted=False, metrics=result)
