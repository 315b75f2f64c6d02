"""labkit.data.synth.pretrain: the pretraining dataset of issue 11's lever table. Counts and ids are
checked against the source datasets' own annotation files; val and test must come through unchanged
(but for the image folder prefix); a held-out image among the training images is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from labkit.data.coco import load_coco, read_json
from labkit.data.synth import ensure_dataset
from labkit.data.synth import pretrain
from labkit.errors import DataError
from labkit.models.dataset import fingerprint, load_split


@pytest.fixture(scope="module")
def merged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pretrain.pretraining_dataset(tmp_path_factory.mktemp("pre") / "merged", [2, 1], size="small")


def _coco(seed: int, split: str) -> dict:
    return read_json(Path(ensure_dataset(seed=seed, size="small")) / "annotations" / f"instances_{split}.json")


def test_train_holds_the_base_train_split_and_every_still_of_the_extra_seeds(merged: Path):
    train = read_json(merged / "annotations" / "instances_train.json")
    sources = [_coco(0, "train")] + [_coco(s, split) for s in (2, 1) for split in ("train", "val", "test")]
    assert len(train["images"]) == sum(len(c["images"]) for c in sources)
    assert len(train["annotations"]) == sum(len(c["annotations"]) for c in sources)
    ids = [im["id"] for im in train["images"]]
    assert len(set(ids)) == len(ids) and len({a["id"] for a in train["annotations"]}) == len(train["annotations"])
    # seed 2 is extra dataset 1: its val split (i = 1) moves by (3 * 1 + 1) * ID_STRIDE
    first_val_of_2 = _coco(2, "val")["images"][0]
    moved = next(im for im in train["images"] if im["id"] == 4 * pretrain.ID_STRIDE + first_val_of_2["id"])
    assert moved["file_name"] == f"seed2/{first_val_of_2['file_name']}"
    assert moved["scene_id"] == f"seed2/{first_val_of_2['scene_id']}"
    assert {a["image_id"] for a in train["annotations"]} <= set(ids)
    ds = load_split(merged, "train")
    assert all(ds.image_path(r).is_file() for r in ds.images)
    assert all((merged / r.extra["semantic_mask"]).is_file() for r in ds.images)


@pytest.mark.parametrize("split", ["val", "test"])
def test_val_and_test_are_the_base_splits_with_only_the_folder_prefix_added(merged: Path, split: str):
    got, want = read_json(merged / "annotations" / f"instances_{split}.json"), _coco(0, split)
    assert got["annotations"] == want["annotations"] and got["categories"] == want["categories"]
    assert [{**im, "file_name": im["file_name"].removeprefix("seed0/"),
             "semantic_mask": im["semantic_mask"].removeprefix("sources/seed0/")} for im in got["images"]] == want["images"]
    ds = load_split(merged, split)
    base = Path(ensure_dataset(seed=0, size="small"))
    assert ds.image_path(ds.images[0]).read_bytes() == (base / "images" / want["images"][0]["file_name"]).read_bytes()


def test_the_manifest_names_the_seeds_and_the_fingerprint_differs_from_the_base(merged: Path):
    manifest = json.loads((merged / "manifest.json").read_text())
    assert manifest["pretraining_seeds"] == [2, 1] and manifest["seed"] == 0 and manifest["size"] == "small"
    assert manifest["counts"]["val"]["images"] == len(_coco(0, "val")["images"])
    base = fingerprint(ensure_dataset(seed=0, size="small"))
    assert fingerprint(merged)["sha256"]["annotations/instances_train.json"] != base["sha256"]["annotations/instances_train.json"]


def test_a_finished_folder_is_returned_untouched_and_other_seeds_rewrite_it(tmp_path: Path):
    out = pretrain.pretraining_dataset(tmp_path / "m", [1], size="small")
    train = out / "annotations" / "instances_train.json"
    stamp = train.stat().st_mtime_ns
    assert pretrain.pretraining_dataset(tmp_path / "m", [1], size="small") == out and train.stat().st_mtime_ns == stamp
    pretrain.pretraining_dataset(tmp_path / "m", [1, 2], size="small")
    stills = sum(len(_coco(s, split)["images"]) for s in (1, 2) for split in ("train", "val", "test"))
    assert len(load_coco(train)) == len(_coco(0, "train")["images"]) + stills
    assert json.loads((out / "manifest.json").read_text())["pretraining_seeds"] == [1, 2]


@pytest.mark.parametrize("extra, message", [
    ([], "at least one extra seed"),
    ([0], "differ from the base seed 0"),
    ([1, 1], "must be distinct"),
])
def test_bad_seed_lists_are_refused(tmp_path: Path, extra: list[int], message: str):
    with pytest.raises(DataError, match=message):
        pretrain.pretraining_dataset(tmp_path / "m", extra, size="small")


def test_a_val_image_among_the_training_images_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    base = Path(ensure_dataset(seed=0, size="small"))
    copy = tmp_path / "copy-of-seed0"
    shutil.copytree(base, copy)  # "seed 7" is seed 0 again: its val images are the base's val images
    monkeypatch.setattr(pretrain, "ensure_dataset", lambda seed, size: copy if seed == 7 else base)
    with pytest.raises(DataError, match=r"val/test image\(s\) are also training images, e.g. seed0/val/") as err:
        pretrain.pretraining_dataset(tmp_path / "m", [7], size="small")
    assert str(tmp_path / "m") in str(err.value)
    assert not (tmp_path / "m" / "manifest.json").exists()
