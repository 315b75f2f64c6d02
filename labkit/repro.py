"""Reproducibility: seeding and the run manifest every training/evaluation run writes."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

import numpy as np

#: Packages whose versions go into every manifest.
TRACKED_PACKAGES = (
    "labkit", "numpy", "torch", "torchvision", "opencv-python-headless", "pycocotools", "faster-coco-eval",
    "trackeval", "motmetrics", "ultralytics", "segmentation-models-pytorch", "albumentations", "scikit-image",
)


def seed_everything(seed: int, *, deterministic_torch: bool = True) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA); optionally ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import torch
    except ImportError:  # torch is a dependency, but seeding must not need it
        return
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic_torch:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str | None]:
    """Installed version of each named distribution (``None`` when absent)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(cwd: str | Path | None = None) -> str | None:
    """The current git commit (with ``-dirty`` when the tree has changes), or ``None``."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def config_hash(config: Mapping[str, Any]) -> str:
    """A stable short hash of a JSON-serialisable config (key order does not matter)."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def run_manifest(*, seed: int | None, config: Mapping[str, Any] | None = None, command: str | None = None,
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What a reviewer needs to reproduce a run: command, config (+hash), seed, git commit,
    Python/platform, package versions, device and the time it was made."""
    try:
        import torch

        device = {"cuda": torch.cuda.is_available(),
                  "name": torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or "cpu",
                  "torch_threads": torch.get_num_threads()}
    except ImportError:
        device = {"cuda": False}
    config = dict(config or {})
    return {
        "command": command if command is not None else " ".join(sys.argv),
        "seed": seed,
        "config": config,
        "config_hash": config_hash(config),
        "git_commit": git_commit(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": package_versions(),
        "device": device,
        "created_unix": round(time.time(), 3),
        **dict(extra or {}),
    }


def write_manifest(path: str | Path, **kwargs: Any) -> dict[str, Any]:
    """Build :func:`run_manifest` and write it as JSON to ``path``; returns it."""
    manifest = run_manifest(**kwargs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
    return manifest


#: Where :func:`note` keeps the learner's decisions, under the artifacts folder.
NOTES_FILE = "notes.json"


def note(lesson: str, section: str | int, *, changed: str, why: str, next: str,
         root: str | Path | None = None) -> dict[str, Any]:
    """Record what changed in a lesson section, why, and what to try next (the syllabus' "capture
    what changed and why") in ``<artifacts>/notes.json``; returns the stored entry.

    One entry per (lesson, section): writing the same section again replaces its entry, so a
    re-run notebook keeps the learner's latest decision. ``scripts/run_course.py`` copies the
    notes into ``course_summary.json``, so they travel with the numbers they explain. Every
    field must be non-empty text; otherwise a :class:`~labkit.errors.DataError` names the field.
    """
    from labkit.artifacts import artifacts_dir, write_json
    from labkit.errors import DataError

    fields = {"changed": changed, "why": why, "next": next}
    for name, value in {"lesson": lesson, **fields}.items():
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"'{name}' must be non-empty text, got {value!r}",
                            source=f"note for lesson {lesson!r}", record=f"section {section}")
    entry = {"lesson": lesson, "section": str(section), **{k: v.strip() for k, v in fields.items()},
             "created_unix": round(time.time(), 3)}
    path = Path(root or artifacts_dir()) / NOTES_FILE
    kept = [e for e in read_notes(path.parent) if (e["lesson"], e["section"]) != (entry["lesson"], entry["section"])]
    write_json(path, sorted(kept + [entry], key=lambda e: (e["lesson"], e["section"])))
    return entry


def read_notes(root: str | Path | None = None) -> list[dict[str, Any]]:
    """The notes :func:`note` recorded under ``root`` (default: the artifacts folder), sorted by
    lesson and section; empty when there are none. A damaged file is a DataError naming it."""
    from labkit.artifacts import artifacts_dir
    from labkit.errors import DataError

    path = Path(root or artifacts_dir()) / NOTES_FILE
    if not path.is_file():
        return []
    try:
        notes = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DataError(f"not valid JSON: {exc}", source=str(path)) from exc
    if not isinstance(notes, list) or not all(isinstance(e, dict) and {"lesson", "section"} <= set(e) for e in notes):
        raise DataError("expected a list of notes, each with 'lesson' and 'section'", source=str(path))
    return notes
