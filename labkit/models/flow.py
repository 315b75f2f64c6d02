"""One build / load flow for every registered model, and one ``metrics.json`` layout.

A model's folder is ``<cache_root or artifacts/models>/<name>-<key>`` where ``key`` hashes the
registry name, the config and the dataset :func:`~labkit.models.dataset.fingerprint`: change any
of them and the model is built again; a shipped checkpoint (:mod:`labkit.models.checkpoints`)
is used only when its recorded key is the same. The folder holds the weights, the spec's other
files, the training run, and ``metrics.json``, written last (its presence marks a finished
build: :func:`labkit.artifacts.finished_model`), with the same keys for every model::

    model, config_name, key          registry name, the config's own name, the cache key
    weights, weights_sha256, files   weights file name and the sha256 of it and of each other file
    epochs, steps                    the optimisation budget spent (the same on any machine)
    train_minutes, build_minutes     wall-clock minutes here (optimisation; the whole build with its
                                     evaluations), summed over the sessions of a resumed build
    device                           where it was trained ("cpu", "cuda")
    metrics                          headline val scores (AP50 / AP50_95, val_miou, mask_AP50 ...)
    details                          spec-specific extras (per-class IoU, COCO summary, curves ...)
    config, dataset                  the full config and the dataset fingerprint it was built from
    versions                         torch, ultralytics ... versions of the build

:func:`load` is what notebooks call: the cached build if there is one, else a verified shipped
checkpoint, else a build. :func:`build` always trains locally (resuming an interrupted build).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit import budget
from labkit.artifacts import MODEL_METRICS, artifacts_dir, finished_model, read_model_metrics, write_json
from labkit.models.dataset import dataset_root, fingerprint
from labkit.models.registry import ModelSpec, get
from labkit.repro import config_hash, package_versions, sha256_file


@dataclass(frozen=True)
class Model:
    """A finished model: its registry ``name``, ``weights`` file, ``info`` (its ``metrics.json``)
    and ``source`` (``"cache"``: built here earlier, ``"built"``: just now, ``"shipped"``: a
    verified checkpoint that came with the course or was pulled)."""

    name: str
    weights: Path
    info: dict[str, Any]
    source: str

    @property
    def folder(self) -> Path:
        return self.weights.parent

    @property
    def metrics(self) -> dict[str, Any]:
        """The headline val scores (``info["metrics"]``)."""
        return self.info["metrics"]

    @property
    def config(self) -> Any:
        """The config object the model was built from."""
        return get(self.name).load_config(self.info["config"])


def models_root(cache_root: str | Path | None = None) -> Path:
    """The parent of the model folders: ``cache_root`` when given, else ``<artifacts>/models``."""
    return Path(cache_root) if cache_root is not None else artifacts_dir() / "models"


def model_key(spec: ModelSpec, config: Any, data_root: str | Path) -> str:
    """The cache key of a model: hash of registry name, config and dataset fingerprint."""
    return config_hash({"model": spec.name, "config": config.to_dict(), "dataset": fingerprint(data_root)})


def cache_dir(name: str, *, config: Any = None, data_root: str | Path | None = None,
              cache_root: str | Path | None = None) -> Path:
    """``<cache_root or artifacts/models>/<name>-<key>``: where ``name`` is (or will be) built."""
    spec = get(name)
    cfg = spec.load_config(config)
    root = dataset_root(cfg.dataset_size, cfg.dataset_seed, data_root)
    base = models_root(cache_root)
    return base / f"{spec.name}-{model_key(spec, cfg, root)}"


def read_info(weights: str | Path) -> dict[str, Any]:
    """The ``metrics.json`` beside ``weights`` (a :class:`DataError` naming the file when it is
    missing, not JSON, or lacks a key of the layout)."""
    from labkit.errors import DataError

    info = read_model_metrics(weights)
    missing = [k for k in ("model", "weights", "epochs", "steps", "train_minutes", "device", "metrics", "config")
               if k not in info]
    if missing:
        raise DataError(f"metrics.json lacks {missing}: not written by labkit.models",
                        source=str(Path(weights).parent / MODEL_METRICS))
    return info


def _pick_variant(name: str, follow_budget: bool) -> ModelSpec:
    spec = get(name)
    if follow_budget and spec.ci is not None and budget.current() == "ci":
        return get(spec.ci)
    return spec


def build(name: str, *, config: Any = None, data_root: str | Path | None = None,
          cache_root: str | Path | None = None, progress: bool = True, force: bool = False) -> Model:
    """Build ``name`` here (train, evaluate, write ``metrics.json``), or return the finished build
    already in its folder. An interrupted build resumes; ``force`` deletes a finished one first.

    Args:
        name: a registered model name (``labkit models list``).
        config: another config for the spec (object, mapping or YAML path); default its YAML.
        data_root: dataset folder (default: the embedded dataset the config names).
        cache_root: parent of the model folders (default ``<artifacts>/models``).
        progress: progress bars while training and evaluating.
        force: rebuild even when a finished build is there.
    """
    spec = get(name)
    cfg = spec.load_config(config)
    root = dataset_root(cfg.dataset_size, cfg.dataset_seed, data_root)
    key = model_key(spec, cfg, root)
    base = models_root(cache_root)
    out = base / f"{spec.name}-{key}"
    weights = out / spec.weights
    if finished_model(weights):
        if not force:
            return Model(spec.name, weights, read_info(weights), "cache")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    trained = spec.train_fn()(cfg, root, out, progress)
    start = time.perf_counter()
    scores = spec.evaluate_fn()(weights, cfg, root, progress)
    evaluate_minutes = (time.perf_counter() - start) / 60.0
    info = {
        "model": spec.name, "config_name": getattr(cfg, "name", spec.name), "key": key,
        "weights": spec.weights, "weights_sha256": sha256_file(weights),
        "files": {f: sha256_file(out / f) for f in spec.files},
        "epochs": trained.epochs, "steps": trained.steps, "train_minutes": trained.train_minutes,
        "build_minutes": (trained.wall_minutes or trained.train_minutes) + evaluate_minutes, "device": trained.device,
        "metrics": scores.metrics, "details": {**trained.details, **scores.details},
        "config": cfg.to_dict(), "dataset": fingerprint(root), "versions": package_versions(),
    }
    write_json(out / MODEL_METRICS, info)
    return Model(spec.name, weights, info, "built")


def find(name: str, *, data_root: str | Path | None = None, cache_root: str | Path | None = None,
         progress: bool = True, pull: bool = True) -> Model | None:
    """``name`` as it is here, without training: the finished build in its cache folder, else the
    shipped checkpoint (verified against ``checkpoints.json``; pulled from the release location
    first when it is not here and ``pull``), else ``None``."""
    from labkit.models import checkpoints

    spec = get(name)
    cfg = spec.load_config()
    root = dataset_root(cfg.dataset_size, cfg.dataset_seed, data_root)
    key = model_key(spec, cfg, root)
    base = models_root(cache_root)
    weights = base / f"{spec.name}-{key}" / spec.weights
    if finished_model(weights):
        return Model(spec.name, weights, read_info(weights), "cache")
    shipped = checkpoints.locate(spec.name, key=key, allow_pull=pull, progress=progress)
    if shipped is not None:
        return Model(spec.name, shipped / spec.weights, read_info(shipped / spec.weights), "shipped")
    return None


def load(name: str, *, data_root: str | Path | None = None, cache_root: str | Path | None = None,
         progress: bool = True, follow_budget: bool = True, pull: bool = True) -> Model:
    """The model notebooks use: :func:`find` (the finished build in its cache folder, else the
    verified shipped checkpoint, pulled first when allowed), else a build (:func:`build`).

    Under ``LABKIT_BUDGET=ci`` a spec with a tiny variant loads that variant instead (the returned
    :attr:`Model.name` says which); ``follow_budget=False`` always loads ``name``.
    """
    spec = _pick_variant(name, follow_budget)
    found = find(spec.name, data_root=data_root, cache_root=cache_root, progress=progress, pull=pull)
    if found is not None:
        return found
    return build(spec.name, data_root=data_root, cache_root=cache_root, progress=progress)
