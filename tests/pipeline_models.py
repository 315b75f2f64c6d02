"""Tiny untrained (seeded) checkpoints and a capstone config using them, for the pipeline and
service tests: real networks through the real code, in seconds on a CPU."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
import yaml

CATEGORIES = [{"id": 1, "name": "disc"}, {"id": 2, "name": "block"}, {"id": 3, "name": "cone"},
              {"id": 4, "name": "rod"}, {"id": 5, "name": "star"}]
DETECT_SIZE, SEGMENT_SIZE = 128, 64


def tiny_detector(folder: Path) -> Path:
    """A random-init 5-class YOLOv8n saved as an Ultralytics checkpoint with categories.json."""
    from labkit.detect._ultralytics import ul
    from labkit.detect.predict import CATEGORY_FILE

    torch.manual_seed(0)
    model = ul("ultralytics.nn.tasks").DetectionModel("yolov8n.yaml", nc=5, verbose=False)
    model.names = {i: c["name"] for i, c in enumerate(CATEGORIES)}
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model, "train_args": {"imgsz": DETECT_SIZE}}, folder / "weights.pt")
    (folder / CATEGORY_FILE).write_text(json.dumps(CATEGORIES))
    return folder / "weights.pt"


def tiny_segmenter(folder: Path) -> Path:
    """A random-init U-Net (6 classes, 64-pixel input) saved like labkit's best.pt."""
    from labkit.segment.semantic import SemanticConfig, build_model

    torch.manual_seed(0)
    config = SemanticConfig(size=SEGMENT_SIZE, encoder_weights=None)
    model = build_model(config, pretrained=False)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "config": asdict(config)}, folder / "best.pt")
    return folder / "best.pt"


def tiny_config(folder: Path, *, segmenter: bool = True, conf: float = 0.001, tracker: object = None,
                name: str = "capstone.yaml") -> Path:
    """A capstone config naming the tiny registry models with the checkpoints above (``tracker``:
    the config's tracker entry, e.g. ``"track_default.yaml"``)."""
    values = {
        "seed": 0, "device": "cpu", "fps": 25, "batch": 4,
        "detector": {"name": "detect-tiny", "weights": str(tiny_detector(folder / "detector")), "conf": conf,
                     "iou": 0.7, "max_det": 20},
        "segmenter": {"name": "segment-tiny", "weights": str(tiny_segmenter(folder / "segmenter"))} if segmenter else None,
        "tracker": tracker,
        "serve": {"max_bytes": 2_000_000, "max_pixels": 1_000_000, "session_ttl_s": 60},
    }
    path = folder / name
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path
