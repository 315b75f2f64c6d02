"""The base U-Net through the model registry: built once (segment-tiny on the small embedded dataset),
then returned at once with its files untouched; the cache key follows config and dataset; fine-tuning
starts from it."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from labkit.errors import DataError
from labkit.models import Model, build, cache_dir, config_path
from labkit.repro import sha256_file
from labkit.segment.base import BaseConfig, fine_tune, load_split

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "segment_tiny.yaml"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_root() -> Path:
    from labkit.data.synth import ensure_dataset

    return Path(ensure_dataset(size="small", seed=0))


@pytest.fixture(scope="module")
def model(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Model:
    return build("segment-tiny", data_root=data_root, cache_root=tmp_path_factory.mktemp("models"), progress=False)


@pytest.fixture(scope="module")
def built(model: Model) -> Path:
    return model.weights


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in folder.rglob("*") if p.is_file()}


def test_first_call_trains_and_writes_the_val_scores(model: Model):
    built, m = model.weights, model.info
    assert built.name == "weights.pt" and built.parent.name.startswith("segment-tiny-") and model.source == "built"
    assert 0 <= m["metrics"]["val_miou"] <= 1 and math.isfinite(m["train_minutes"]) and m["epochs"] == 1
    # 8 training images (max_train_images) in batches of 4: 2 optimisation steps in the one epoch
    assert m["steps"] == 2 and m["device"] == "cpu" and m["weights_sha256"] == sha256_file(built)
    assert {"rod", "star", "background"} <= set(m["details"]["iou"]) and "rod" in m["details"]["boundary_f"]
    assert m["details"]["val_images"] == 10  # the whole val split, not max_val_images
    assert set(m["dataset"]["sha256"]) == {"annotations/instances_train.json", "annotations/instances_val.json"}
    assert not (built.parent / "run" / "last.pt").exists()  # optimizer state dropped once finished
    # the learning curve travels in metrics.json (a shipped checkpoint has no run folder): one row per epoch
    (row,) = m["details"]["miou_vs_epochs"]
    assert row["epoch"] == 1 and row["minutes"] == pytest.approx(m["train_minutes"])
    assert {"iou_rod", "iou_star"} <= set(row) and 0 <= row["val_miou_letterboxed"] <= 1
    assert {"run/manifest.json", "run/log.csv", "run/summary.json", "run/curves.png"} <= set(_snapshot(built.parent))


def test_second_call_returns_at_once_and_touches_nothing(built: Path, data_root: Path):
    before = _snapshot(built.parent)
    again = build("segment-tiny", data_root=data_root, cache_root=built.parent.parent, progress=False)
    assert again.source == "cache" and again.weights == built and _snapshot(built.parent) == before


def test_cache_key_follows_config_and_dataset(data_root: Path, tmp_path: Path):
    config = BaseConfig.load(config_path("segment_tiny.yaml"))
    key = cache_dir("segment-tiny", data_root=data_root, cache_root=tmp_path)
    other_lr = replace(config, model=replace(config.model, lr=0.001))
    assert cache_dir("segment-tiny", config=other_lr, data_root=data_root, cache_root=tmp_path) != key
    other = tmp_path / "data"
    shutil.copytree(data_root / "annotations", other / "annotations")
    manifest = json.loads((data_root / "manifest.json").read_text())
    manifest["wall_seconds"] = 1e9  # a regenerated dataset differs only in its timings: same key
    (other / "manifest.json").write_text(json.dumps(manifest))
    assert cache_dir("segment-tiny", data_root=other, cache_root=tmp_path) == key
    train = json.loads((other / "annotations" / "instances_train.json").read_text())
    train["annotations"] = train["annotations"][:-1]  # one object fewer: another dataset
    (other / "annotations" / "instances_train.json").write_text(json.dumps(train))
    assert cache_dir("segment-tiny", data_root=other, cache_root=tmp_path) != key
    (other / "annotations" / "instances_val.json").unlink()
    with pytest.raises(DataError, match="instances_val.json"):
        cache_dir("segment-tiny", data_root=other, cache_root=tmp_path)


def test_fine_tune_starts_from_the_base_weights(built: Path, data_root: Path, tmp_path: Path):
    config = BaseConfig.load(TINY).model
    tuned = replace(config, loss="dice", max_train_images=4)
    summary = fine_tune(built, tuned, load_split(data_root, "train"), load_split(data_root, "val"), data_root,
                        tmp_path / "ft", progress=False)
    assert summary["epochs"] == 1 and (tmp_path / "ft" / "best.pt").is_file()
    init = json.loads((tmp_path / "ft" / "manifest.json").read_text())["init_from"]
    assert init["sha256"] == sha256_file(built) and init["skipped"] == []
    other = replace(config, arch="DeepLabV3Plus")
    with pytest.raises(DataError, match="architecture"):
        fine_tune(built, other, load_split(data_root, "train"), load_split(data_root, "val"), data_root, tmp_path / "x")


def test_configs_load_and_typos_are_errors(tmp_path: Path):
    base = BaseConfig.load(config_path("segment_base.yaml"))
    assert base.model.arch == "Unet" and base.model.encoder == "resnet18" and base.model.size == 160
    assert base.model.encoder_weights is None and base.dataset_size == "default"
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nepochz: 3\n")
    with pytest.raises(DataError, match=r"bad.yaml.*unknown config keys \['epochz'\]"):
        BaseConfig.load(bad)
