"""The embedded dataset generator (labkit.data.synth), on size="small" generated once per module."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

import labkit.data.synth as synth
from labkit.data.card import check_card
from labkit.data.coco import load_coco
from labkit.data.masks import rle_bbox, rle_to_mask
from labkit.data.mot import read_mot, read_seqinfo
from labkit.data.synth.artifacts import KINDS
from labkit.data.synth.config import MIN_VISIBLE_PIXELS, SIZES, SPLITS
from labkit.errors import DataError
from labkit.repro import sha256_file

SMALL = SIZES["small"]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("synth") / "small-seed0"
    return root, synth.generate_dataset(root, seed=0, size="small")


def _coco(root: Path, kind: str, split: str) -> dict:
    return json.loads((root / "annotations" / f"{kind}_{split}.json").read_text())


def _all_file_hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "manifest.json"}


def test_layout_and_manifest(small: tuple[Path, dict]) -> None:
    root, manifest = small
    assert json.loads((root / "manifest.json").read_text()) == manifest
    assert manifest["generator_version"] == synth.GENERATOR_VERSION and manifest["seed"] == 0 and manifest["size"] == "small"
    for split in SPLITS:
        assert f"annotations/instances_{split}.json" in manifest["sha256"]
        assert f"annotations/sequences_{split}.json" in manifest["sha256"]
    assert sum(c["images"] for c in manifest["counts"]["stills"].values()) == 60
    assert sum(c["frames"] for c in manifest["counts"]["sequences"].values()) == sum(SMALL.sequence_split) * SMALL.frames
    assert manifest["bytes_on_disk"] > 0 and manifest["wall_seconds"] > 0
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".")]  # no temp folders left
    assert not [f for f in check_card(root) if f.severity == "error"]


def test_same_seed_same_bytes_whatever_the_workers(small: tuple[Path, dict], tmp_path: Path) -> None:
    root, manifest = small
    again = synth.generate_dataset(tmp_path / "again", seed=0, size="small", workers=2)
    assert again["sha256"] == manifest["sha256"]
    assert _all_file_hashes(tmp_path / "again") == _all_file_hashes(root)


def test_classes_rare_star_and_size_buckets(small: tuple[Path, dict]) -> None:
    stills = small[1]["counts"]["stills"]
    per_class = {name: sum(c["per_class"][name] for c in stills.values()) for name in stills["train"]["per_class"]}
    assert all(n > 0 for n in per_class.values()), per_class
    assert 0 < per_class["star"] / sum(per_class.values()) <= 0.05
    assert all(c["per_class"]["star"] > 0 for c in stills.values())  # every split has the rare class
    buckets = {b: sum(c["size_buckets"][b] for c in stills.values()) for b in ("small", "medium", "large")}
    assert all(n > 0 for n in buckets.values()), buckets
    assert sum(c["crowd_regions"] for c in stills.values()) > 0


@pytest.mark.parametrize("kind", ["instances", "sequences"])
def test_masks_agree_with_boxes_area_and_visibility(small: tuple[Path, dict], kind: str) -> None:
    root = small[0]
    for split in SPLITS:
        for ann in _coco(root, kind, split)["annotations"]:
            mask = rle_to_mask(ann["segmentation"])
            assert rle_bbox(ann["segmentation"]) == ann["bbox"]
            assert ann["area"] == mask.sum() >= MIN_VISIBLE_PIXELS
            assert 0.0 <= ann["visibility"] <= 1.0


def test_semantic_masks_match_instances(small: tuple[Path, dict]) -> None:
    root = small[0]
    for split in SPLITS:
        ds = load_coco(root / "annotations" / f"instances_{split}.json")
        for rec in ds.images:
            sem = cv2.imread(str(root / rec.extra["semantic_mask"]), cv2.IMREAD_UNCHANGED)
            assert sem.shape == (rec.height, rec.width) and sem.dtype == np.uint8
            assert set(np.unique(sem)) <= {0, 1, 2, 3, 4, 5, 255}
            det = rec.detections
            masks = det.masks(rec.height, rec.width)
            crowd = np.array([c == 1 for c in det.get("iscrowd", [])], bool)
            covered = masks.any(axis=0) if len(det) else np.zeros(sem.shape, bool)
            for m, c, is_crowd in zip(masks, det.class_id, crowd):
                assert (sem[m] == (255 if is_crowd else c)).all()
            assert ((sem == 255) == (masks[crowd].any(axis=0) if crowd.any() else False)).all()
            # class pixels without an instance: only fragments too small to annotate
            n, _, stats, _ = cv2.connectedComponentsWithStats(((sem > 0) & ~covered).astype(np.uint8), connectivity=8)
            assert (stats[1:, cv2.CC_STAT_AREA] < MIN_VISIBLE_PIXELS).all()


def test_splits_disjoint_by_scene_and_sequence(small: tuple[Path, dict]) -> None:
    root = small[0]
    scenes, sequences = {}, {}
    for split in SPLITS:
        stills, frames = _coco(root, "instances", split), _coco(root, "sequences", split)
        scenes[split] = {im["scene_id"] for im in stills["images"]}
        sequences[split] = {im["sequence"] for im in frames["images"]}
        assert all(im["file_name"].startswith(f"{split}/") and im["split"] == split for im in stills["images"] + frames["images"])
        assert scenes[split] and sequences[split]
        bursts = {(im["scene_id"], im["burst_id"]) for im in stills["images"]}
        assert len(bursts) < len(stills["images"])  # bursts of near-duplicates exist
    for a, b in [("train", "val"), ("train", "test"), ("val", "test")]:
        assert not scenes[a] & scenes[b] and not sequences[a] & sequences[b]


def test_mot_ground_truth_agrees_with_coco(small: tuple[Path, dict]) -> None:
    root = small[0]
    pans, entering, occluded = 0, 0, 0
    for split in SPLITS:
        coco = load_coco(root / "annotations" / f"sequences_{split}.json", root / "sequences")
        for name in sorted({r.extra["sequence"] for r in coco.images}):
            seq_dir = root / "sequences" / split / name
            info = read_seqinfo(seq_dir / "seqinfo.ini")
            gt = read_mot(seq_dir / "gt" / "gt.txt", "gt")
            frames = [r for r in coco.images if r.extra["sequence"] == name]
            assert info["length"] == len(frames) == SMALL.frames and (info["width"], info["height"]) == (320, 240)
            assert len(list((seq_dir / "img1").glob("*.jpg"))) == info["length"]
            pans += frames[0].extra["pan"]
            first_seen: dict[int, int] = {}
            for rec in frames:
                g = gt.get(rec.extra["frame_index"])
                d = rec.detections
                if g is None:
                    assert len(d) == 0
                    continue
                assert (g.data["consider"] == 1).all()
                occluded += int((g.data["visibility"] < 0.5).sum())
                row = {int(t): k for k, t in enumerate(g.track_id)}
                for t in g.track_id:
                    first_seen.setdefault(int(t), rec.extra["frame_index"])
                for k, t in enumerate(d.track_id):
                    j = row[int(t)]
                    assert d.class_id[k] == g.class_id[j] and d.data["visibility"][k] == g.data["visibility"][j]
                    x, y, w, h = d.xywh[k]
                    gx, gy, gw, gh = g.xywh[j]
                    assert gx <= x and gy <= y and x + w <= gx + gw and y + h <= gy + gh  # visible box inside amodal box
            entering += sum(f > 1 for f in first_seen.values())
    assert pans >= 1 and entering >= 1 and occluded >= 1


def test_artifacts_recorded(small: tuple[Path, dict]) -> None:
    images = [im for s in SPLITS for im in _coco(small[0], "instances", s)["images"]]
    with_artifacts = [im["artifacts"] for im in images if im["artifacts"]]
    assert 0 < len(with_artifacts) < len(images)
    assert all(set(a) <= set(KINDS) and all(isinstance(p, dict) and p for p in a.values()) for a in with_artifacts)
    assert all(im["camera_id"] in {"c0", "c1", "c2", "c3"} for im in images)


def test_io_cases(small: tuple[Path, dict]) -> None:
    io = small[0] / "io_cases"
    coco = json.loads((io / "annotations.json").read_text())
    pictures = []
    for im in coco["images"]:
        with Image.open(io / im["file_name"]) as raw:
            stored = raw.size
            shown = np.asarray(ImageOps.exif_transpose(raw).convert("RGB"), dtype=np.float32)
        assert shown.shape[:2] == (im["height"], im["width"])
        if im["file_name"] == "exif_orientation_6.jpg":
            assert stored == (im["height"], im["width"])
        pictures.append(shown)
    assert max(float(np.abs(p - pictures[0]).mean()) for p in pictures[1:3]) < 4  # the JPEGs show one picture
    assert cv2.imread(str(io / "rgb16.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    assert cv2.imread(str(io / "gray.png"), cv2.IMREAD_UNCHANGED).ndim == 2
    assert cv2.imread(str(io / "rgba.png"), cv2.IMREAD_UNCHANGED).shape[2] == 4
    assert len(coco["annotations"]) == 3 * len(coco["images"])


def test_ensure_dataset_is_idempotent(small: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = small[0]
    before = (root / "manifest.json").stat().st_mtime_ns
    monkeypatch.setenv("LABKIT_DATA", str(root.parent))
    assert synth.ensure_dataset(seed=0, size="small") == root
    assert synth.default_root(0, "default") == root.parent / "default-seed0"  # another size, another folder
    assert (root / "manifest.json").stat().st_mtime_ns == before
    calls = []
    monkeypatch.setattr(synth, "generate_dataset", lambda out, seed, size: calls.append((Path(out), seed, size)))
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / "manifest.json").write_text(json.dumps({"generator_version": "0.0.0", "seed": 0, "size": "small"}))
    synth.ensure_dataset(stale, seed=0, size="small")
    synth.ensure_dataset(root, seed=1, size="small")
    synth.ensure_dataset(tmp_path / "missing", seed=0, size="small")
    assert calls == [(stale, 0, "small"), (root, 1, "small"), (tmp_path / "missing", 0, "small")]
    monkeypatch.delenv("LABKIT_DATA")
    assert synth.default_root(3, "small").parts[-3:] == ("data", "generated", "small-seed3")


def test_failed_run_leaves_nothing_and_unrelated_folders_are_safe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import labkit.data.synth.pipeline as pipeline

    def boom(out_dir: Path, *args: object) -> dict:
        (out_dir / "half.txt").write_text("half-written")
        raise RuntimeError("interrupted")

    monkeypatch.setattr(pipeline, "build", boom)
    with pytest.raises(RuntimeError):
        synth.generate_dataset(tmp_path / "ds", size="small")
    assert os.listdir(tmp_path) == []
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not a generated dataset"):
        synth.generate_dataset(tmp_path / "mine", size="small")
    with pytest.raises(DataError, match="size"):
        synth.generate_dataset(tmp_path / "x", size="huge")
    with pytest.raises(DataError, match="seed"):
        synth.ensure_dataset(tmp_path / "x", seed=-1)
