"""Planted model variants for graded labs: a detector that scores exactly like its base on clean
images and collapses under one input condition, so that a robustness test suite can be graded on
whether it catches a weakness the clean metric does not show.

:class:`NoiseGate` is a front end that blacks out any input whose high-frequency energy -- the mean
absolute difference between the image and its 3 x 3 box mean, on the network's [0, 1] input --
exceeds ``level``: sensor noise raises that energy, blur and fog lower it. Below the level the
input passes through untouched (the same bits), so the clean metric of the planted variant equals
the base model's. The gate lives here, in labkit, because the student's kernel must be able to
unpickle the planted checkpoint (only torch, Ultralytics and labkit classes are pickled).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from labkit.errors import DataError


def high_frequency_energy(x: torch.Tensor) -> torch.Tensor:
    """Per image of an ``N x C x H x W`` batch: mean ``|x - boxmean3x3(x)|`` (edges replicated)."""
    smooth = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return (x - smooth).abs().mean(dim=(1, 2, 3))


class NoiseGate(nn.Module):
    """Identity on images whose :func:`high_frequency_energy` is at most ``level``; zeros otherwise."""

    def __init__(self, level: float):
        super().__init__()
        self.level = float(level)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keep = high_frequency_energy(x.float()) <= self.level
        return x * keep.to(x.dtype)[:, None, None, None]


def plant_noise_gate(weights: str | Path, out: str | Path, level: float) -> Path:
    """Copy the Ultralytics detection checkpoint ``weights`` to ``out`` with a :class:`NoiseGate`
    in front of its first layer (and its ``categories.json`` beside it, when there is one)."""
    weights, out = Path(weights), Path(out)
    if not weights.is_file():
        raise DataError("no such checkpoint file", source=str(weights))
    ckpt = torch.load(weights, map_location="cpu", weights_only=False)
    model = ckpt.get("ema") or ckpt.get("model")
    if not isinstance(model, nn.Module) or not hasattr(model, "model"):
        raise DataError("not an Ultralytics checkpoint (no model)", source=str(weights))
    first = model.model[0]
    front = nn.Sequential(NoiseGate(level), first)
    for name in ("f", "i", "type", "np"):  # what Ultralytics' forward loop reads from each layer
        setattr(front, name, getattr(first, name))
    model.model[0] = front
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**ckpt, "model": model, "ema": None}, out)
    categories = weights.parent / "categories.json"
    if categories.is_file():
        shutil.copyfile(categories, out.parent / "categories.json")
    return out
