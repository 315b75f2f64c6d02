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
:func:`log_base_model` and :func:`plot_ap_vs_minutes` are what a lesson shows and logs about the
model it starts from.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from labkit.artifacts import log_metrics, write_json
from labkit.budget import current
from labkit.detect.config import DetectConfig
from labkit.detect.curves import learning_curves
from labkit.detect.evaluate import evaluate_detector
from labkit.detect.predict import CATEGORY_FILE
from labkit.detect.train import RESULT, resumable, train
from labkit.device import resolve_device
from labkit.errors import DataError
from labkit.models.dataset import load_split
from labkit.models.registry import Scores, Trained
from labkit.viz import new_figure

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


def log_base_model(model: Any, chapter: str, prefix: str = "l1") -> str:
    """Log a registry detector's figures and return the line that describes it.

    ``model`` is a :class:`labkit.models.flow.Model` (``name``, ``source``, ``metrics``, ``info``).
    The chapter's log gets ``<prefix>_budget``, ``<prefix>_base_ap50``, ``<prefix>_base_ap50_95``
    and ``<prefix>_base_epochs``; the ``detection`` log gets the build's own figures (device,
    epochs, steps, training minutes, AP50 and AP50-95), which ``course_summary.json`` shows under
    ``metrics.detection``.
    """
    info, scores = model.info, model.metrics
    log_metrics(chapter, **{f"{prefix}_budget": current(), f"{prefix}_base_ap50": scores["AP50"],
                            f"{prefix}_base_ap50_95": scores["AP50_95"], f"{prefix}_base_epochs": info["epochs"]})
    log_metrics("detection", budget=current(), base_model=model.name, base_device=info["device"],
                base_AP50=scores["AP50"], base_AP50_95=scores["AP50_95"], base_epochs=info["epochs"],
                base_train_minutes=info["train_minutes"], base_steps=info["steps"])
    return (f"base detector {model.name} ({model.source}): {info['epochs']} epochs, {info['train_minutes']:.1f} min "
            f"on {info['device']}; val AP50 {scores['AP50']:.3f}, AP50-95 {scores['AP50_95']:.3f}")


def plot_ap_vs_minutes(model: Any, path: str | Path | None = None) -> tuple[pd.DataFrame, Figure]:
    """The AP-vs-minutes curve of a detector's build (``ap_vs_minutes.json`` beside its weights) as
    a table and a figure (AP50 and AP50-95 against training minutes), saved to ``path`` if given.

    A missing or damaged curve file is a :class:`~labkit.errors.DataError` naming it."""
    file = Path(model.weights).parent / CURVE
    try:
        curve = pd.DataFrame(json.loads(file.read_text(encoding="utf-8")), columns=["epoch", "minutes", "AP50", "AP50_95"])
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the build's AP-vs-minutes curve: {exc}", source=str(file)) from exc
    fig = new_figure(6, 3.5)
    ax = fig.add_subplot()
    ax.plot(curve["minutes"], curve["AP50"], "o-", label="AP50")
    ax.plot(curve["minutes"], curve["AP50_95"], "s-", label="AP50-95")
    ax.set(xlabel=f"training minutes on {model.info['device']}", ylabel="val AP", title=f"{model.name}: AP vs minutes")
    ax.grid(alpha=0.3)
    ax.legend()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return curve, fig
