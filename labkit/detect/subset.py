"""A small, seeded slice of a dataset folder, for training runs that must finish in seconds.

:func:`make_subset` writes a folder that :func:`labkit.detect.train.train` accepts as
``data_root``::

    manifest.json                   source folder, seed, the chosen image ids per split
    annotations/instances_<split>.json
    images -> <source>/images        a symlink (no image is copied)

Its fingerprint (:func:`labkit.detect.data.fingerprint`) depends on the chosen images, so runs
on different subsets never share a cache entry.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

import numpy as np

from labkit.data.annotations import Dataset
from labkit.data.coco import save_coco
from labkit.detect.data import load_split
from labkit.errors import DataError


def pick_images(dataset: Dataset, n: int | None, seed: int = 0) -> Dataset:
    """``n`` images of ``dataset`` drawn without replacement with ``numpy``'s generator seeded by
    ``seed``, kept in dataset order; the whole dataset when ``n`` is ``None`` or not smaller."""
    if n is None or n >= len(dataset):
        return dataset
    if n < 1:
        raise DataError(f"a subset needs at least one image, got n={n}", source=dataset.source)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(dataset), size=n, replace=False)
    return dataset.subset(dataset.images[int(k)].id for k in chosen)


def make_subset(data_root: str | Path, out_dir: str | Path, sizes: Mapping[str, int | None], *, seed: int = 0,
                replace: Mapping[str, Dataset] | None = None) -> Path:
    """Write a dataset folder holding a seeded sample of each split of ``data_root``.

    Args:
        data_root: a dataset folder (``annotations/instances_<split>.json``, ``images/``).
        out_dir: the folder to write; an earlier subset there is replaced, any other non-empty
            folder is an error.
        sizes: images to keep per split, e.g. ``{"train": 48, "val": 16}`` (``None``: all).
        seed: seed of the draw (the same seed gives the same images).
        replace: datasets to write instead of a split's sample (e.g. a split with deliberately
            broken labels); their images must live under ``data_root/images``.

    Returns:
        ``out_dir``.
    """
    root, out = Path(data_root), Path(out_dir)
    if not (root / "images").is_dir():
        raise DataError("not a dataset folder (no images/ inside)", source=str(root))
    if out.exists() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise DataError("refusing to overwrite a non-empty folder that is not a subset", source=str(out))
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    chosen: dict[str, list[int]] = {}
    for split, n in sizes.items():
        given = (replace or {}).get(split)
        ds = given if given is not None else pick_images(load_split(root, split), n, seed)
        save_coco(ds, out / "annotations" / f"instances_{split}.json")
        chosen[split] = [r.id for r in ds.images]
    link = out / "images"
    if link.is_symlink() or link.exists():
        if not link.is_symlink():
            raise DataError("images/ exists and is not a symlink", source=str(out))
        link.unlink()
    os.symlink((root / "images").resolve(), link, target_is_directory=True)
    manifest = {"source": str(root.resolve()), "seed": seed, "image_ids": chosen,
                "replaced": sorted((replace or {}).keys())}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return out
