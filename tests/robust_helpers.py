"""What the robustness tests share: the embedded dataset's categories and an untrained, seeded
YOLOv8n checkpoint laid out like a cached detector (``weights.pt`` + ``categories.json``)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

CATEGORIES = [{"id": i + 1, "name": n} for i, n in enumerate(["disc", "block", "cone", "rod", "star"])]


def untrained_detector(folder: Path, imgsz: int) -> Path:
    """Write a seeded, untrained 5-class YOLOv8n checkpoint with its categories.json into ``folder``."""
    from labkit.detect._ultralytics import ul

    torch.manual_seed(0)
    model = ul("ultralytics.nn.tasks").DetectionModel("yolov8n.yaml", nc=len(CATEGORIES), verbose=False)
    model.names = {i: c["name"] for i, c in enumerate(CATEGORIES)}
    torch.save({"model": model, "train_args": {"imgsz": imgsz}}, folder / "weights.pt")
    (folder / "categories.json").write_text(json.dumps(CATEGORIES))
    return folder / "weights.pt"
