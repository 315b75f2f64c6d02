"""labkit.grading.plant_noise_gate on hand-made stand-ins for an Ultralytics checkpoint (a module with a
``model`` Sequential whose layers carry f/i/type/np): the EMA weights win over the raw ones, a GPU
checkpoint is planted on a CPU-only machine, and the missing file is named."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from labkit.errors import DataError
from labkit.grading.planted import NoiseGate, plant_noise_gate


def _detector(value: float) -> nn.Module:
    """A stand-in detector: ``.model`` is a Sequential whose first layer is a 1x1 conv of constant weight."""
    layer = nn.Conv2d(3, 2, 1)
    nn.init.constant_(layer.weight, value)
    layer.f, layer.i, layer.type, layer.np = -1, 0, "Conv", 8
    detector = nn.Module()
    detector.model = nn.Sequential(layer, nn.Identity())
    return detector


def _save(path, ckpt: dict) -> None:
    torch.save(ckpt, path)


def _first_weight(model: nn.Module) -> float:
    return float(model.model[0][1].weight.detach().flatten()[0])


def test_the_ema_weights_are_planted_when_there_are_some(tmp_path):
    src = tmp_path / "best.pt"
    _save(src, {"ema": _detector(1.0), "model": _detector(2.0), "epoch": 7})
    out = plant_noise_gate(src, tmp_path / "sub" / "deeper" / "planted.pt", level=0.25)
    assert out == tmp_path / "sub" / "deeper" / "planted.pt" and not (out.parent / "categories.json").exists()
    got = torch.load(out, map_location="cpu", weights_only=False)
    assert got["ema"] is None and got["epoch"] == 7
    assert _first_weight(got["model"]) == 1.0  # the EMA's, not the raw model's 2.0
    front = got["model"].model[0]
    assert isinstance(front[0], NoiseGate) and front[0].level == 0.25
    assert (front.f, front.i, front.type, front.np) == (-1, 0, "Conv", 8)


def test_the_raw_weights_are_planted_without_ema(tmp_path):
    src = tmp_path / "last.pt"
    _save(src, {"ema": None, "model": _detector(2.0)})
    got = torch.load(plant_noise_gate(src, tmp_path / "p.pt", level=0.1), map_location="cpu", weights_only=False)
    assert _first_weight(got["model"]) == 2.0


def test_a_checkpoint_saved_on_a_gpu_is_planted_on_the_cpu(tmp_path, monkeypatch):
    """Storages tagged ``cuda:0`` (as torch.save writes them on a GPU machine): the planted copy
    holds CPU tensors, whether or not this machine has a GPU."""
    src = tmp_path / "gpu.pt"
    with monkeypatch.context() as m:
        m.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        _save(src, {"ema": _detector(1.0), "model": None})
    if not torch.cuda.is_available():  # the stand-in is a faithful GPU checkpoint: it needs map_location here
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(src, weights_only=False)
    got = torch.load(plant_noise_gate(src, tmp_path / "p.pt", level=0.1), map_location="cpu", weights_only=False)
    devices = {p.device.type for p in got["model"].parameters()}
    assert devices == {"cpu"}


def test_errors_name_the_checkpoint(tmp_path):
    missing = tmp_path / "missing.pt"
    with pytest.raises(DataError) as exc:
        plant_noise_gate(missing, tmp_path / "out.pt", 0.1)
    assert exc.value.source == str(missing) and str(exc.value) == f"{missing}: no such checkpoint file"
    bad = tmp_path / "plain.pt"
    _save(bad, {"ema": None, "model": nn.Linear(2, 2)})  # a module, but no .model
    with pytest.raises(DataError) as exc:
        plant_noise_gate(bad, tmp_path / "out.pt", 0.1)
    assert str(exc.value) == f"{bad}: not an Ultralytics checkpoint (no model)"
    assert not (tmp_path / "out.pt").exists()


def test_an_image_at_the_level_passes():
    """A flat image has energy exactly 0: a gate at level 0 keeps it (at most the level passes)."""
    flat = torch.full((1, 3, 4, 5), 0.5)  # 9 x 0.5 / 9 is exactly 0.5 in float32
    assert torch.equal(NoiseGate(0.0)(flat), flat)
    assert torch.count_nonzero(NoiseGate(-1e-9)(flat)) == 0
