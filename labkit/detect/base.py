"""The cached base detector: trained once per (config, dataset), then reused by every notebook.

``build_base_detector`` trains on the train split within the config's budget (``epochs`` and/or
``time_minutes``; on a CUDA GPU with bf16 mixed precision, else on CPU), evaluating on the val
split every ``eval_every`` epochs with labkit's COCO evaluation. Results are cached under
``<artifacts>/models/<name>-<hash>/`` where ``hash = config_hash(config + dataset sha256s)``::

    weights.pt          the best checkpoint; categories.json beside it (read by predict)
    metrics.json        AP50 / AP50-95 on val (labkit COCO and Ultralytics), minutes, epochs; written last
    ap_vs_minutes.json  [{epoch, minutes, AP50, AP50_95}] every evaluated epoch
    run/                the training run (manifest, logs, learning_curves.csv/png, checkpoints)

``metrics.json`` marks a finished build: a later call returns at once. A build that was
interrupted resumes from ``run/weights/last.pt``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from labkit.artifacts import MODEL_METRICS, artifacts_dir, finished_model, read_model_metrics, write_json
from labkit.detect.config import DetectConfig, as_config, resolve_device
from labkit.detect.curves import learning_curves
from labkit.detect.data import dataset_root, fingerprint
from labkit.detect.predict import CATEGORY_FILE
from labkit.detect.train import MANIFEST, RESULT, resumable, train
from labkit.repro import config_hash

WEIGHTS = "weights.pt"
CURVE = "ap_vs_minutes.json"


def cache_dir(config: DetectConfig, data_root: str | Path, cache_root: str | Path | None = None) -> Path:
    """``<cache_root or artifacts/models>/<name>-<config_hash(config + dataset sha256s)>``."""
    key = config_hash({"config": config.to_dict(), "dataset_sha256": fingerprint(data_root)})
    root = Path(cache_root) if cache_root is not None else artifacts_dir() / "models"
    return root / f"{config.name}-{key}"


def ap_vs_minutes(curves: pd.DataFrame) -> list[dict[str, float]]:
    """The evaluated epochs of a run's learning curves as ``{epoch, minutes, AP50, AP50_95}``."""
    rows = curves.dropna(subset=["coco/AP50"])
    return [{"epoch": int(r["epoch"]), "minutes": float(r["train_minutes"]), "AP50": float(r["coco/AP50"]),
             "AP50_95": float(r["coco/AP"])} for _, r in rows.iterrows()]


def _finalise(out: Path, run: Path, config: DetectConfig) -> None:
    result = json.loads((run / RESULT).read_text(encoding="utf-8"))
    manifest = json.loads((run / MANIFEST).read_text(encoding="utf-8"))
    shutil.copyfile(run / result["weights"], out / WEIGHTS)
    shutil.copyfile(run / CATEGORY_FILE, out / CATEGORY_FILE)
    write_json(out / CURVE, ap_vs_minutes(learning_curves(run)))
    ul = result["ultralytics"]
    metrics = {
        "name": config.name, "hash": out.name.rsplit("-", 1)[-1], "device": resolve_device(config.device),
        "AP50": result["coco"]["AP50"], "AP50_95": result["coco"]["AP"], "coco": result["coco"],
        "ultralytics_mAP50": ul.get("metrics/mAP50(B)"), "ultralytics_mAP50_95": ul.get("metrics/mAP50-95(B)"),
        "train_minutes": result["train_minutes"], "epochs": result["epochs"], "best_epoch": result["best_epoch"],
        "config": config.to_dict(), "dataset_sha256": manifest["dataset_sha256"],
    }
    write_json(out / MODEL_METRICS, metrics)


def build_base_detector(config: DetectConfig | Mapping[str, Any] | str | Path, data_root: str | Path | None = None,
                        *, cache_root: str | Path | None = None) -> Path:
    """Train the base detector once (or resume an interrupted build) and return its ``weights.pt``.

    Args:
        config: a :class:`DetectConfig`, mapping or YAML path (e.g. ``configs/detect_base.yaml``).
        data_root: dataset folder (default: the embedded dataset the config names).
        cache_root: parent of the cache folders (default ``<artifacts>/models``).
    """
    cfg = as_config(config)
    root = dataset_root(cfg, data_root)
    out = cache_dir(cfg, root, cache_root)
    if finished_model(out / WEIGHTS):
        return out / WEIGHTS
    run = out / "run"
    if not (run / RESULT).is_file():
        train(cfg, data_root=root, run_dir=run, resume=resumable(run))
    _finalise(out, run, cfg)
    return out / WEIGHTS


def base_metrics(weights: str | Path) -> dict[str, Any]:
    """The ``metrics.json`` of a cached base detector (given its ``weights.pt``)."""
    return read_model_metrics(weights)
