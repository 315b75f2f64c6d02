"""The ReID's parts without the registry build: config checks, crops of a hand-made dataset,
network shape and normalisation, seeded training, save/load, and retrieval scored by hand."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from labkit.errors import DataError
from labkit.track.reid import (CropSet, ReidConfig, ReidEmbedder, _network, _tensor, evaluate_cached, evaluate_reid,
                               load_reid, retrieval_scores, sequence_crops, train_cached, train_reid)

torch = pytest.importorskip("torch")

TINY = ReidConfig(width=4, embedding_dim=8, crop_height=8, crop_width=8, max_crops_per_identity=3, query_every=1,
                  exclude_frames=0, epochs=2, batch=4, lr=0.01)
RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 255, 0)


def _sequence(root: Path, name: str, tracks: dict[int, tuple[tuple[int, int, int], tuple[int, int], dict[int, float]]]):
    """A 4-frame 40x40 sequence: ``tracks[tid] = (rgb, (x, y), {frame: visibility})``, 8x8 boxes."""
    seq = root / name
    (seq / "img1").mkdir(parents=True)
    (seq / "gt").mkdir()
    (seq / "seqinfo.ini").write_text(f"[Sequence]\nname={name}\nimDir=img1\nframeRate=10\nseqLength=4\n"
                                     "imWidth=40\nimHeight=40\nimExt=.png\n")
    rows = []
    for f in range(1, 5):
        image = np.full((40, 40, 3), 128, np.uint8)
        for tid, (rgb, (x, y), vis) in tracks.items():
            if f in vis:
                image[y:y + 8, x:x + 8] = rgb
                rows.append(f"{f},{tid},{x},{y},8,8,1,1,{vis[f]}")
        cv2.imwrite(str(seq / "img1" / f"{f:06d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    (seq / "gt" / "gt.txt").write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """s1: track 1 red in all 4 frames, track 2 blue (visible enough in frames 1-2 only), track 3
    in one frame only (too short); s2: track 1 green in frames 1-2. Same layout for train and val."""
    root = tmp_path_factory.mktemp("reid_data")
    for split in ("train", "val"):
        _sequence(root / "sequences" / split, "s1", {1: (RED, (2, 2), {1: 1, 2: 1, 3: 1, 4: 1}),
                                                     2: (BLUE, (20, 20), {1: 1, 2: 0.6, 3: 0.5, 4: 0.59}),
                                                     3: (GREEN, (2, 25), {2: 1})})
        _sequence(root / "sequences" / split, "s2", {1: (GREEN, (10, 10), {1: 1, 2: 1})})
    return root


# ----------------------------------------------------------------------------------------- config
@pytest.mark.parametrize("name", ["epochs", "batch", "embedding_dim", "width", "crop_height", "crop_width",
                                  "max_crops_per_identity", "query_every"])
def test_integer_knobs_are_at_least_one(name):
    assert getattr(ReidConfig(**{name: 1}), name) == 1
    for bad in (0, 2.0, True, "4"):
        with pytest.raises(DataError, match=re.escape(f"'{name}' must be an integer >= 1, got {bad!r}")):
            ReidConfig(**{name: bad})


def test_float_knob_ranges():
    for ok in (1e-9, 0.999):
        assert ReidConfig(lr=ok).lr == ok
    for bad in (0, 1, -0.1):
        with pytest.raises(DataError, match=re.escape(f"'lr' must be in (0, 1), got {bad!r}")):
            ReidConfig(lr=bad)
    for ok in (0, 1, 0.5):
        assert ReidConfig(min_visibility=ok).min_visibility == ok
    for bad in (-0.01, 1.01):
        with pytest.raises(DataError, match=re.escape(f"'min_visibility' must be in [0, 1], got {bad!r}")):
            ReidConfig(min_visibility=bad)
    assert ReidConfig(dataset_size="small").dataset_size == "small"
    with pytest.raises(DataError, match=re.escape("'dataset_size' must be 'default' or 'small', got 'tiny'")):
        ReidConfig(dataset_size="tiny")


# ----------------------------------------------------------------------------------------- crops
def test_val_crops_by_hand(data_root: Path):
    c = sequence_crops(data_root, "val", TINY)
    # s1 track 1: frames 1-4, 3 of them evenly spread: linspace(0, 3, 3) = 0, 1.5, 3 -> rounded 0, 2, 3
    # -> frames 1, 3, 4; track 2: frames 1, 2 (visibility 0.6 >= 0.6; 0.5 and 0.59 are not);
    # track 3: one frame, left out; s2 track 1: a new identity (label 2), frames 1, 2.
    # Order: sequence, then frame, then track.
    np.testing.assert_array_equal(c.labels, [0, 1, 1, 0, 0, 2, 2])
    np.testing.assert_array_equal(c.frames, [1, 1, 2, 3, 4, 1, 2])
    np.testing.assert_array_equal(c.sequences, ["s1"] * 5 + ["s2"] * 2)
    assert c.images.shape == (7, 8, 8, 3) and c.images.dtype == np.uint8
    colours = {0: RED, 1: BLUE, 2: GREEN}
    for image, label in zip(c.images, c.labels):
        np.testing.assert_array_equal(image.reshape(-1, 3), np.tile(colours[label], (64, 1)))


def test_train_crops_are_a_seeded_shuffle_of_the_same_crops(data_root: Path):
    val = sequence_crops(data_root, "val", TINY)
    a, b = sequence_crops(data_root, "train", TINY), sequence_crops(data_root, "train", TINY)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.frames, val.frames) or not np.array_equal(a.labels, val.labels)  # shuffled
    key = lambda c: sorted(zip(c.sequences.tolist(), c.frames.tolist(), c.labels.tolist()))  # noqa: E731
    assert key(a) == key(val)
    colours = {0: RED, 1: BLUE, 2: GREEN}
    for image, label in zip(a.images, a.labels):  # images travel with their labels
        assert tuple(image[4, 4]) == colours[label]


def test_crop_limits_and_visibility(data_root: Path):
    # 4 crops allowed: red keeps all 4 frames; visibility 0.55: blue frames 1, 2 and 4 (0.59), not 3 (0.5)
    c = sequence_crops(data_root, "val", TINY.replace(max_crops_per_identity=4, min_visibility=0.55))
    np.testing.assert_array_equal(c.labels, [0, 1, 0, 1, 0, 0, 1, 2, 2])
    np.testing.assert_array_equal(c.frames, [1, 1, 2, 2, 3, 4, 4, 1, 2])
    # 1 crop per identity: linspace(0, n - 1, 1) = [0], the first frame
    one = sequence_crops(data_root, "val", TINY.replace(max_crops_per_identity=1))
    np.testing.assert_array_equal(one.labels, [0, 1, 2])
    np.testing.assert_array_equal(one.frames, [1, 1, 1])


def test_no_sequences_is_an_error(tmp_path: Path):
    with pytest.raises(DataError, match="no sequences in split 'val'"):
        sequence_crops(tmp_path, "val", TINY)
