"""Group splits, perceptual hashes, leakage report and trivial baselines (labkit.data.splits).

The fixture is a small dataset of camera bursts: 6 scenes x 4 shots that differ by a 1-px
jitter, sensor noise and JPEG re-encoding. An image-level split of it must leak (shared
scenes, near-duplicate pairs, ``labkit data leakage`` exits 1); a split by scene must not.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from labkit.cli import main
from labkit.data.annotations import Dataset, Detections, ImageRecord
from labkit.data.coco import save_coco
from labkit.data.splits import (
    DuplicatePair, check_splits, dhash, group_overlaps, group_split, hamming_distances, leakage_report,
    majority_class_baseline, mean_box_baseline, naive_split, near_duplicates, phash, split_dataset,
)

SCENES, SHOTS, H, W = 6, 4, 72, 96
CATEGORIES = [{"id": i, "name": n} for i, n in enumerate(("disc", "block", "cone"), start=1)]


def _scene(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A smooth random background with two objects: (image, xywh boxes, class ids)."""
    low = rng.uniform(0, 255, (4, 5, 3)).astype(np.float32)
    img = cv2.resize(low, (W, H), interpolation=cv2.INTER_CUBIC)
    boxes = []
    for _ in range(2):
        x, y = int(rng.integers(0, W - 20)), int(rng.integers(0, H - 20))
        w, h = int(rng.integers(8, 20)), int(rng.integers(8, 20))
        cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), tuple(float(v) for v in rng.integers(0, 256, 3)), -1)
        boxes.append([x, y, w, h])
    return np.clip(img, 0, 255).astype(np.uint8), np.array(boxes, float), rng.permutation([1, 2, 3])[:2]


def _shot(rng: np.random.Generator, img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One burst frame: shifted by up to 1 px, noisy, JPEG-compressed; returns (image, shift)."""
    shift = rng.integers(-1, 2, 2)
    m = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
    out = cv2.warpAffine(img, m, (W, H), borderMode=cv2.BORDER_REFLECT)
    out = np.clip(out + rng.normal(0, 3, out.shape), 0, 255).astype(np.uint8)
    return cv2.imdecode(cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, 90])[1], cv2.IMREAD_COLOR), shift


@pytest.fixture(scope="module")
def bursts() -> list[tuple[ImageRecord, np.ndarray]]:
    """24 (record, RGB image) pairs: 6 scenes x 4 near-duplicate shots."""
    rng = np.random.default_rng(7)
    out = []
    for s in range(SCENES):
        img, boxes, classes = _scene(rng)
        for k in range(SHOTS):
            shot, shift = _shot(rng, img)
            det = Detections(boxes + [shift[0], shift[1], 0, 0], classes, data={"iscrowd": np.zeros(2, int)})
            rec = ImageRecord(s * SHOTS + k + 1, f"s{s:02d}_{k}.jpg", W, H, det,
                              extra={"scene_id": f"s{s:02d}", "camera_id": 1, "burst_id": 0})
            out.append((rec, shot))
    return out


def _write(root: Path, bursts: list, assignment: dict[str, list[int]]) -> Path:
    """Lay the records out like the embedded dataset under ``root``."""
    by_id = {rec.id: (rec, img) for rec, img in bursts}
    for split, ids in assignment.items():
        records = []
        for i in ids:
            rec, img = by_id[i]
            rec = ImageRecord(rec.id, f"{split}/{rec.file_name}", rec.width, rec.height, rec.detections, dict(rec.extra))
            (root / "images" / split).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / "images" / rec.file_name), img)
            records.append(rec)
        save_coco(Dataset(CATEGORIES, records), root / "annotations" / f"instances_{split}.json")
    return root


def _ids_and_scenes(bursts: list) -> tuple[list[int], list[str]]:
    return [r.id for r, _ in bursts], [r.extra["scene_id"] for r, _ in bursts]


# --------------------------------------------------------------------------- splitting
def test_group_split_keeps_groups_whole_and_is_deterministic():
    keys = list(range(100))
    groups = [k // 5 for k in keys]  # 20 groups of 5
    parts = group_split(keys, groups, seed=3)
    assert sorted(sum(parts.values(), [])) == keys
    seen = {g: {s for s, ks in parts.items() if any(groups[k] == g for k in ks)} for g in set(groups)}
    assert all(len(s) == 1 for s in seen.values())
    assert [len(parts[s]) for s in ("train", "val", "test")] == [70, 15, 15]
    assert parts == group_split(keys, groups, seed=3)
    assert parts != group_split(keys, groups, seed=4)


def test_group_split_gives_every_split_a_group_when_possible():
    parts = group_split(list("abc"), [1, 2, 3], (0.7, 0.15, 0.15), seed=0)
    assert all(len(v) == 1 for v in parts.values())


def test_group_split_fills_splits_by_images_not_groups():
    """Uneven groups: split fullness counts images. Hand-worked with seed 1, which shuffles the
    groups [big, a, b, c, d] into the order [d, big, a, b, c] (numpy's documented permutation,
    checked below). Targets are 5 and 5 images:
    d -> x (tie at 0, equal fractions: first split), x=1; big (6) -> y (0 < 1/5), y=6;
    a, b, c -> x (x is at most 4/5 full, y 6/5). Counting groups instead would send b to y."""
    keys = list(range(10))
    groups = ["big"] * 6 + ["a", "b", "c", "d"]
    assert np.random.default_rng(1).permutation(5).tolist() == [4, 0, 1, 2, 3]
    parts = group_split(keys, groups, (0.5, 0.5), seed=1, names=("x", "y"))
    assert parts == {"x": [6, 7, 8, 9], "y": [0, 1, 2, 3, 4, 5]}


@pytest.mark.parametrize("fractions, expected", [
    ((0.2, 0.8), "y"),
    ((0.8, 0.2), "x"),
    ((0.3, 0.3, 0.4), "z"),
])
def test_group_split_ties_go_to_the_larger_fraction(fractions, expected):
    """The first group meets all splits empty (a tie): it joins the split with the larger fraction."""
    names = ("x", "y", "z")[:len(fractions)]
    parts = group_split(["k1", "k2"], ["g", "g"], fractions, seed=0, names=names)
    assert parts[expected] == ["k1", "k2"]
    assert all(parts[n] == [] for n in names if n != expected)


def test_naive_split_sizes_and_bad_arguments():
    parts = naive_split(range(40), (0.5, 0.25, 0.25), seed=1)
    assert [len(parts[s]) for s in ("train", "val", "test")] == [20, 10, 10]
    with pytest.raises(ValueError, match="sum to 1"):
        naive_split(range(4), (0.5, 0.2, 0.2))
    with pytest.raises(ValueError, match="fractions"):
        group_split([1, 2], [1, 2], (0.5, 0.5))
    with pytest.raises(ValueError, match="2 keys but 1 group"):
        group_split([1, 2], [1])


def test_split_dataset_by_scene_and_missing_field(bursts):
    ds = Dataset(CATEGORIES, [r for r, _ in bursts], source="bursts.json")
    parts = split_dataset(ds, by="scene_id", seed=0)
    scenes = {s: {r.extra["scene_id"] for r in p.images} for s, p in parts.items()}
    assert not (scenes["train"] & scenes["val"]) and not (scenes["train"] & scenes["test"])
    assert sum(len(p) for p in parts.values()) == len(ds)
    same_ids = Dataset(CATEGORIES, [ImageRecord(1, r.file_name, W, H, extra=r.extra) for r, _ in bursts])
    assert [len(p) for p in split_dataset(same_ids, seed=0).values()] == [len(p) for p in parts.values()]
    with pytest.raises(ValueError, match="bursts.json: record 1: image has no 'camera'"):
        split_dataset(ds, by="camera")


def test_split_dataset_passes_names_fractions_and_callable_groups(bursts):
    ds = Dataset(CATEGORIES, [r for r, _ in bursts], source="bursts.json")
    by_fn = split_dataset(ds, by=lambda r: r.extra["scene_id"], fractions=(0.5, 0.5), seed=0, names=("a", "b"))
    by_key = split_dataset(ds, by="scene_id", fractions=(0.5, 0.5), seed=0, names=("a", "b"))
    assert list(by_fn) == ["a", "b"] and [len(p) for p in by_fn.values()] == [12, 12]  # 3 scenes x 4 shots each
    assert {s: [r.id for r in p.images] for s, p in by_fn.items()} == {s: [r.id for r in p.images] for s, p in by_key.items()}
    naive = split_dataset(ds, by=None, fractions=(0.25, 0.75), seed=0, names=("small", "large"))
    assert [len(p) for p in naive.values()] == [6, 18]


# --------------------------------------------------------------------------- hashes
def test_hamming_distances_match_python_popcount():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2**63, 7, dtype=np.uint64) * 2 + 1
    b = rng.integers(0, 2**63, 5, dtype=np.uint64)
    expected = [[bin(int(x) ^ int(y)).count("1") for y in b] for x in a]
    assert hamming_distances(a, b).tolist() == expected
    assert hamming_distances([2**64 - 1], [0]).tolist() == [[64]]


@pytest.mark.parametrize("fn", [dhash, phash])
def test_hashes_see_bursts_alike_and_scenes_apart(bursts, fn):
    h = [fn(img) for _, img in bursts]
    d = hamming_distances(h, h)
    scene = np.repeat(np.arange(SCENES), SHOTS)
    same = d[(scene[:, None] == scene[None]) & ~np.eye(len(h), dtype=bool)]
    other = d[scene[:, None] != scene[None]]
    assert np.median(same) <= 8 and other.min() > 12, (np.median(same), other.min())
    img = bursts[0][1]
    assert fn(img) == fn(img.copy()) and 0 <= fn(img) < 2**64
    assert hamming_distances([fn(img)], [fn(np.clip(img.astype(int) * 0.7, 0, 255).astype(np.uint8))])[0, 0] <= 4


def test_near_duplicates_across_splits_only(tmp_path, bursts):
    paths = []
    for rec, img in bursts[:8]:  # scenes 0 and 1
        paths.append(tmp_path / rec.file_name)
        cv2.imwrite(str(paths[-1]), img)
    pairs = near_duplicates({"train": paths[:3], "val": [paths[3], paths[4]], "test": paths[5:]}, max_distance=10)
    assert all(isinstance(p, DuplicatePair) and p.split_a != p.split_b for p in pairs)
    files = {(Path(p.file_a).name, Path(p.file_b).name) for p in pairs}
    assert ("s00_0.jpg", "s00_3.jpg") in files or ("s00_1.jpg", "s00_3.jpg") in files
    assert not any(a[:3] != b[:3] for a, b in files)  # never across scenes
    assert pairs == sorted(pairs, key=lambda p: (p.distance, p.split_a, p.file_a, p.split_b, p.file_b))
    assert near_duplicates({"train": paths[:4], "val": paths[4:]}, max_distance=10) == []


def test_group_overlaps():
    found = group_overlaps({"train": ["a", "b", "b", None], "val": ["b", "c", None], "test": ["c"]}, "scene_id")
    assert [(g.value, g.counts) for g in found] == [("b", {"train": 2, "val": 1}), ("c", {"val": 1, "test": 1})]
    assert group_overlaps({"train": ["a"], "val": ["b"]}, "scene_id") == []
    # group values of mixed types (ids from one source, names from another) are ordered as text
    mixed = group_overlaps({"train": [3, "a", 10], "val": [10, 3, "a"]}, "scene_id")
    assert [g.value for g in mixed] == ["10", "3", "a"]


# --------------------------------------------------------------------------- baselines
def _boxes_dataset(boxes: list[list[float]], classes: list[int]) -> Dataset:
    recs = [ImageRecord(i + 1, f"{i}.jpg", 100, 100, Detections([b], [c])) for i, (b, c) in enumerate(zip(boxes, classes))]
    return Dataset(CATEGORIES, recs)


def test_majority_class_baseline():
    train = _boxes_dataset([[0, 0, 10, 10]] * 4, [1, 1, 1, 2])
    res = majority_class_baseline(train, _boxes_dataset([[0, 0, 10, 10]] * 4, [1, 2, 3, 1]), "val")
    assert res.score == pytest.approx(0.5) and not res.suspicious and "'disc'" in res.detail
    assert majority_class_baseline(train, _boxes_dataset([[0, 0, 1, 1]] * 5, [1] * 5)).suspicious
    crowd_only = Dataset(CATEGORIES, [ImageRecord(1, "0.jpg", 100, 100, Detections([[0, 0, 5, 5]], [1],
                                                                                    data={"iscrowd": np.array([1])}))],
                         source="train.json")
    with pytest.raises(ValueError, match="train.json: the training split has no"):
        majority_class_baseline(crowd_only, train)


def test_mean_box_baseline_flags_fixed_layouts():
    train = _boxes_dataset([[40, 40, 20, 20], [42, 38, 20, 20]], [1, 1])
    fixed = mean_box_baseline(train, _boxes_dataset([[41, 39, 20, 20], [0, 0, 10, 10]], [1, 1]), "test")
    assert fixed.score == pytest.approx(0.5) and fixed.suspicious
    scattered = mean_box_baseline(train, _boxes_dataset([[0, 0, 10, 10], [41, 39, 20, 20]], [1, 2]), "test")
    assert scattered.score == 0.0 and not scattered.suspicious  # the only centred box is another class


# --------------------------------------------------------------------------- the report and the CLI
def test_image_level_split_of_bursts_leaks(tmp_path, bursts):
    ids, _ = _ids_and_scenes(bursts)
    root = _write(tmp_path / "naive", bursts, naive_split(ids, seed=0))
    report = leakage_report(root)
    assert report.leaks and not report.ok
    assert report.pairs and all(p.split_a != p.split_b for p in report.pairs)
    assert all(p.file_a.startswith("images/") for p in report.pairs)
    assert {g.field for g in report.group_overlaps} >= {"stills: scene_id", "stills: burst (scene_id/camera_id/burst_id)"}
    md = report.to_markdown()
    assert "LEAKAGE" in md and "## Near-duplicate pairs across splits\n\n| split | file | split | file | distance |" in md
    assert "## Groups in more than one split\n\n| field | value | images per split |" in md
    assert set(report.to_dict()) >= {"ok", "leaks", "pairs", "group_overlaps", "baselines"}
    assert main(["data", "leakage", str(root)]) == 1
    assert main(["data", "leakage", str(root), "--max-distance", "99"]) == 2


def test_group_split_of_bursts_does_not_leak(tmp_path, bursts, capsys):
    ids, scenes = _ids_and_scenes(bursts)
    root = _write(tmp_path / "group", bursts, group_split(ids, scenes, seed=0))
    report = leakage_report(root)
    assert report.ok, report.to_markdown()
    assert report.pairs == [] and report.group_overlaps == []
    assert {b.name for b in report.baselines} == {"majority_class_accuracy", "mean_box_hit_rate"}
    capsys.readouterr()
    assert main(["data", "leakage", str(root), "--json", "--out", str(tmp_path / "leak.md")]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["ok"] and payload["pairs"] == [] and payload["settings"]["images"] == {"train": 16, "val": 4, "test": 4}
    assert (tmp_path / "leak.md").read_text().startswith("# Leakage report")


def test_check_splits_in_memory_and_sequences(tmp_path, bursts):
    """Frames of one sequence in two splits are a group overlap even without stills leaking."""
    root = tmp_path / "mem"
    _write(root, bursts, {"all": [r.id for r, _ in bursts]})
    full = Dataset(CATEGORIES, [ImageRecord(r.id, f"all/{r.file_name}", W, H, r.detections, dict(r.extra))
                                for r, _ in bursts], root=root / "images")
    stills = split_dataset(full, by="scene_id", seed=0)
    frames = {s: Dataset(CATEGORIES, [ImageRecord(1, "all/s00_0.jpg", W, H, extra={"sequence": name})],
                         root=root / "images") for s, name in (("train", "seq01"), ("val", "seq01"))}
    report = check_splits(stills, sequences=frames)
    assert [(g.field, g.value) for g in report.group_overlaps] == [("sequences: sequence", "seq01")]
    assert report.to_dict()["leaks"] is True


def test_leakage_report_needs_annotations(tmp_path):
    with pytest.raises(ValueError, match="no annotations/instances_<split>.json"):
        leakage_report(tmp_path)
    assert main(["data", "leakage", str(tmp_path / "missing")]) == 2


def test_leakage_report_checks_sequences_unless_told_not_to(tmp_path, bursts):
    """By default the report also reads ``sequences_<split>.json``: one sequence with frames in
    train and val is a group overlap (the stills, split by scene, do not leak);
    ``include_sequences=False`` leaves the sequence files unread."""
    ids, scenes = _ids_and_scenes(bursts)
    root = _write(tmp_path / "seq", bursts, group_split(ids, scenes, seed=0))
    rng = np.random.default_rng(3)
    for split in ("train", "val"):
        (root / "sequences" / split).mkdir(parents=True)
        cv2.imwrite(str(root / "sequences" / split / "f1.png"), rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
        frame = ImageRecord(1, f"{split}/f1.png", W, H, extra={"sequence": "seq01"})
        save_coco(Dataset(CATEGORIES, [frame]), root / "annotations" / f"sequences_{split}.json")
    report = leakage_report(root)
    assert [(g.field, g.value) for g in report.group_overlaps] == [("sequences: sequence", "seq01")]
    assert report.leaks
    stills_only = leakage_report(root, include_sequences=False)
    assert stills_only.group_overlaps == [] and stills_only.ok, stills_only.to_markdown()
