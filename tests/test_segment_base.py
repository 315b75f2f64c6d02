"""The cached base U-Net: built once (tiny config on the small embedded dataset), then returned at
once with its files untouched; the cache key follows config and dataset; fine-tuning starts from it."""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pytest

from labkit.errors import DataError
from labkit.repro import sha256_file
from labkit.segment.base import (BASE_CONFIG, base_metrics, build_base_segmenter, cache_dir, fine_tune,
                                 load_base_config, load_split)

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "segment_tiny.yaml"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_root() -> Path:
    from labkit.data.synth import ensure_dataset

    return Path(ensure_dataset(size="small", seed=0))


@pytest.fixture(scope="module")
def built(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_base_segmenter(TINY, data_root, cache_root=tmp_path_factory.mktemp("models"), progress=False)


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.iterdir()}


def test_first_call_trains_and_writes_the_val_scores(built: Path):
    assert built.name == "best.pt" and built.parent.name.startswith("segment-")
    m = base_metrics(built)
    assert 0 <= m["val_miou"] <= 1 and math.isfinite(m["train_minutes"]) and m["epochs"] == 1
    assert {"rod", "star", "background"} <= set(m["iou"]) and "rod" in m["boundary_f"]
    assert m["val_images"] == 10  # the whole val split, not max_val_images
    assert set(m["dataset"]["sha256"]) == {"annotations/instances_train.json", "annotations/instances_val.json"}
    assert not (built.parent / "last.pt").exists()  # optimizer state dropped once finished
    assert {"manifest.json", "log.csv", "summary.json", "curves.png"} <= set(_snapshot(built.parent))


def test_second_call_returns_at_once_and_touches_nothing(built: Path, data_root: Path):
    before = _snapshot(built.parent)
    start = time.perf_counter()
    again = build_base_segmenter(TINY, data_root, cache_root=built.parent.parent, progress=False)
    assert time.perf_counter() - start < 1.0
    assert again == built and _snapshot(built.parent) == before


def test_cache_key_follows_config_and_dataset(data_root: Path, tmp_path: Path):
    config = load_base_config(TINY)
    key = cache_dir(config, data_root, tmp_path)
    assert cache_dir(replace(config, model=replace(config.model, lr=0.001)), data_root, tmp_path) != key
    other = tmp_path / "data"
    other.mkdir()
    manifest = json.loads((data_root / "manifest.json").read_text())
    manifest["sha256"]["annotations/instances_train.json"] = "0" * 64
    (other / "manifest.json").write_text(json.dumps(manifest))
    assert cache_dir(config, other, tmp_path) != key
    manifest["sha256"]["annotations/sequences_train.json"] = "1" * 64  # not used by the model: same key
    manifest["sha256"]["annotations/instances_train.json"] = json.loads(
        (data_root / "manifest.json").read_text())["sha256"]["annotations/instances_train.json"]
    (other / "manifest.json").write_text(json.dumps(manifest))
    assert cache_dir(config, other, tmp_path) == key
    shutil.rmtree(other)
    with pytest.raises(DataError, match="manifest"):
        cache_dir(config, other, tmp_path)


def test_fine_tune_starts_from_the_base_weights(built: Path, data_root: Path, tmp_path: Path):
    config = load_base_config(TINY).model
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
    base = load_base_config(BASE_CONFIG)
    assert base.model.arch == "Unet" and base.model.encoder == "resnet18" and base.model.size == 160
    assert base.model.encoder_weights is None and base.dataset_size == "default"
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nepochz: 3\n")
    with pytest.raises(DataError, match=r"bad.yaml.*unknown config keys \['epochz'\]"):
        load_base_config(bad)
