"""A pretraining dataset: the train split of the embedded dataset plus every still image of more
generated datasets, with the val and test splits left exactly as they were.

More scenes for the same number of optimisation steps asks whether scene *variety* lifts a model
(issue 11's lever table, ``configs/levers.yaml``). The extra scenes come from other generator seeds:
each seed draws its own scenes, so none of them is a val or test scene of the base dataset, and
:func:`pretraining_dataset` checks that no val or test image file appears, byte for byte, among the
training images. The folder it writes reads like a generated dataset::

    annotations/instances_{train,val,test}.json   file_name and semantic_mask point into the sources
    images/seed<N> -> <dataset of seed N>/images    (symlinks: nothing is copied)
    sources/seed<N> -> <dataset of seed N>
    manifest.json                                   generator version, base seed, size, extra seeds, counts

The base dataset keeps its image and annotation ids; split number ``i`` (train, val, test) of extra
dataset number ``k`` (1, 2, ... in the order of the seeds) adds ``(3k + i) * ID_STRIDE`` to its ids,
and the extra datasets' scene ids get a ``seed<N>/`` prefix, so neither collides.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from labkit.artifacts import write_json
from labkit.data.coco import load_coco, read_json
from labkit.data.synth import GENERATOR_VERSION, ensure_dataset
from labkit.errors import DataError
from labkit.repro import sha256_file

#: Offset between the id ranges of the merged datasets (a generated split has far fewer images).
ID_STRIDE = 1_000_000
SPLITS = ("train", "val", "test")


def _relabel(coco: dict[str, Any], offset: int, tag: str) -> tuple[list[dict], list[dict]]:
    images, annotations = [], []
    for im in coco["images"]:
        im = {**im, "id": offset + int(im["id"]), "file_name": f"{tag}/{im['file_name']}"}
        if offset and "scene_id" in im:  # scene names repeat between seeds; the base's stay as they are
            im["scene_id"] = f"{tag}/{im['scene_id']}"
        if "semantic_mask" in im:
            im["semantic_mask"] = f"sources/{tag}/{im['semantic_mask']}"
        images.append(im)
    for ann in coco["annotations"]:
        annotations.append({**ann, "id": offset + int(ann["id"]), "image_id": offset + int(ann["image_id"])})
    return images, annotations


def _check_seeds(seed: int, extra_seeds: Sequence[int]) -> list[int]:
    extra = [int(s) for s in extra_seeds]
    if not extra:
        raise DataError("a pretraining dataset needs at least one extra seed")
    if seed in extra or len(set(extra)) != len(extra):
        raise DataError(f"the extra seeds {extra} must be distinct and differ from the base seed {seed}")
    return extra


def _leaked(out: Path, train: list[dict], held_out: list[dict]) -> list[str]:
    """File names of held-out images whose bytes are also a training image's."""
    train_hashes = {sha256_file(out / "images" / im["file_name"]) for im in train}
    return [im["file_name"] for im in held_out if sha256_file(out / "images" / im["file_name"]) in train_hashes]


def pretraining_dataset(out_dir: str | Path, extra_seeds: Sequence[int], *, seed: int = 0,
                        size: str = "default") -> Path:
    """Write (or return, when it is already there) a dataset folder whose train split is the base
    dataset's (``seed``, ``size``) train split plus all train, val and test stills of the datasets of
    ``extra_seeds`` (generated first when missing), and whose val and test splits are the base's.

    Raises :class:`DataError` when the seeds overlap, or when a val or test image's file is also a
    training image (the merge would leak the held-out scenes into training).
    """
    out = Path(out_dir)
    extra = _check_seeds(seed, extra_seeds)
    manifest_path = out / "manifest.json"
    wanted = {"generator_version": GENERATOR_VERSION, "seed": seed, "size": size, "pretraining_seeds": extra}
    if manifest_path.is_file():
        found = read_json(manifest_path)
        if isinstance(found, dict) and {k: found.get(k) for k in wanted} == wanted:
            return out
    roots = [Path(ensure_dataset(seed=s, size=size)) for s in [seed, *extra]]
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "sources").mkdir(exist_ok=True)
    merged: dict[str, dict[str, list[dict]]] = {s: {"images": [], "annotations": []} for s in SPLITS}
    categories = None
    for k, root in enumerate(roots):
        tag = f"seed{[seed, *extra][k]}"
        for link, target in ((out / "images" / tag, root / "images"), (out / "sources" / tag, root)):
            if link.is_symlink():
                link.unlink()
            link.symlink_to(target.resolve(), target_is_directory=True)
        for i, split in enumerate(SPLITS):
            coco = read_json(root / "annotations" / f"instances_{split}.json")
            categories = categories or coco["categories"]
            images, annotations = _relabel(coco, (k * len(SPLITS) + i) * ID_STRIDE if k else 0, tag)
            into = merged[split] if k == 0 else merged["train"]
            into["images"] += images
            into["annotations"] += annotations
    leaked = _leaked(out, merged["train"]["images"], merged["val"]["images"] + merged["test"]["images"])
    if leaked:
        raise DataError(f"{len(leaked)} val/test image(s) are also training images, e.g. {leaked[0]}", source=str(out))
    (out / "annotations").mkdir(exist_ok=True)
    for split, coco in merged.items():
        path = out / "annotations" / f"instances_{split}.json"
        path.write_text(json.dumps({"info": {"description": f"pretraining dataset, {split}"}, **coco,
                                    "categories": categories}), encoding="utf-8")
        load_coco(path)  # the merged file must read back like any generated split
    counts = {s: {"images": len(c["images"]), "objects": len(c["annotations"])} for s, c in merged.items()}
    write_json(manifest_path, {**wanted, "counts": counts})  # written last and atomically: it marks a finished folder
    return out
