"""``labkit eval segmentation`` and ``labkit eval tracking`` end to end (exit codes, JSON, errors)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import labkit.cli as cli
import labkit.metrics.cli as metrics_cli
from labkit.data.mot import read_mot, write_mot, write_seqinfo
from labkit.metrics.segmentation import ConfusionMatrix
from labkit.metrics.tracking import TrackingSequence, evaluate_sequences, evaluate_tracking
from test_metrics_tracking import MOTMETRICS_TUD, frames_from_rows, random_rows


@pytest.fixture
def run(monkeypatch, capsys):
    """``labkit ...`` with only this file's commands registered -> (exit code, stdout, stderr)."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("labkit.metrics.cli",))
    monkeypatch.setattr(metrics_cli, "EVAL_MODULES", ("labkit.metrics.cli_segmentation", "labkit.metrics.cli_tracking"))

    def _run(*argv):
        code = cli.main([str(a) for a in argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    return _run


# ----------------------------------------------------------------------------- segmentation
def _save(path: Path, mask: np.ndarray, mode: str = "L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(mask.astype(np.uint8), mode="L")
    if mode == "P":
        img = img.convert("P")
        img.putpalette([v for i in range(256) for v in (i, 255 - i, 0)])
    img.save(path)


@pytest.fixture
def mask_folders(tmp_path):
    rng = np.random.default_rng(0)
    pairs = []
    for name in ("val/a.png", "val/b.png", "c.png"):
        gt = rng.integers(0, 4, size=(12, 16))
        gt[:2] = 255
        pred = np.where(rng.random(gt.shape) < 0.7, np.where(gt == 255, 0, gt), rng.integers(0, 4, size=gt.shape))
        _save(tmp_path / "gt" / name, gt)
        _save(tmp_path / "pred" / name, pred, mode="P")  # palette PNGs give their indices
        pairs.append((gt, pred))
    return tmp_path / "gt", tmp_path / "pred", pairs


def test_segmentation_json_equals_direct_computation(run, mask_folders):
    gt_dir, pred_dir, pairs = mask_folders
    code, out, _ = run("eval", "segmentation", "--gt", gt_dir, "--pred", pred_dir, "--num-classes", 4, "--json")
    assert code == 0
    got = json.loads(out)
    cm = ConfusionMatrix(4)
    for gt, pred in pairs:
        cm.update(gt, pred)
    assert got["files"] == 3 and got["pixels"] == 3 * 10 * 16
    assert got["mean_iou"] == pytest.approx(cm.mean_iou()) and got["pixel_accuracy"] == pytest.approx(cm.pixel_accuracy())
    code, out, _ = run("eval", "segmentation", "--gt", gt_dir, "--pred", pred_dir, "--num-classes", 4,
                       "--class-names", "bg,disc,block,cone", "--boundary")
    assert code == 0 and "| 1 disc |" in out and "mean_boundary_f" in out


def test_segmentation_perfect_prediction_and_void_values_in_predictions(run, mask_folders, tmp_path):
    gt_dir, _, pairs = mask_folders
    code, _, err = run("eval", "segmentation", "--gt", gt_dir, "--pred", gt_dir, "--num-classes", 4)
    assert code == 1 and "prediction holds values [255] outside the class ids [0, 4)" in err
    for name, (gt, _) in zip(("val/a.png", "val/b.png", "c.png"), pairs):
        _save(tmp_path / "perfect" / name, np.where(gt == 255, 0, gt))
    code, out, _ = run("eval", "segmentation", "--gt", gt_dir, "--pred", tmp_path / "perfect", "--num-classes", 4,
                       "--boundary", "--json")
    got = json.loads(out)
    assert code == 0 and got["mean_iou"] == 1.0 and got["mean_boundary_f"] == 1.0 and got["mean_boundary_iou"] == 1.0


@pytest.mark.parametrize("damage, message", [
    (lambda p: (p / "val" / "b.png").unlink(), "have no counterpart here: val/b.png"),
    (lambda p: _save(p / "extra.png", np.zeros((12, 16))), "have no counterpart here: extra.png"),
    (lambda p: _save(p / "c.png", np.zeros((12, 15))), "c.png: prediction shape (12, 15) differs"),
    (lambda p: _save(p / "c.png", np.full((12, 16), 9)), "c.png: prediction holds values [9] outside"),
    (lambda p: Image.new("RGB", (16, 12)).save(p / "c.png"), "c.png: a label mask must be single-channel"),
    (lambda p: (p / "c.png").write_bytes(b"not a png"), "c.png: not an image file Pillow can read"),
])
def test_segmentation_bad_data_exits_1_naming_the_file(run, mask_folders, damage, message):
    gt_dir, pred_dir, _ = mask_folders
    damage(pred_dir)
    code, _, err = run("eval", "segmentation", "--gt", gt_dir, "--pred", pred_dir, "--num-classes", 4)
    assert code == 1 and message in err


def test_segmentation_usage_errors_exit_2(run, mask_folders, tmp_path):
    gt_dir, pred_dir, _ = mask_folders
    assert run("eval", "segmentation", "--gt", tmp_path / "nope", "--pred", pred_dir, "--num-classes", 4)[0] == 2
    assert run("eval", "segmentation", "--gt", gt_dir, "--pred", pred_dir, "--num-classes", 4,
               "--class-names", "a,b")[0] == 2
    assert run("eval", "segmentation", "--gt", gt_dir, "--pred", pred_dir, "--num-classes", 0)[0] == 2


def test_segmentation_on_real_camvid_masks(run, shared_data, tmp_path):
    annot = shared_data / "camvid-segnet" / "CamVid" / "valannot"
    files = sorted(annot.glob("*.png"))[:6]
    for a, b in zip(files, files[1:]):  # "predict" each frame with the next frame's labels (void -> sky)
        _save(tmp_path / "gt" / a.name, np.array(Image.open(a)))
        _save(tmp_path / "pred" / a.name, np.where(np.array(Image.open(b)) == 11, 0, np.array(Image.open(b))))
    code, out, _ = run("eval", "segmentation", "--gt", tmp_path / "gt", "--pred", tmp_path / "pred",
                       "--num-classes", 11, "--ignore-index", 11, "--boundary", "--json")
    got = json.loads(out)
    assert code == 0 and got["files"] == 5
    assert 0.3 < got["mean_iou"] < 0.99 and 0.5 < got["pixel_accuracy"] < 0.999
    assert got["mean_boundary_f"] is not None and got["mean_boundary_iou"] < got["mean_iou"]


# ----------------------------------------------------------------------------- tracking
def _sequence_folder(root: Path, pred_root: Path, name: str, seed: int) -> TrackingSequence:
    gt_rows, pred_rows = random_rows(seed)
    gt, pred = frames_from_rows(gt_rows, True), frames_from_rows(pred_rows, False)
    write_mot(gt, root / name / "gt" / "gt.txt", "gt")
    write_seqinfo(root / name / "seqinfo.ini", name=name, length=45, fps=10, width=640, height=480)
    write_mot(pred, pred_root / f"{name}.txt", "pred")
    return TrackingSequence(gt, pred, 45)


def test_tracking_single_files_equal_the_library(run, tmp_path):
    seq = _sequence_folder(tmp_path / "gt", tmp_path / "pred", "seqA", 1)
    code, out, _ = run("eval", "tracking", "--gt", tmp_path / "gt" / "seqA" / "gt" / "gt.txt",
                       "--pred", tmp_path / "pred" / "seqA.txt", "--preprocess", "none", "--json")
    assert code == 0
    got = json.loads(out)
    expected = evaluate_tracking(seq.gt, seq.pred, num_frames=45, preprocess="none").summary()
    assert got["sequences"]["seqA"]["counts"]["num_timesteps"] == 45  # from seqinfo.ini
    assert got["sequences"]["seqA"]["summary"] == pytest.approx(expected, abs=1e-12)


def test_tracking_folders_with_events_and_plot(run, tmp_path):
    seqs = {n: _sequence_folder(tmp_path / "gt", tmp_path / "pred", n, s) for n, s in (("s1", 2), ("s2", 3))}
    plot = tmp_path / "hota.png"
    code, out, _ = run("eval", "tracking", "--gt", tmp_path / "gt", "--pred", tmp_path / "pred", "--preprocess", "none",
                       "--events", "--plot", plot, "--json")
    assert code == 0 and plot.stat().st_size > 1000
    got = json.loads(out)
    expected = evaluate_sequences(seqs, preprocess="none")
    assert got["sequences"]["COMBINED"]["summary"] == pytest.approx(expected.summary(), abs=1e-12)
    for name in seqs:
        events = got["events"][name]
        assert sum(e["switch"] for e in events) == expected.summary(name)["IDSW"]
    code, out, _ = run("eval", "tracking", "--gt", tmp_path / "gt", "--pred", tmp_path / "pred", "--preprocess", "none",
                       "--events")
    assert code == 0 and "| COMBINED |" in out and "ID events of s1" in out


def test_tracking_cli_on_tud(run, shared_data):
    root = shared_data / "motchallenge-tud-campus" / "py-motmetrics" / "motmetrics" / "data"
    for name, expected in (("TUD-Campus", MOTMETRICS_TUD["TUD-Campus"]), ("TUD-Stadtmitte", MOTMETRICS_TUD["TUD-Stadtmitte"])):
        code, out, _ = run("eval", "tracking", "--gt", root / name / "gt.txt", "--pred", root / name / "test.txt",
                           "--preprocess", "mot15", "--json")
        got = json.loads(out)["sequences"]
        s = got["COMBINED"]["summary"]
        assert code == 0 and name in got
        assert (s["IDF1"], s["FP"], s["FN"], s["IDSW"], s["MOTA"]) == pytest.approx(
            (expected[0], expected[9], expected[10], expected[11], expected[13]), abs=1e-6)


def test_tracking_bad_data_exits_1(run, tmp_path):
    _sequence_folder(tmp_path / "gt", tmp_path / "pred", "s1", 4)
    _sequence_folder(tmp_path / "gt", tmp_path / "pred", "s2", 5)
    (tmp_path / "pred" / "s2.txt").unlink()
    code, _, err = run("eval", "tracking", "--gt", tmp_path / "gt", "--pred", tmp_path / "pred")
    assert code == 1 and "no tracker file for sequence s2" in err
    bad = tmp_path / "bad.txt"
    bad.write_text("1,1,10,10,5,5,1\n2,1,10,10,5\n")
    code, _, err = run("eval", "tracking", "--gt", tmp_path / "gt" / "s1" / "gt" / "gt.txt", "--pred", bad)
    assert code == 1 and "bad.txt: record line 2" in err
    bad.write_text("1,3,10,10,5,5,1\n1,3,20,10,5,5,1\n")
    code, _, err = run("eval", "tracking", "--gt", tmp_path / "gt" / "s1" / "gt" / "gt.txt", "--pred", bad)
    assert code == 1 and "id 3 appears twice in frame 1" in err
    bad.write_text("1,-1,10,10,5,5,0.9\n1,-1,20,10,5,5,0.8\n")
    code, _, err = run("eval", "tracking", "--gt", tmp_path / "gt" / "s1" / "gt" / "gt.txt", "--pred", bad)
    assert code == 1 and "bad.txt: record frame 1: track id(s) [-1] appear more than once" in err
    assert "detection file" in err
    assert read_mot(tmp_path / "pred" / "s1.txt", "pred")  # the good file still reads


def test_tracking_frames_beyond_seqinfo_exit_1(run, tmp_path):
    _sequence_folder(tmp_path / "gt", tmp_path / "pred", "s1", 6)
    (tmp_path / "pred" / "s1.txt").write_text("46,1,10,10,5,5,1,-1,-1,-1\n")
    code, _, err = run("eval", "tracking", "--gt", tmp_path / "gt", "--pred", tmp_path / "pred")
    assert code == 1 and "s1.txt: record frame 46: frame 46 is outside the sequence's frames 1..45" in err


def test_tracking_usage_errors_exit_2(run, tmp_path):
    _sequence_folder(tmp_path / "gt", tmp_path / "pred", "s1", 7)
    gt_file = tmp_path / "gt" / "s1" / "gt" / "gt.txt"
    assert run("eval", "tracking", "--gt", gt_file, "--pred", tmp_path / "pred")[0] == 2
    assert run("eval", "tracking", "--gt", gt_file, "--pred", tmp_path / "pred" / "s1.txt", "--threshold", 0)[0] == 2
    assert run("eval", "tracking", "--gt", tmp_path / "gt", "--pred", tmp_path / "pred", "--num-frames", 3)[0] == 2
