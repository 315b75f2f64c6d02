"""The two-stage comparison path: torchvision Faster R-CNN trained on the course data.

Faster R-CNN (Ren et al. 2015) first proposes regions (the RPN), then classifies and refines a
fixed-size crop of features for each proposal (RoIAlign + a box head). The course trains
torchvision's MobileNetV3-Large FPN variant from scratch (``weights=None``,
``weights_backbone=None``: nothing is downloaded) on the same embedded dataset as the YOLO base
detector, and scores it with the same COCO evaluation
(:func:`labkit.detect.evaluate.coco_summary`), so the one-stage / two-stage trade-off is measured.

Modules: :mod:`~labkit.detect.twostage.config` (the run config),
:mod:`~labkit.detect.twostage.network` (build, load, predict, evaluate),
:mod:`~labkit.detect.twostage.training` (resumable training) and
:mod:`~labkit.detect.twostage.compare` (speed and object sizes). The cached model is the
registry's ``detect-frcnn`` (:mod:`labkit.models`).
"""

from labkit.detect.twostage.compare import ms_per_image, size_counts
from labkit.detect.twostage.config import ARCHS, FRCNN_CONFIG, N_ANCHOR_SIZES, FrcnnConfig
from labkit.detect.twostage.network import (FrcnnDetector, build_model, count_parameters, evaluate_frcnn, load_frcnn,
                                            predict_frcnn)
from labkit.detect.twostage.training import (BEST, LAST, LOG, FrcnnTrainSet, label_categories, learning_rate,
                                             resumable_frcnn, train_frcnn)

__all__ = ["ARCHS", "BEST", "FRCNN_CONFIG", "LAST", "LOG", "N_ANCHOR_SIZES", "FrcnnConfig", "FrcnnDetector", "FrcnnTrainSet",
           "build_model", "count_parameters", "evaluate_frcnn", "label_categories", "learning_rate", "load_frcnn",
           "ms_per_image", "predict_frcnn", "resumable_frcnn", "size_counts", "train_frcnn"]
