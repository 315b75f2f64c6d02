"""The semantic training recipe on a tiny dataset made here: it learns, logs, checkpoints, resumes."""

import csv
import json

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
