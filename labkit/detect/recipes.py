"""The course's short fine-tuning recipe: start from the cached base detector, change few knobs.

Every Chapter 2 experiment that trains fine-tunes the base detector
(registry model ``detect-base``, :func:`labkit.models.load`) for a few epochs on a subset. The knobs that
matter are explicit fields of :func:`fine_tune_config`; three Ultralytics defaults are replaced
on purpose:

- ``optimizer="AdamW"`` instead of ``"auto"``: with ``auto``, Ultralytics ignores ``lr0`` and
  picks its own optimizer and learning rate, so a learning-rate knob would change nothing;
- ``warmup_bias_lr=0``: the default warms the bias parameters *down* from 0.1, a rate meant for
  SGD that throws an AdamW fine-tune off its trained weights in the first steps;
- ``nbs=batch``: Ultralytics accumulates gradients up to a nominal batch of ``nbs=64`` images
  before each optimizer step, so a run of a few dozen images at batch 8 would take only a
  handful of steps (and none at all within a tiny overfitting run). With ``nbs`` equal to the
  batch, every batch is one step, and the batch-size knob changes what it says.
"""

from __future__ import annotations

import ctypes
import gc
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from labkit.detect.config import DetectConfig
from labkit.detect.curves import learning_curves
from labkit.detect.grid import augmentation_overrides
from labkit.detect.train import TrainResult, train


def fine_tune_config(base: DetectConfig, weights: str | Path, *, name: str, epochs: int, batch: int = 8,
                     lr0: float = 1e-3, lrf: float = 0.1, warmup_epochs: float = 1.0, augment: float = 0.5,
                     eval_every: int = 1, seed: int = 0, **overrides: Any) -> DetectConfig:
    """A :class:`DetectConfig` that fine-tunes ``weights`` (the base detector built from ``base``)
    at ``base.imgsz``.

    Args:
        base: the config the weights were trained with (input size, dataset, device).
        weights: the checkpoint to start from.
        name: run name.
        epochs: epochs of the short schedule.
        batch: images per batch.
        lr0: peak learning rate (AdamW).
        lrf: final learning rate as a fraction of ``lr0`` (linear decay over the epochs).
        warmup_epochs: epochs of linear warm-up from zero to ``lr0`` (0: none; Ultralytics keeps
            at least the last epoch out of warm-up).
        augment: augmentation strength, see :func:`labkit.detect.grid.augmentation_overrides`.
        eval_every: labkit COCO evaluation every k epochs (0: at the end only).
        seed: training seed.
        overrides: further Ultralytics arguments (they win over the recipe's).
    """
    recipe = {"optimizer": "AdamW", "lr0": lr0, "lrf": lrf, "warmup_epochs": warmup_epochs, "warmup_bias_lr": 0.0,
              "close_mosaic": 0, "nbs": batch, **augmentation_overrides(augment)}
    return base.replace(name=name, model=str(weights), epochs=epochs, batch=batch, seed=seed,
                        eval_every=eval_every, overrides={**recipe, **overrides})


def release_memory() -> bool:
    """Give the memory of finished training runs back to the operating system.

    A notebook that trains several detectors in one process otherwise grows with every run:
    Python frees the tensors, but glibc's allocator keeps the freed pages. Runs the garbage
    collector, empties the CUDA cache when there is one, and on Linux calls glibc's
    ``malloc_trim(0)``. Returns whether the trim ran.
    """
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    if not sys.platform.startswith("linux"):
        return False
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False
    return True


def run_recipe(config: DetectConfig, data_root: str | Path, run_dir: str | Path) -> tuple[TrainResult, pd.DataFrame]:
    """Train ``config`` on ``data_root`` into ``run_dir`` (see :func:`labkit.detect.train.train`),
    release the memory the run used (:func:`release_memory`), and return the result with the
    run's learning curves (:func:`labkit.detect.curves.learning_curves`)."""
    release_memory()
    result = train(config, data_root=data_root, run_dir=run_dir)
    release_memory()
    return result, learning_curves(result.run_dir)
