"""Object detection (Chapter 2 engine): training Ultralytics YOLO from a YAML config, the registry's
YOLO detectors, batched inference mapped back to original pixels, and a classical HOG baseline.

Modules: :mod:`~labkit.detect.config` (the run config), :mod:`~labkit.detect.train`,
:mod:`~labkit.detect.base` (train / evaluate steps of the registry's ``detect-*`` models),
:mod:`~labkit.detect.predict` (with :mod:`~labkit.data.sources`: datasets, files, folders,
videos), :mod:`~labkit.detect.evaluate` (labkit's COCO evaluation of a checkpoint),
:mod:`~labkit.detect.curves` (learning-dynamics log and figure), :mod:`~labkit.detect.data` (the
YOLO export a run trains on), :mod:`~labkit.detect.hog`, :mod:`~labkit.detect.simulate` (a seeded
stand-in for raw detector output), :mod:`~labkit.detect.twostage` (torchvision Faster R-CNN, the
two-stage comparison model, cached through :mod:`labkit.models` and scored like the YOLO base)
and :mod:`~labkit.detect.cli` (``labkit detect ...``).
"""
