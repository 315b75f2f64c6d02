"""The cached base U-Net: trained once per (config, dataset), then reused by every Chapter 3 notebook.

:func:`build_base_segmenter` trains :func:`labkit.segment.semantic.train_semantic` on the train
split of the embedded dataset (GPU when present, else a bounded CPU budget: see
``configs/segment_base.yaml``), then scores ``best.pt`` on the WHOLE val split at the images'
original resolution (:func:`labkit.segment.predict.evaluate_semantic`). Results are cached under
``<artifacts>/models/segment-<hash>/`` with ``hash = config_hash(config + dataset fingerprint)``
(:func:`dataset_fingerprint`: the generator manifest's sha256 of the train/val annotation files,
plus generator version, seed and size)::

    best.pt        the checkpoint (weights, config, preprocessing); load with load_checkpoint
    metrics.json   val mIoU, per-class IoU (thin "rod", rare "star") and boundary F, minutes,
                   epochs, device, config, dataset fingerprint; written last: marks a finished build
    manifest.json, log.csv, curves.png, summary.json   the training run (see train_semantic)

A later call finds ``metrics.json`` and returns at once without touching a file. An interrupted
build resumes from ``last.pt`` (deleted once the build is finished: it holds the optimizer state).
:func:`fine_tune` starts a short run for a notebook from the base weights.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from labkit.artifacts import MODEL_METRICS, artifacts_dir, finished_model, read_model_metrics, write_json
from labkit.configfile import check_keys, config_path, read_yaml_mapping
from labkit.data.annotations import Dataset
from labkit.data.coco import load_coco
from labkit.errors import DataError
from labkit.repro import config_hash
from labkit.segment.semantic import SemanticConfig, load_checkpoint, resolve_device, train_semantic

BASE_CONFIG = config_path("segment_base.yaml")
WEIGHTS = "best.pt"
#: Annotation files a model trained on the dataset depends on (masks are generated with them).
TRAIN_SPLITS = ("train", "val")


@dataclass(frozen=True)
class BaseConfig:
    """A base-model recipe: which embedded dataset, and the :class:`SemanticConfig` to train.

    The YAML form is flat: ``name``, ``dataset_size``, ``dataset_seed`` and the
    :class:`SemanticConfig` fields side by side.
    """

    name: str = "segment-base"
    dataset_size: str = "default"
    dataset_seed: int = 0
    model: SemanticConfig = field(default_factory=SemanticConfig)

    def to_dict(self) -> dict[str, Any]:
        """The flat form (as in the YAML file)."""
        return {"name": self.name, "dataset_size": self.dataset_size, "dataset_seed": self.dataset_seed,
                **asdict(self.model)}

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, source: str = "<memory>") -> "BaseConfig":
        """Build from the flat mapping; unknown keys are an error naming ``source``."""
        own = {"name", "dataset_size", "dataset_seed"}
        check_keys(values, own | {f.name for f in dataclasses.fields(SemanticConfig)}, kind="base-model", source=source)
        try:
            model = SemanticConfig(**{k: v for k, v in values.items() if k not in own})
        except (DataError, TypeError) as exc:
            raise DataError(f"bad config ({exc})", source=source) from exc
        return cls(**{k: values[k] for k in own if k in values}, model=model)


def load_base_config(config: BaseConfig | Mapping[str, Any] | str | Path = BASE_CONFIG) -> BaseConfig:
    """Accept a :class:`BaseConfig`, its flat mapping, or a YAML path (``configs/segment_*.yaml``)."""
    if isinstance(config, BaseConfig):
        return config
    if isinstance(config, Mapping):
        return BaseConfig.from_mapping(config)
    return BaseConfig.from_mapping(read_yaml_mapping(config), source=str(config))


def dataset_fingerprint(data_root: str | Path, splits: tuple[str, ...] = TRAIN_SPLITS) -> dict[str, Any]:
    """What a model trained on a generated dataset depends on, from its ``manifest.json``:
    generator version, seed, size and the recorded sha256 of ``annotations/instances_<split>.json``."""
    path = Path(data_root) / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"cannot read the dataset manifest ({exc.strerror})", source=str(path)) from exc
    except ValueError as exc:
        raise DataError(f"the dataset manifest is not JSON ({exc})", source=str(path)) from exc
    hashes = manifest.get("sha256", {}) if isinstance(manifest, dict) else {}
    wanted = [f"annotations/instances_{s}.json" for s in splits]
    missing = [w for w in wanted if w not in hashes]
    if missing:
        raise DataError(f"the manifest records no sha256 for {missing}", source=str(path))
    return {"generator_version": manifest.get("generator_version"), "seed": manifest.get("seed"),
            "size": manifest.get("size"), "sha256": {w: hashes[w] for w in wanted}}


def dataset_root(config: BaseConfig, data_root: str | Path | None = None) -> Path:
    """``data_root`` if given, else the embedded dataset the config names (generated on first use)."""
    if data_root is not None:
        return Path(data_root)
    from labkit.data.synth import ensure_dataset

    return Path(ensure_dataset(seed=config.dataset_seed, size=config.dataset_size))


def load_split(data_root: str | Path, split: str) -> Dataset:
    """The still-image COCO split ``annotations/instances_<split>.json`` (images under ``images/``)."""
    root = Path(data_root)
    return load_coco(root / "annotations" / f"instances_{split}.json", image_root=root / "images")


def cache_dir(config: BaseConfig | Mapping[str, Any], data_root: str | Path, cache_root: str | Path | None = None,
              *, prefix: str = "segment") -> Path:
    """``<cache_root or artifacts/models>/<prefix>-<config_hash(config + dataset fingerprint)>``
    (``config``: a :class:`BaseConfig` or any JSON-ready mapping, e.g. an instance model's)."""
    values = config.to_dict() if isinstance(config, BaseConfig) else dict(config)
    key = config_hash({"config": values, "dataset": dataset_fingerprint(data_root)})
    root = Path(cache_root) if cache_root is not None else artifacts_dir() / "models"
    return root / f"{prefix}-{key}"


def _per_class(summary: Mapping[str, Any], key: str) -> dict[str, float | None]:
    return {row["name"]: row[key] for row in summary["per_class"]}


def build_base_segmenter(config: BaseConfig | Mapping[str, Any] | str | Path = BASE_CONFIG,
                         data_root: str | Path | None = None, *, cache_root: str | Path | None = None,
                         progress: bool = True) -> Path:
    """Train the base U-Net once (or finish an interrupted build) and return its ``best.pt``.

    Args:
        config: a :class:`BaseConfig`, its flat mapping or a YAML path (default
            ``configs/segment_base.yaml``).
        data_root: dataset folder (default: the embedded dataset the config names).
        cache_root: parent of the cache folders (default ``<artifacts>/models``).
        progress: tqdm bars while training.
    """
    from labkit.segment.predict import evaluate_semantic

    cfg = load_base_config(config)
    root = dataset_root(cfg, data_root)
    out = cache_dir(cfg, root, cache_root)
    if finished_model(out / WEIGHTS):
        return out / WEIGHTS
    val = load_split(root, "val")
    summary = train_semantic(cfg.model, load_split(root, "train"), val, root, out, resume=(out / "last.pt").is_file(),
                             progress=progress)
    model, model_cfg = load_checkpoint(out / WEIGHTS, device=cfg.model.device)
    scores = evaluate_semantic(model, model_cfg, val, root, device=cfg.model.device, progress=progress)
    log = summary["last"] or {}
    metrics = {
        "name": cfg.name, "hash": out.name.rsplit("-", 1)[-1], "device": str(resolve_device(cfg.model.device)),
        "val_miou": scores["mean_iou"], "iou": _per_class(scores, "iou"),
        "val_mean_boundary_f": scores["mean_boundary_f"], "boundary_f": _per_class(scores, "boundary_f"),
        "val_images": scores["images"], "ms_per_image": scores["ms_per_image"], "val": scores,
        "best_epoch_val_miou_letterboxed": summary["best_val_miou"], "epochs": summary["epochs"],
        "train_minutes": log.get("elapsed_s", 0.0) / 60.0,
        "config": cfg.to_dict(), "dataset": dataset_fingerprint(root),
    }
    write_json(out / MODEL_METRICS, metrics)
    (out / "last.pt").unlink(missing_ok=True)
    return out / WEIGHTS


def base_metrics(weights: str | Path) -> dict[str, Any]:
    """The ``metrics.json`` of a cached base model (given its ``best.pt``)."""
    return read_model_metrics(weights)


def fine_tune(base_ckpt: str | Path, config: SemanticConfig, train_set: Dataset, val_set: Dataset,
              data_root: str | Path, out_dir: str | Path, *, progress: bool = True) -> dict[str, Any]:
    """A short training run that starts from the base weights (a notebook's 1-2 minute experiment).

    ``config`` is the new run's recipe (loss, epochs, lr, classes ...); its ``arch`` and
    ``encoder`` must be the base model's. A head for another number of classes starts fresh
    (the run's ``manifest.json`` lists the parameters not taken from the base under
    ``init_from.skipped``). Returns :func:`train_semantic`'s summary; ``best.pt`` is in ``out_dir``.
    """
    import torch

    state = torch.load(base_ckpt, map_location="cpu", weights_only=False)
    base = state.get("config", {})
    clash = {k: (base.get(k), getattr(config, k)) for k in ("arch", "encoder") if base.get(k) != getattr(config, k)}
    if clash:
        raise DataError(f"fine-tuning needs the base model's architecture; differs: {clash} (base, new)",
                        source=str(base_ckpt))
    return train_semantic(config, train_set, val_set, Path(data_root), Path(out_dir), progress=progress,
                          init_from=base_ckpt)
