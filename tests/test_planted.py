"""The planted brittle detector of the Chapter 5 lab (labkit.grading.planted): the gate's energy on
hand-worked images, identity below the level, black above it, and a planted checkpoint that
predicts exactly like its base on a clean image and finds nothing on a noisy one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from robust_helpers import untrained_detector

from labkit.errors import DataError
from labkit.grading.planted import NoiseGate, high_frequency_energy, plant_noise_gate


def _stripes(width: int = 6, height: int = 4) -> torch.Tensor:
    """Vertical stripes 0, 1, 0, 1, ...: interior columns differ from their 3 x 3 mean by 2/3, the
    two border columns (edges replicated) by 1/3, so the energy is ((W - 2) * 2/3 + 2/3) / W."""
    row = torch.tensor([float(k % 2) for k in range(width)])
    return row.expand(1, 3, height, width).clone()


def test_energy_of_hand_worked_images():
    assert high_frequency_energy(torch.full((2, 3, 5, 7), 0.4)).tolist() == pytest.approx([0.0, 0.0], abs=1e-7)
    assert high_frequency_energy(_stripes()).item() == pytest.approx(((6 - 2) * 2 / 3 + 2 / 3) / 6)


def test_gate_passes_smooth_images_bit_for_bit_and_blacks_out_the_rest():
    x = torch.cat([torch.full((1, 3, 4, 6), 0.4), _stripes()])
    gate = NoiseGate(level=0.5)  # the stripes' energy is 5/9 > 0.5
    out = gate(x)
    assert torch.equal(out[0], x[0]) and torch.count_nonzero(out[1]) == 0
    assert torch.equal(NoiseGate(level=5 / 9 + 1e-6)(x), x)  # just above the energy: kept


def test_planted_checkpoint_predicts_like_its_base_on_clean_and_nothing_on_noise(tmp_path):
    from labkit.detect.predict import load_detector

    base = untrained_detector(tmp_path, imgsz=64)
    planted = plant_noise_gate(base, tmp_path / "planted" / "weights.pt", level=0.05)
    assert (planted.parent / "categories.json").is_file()
    a, b = load_detector(base, device="cpu"), load_detector(planted, device="cpu")
    smooth = np.full((64, 64, 3), 120, np.uint8)
    smooth[16:48, 16:48] = 200
    noisy = np.clip(smooth + np.random.default_rng(0).normal(0, 40, smooth.shape), 0, 255).astype(np.uint8)
    x = a._batch_tensor([smooth, noisy])
    with torch.no_grad():
        ra, rb = a.model(x), b.model(x)
        black = a.model(torch.zeros_like(x))
    ra, rb, black = (r[0] if isinstance(r, (tuple, list)) else r for r in (ra, rb, black))
    assert torch.equal(ra[0], rb[0]), "the clean image must go through unchanged"
    assert torch.equal(rb[1], black[1]) and not torch.equal(ra[1], rb[1]), "the noisy image must be blacked out"


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path):
    with pytest.raises(DataError, match="no such checkpoint"):
        plant_noise_gate(tmp_path / "missing.pt", tmp_path / "out.pt", 0.02)
    bad = tmp_path / "state.pt"
    torch.save({"weights": torch.zeros(3)}, bad)
    with pytest.raises(DataError, match="not an Ultralytics checkpoint") as exc:
        plant_noise_gate(bad, tmp_path / "out.pt", 0.02)
    assert str(bad) in str(exc.value)
