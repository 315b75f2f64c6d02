"""The course's model registry: one place to list, build, load, verify and pull every model the
chapters start from (base detector, Faster R-CNN, U-Net, YOLO-seg, and later ones).

Notebooks call ``labkit.models.load("detect-base")``: the cached build, else the verified shipped
checkpoint (``labkit.models.find`` stops there: it never trains), else a build (under
``LABKIT_BUDGET=ci``, the tiny variant). The command line is
``labkit models list | build NAME | load NAME | pull [NAME] | verify [NAME]``.

Modules: :mod:`~labkit.models.registry` (specs, and how to add one), :mod:`~labkit.models.specs`
(the course's models), :mod:`~labkit.models.flow` (build / load, the ``metrics.json`` layout),
:mod:`~labkit.models.checkpoints` (sha256 manifest, shipped folders, pull),
:mod:`~labkit.models.dataset` (dataset root and fingerprint) and :mod:`~labkit.models.cli`.
"""

from labkit.models.flow import Model, build, cache_dir, find, load, models_root, read_info
from labkit.models.registry import ModelSpec, Scores, Trained, config_path, get, names, register

__all__ = ["Model", "ModelSpec", "Scores", "Trained", "build", "cache_dir", "config_path", "find", "get", "load",
           "models_root", "names", "read_info", "register"]
