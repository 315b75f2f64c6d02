"""Real datasets into the canonical annotation model (each fetched with :func:`fetch` first)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from labkit.data.annotations import Dataset, Detections
from labkit.datasets.catalog import fetch


def load_coco8(split: str = "val") -> Dataset:
    """COCO8 (``train`` or ``val``) with the 80 COCO class names that Ultralytics ships and the
    official (non-contiguous, 1..90) COCO category ids."""
    from ultralytics.data.converter import coco80_to_coco91_class

    from labkit.data.yolo import CATEGORY_ID_KEY, import_yolo

    root = fetch("coco8")
    data_yaml = root / "labkit_data.yaml"
    if not data_yaml.exists():
        shipped = yaml.safe_load(resources.files("ultralytics").joinpath("cfg/datasets/coco8.yaml").read_text())
        coco_ids = coco80_to_coco91_class()
        config = {"path": str(root), "train": "images/train", "val": "images/val", "names": shipped["names"],
                  CATEGORY_ID_KEY: {k: int(coco_ids[k]) for k in shipped["names"]}}
        data_yaml.write_text(yaml.safe_dump(config, sort_keys=False))
    return import_yolo(data_yaml, split)


def load_pennfudan() -> Dataset:
    """Penn-Fudan pedestrians: boxes and instance masks (class 1, ``person``)."""
    from labkit.data.readers import read_pennfudan

    return read_pennfudan(fetch("pennfudan"))


def load_mot_sequence(name: str = "mot17-02") -> tuple[Dataset, dict[int, Detections]]:
    """A MOTChallenge sequence: ground truth as a Dataset (empty when the copy has none, e.g. the
    verified TUD-Campus frames) and the public detections per frame."""
    from labkit.data.readers import read_mot_sequence

    root = fetch(name)
    return read_mot_sequence(root, require_gt=(Path(root) / "gt" / "gt.txt").exists())
