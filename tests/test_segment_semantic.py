"""The semantic training recipe on a tiny dataset made here: it learns, logs, checkpoints, resumes."""

import csv
import json
from dataclasses import asdict

import numpy as np
import pytest
from PIL import Image

from labkit.data.annotations import Dataset, ImageRecord
from labkit.errors import DataError
from labkit.segment.data import Preprocessing, SemanticDataset
from labkit.segment.semantic import SemanticConfig, load_checkpoint, train_semantic


def _make_split(root, split, n, seed):
    rng = np.random.default_rng(seed)
    (root / "images" / split).mkdir(parents=True)
    (root / "masks" / split).mkdir(parents=True)
    records = []
    for i in range(n):
        img = np.full((48, 64, 3), 40, np.uint8)
        mask = np.zeros((48, 64), np.uint8)
        y, x = rng.integers(4, 24), rng.integers(4, 36)
        img[y:y + 16, x:x + 20] = (220, 60, 60)
        mask[y:y + 16, x:x + 20] = 1
        img[:, 60:62] = (60, 220, 60)  # a thin vertical rod
        mask[:, 60:62] = 2
        mask[0, 0] = 255
        Image.fromarray(img).save(root / "images" / split / f"{i}.png")
        Image.fromarray(mask).save(root / "masks" / split / f"{i}.png")
        records.append(ImageRecord(i + 1, f"{split}/{i}.png", 64, 48, extra={"semantic_mask": f"masks/{split}/{i}.png"}))
    return Dataset([{"id": 1, "name": "square"}, {"id": 2, "name": "rod"}], records, root=root / "images")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("seg")
    return root, _make_split(root, "train", 12, 0), _make_split(root, "val", 4, 1)


def _config(**kw):
    base = dict(num_classes=3, class_names=["background", "square", "rod"], epochs=2, batch_size=4, size=64,
                lr=5e-3, encoder="resnet18")
    base.update(kw)
    return SemanticConfig(**base)


def test_masks_are_resized_with_nearest_and_padded_with_ignore(tiny):
    root, train, _ = tiny
    ds = SemanticDataset(train, root, Preprocessing(size=40), train=True, strength=1.0)
    for i in range(len(ds)):
        _, mask = ds[i]
        assert set(np.unique(mask.numpy())) <= {0, 1, 2, 255}
    _, mask = SemanticDataset(train, root, Preprocessing(size=40), train=False)[0]
    assert (mask[:5] == 255).all()  # letterbox rows are ignore, not background


def test_size_mismatch_is_an_error(tiny, tmp_path):
    root, train, _ = tiny
    bad = Dataset(train.categories, [ImageRecord(1, "train/0.png", 64, 48, extra={"semantic_mask": "small.png"})],
                  root=root / "images")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "small.png")
    with pytest.raises(DataError, match="never resized silently"):
        SemanticDataset(bad, root, Preprocessing(), train=False)[0]


def test_train_logs_checkpoints_and_resumes(tiny, tmp_path):
    root, train, val = tiny
    out = tmp_path / "run"
    first = train_semantic(_config(epochs=1), train, val, root, out, progress=False)
    assert (out / "last.pt").exists() and (out / "best.pt").exists() and (out / "curves.png").exists()
    resumed = train_semantic(_config(epochs=1), train, val, root, out, resume=True, progress=False)
    assert resumed["last"]["epoch"] == 1  # nothing left to do: the finished epoch was not redone
    with open(out / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1"] and "iou_rod" in rows[0]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["loss"] == "ce+dice" and manifest["preprocessing"]["mean"]
    model, config = load_checkpoint(out / "best.pt", device="cpu")
    assert config.num_classes == 3 and first["val_images"] == 4


def test_resume_with_another_config_is_refused(tiny, tmp_path):
    root, train, val = tiny
    train_semantic(_config(epochs=1), train, val, root, tmp_path, progress=False)
    with pytest.raises(DataError, match="different config"):
        train_semantic(_config(epochs=1, lr=1e-2), train, val, root, tmp_path, resume=True, progress=False)


@pytest.mark.slow
def test_it_learns_the_easy_task(tiny, tmp_path):
    root, train, val = tiny
    summary = train_semantic(_config(epochs=8), train, val, root, tmp_path, progress=False)
    assert summary["best_val_miou"] > 0.5, summary


def test_config_validation(tmp_path):
    with pytest.raises(DataError, match="loss must be one of"):
        SemanticConfig(loss="l2")
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 3\nlearning_rate: 0.1\n")
    with pytest.raises(DataError, match="unknown config keys \\['learning_rate'\\]"):
        SemanticConfig.from_yaml(path)
    path.write_text("loss: l2\n")
    with pytest.raises(DataError, match="c.yaml: loss must be one of"):  # a bad value names the file too
        SemanticConfig.from_yaml(path)
    with pytest.raises(DataError, match="use null .* or 'imagenet' with one of \\('resnet18',\\)"):
        SemanticConfig(encoder_weights="ssl")
    with pytest.raises(DataError, match="encoder 'resnet34'"):
        SemanticConfig(encoder="resnet34", encoder_weights="imagenet")


@pytest.fixture
def torchvision_resnet18(tmp_path, monkeypatch):
    """A resnet18 checkpoint in torchvision's layout, served in place of the ImageNet download."""
    import torch
    import torchvision

    import labkit.weights

    state = torchvision.models.resnet18(weights=None).state_dict()
    path = tmp_path / "resnet18-test.pth"
    torch.save(state, path)
    monkeypatch.setattr(labkit.weights, "resolve_pretrained", lambda name, **kw: path)
    return path, state


def test_imagenet_encoder_weights_fill_every_encoder_tensor(torchvision_resnet18):
    import torch

    from labkit.segment.semantic import build_model

    _, state = torchvision_resnet18
    model = build_model(SemanticConfig(encoder_weights="imagenet"))
    own = model.encoder.state_dict()
    assert set(state) - set(own) == {"fc.weight", "fc.bias"}
    assert all(torch.equal(own[k], state[k]) for k in own)


def test_incomplete_imagenet_weights_name_the_file(torchvision_resnet18):
    import torch

    from labkit.segment.semantic import build_model

    path, state = torchvision_resnet18
    torch.save({k: v for k, v in state.items() if not k.startswith("layer4.")}, path)
    with pytest.raises(DataError, match="encoder tensors unset \\(first: layer4") as info:
        build_model(SemanticConfig(encoder_weights="imagenet"))
    assert "resnet18-test.pth" in str(info.value)


def test_imagenet_encoder_offline_is_a_clear_error(tmp_path, monkeypatch, network_attempts):
    import torch

    from labkit.segment.semantic import build_model
    from labkit.weights import PretrainedUnavailable

    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    (tmp_path / "mirror").mkdir()
    monkeypatch.setenv("LABKIT_DATA_MIRROR", str(tmp_path / "mirror"))
    with pytest.raises(PretrainedUnavailable, match="'resnet18' are not available offline"):
        build_model(SemanticConfig(encoder_weights="imagenet"))
    # a checkpoint trained from ImageNet weights loads offline: it holds every weight itself
    config, tried = SemanticConfig(encoder_weights="imagenet"), len(network_attempts)
    model = build_model(config, pretrained=False)
    torch.save({"model": model.state_dict(), "config": asdict(config)}, tmp_path / "best.pt")
    loaded, loaded_config = load_checkpoint(tmp_path / "best.pt", device="cpu")
    assert loaded_config.encoder_weights == "imagenet" and len(network_attempts) == tried
