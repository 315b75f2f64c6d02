"""The course's own models, registered on import (see :mod:`labkit.models.registry` to add one).

Budgets are epochs, calibrated so that each base build takes about ``minutes`` on 2 quiet CPU
cores; the tiny variants build in seconds for tests and ``LABKIT_BUDGET=ci``.
"""

from __future__ import annotations

from labkit.models.registry import ModelSpec, register

_YOLO = dict(config_class="labkit.detect.config:DetectConfig", train="labkit.detect.base:train_cached",
             evaluate="labkit.detect.base:evaluate_cached", files=("categories.json", "ap_vs_minutes.json"))
_FRCNN = dict(config_class="labkit.detect.twostage.config:FrcnnConfig",
              train="labkit.detect.twostage.training:train_cached",
              evaluate="labkit.detect.twostage.network:evaluate_cached", files=("categories.json",))
_UNET = dict(config_class="labkit.segment.base:BaseConfig", train="labkit.segment.base:train_cached",
             evaluate="labkit.segment.base:evaluate_cached")
_REID = dict(config_class="labkit.track.reid:ReidConfig", train="labkit.track.reid:train_cached",
             evaluate="labkit.track.reid:evaluate_cached")
_YOLO_SEG = dict(config_class="labkit.detect.config:DetectConfig", train="labkit.segment.instance:train_cached",
                 evaluate="labkit.segment.instance:evaluate_cached", files=("categories.json",))

BUILTIN = (
    ModelSpec("detect-base", "detect_base.yaml", ci="detect-tiny", minutes=10,
              description="YOLOv8n base detector, from scratch (Chapter 2 onwards)", **_YOLO),
    ModelSpec("detect-yolo11n", "detect_yolo11n.yaml", ci="detect-tiny", minutes=12,
              description="YOLO11n with the base detector's budget (architecture comparison)", **_YOLO),
    ModelSpec("detect-tiny", "detect_tiny.yaml", minutes=0.5, description="seconds-long YOLOv8n for tests and CI",
              **_YOLO),
    ModelSpec("detect-frcnn", "detect_frcnn.yaml", ci="detect-frcnn-tiny", minutes=10,
              description="Faster R-CNN MobileNetV3-FPN, from scratch (lesson 2.6)", **_FRCNN),
    ModelSpec("detect-frcnn-tiny", "detect_frcnn_tiny.yaml", minutes=0.5,
              description="seconds-long Faster R-CNN for tests and CI", **_FRCNN),
    ModelSpec("segment-base", "segment_base.yaml", ci="segment-tiny", minutes=12,
              description="U-Net ResNet-18 semantic segmenter, from scratch (Chapter 3)", **_UNET),
    ModelSpec("segment-tiny", "segment_tiny.yaml", minutes=0.2, description="seconds-long U-Net for tests and CI",
              **_UNET),
    ModelSpec("segment-instance", "segment_instance.yaml", ci="segment-instance-tiny", minutes=10,
              description="YOLOv8n-seg instance segmenter, from scratch (lesson 3.3)", **_YOLO_SEG),
    ModelSpec("segment-instance-tiny", "segment_instance_tiny.yaml", minutes=0.5,
              description="seconds-long YOLOv8n-seg for tests and CI", **_YOLO_SEG),
    ModelSpec("track-reid", "track_reid.yaml", ci="track-reid-tiny", minutes=3,
              description="ReID embedding CNN on tracked-object crops (lesson 4.3)", **_REID),
    ModelSpec("track-reid-tiny", "track_reid_tiny.yaml", minutes=0.2, description="seconds-long ReID for tests and CI",
              **_REID),
)

#: What ``make models`` loads (verifies a shipped checkpoint or builds): the models the chapters use.
COURSE_MODELS = ("detect-base", "detect-frcnn", "segment-base", "segment-instance", "track-reid")

for _spec in BUILTIN:
    register(_spec)
