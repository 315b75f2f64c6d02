"""Semantic inference in original pixels, tiled inference, the QA export and ``labkit segment predict``.

A per-pixel colour model (red -> class 1, green -> class 2, anything else -> 0) makes every
expected label map known exactly, so geometry mistakes (letterbox offsets, padding leaking into
the output, seams between tiles) show up as wrong pixels.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import labkit.cli
from labkit.data.annotations import Dataset, ImageRecord
from labkit.errors import DataError
from labkit.repro import sha256_file
from labkit.segment.predict import (count_instances, dataset_version, evaluate_semantic, export_predictions,
                                    predict_semantic)
from labkit.segment.semantic import SemanticConfig, build_model

RED, GREEN, GREY = (230, 20, 20), (20, 230, 20), (90, 90, 90)


class ColourModel(torch.nn.Module):
    """Logits ``[0, 20 (r - 0.5), 20 (g - 0.5)]`` of the un-normalised input: a per-pixel model."""

    def __init__(self, config: SemanticConfig):
        super().__init__()
        self.mean = torch.tensor(config.preprocessing.mean).view(1, 3, 1, 1)
        self.std = torch.tensor(config.preprocessing.std).view(1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rgb = x * self.std + self.mean
        return torch.cat([torch.zeros_like(rgb[:, :1]), 20 * (rgb[:, :1] - 0.5), 20 * (rgb[:, 1:2] - 0.5)], dim=1)


def _config(size: int = 160) -> SemanticConfig:
    return SemanticConfig(num_classes=3, class_names=["background", "red", "green"], size=size)


def _scene(h: int, w: int, seed: int, step: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """An image of red/green rectangles on grey (corners on multiples of ``step``) and its labels."""
    rng = np.random.default_rng(seed)
    image = np.full((h, w, 3), GREY, np.uint8)
    labels = np.zeros((h, w), np.uint8)
    for k in range(6):
        y, x = (rng.integers(0, h - 8) // step) * step, (rng.integers(0, w - 8) // step) * step
        dy, dx = (rng.integers(4, h // 2) // step) * step, (rng.integers(4, w // 2) // step) * step
        cls = 1 + k % 2
        image[y:y + dy, x:x + dx] = RED if cls == 1 else GREEN
        labels[y:y + dy, x:x + dx] = cls
    return image, labels


def test_label_maps_are_in_original_pixels_and_exact_for_whole_scale_factors():
    config = _config(160)
    image, labels = _scene(40, 80, 0)  # 80 -> 160: scale 2, 40 rows of padding above and below
    nearest = predict_semantic(ColourModel(config), config, [image], device="cpu", resize="nearest")[0]
    bilinear = predict_semantic(ColourModel(config), config, [image], device="cpu")[0]
    assert nearest.shape == bilinear.shape == (40, 80) and nearest.dtype == np.uint8
    assert np.array_equal(nearest, labels)
    assert (bilinear == labels).mean() > 0.98


def test_padding_never_leaks_into_the_label_map():
    config = _config(64)
    for h, w in [(37, 91), (91, 37), (64, 64), (200, 30)]:
        red = np.full((h, w, 3), RED, np.uint8)  # the black padding would be class 0
        for resize in ("bilinear", "nearest"):
            out = predict_semantic(ColourModel(config), config, [red], device="cpu", resize=resize)[0]
            assert out.shape == (h, w) and (out == 1).all(), (h, w, resize)


def test_batches_of_mixed_sizes_and_confidence_maps():
    config = _config(96)
    scenes = [_scene(48, 96, s) for s in range(3)] + [_scene(96, 48, 3)]
    labels, confidence = predict_semantic(ColourModel(config), config, [s[0] for s in scenes], batch=3, device="cpu",
                                          with_confidence=True)
    assert [lab.shape for lab in labels] == [s[1].shape for s in scenes]
    for (_, truth), lab, conf in zip(scenes, labels, confidence):
        assert conf.dtype == np.float32 and conf.shape == truth.shape
        assert conf.min() >= 1 / 3 - 1e-6 and conf.max() <= 1 + 1e-6
        assert (lab == truth).mean() > 0.97
        # deep inside a red region the logits are [0, 9.0, -8.4]: max softmax = 1 / (1 + e^-9 + e^-17.4)
        inside = cv2.erode((truth == 1).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        if inside.any():
            assert np.allclose(conf[inside], 1 / (1 + np.exp(-9.0) + np.exp(-17.4)), atol=1e-3)


def test_tiled_inference_is_seamless_and_exact_at_native_scale():
    config = _config(64)
    image, labels = _scene(150, 230, 4, step=1)
    tiled, conf = predict_semantic(ColourModel(config), config, [image], device="cpu", tile=64, overlap=16,
                                   with_confidence=True)
    assert np.array_equal(tiled[0], labels)  # windows of 64 source px at size 64: the model sees every pixel as is
    assert conf[0].shape == labels.shape


def test_bad_inputs_raise_data_errors():
    config = _config(64)
    with pytest.raises(DataError, match="uint8"):
        predict_semantic(ColourModel(config), config, [np.zeros((8, 8, 3), np.float32)], device="cpu")
    with pytest.raises(DataError, match="overlap"):
        predict_semantic(ColourModel(config), config, [np.zeros((8, 8, 3), np.uint8)], tile=16, overlap=16)
    with pytest.raises(DataError, match="model gives 3 classes"):
        predict_semantic(ColourModel(config), SemanticConfig(size=64), [np.zeros((8, 8, 3), np.uint8)], device="cpu")


def test_instance_counts_follow_connected_components():
    labels = np.zeros((40, 40), np.uint8)
    labels[2:8, 2:8] = 1
    labels[20:30, 20:30] = 1
    labels[35, 35] = 1  # 1 pixel: below min_area
    labels[10:12, 0:40] = 2
    assert count_instances(labels, 3, min_area=10).tolist() == [0, 2, 1]
    assert count_instances(labels, 3, min_area=1).tolist() == [0, 3, 1]


@pytest.fixture
def folder(tmp_path: Path) -> tuple[Path, list[np.ndarray]]:
    """A fake generated dataset folder (manifest.json) with three PNG images in images/val/."""
    root = tmp_path / "data"
    (root / "images" / "val").mkdir(parents=True)
    (root / "manifest.json").write_text(json.dumps({
        "generator": "labkit.data.synth", "generator_version": "9.9", "seed": 3, "size": "small",
        "sha256": {"annotations/instances_val.json": "ab" * 32, "io_cases/x.json": "cd" * 32}}))
    truths = []
    for i in range(3):
        image, labels = _scene(48, 64, 10 + i)
        Image.fromarray(image).save(root / "images" / "val" / f"img{i}.png")
        truths.append(labels)
    return root, truths


def test_export_writes_masks_overlays_and_a_summary(folder: tuple[Path, list[np.ndarray]], tmp_path: Path):
    root, truths = folder
    config = _config(64)
    ckpt = tmp_path / "weights.bin"
    ckpt.write_bytes(b"pretend weights")
    out = tmp_path / "out"
    summary = export_predictions(ColourModel(config), config, root / "images" / "val", out, checkpoint=ckpt,
                                 batch=2, device="cpu", save_confidence=True, progress=False)
    names = [f"img{i}" for i in range(3)]
    assert [row["name"] for row in summary["files"]] == names
    predicted = predict_semantic(ColourModel(config), config,
                                 [np.array(Image.open(root / "images" / "val" / f"{n}.png")) for n in names],
                                 device="cpu")
    for name, expected in zip(names, predicted):
        written = np.array(Image.open(out / "masks" / f"{name}.png"))
        assert written.dtype == np.uint8 and np.array_equal(written, expected)
        assert (out / "overlays" / f"{name}.jpg").is_file() and (out / "confidence" / f"{name}.png").is_file()
    total = np.bincount(np.concatenate([p.ravel() for p in predicted]), minlength=3)
    assert list(summary["pixels_per_class"].values()) == total.tolist()
    assert summary["instances_per_class"]["red"] == sum(int(count_instances(p, 3)[1]) for p in predicted)
    assert summary["checkpoint"]["sha256"] == sha256_file(ckpt)
    assert summary["dataset"]["generator_version"] == "9.9"
    assert list(summary["dataset"]["annotations_sha256"]) == ["annotations/instances_val.json"]
    assert summary["settings"]["preprocessing"]["size"] == 64 and summary["settings"]["tile"] is None
    conf = summary["confidence"]
    assert 1 / 3 <= conf["p05"] <= conf["median"] <= 1 and 0 <= conf["fraction_below_0.5"] <= 1
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["pixels_per_class"] == summary["pixels_per_class"]
    assert dataset_version(tmp_path / "elsewhere") is None


def test_evaluate_semantic_scores_at_original_resolution(folder: tuple[Path, list[np.ndarray]]):
    root, truths = folder
    (root / "masks").mkdir()
    records = []
    for i, labels in enumerate(truths):
        Image.fromarray(labels).save(root / "masks" / f"img{i}.png")
        records.append(ImageRecord(i + 1, f"val/img{i}.png", 64, 48, extra={"semantic_mask": f"masks/img{i}.png"}))
    dataset = Dataset([{"id": 1, "name": "red"}, {"id": 2, "name": "green"}], records, root=root / "images")
    config = _config(128)  # 64 -> 128: scale 2, exact with nearest
    scores = evaluate_semantic(ColourModel(config), config, dataset, root, device="cpu", resize="nearest")
    assert scores["mean_iou"] == 1.0 and scores["mean_boundary_f"] == 1.0 and scores["images"] == 3
    assert scores["ms_per_image"] > 0
    confusion = np.asarray(scores["confusion"])  # perfect: all counts on the diagonal, one row per true class
    expected = np.bincount(np.concatenate([t.ravel() for t in truths]), minlength=config.num_classes)
    assert (np.diag(confusion) == expected[:config.num_classes]).all() and confusion.sum() == np.trace(confusion)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch):
    """``labkit.cli.main`` with the segment commands registered (until the lead wires them in)."""
    if "labkit.segment.cli" not in labkit.cli.COMMAND_MODULES:
        monkeypatch.setattr(labkit.cli, "COMMAND_MODULES", (*labkit.cli.COMMAND_MODULES, "labkit.segment.cli"))
    return labkit.cli.main


def test_cli_predict_writes_the_export(cli, folder: tuple[Path, list[np.ndarray]], tmp_path: Path,
                                       capsys: pytest.CaptureFixture):
    root, _ = folder
    config = SemanticConfig(size=64)
    weights = tmp_path / "best.pt"
    torch.save({"model": build_model(config).state_dict(), "config": asdict(config)}, weights)
    out = tmp_path / "pred"
    code = cli(["segment", "predict", "--weights", str(weights), "--source", str(root / "images"), "--out", str(out),
                "--device", "cpu", "--json"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["images"] == 3 and payload["checkpoint"]["sha256"] == sha256_file(weights)
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["img0.png", "img1.png", "img2.png"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["device"] == "cpu" and summary["dataset"]["seed"] == 3
    assert sum(summary["pixels_per_class"].values()) == 3 * 48 * 64


def test_cli_errors_have_exit_codes(cli, folder: tuple[Path, list[np.ndarray]], tmp_path: Path):
    root, _ = folder
    assert cli(["segment", "predict", "--weights", str(tmp_path / "none.pt"), "--source", str(root),
                "--out", str(tmp_path / "o")]) == 2
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    assert cli(["segment", "predict", "--weights", str(junk), "--source", str(root), "--out", str(tmp_path / "o")]) == 1
    assert cli(["segment", "predict", "--weights", str(junk), "--source", str(root), "--out", str(tmp_path / "o"),
                "--tile", "8", "--overlap", "8"]) == 2
