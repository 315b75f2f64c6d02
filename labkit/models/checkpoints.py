"""Shipped checkpoints: a sha256 manifest committed with labkit, checkpoint folders, ``pull``.

``checkpoints.json`` (beside this module, installed with the package) lists each shipped model::

    {"models": {"detect-base": {"key": "<cache key>", "config_name": "base-yolov8n",
                                "files": {"weights.pt": {"size": 6.2e6, "sha256": "..."}, ...},
                                "metrics": {...headline val scores...}, "epochs": 8, "steps": 272,
                                "packaged": true}}}

A model's files live in a folder named after it, looked up in this order:

1. ``labkit/models/checkpoints/<name>/`` -- committed with the course (``packaged: true``; small
   files only), so an offline ``make course`` and a wheel install need no download;
2. ``<labkit cache>/models/<name>/`` -- fetched by :func:`pull` (``$LABKIT_CACHE``, default
   ``~/.cache/labkit``).

A folder is used only when every listed file has its recorded size and sha256 (:func:`verify`).
:func:`pull` fetches ``<release>/<name>/<file>`` where ``<release>`` is ``LABKIT_MODELS_MIRROR``
(a folder or a base URL) or else ``models_release`` in ``course.yaml``; downloads resume an
interrupted ``.part`` file (HTTP ``Range``), and a truncated or corrupted file is rejected
(:func:`labkit.datasets.fetch.download`).
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

from labkit.artifacts import MODEL_METRICS, write_json
from labkit.datasets.fetch import DownloadError, cache_dir, download
from labkit.errors import DataError
from labkit.repro import sha256_file

MANIFEST = Path(__file__).with_name("checkpoints.json")
PACKAGED = Path(__file__).with_name("checkpoints")
MIRROR_ENV = "LABKIT_MODELS_MIRROR"
#: The largest file :func:`ship` puts in the committed folder (GitHub warns above 50 MB a file and
#: refuses 100 MB); a larger checkpoint goes to the release location and is fetched by :func:`pull`.
PACKAGED_MAX_BYTES = 50_000_000


def read_manifest(path: str | Path | None = None) -> dict[str, Any]:
    """The manifest's ``models`` mapping (default file: :data:`MANIFEST`; empty when the file does
    not exist); a broken manifest is a :class:`DataError` naming it."""
    path = Path(path or MANIFEST)
    if not path.is_file():
        return {}
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
        models = values["models"]
        for name, entry in models.items():
            for file, meta in entry["files"].items():
                int(meta["size"]), str(meta["sha256"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"not a checkpoint manifest ({type(exc).__name__}: {exc})", source=str(path)) from exc
    return models


def pulled_dir() -> Path:
    """Where :func:`pull` puts checkpoint folders: ``<labkit cache>/models``."""
    return cache_dir() / "models"


def verify(folder: str | Path, entry: dict[str, Any]) -> list[str]:
    """Problems of a checkpoint folder against its manifest entry (empty: every file is there with
    its recorded size and sha256)."""
    folder = Path(folder)
    problems = []
    for file, meta in entry["files"].items():
        path = folder / file
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.stat().st_size != int(meta["size"]):
            problems.append(f"{path}: {path.stat().st_size} bytes, the manifest says {meta['size']}")
        elif sha256_file(path) != meta["sha256"]:
            problems.append(f"{path}: sha256 differs from the manifest")
    return problems


def candidates(name: str) -> list[Path]:
    """Folders that may hold ``name``'s shipped files, in lookup order."""
    return [PACKAGED / name, pulled_dir() / name]


def release_location() -> str:
    """``$LABKIT_MODELS_MIRROR`` (a folder or base URL), else ``models_release`` in ``course.yaml``."""
    value = os.environ.get(MIRROR_ENV, "").strip()
    if value:
        return value
    from labkit.course import course_config

    try:
        return course_config()["models_release"]
    except (OSError, KeyError) as exc:
        raise DataError(f"no release location for checkpoints: set {MIRROR_ENV} to a folder or URL") from exc


def _url(base: str, name: str, file: str) -> str:
    if "://" in base:
        return f"{base.rstrip('/')}/{name}/{file}"
    return Path(base, name, file).resolve().as_uri()


def pull(name: str, *, manifest: str | Path | None = None, progress: bool = True) -> Path:
    """Fetch ``name``'s shipped files into :func:`pulled_dir` (already verified copies are kept)
    and return the folder; raises :class:`~labkit.datasets.fetch.DownloadError` for a network
    error, a truncated download (run again to resume) or a checksum mismatch (the file is deleted)."""
    models = read_manifest(manifest)
    if name not in models:
        raise DataError(f"no shipped checkpoint for {name!r}; shipped: {', '.join(models) or 'none'}",
                        source=str(manifest or MANIFEST))
    entry = models[name]
    for folder in candidates(name):
        if not verify(folder, entry):
            return folder
    base, dest = release_location(), pulled_dir() / name
    for file, meta in entry["files"].items():
        target = dest / file
        if target.exists() and sha256_file(target) != meta["sha256"]:
            target.unlink()  # a stale or damaged copy: fetch it again
        download(_url(base, name, file), target, meta["sha256"], progress=progress)
    problems = verify(dest, entry)
    if problems:
        raise DownloadError("; ".join(problems))
    return dest


def locate(name: str, *, key: str, allow_pull: bool = True, progress: bool = True,
           manifest: str | Path | None = None) -> Path | None:
    """The verified folder of ``name``'s shipped checkpoint when the manifest has one built with the
    same cache ``key`` (same config and data), pulling it first if needed and allowed; ``None``
    when there is none (the caller builds instead). A failed pull is a warning, not an error."""
    entry = read_manifest(manifest).get(name)
    if entry is None or entry.get("key") != key:
        return None
    for folder in candidates(name):
        if not verify(folder, entry):
            return folder
    if not allow_pull:
        return None
    try:
        return pull(name, manifest=manifest, progress=progress)
    except (DownloadError, DataError) as exc:
        warnings.warn(f"shipped checkpoint of {name} unavailable ({exc}); building it here instead", stacklevel=2)
        return None


def _float32_state(path: Path) -> dict | None:
    """The checkpoint's ``model`` state dict when it holds float32 tensors (U-Net, Faster R-CNN),
    else ``None`` (Ultralytics already saves its weights in fp16)."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=False)
    model = state.get("model") if isinstance(state, dict) else None
    if isinstance(model, dict) and any(getattr(v, "dtype", None) == torch.float32 for v in model.values()):
        return state
    return None


def _write_half(state: dict, path: Path) -> None:
    import torch

    half = {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()}
    torch.save({**state, "model": half}, path)


def _without_machine_paths(path: Path) -> None:
    """Rewrite an Ultralytics checkpoint at ``path`` so it names no folder of the machine that built
    it: absolute paths among its ``train_args`` and the networks' ``args`` (the run folder, the
    generated ``data.yaml``) keep only their file name, and its ``git`` record (the checkout's
    location) is dropped. Other files are
    left alone."""
    import torch

    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    if not (isinstance(checkpoint, dict) and isinstance(checkpoint.get("train_args"), dict)):
        return
    def portable(args: dict) -> dict:
        return {k: Path(v).name if isinstance(v, str) and os.path.isabs(v) else v for k, v in args.items()}

    checkpoint["train_args"] = portable(checkpoint["train_args"])
    for network in (checkpoint.get("model"), checkpoint.get("ema")):  # the networks keep a copy of the args
        if isinstance(getattr(network, "args", None), dict):
            network.args = portable(network.args)
    checkpoint.pop("git", None)
    torch.save(checkpoint, path)


def ship(weights: str | Path, dest: str | Path, *, manifest: str | Path | None = None, packaged: bool = False,
         half: str = "auto", tolerance: float = 1e-3, data_root: str | Path | None = None,
         progress: bool = False) -> dict:
    """Copy a finished model (its ``weights`` file, the files ``metrics.json`` lists, and
    ``metrics.json``) into ``dest/<name>/`` and record it in the manifest (sizes, sha256, key,
    headline metrics). ``packaged``: ``dest`` is the committed folder (:data:`PACKAGED`); a file
    over :data:`PACKAGED_MAX_BYTES` (after fp16) is then refused with a :class:`DataError`.

    ``half``: ``"auto"`` stores float32 weights in fp16 only when the spec's evaluation of the fp16
    copy moves no headline metric by more than ``tolerance`` (both sets of scores and both sizes are
    recorded under ``precision``); ``"always"`` / ``"never"`` skip the measurement. The shipped
    ``metrics.json`` states the shipped file's sha256 and the metrics measured with it.
    """
    from labkit.models.dataset import dataset_root
    from labkit.models.flow import read_info
    from labkit.models.registry import get

    src = Path(weights)
    info = read_info(src)
    name = info["model"]
    folder = Path(dest) / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for file in [info["weights"], *info.get("files", {})]:
        shutil.copyfile(src.parent / file, folder / file)
    target = folder / info["weights"]
    shipped = dict(info, built_weights_sha256=info["weights_sha256"])
    state = _float32_state(src) if half in ("auto", "always") else None
    if state is not None:
        _write_half(state, target)
        precision = {"fp32_bytes": src.stat().st_size, "fp16_bytes": target.stat().st_size,
                     "fp32_metrics": info["metrics"], "tolerance": tolerance}
        if half == "auto":
            spec = get(name)
            cfg = spec.load_config(info["config"])
            root = dataset_root(cfg.dataset_size, cfg.dataset_seed, data_root)
            scores = spec.evaluate_fn()(target, cfg, root, progress).metrics
            worst = max((abs(scores[k] - v) for k, v in info["metrics"].items()
                         if v is not None and scores.get(k) is not None), default=0.0)
            precision.update(fp16_metrics=scores, max_abs_change=worst)
            if worst > tolerance:
                shutil.copyfile(src, target)
            else:
                shipped["metrics"] = scores
        precision["dtype"] = "fp16" if target.stat().st_size < src.stat().st_size else "fp32"
        shipped["precision"] = precision
    _without_machine_paths(target)
    too_big = [f"{f.name}: {f.stat().st_size} bytes" for f in folder.iterdir() if f.stat().st_size > PACKAGED_MAX_BYTES]
    if packaged and too_big:
        shutil.rmtree(folder)
        raise DataError(f"too large to commit with the course (limit {PACKAGED_MAX_BYTES} bytes a file: "
                        f"{', '.join(too_big)}); ship it to the release location instead (--to DIR, then upload)",
                        source=str(src))
    shipped["weights_sha256"] = sha256_file(target)
    write_json(folder / MODEL_METRICS, shipped)
    files = [info["weights"], *info.get("files", {}), MODEL_METRICS]
    entry = {"key": info["key"], "config_name": info["config_name"], "packaged": packaged,
             "files": {f: {"size": (folder / f).stat().st_size, "sha256": sha256_file(folder / f)} for f in files},
             "metrics": shipped["metrics"], "epochs": info["epochs"], "steps": info["steps"],
             "train_minutes": info["train_minutes"], "device": info["device"],
             "precision": shipped.get("precision", {}).get("dtype", "as built")}
    path = Path(manifest or MANIFEST)
    models = read_manifest(path)
    models[name] = entry
    write_json(path, {"models": dict(sorted(models.items()))})
    return entry
