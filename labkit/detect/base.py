"""The YOLO detectors of the model registry (``detect-base``, ``detect-yolo11n``, ``detect-tiny``).

:func:`train_cached` is the registry's train step: it trains on the train split for the config's
``epochs`` (on a CUDA GPU with bf16 mixed precision, else on CPU), evaluating on the val split
every ``eval_every`` epochs with labkit's COCO evaluation, and resumes an interrupted build from
``run/weights/last.pt``. The model folder (see :mod:`labkit.models.flow`) then holds::

    weights.pt          the best checkpoint; categories.json beside it (read by predict)
    ap_vs_minutes.json  [{epoch, minutes, AP50, AP50_95}] every evaluated epoch
    run/                the training run (manifest, logs, learning_curves.csv/png, checkpoints)
    metrics.json        written last by the registry (labkit.models.flow)

:func:`evaluate_cached` is the registry's evaluate step: COCO AP50 and AP50-95 on the val split.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd

from labkit.artifacts import write_json
from labkit.detect.config import DetectConfig
from labkit.detect.curves import learning_curves
from labkit.detect.evaluate import evaluate_detector
from labkit.detect.predict import CATEGORY_FILE
from labkit.detect.train import RESULT, resumable, train
from labkit.device import resolve_device
from labkit.models.dataset import load_split
from labkit.models.registry import Scores, Trained

WEIGHTS = "weights.pt"
CURVE = "ap_vs_minutes.json"


def ap_vs_minutes(curves: pd.DataFrame) -> list[dict[str, float]]:
    """The evaluated epochs of a run's learning curves as ``{epoch, minutes, AP50, AP50_95}``."""
    rows = curves.dropna(subset=["coco/AP50"])
    return [{"epoch": int(r["epoch"]), "minutes": float(r["train_minutes"]), "AP50": float(r["coco/AP50"]),
             "AP50_95": float(r["coco/AP"])} for _, r in rows.iterrows()]


def steps_done(epochs: int, train_images: int, batch: int) -> int:
    """Optimisation steps of ``epochs`` over ``train_images`` in batches of ``batch`` (the last one partial)."""
    return epochs * math.ceil(train_images / batch)


def train_cached(config: DetectConfig, data_root: Path, out: Path, progress: bool = True) -> Trained:
    """Train (or resume) the detector in ``out/run`` and put ``weights.pt``, ``categories.json``
    and ``ap_vs_minutes.json`` in ``out``."""
    run = out / "run"
    if not (run / RESULT).is_file():
        train(config, data_root=data_root, run_dir=run, resume=resumable(run))
    result = json.loads((run / RESULT).read_text(encoding="utf-8"))
    shutil.copyfile(run / result["weights"], out / WEIGHTS)
    shutil.copyfile(run / CATEGORY_FILE, out / CATEGORY_FILE)
    curve = ap_vs_minutes(learning_curves(run))
    write_json(out / CURVE, curve)
    return Trained(epochs=result["epochs"], steps=steps_done(result["epochs"], len(load_split(data_root, "train")),
                                                            config.batch),
                   train_minutes=result["train_minutes"], device=str(resolve_device(config.device)),
                   details={"best_epoch": result["best_epoch"], "ultralytics": result["ultralytics"]})


def evaluate_cached(weights: Path, config: DetectConfig, data_root: Path, progress: bool = True) -> Scores:
    """COCO AP50 and AP50-95 of ``weights`` on the val split (labkit's COCO evaluation)."""
    coco = evaluate_detector(weights, load_split(data_root, "val"), conf=config.eval_conf, iou=config.eval_iou,
                             device=config.device, batch=max(config.batch, 8), progress=progress)
    return Scores(metrics={"AP50": coco.get("AP50"), "AP50_95": coco.get("AP")}, details={"coco": coco})
