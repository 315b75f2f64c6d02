"""The embedded dataset: procedurally generated, fully annotated, reproducible from a seed.

:func:`generate_dataset` writes a folder::

    manifest.json            generator version, seed, size, counts, seconds, bytes, sha256 of annotations
    dataset_card.md          the dataset card (labkit.data.card sections)
    annotations/instances_{train,val,test}.json   COCO stills (file_name relative to images/)
    annotations/sequences_{train,val,test}.json   COCO video frames with track_id (relative to sequences/)
    images/{split}/<scene>_<camera>_<nnnn>.jpg
    masks/{split}/<same stem>.png                  semantic masks: 0 background, 1-5 classes, 255 crowd
    sequences/{split}/<seq>/{img1/NNNNNN.jpg, gt/gt.txt, seqinfo.ini}   MOTChallenge layout
    io_cases/                EXIF-rotated JPEGs, 16-bit / grey / RGBA PNGs + annotations.json

Classes: 1 disc, 2 block, 3 cone, 4 rod, 5 star (rare). See the modules for the details:
:mod:`~labkit.data.synth.stills`, :mod:`~labkit.data.synth.sequences`,
:mod:`~labkit.data.synth.artifacts`, :mod:`~labkit.data.synth.io_cases`.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from labkit.artifacts import project_root
from labkit.data.synth.config import GENERATOR_VERSION, SIZES
from labkit.errors import DataError

__all__ = ["GENERATOR_VERSION", "default_root", "ensure_dataset", "generate_dataset"]


def _check_args(seed: int, size: str) -> None:
    if size not in SIZES:
        raise DataError(f"size must be one of {sorted(SIZES)}, got {size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DataError(f"seed must be an integer >= 0, got {seed!r}")


def generate_dataset(out_dir: str | Path, seed: int = 0, size: str = "default", *, workers: int | None = None) -> dict[str, Any]:
    """Generate the dataset into ``out_dir`` and return its manifest.

    The same ``seed`` and ``size`` give byte-identical annotation files and images, whatever
    ``workers`` is (default: 1 for ``"small"``, else up to 2 processes). Generation happens in
    a temporary sibling folder that is renamed into place at the end, so an interrupted run
    leaves ``out_dir`` as it was. An existing ``out_dir`` is replaced only if it is empty or a
    generated dataset (has ``manifest.json``), never an unrelated folder.
    """
    from labkit.data.synth.pipeline import build

    _check_args(seed, size)
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / "manifest.json").is_file())):
        raise DataError("exists and is not a generated dataset folder; refusing to replace it", source=str(out_dir))
    if workers is None:
        workers = 1 if size == "small" else min(2, os.cpu_count() or 1)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        manifest = build(tmp, seed, size, workers)
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        if out_dir.exists():
            out_dir.rename(old)
        tmp.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def default_root(seed: int = 0, size: str = "default") -> Path:
    """``<base>/<size>-seed<seed>`` where ``<base>`` is ``$LABKIT_DATA`` when set, else
    ``data/generated`` of the course checkout (or of the working folder when labkit is installed
    from a wheel). Each size and seed has its own folder, so asking for one never replaces another."""
    env = os.environ.get("LABKIT_DATA", "").strip()
    base = Path(env) if env else project_root() / "data" / "generated"
    return base / f"{size}-seed{seed}"


def _is_current(root: Path, seed: int, size: str) -> bool:
    try:
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (isinstance(manifest, dict) and manifest.get("generator_version") == GENERATOR_VERSION
            and manifest.get("seed") == seed and manifest.get("size") == size)


def ensure_dataset(root: str | Path | None = None, seed: int = 0, size: str = "default") -> Path:
    """The dataset folder, generated first only when needed (idempotent).

    ``root`` defaults to :func:`default_root`. The folder is regenerated when its
    ``manifest.json`` is missing or unreadable, or records another generator version, seed or
    size; otherwise it is returned at once, untouched.
    """
    _check_args(seed, size)
    root = Path(root) if root is not None else default_root(seed, size)
    if not _is_current(root, seed, size):
        generate_dataset(root, seed=seed, size=size)
    return root
