"""The embedded dataset as a YOLO detector sees it: the train/val splits exported to the Ultralytics layout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from labkit.data.annotations import Dataset
from labkit.data.coco import load_coco, save_coco
from labkit.data.yolo import CATEGORY_ID_KEY, export_yolo
from labkit.detect.predict import CATEGORY_FILE
from labkit.models.dataset import TRAIN_SPLITS, load_split

#: Folder of a run holding its YOLO export (``data.yaml``, ``images/``, ``labels/``).
EXPORT_DIR = "yolo"


def export_for_training(data_root: str | Path, run_dir: str | Path) -> tuple[Path, list[dict[str, Any]]]:
    """Make a run self-contained: export the train and val splits to the Ultralytics layout under
    ``run_dir/yolo`` (images copied, so regenerating or moving the dataset cannot break a running
    or resumed training), save each split's COCO annotations there too (``instances_<split>.json``,
    read back by :func:`exported_split`), and write ``categories.json`` (class index order).

    Returns the ``data.yaml`` path and the category list.
    """
    out = Path(run_dir) / EXPORT_DIR
    splits = {s: load_split(data_root, s) for s in TRAIN_SPLITS}
    summary = export_yolo(splits, out, images="copy")
    for name, ds in splits.items():
        save_coco(ds, out / f"instances_{name}.json")
    data_yaml = Path(summary["data_yaml"])
    config = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    ids, names = config[CATEGORY_ID_KEY], config["names"]
    categories = [{"id": int(ids[k]), "name": str(names[k])} for k in sorted(names)]
    (Path(run_dir) / CATEGORY_FILE).write_text(json.dumps(categories, indent=2), encoding="utf-8")
    return data_yaml, categories


def exported_split(run_dir: str | Path, split: str) -> Dataset:
    """A split as :func:`export_for_training` saved it: COCO annotations and the run's image copies."""
    out = Path(run_dir) / EXPORT_DIR
    return load_coco(out / f"instances_{split}.json", image_root=out / "images" / split)
