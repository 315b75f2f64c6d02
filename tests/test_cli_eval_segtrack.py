"""``labkit eval segmentation`` and ``labkit eval tracking`` end to end (exit codes, JSON, errors)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sklearn.metrics import confusion_matrix

import labkit.cli as cli
import labkit.metrics.cli as metrics_cli
from labkit.data.mot import read_mot, write_mot, write_seqinfo
from test_metrics_tracking import MOTMETRICS_TUD, frames_from_rows, random_rows, trackeval_file_based


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


def _sklearn_scores(pairs, num_classes: int, ignore: int = 255) -> dict:
    """Per-class IoU and Dice from scikit-learn's confusion matrix (rows: gt, columns: prediction)
    of the non-void pixels: IoU = n_ii / (t_i + p_i - n_ii), Dice = 2 n_ii / (t_i + p_i)."""
    gt = np.concatenate([g.ravel() for g, _ in pairs])
    pred = np.concatenate([p.ravel() for _, p in pairs])
    keep = gt != ignore
    m = confusion_matrix(gt[keep], pred[keep], labels=list(range(num_classes))).astype(float)
    tp, t, p = np.diag(m), m.sum(axis=1), m.sum(axis=0)
    present = (t + p) > 0
    iou, dice = tp[present] / (t + p - tp)[present], 2 * tp[present] / (t + p)[present]
    return {"pixels": int(m.sum()), "pixel_accuracy": tp.sum() / m.sum(), "mean_iou": iou.mean(),
            "mean_dice": dice.mean(), "iou": iou.tolist(), "dice": dice.tolist()}


def test_segmentation_json_equals_scikit_learn(run, mask_folders):
    gt_dir, pred_dir, pairs = mask_folders
    code, out, _ = run("eval", "segmentation", "--gt", gt_dir, "--pred", pred_dir, "--num-classes", 4, "--json")
    assert code == 0
    got = json.loads(out)
    ref = _sklearn_scores(pairs, 4)
    assert got["files"] == 3 and got["pixels"] == ref["pixels"] == 3 * 10 * 16
    assert got["mean_iou"] == pytest.approx(ref["mean_iou"], abs=1e-12)
    assert got["mean_dice"] == pytest.approx(ref["mean_dice"], abs=1e-12)
    assert got["pixel_accuracy"] == pytest.approx(ref["pixel_accuracy"], abs=1e-12)
    assert [c["iou"] for c in got["per_class"]] == pytest.approx(ref["iou"], abs=1e-12)
    assert [c["dice"] for c in got["per_class"]] == pytest.approx(ref["dice"], abs=1e-12)
    code, out, _ = run("eval", "segmentation", "--gt", gt_dir, "--pred", pred_dir, "--num-classes", 4,
                       "--class-names", "bg,disc,block,cone", "--boundary")
    assert code == 0 and "| 1 disc |" in out and "mean_boundary_f" in out


def test_segmentation_hand_worked_dice_and_iou(run, tmp_path):
    """gt [[0 0 1] [1 1 void]], prediction [[0 1 1] [1 0 0]]; the void pixel is not counted.
    Class 0: 2 gt, 2 predicted, 1 shared -> Dice 2*1/4 = 1/2, IoU 1/3.
    Class 1: 3 gt, 3 predicted, 2 shared -> Dice 2*2/6 = 2/3, IoU 2/4 = 1/2.
    Pixel accuracy 3/5; mean Dice 7/12; mIoU 5/12."""
    _save(tmp_path / "gt" / "a.png", np.array([[0, 0, 1], [1, 1, 255]]))
    _save(tmp_path / "pred" / "a.png", np.array([[0, 1, 1], [1, 0, 0]]))
    code, out, _ = run("eval", "segmentation", "--gt", tmp_path / "gt", "--pred", tmp_path / "pred",
                       "--num-classes", 2, "--json")
    got = json.loads(out)
    assert code == 0 and got["pixels"] == 5
    assert [c["dice"] for c in got["per_class"]] == pytest.approx([1 / 2, 2 / 3], abs=1e-12)
    assert [c["iou"] for c in got["per_class"]] == pytest.approx([1 / 3, 1 / 2], abs=1e-12)
    assert (got["pixel_accuracy"], got["mean_dice"], got["mean_iou"]) == pytest.approx((3 / 5, 7 / 12, 5 / 12), abs=1e-12)


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
def _sequence_folder(root: Path, pred_root: Path, name: str, seed: int) -> None:
    gt_rows, pred_rows = random_rows(seed)
    gt, pred = frames_from_rows(gt_rows, True), frames_from_rows(pred_rows, False)
    write_mot(gt, root / name / "gt" / "gt.txt", "gt")
    write_seqinfo(root / name / "seqinfo.ini", name=name, length=45, fps=10, width=640, height=480)
    write_mot(pred, pred_root / f"{name}.txt", "pred")


def _trackeval_layout(tmp: Path, seeds: dict[str, int], benchmark: str = "MOT15") -> dict:
    """Random sequences written once in TrackEval's MotChallenge2DBox layout (gt/<seq>/gt/gt.txt,
    trackers/labkit/data/<seq>.txt) plus seqinfo.ini; returns TrackEval's own file-based results.
    MOT15: every row is class 1 and considered; MOT17: MOTChallenge classes and zero-marked rows,
    which TrackEval's MOT17 preprocessing removes."""
    rows = {name: (*random_rows(seed, mot_classes=benchmark != "MOT15"), 45) for name, seed in seeds.items()}
    with contextlib.redirect_stdout(io.StringIO()):  # TrackEval prints; the CLI's stdout must stay pure JSON
        theirs = trackeval_file_based(tmp, rows, benchmark)
    for name in seeds:
        write_seqinfo(tmp / "gt" / name / "seqinfo.ini", name=name, length=45, fps=10, width=640, height=480)
    return theirs


#: The CLI's summary names -> TrackEval's (metric, field), written out here rather than taken from labkit.
TRACKEVAL_FIELDS = {
    "HOTA": ("HOTA", "HOTA"), "DetA": ("HOTA", "DetA"), "AssA": ("HOTA", "AssA"), "LocA": ("HOTA", "LocA"),
    "DetRe": ("HOTA", "DetRe"), "DetPr": ("HOTA", "DetPr"), "AssRe": ("HOTA", "AssRe"), "AssPr": ("HOTA", "AssPr"),
    "HOTA(0)": ("HOTA", "HOTA(0)"), "MOTA": ("CLEAR", "MOTA"), "MOTP": ("CLEAR", "MOTP"), "MODA": ("CLEAR", "MODA"),
    "Recall": ("CLEAR", "CLR_Re"), "Precision": ("CLEAR", "CLR_Pr"), "TP": ("CLEAR", "CLR_TP"),
    "FP": ("CLEAR", "CLR_FP"), "FN": ("CLEAR", "CLR_FN"), "IDSW": ("CLEAR", "IDSW"), "Frag": ("CLEAR", "Frag"),
    "MT": ("CLEAR", "MT"), "PT": ("CLEAR", "PT"), "ML": ("CLEAR", "ML"), "IDF1": ("Identity", "IDF1"),
    "IDP": ("Identity", "IDP"), "IDR": ("Identity", "IDR"), "IDTP": ("Identity", "IDTP"),
    "IDFP": ("Identity", "IDFP"), "IDFN": ("Identity", "IDFN"),
}
COUNTS = {"TP", "FP", "FN", "IDSW", "Frag", "MT", "PT", "ML", "IDTP", "IDFP", "IDFN"}


def _trackeval_summary(res: dict) -> dict:
    """TrackEval's result fields under the CLI's summary names; HOTA-family fields are curves
    over alpha (an array), reported as their mean."""
    out = {}
    for name, (metric, key) in TRACKEVAL_FIELDS.items():
        value = res[metric][key]
        out[name] = float(np.mean(value)) if np.ndim(value) else value
    return out


def _assert_summary_equals_trackeval(summary: dict, res: dict) -> None:
    expected = _trackeval_summary(res)
    assert set(summary) == set(expected)
    for name, value in expected.items():
        if name in COUNTS:
            assert summary[name] == value, name
        else:
            assert summary[name] == pytest.approx(value, rel=0, abs=1e-9), name


def test_tracking_single_files_equal_trackeval_file_based(run, tmp_path):
    theirs = _trackeval_layout(tmp_path, {"seqA": 1})
    code, out, _ = run("eval", "tracking", "--gt", tmp_path / "gt" / "seqA" / "gt" / "gt.txt",
                       "--pred", tmp_path / "trackers" / "labkit" / "data" / "seqA.txt", "--preprocess", "mot15", "--json")
    assert code == 0
    got = json.loads(out)
    assert got["sequences"]["seqA"]["counts"]["num_timesteps"] == 45  # from seqinfo.ini
    _assert_summary_equals_trackeval(got["sequences"]["seqA"]["summary"], theirs["seqA"])
    assert got["sequences"]["seqA"]["summary"]["IDSW"] > 0 and got["sequences"]["seqA"]["summary"]["FP"] > 0


def test_tracking_folders_with_events_and_plot_equal_trackeval(run, tmp_path):
    theirs = _trackeval_layout(tmp_path, {"s1": 2, "s2": 3})
    gt, pred = tmp_path / "gt", tmp_path / "trackers" / "labkit" / "data"
    plot = tmp_path / "hota.png"
    code, out, _ = run("eval", "tracking", "--gt", gt, "--pred", pred, "--preprocess", "mot15",
                       "--events", "--plot", plot, "--json")
    assert code == 0 and plot.stat().st_size > 1000
    got = json.loads(out)
    for name in ("s1", "s2", "COMBINED"):
        _assert_summary_equals_trackeval(got["sequences"][name]["summary"], theirs[name])
    for name in ("s1", "s2"):  # each ID event listed is one of TrackEval's switches / fragmentations
        events = got["events"][name]
        assert sum(e["switch"] for e in events) == theirs[name]["CLEAR"]["IDSW"]
        assert sum(e["fragmentation"] for e in events) == theirs[name]["CLEAR"]["Frag"]
    code, out, _ = run("eval", "tracking", "--gt", gt, "--pred", pred, "--preprocess", "mot15", "--events")
    assert code == 0 and "| COMBINED |" in out and "ID events of s1" in out


def test_tracking_default_mot17_preprocessing_equals_trackeval(run, tmp_path):
    """The default --preprocess mot17 reads the class column (MOT16+ layout) and drops what
    TrackEval's MOT17 preprocessing drops (distractor classes, zero-marked rows)."""
    theirs = _trackeval_layout(tmp_path, {"m1": 5, "m2": 6}, "MOT17")
    code, out, _ = run("eval", "tracking", "--gt", tmp_path / "gt", "--pred", tmp_path / "trackers" / "labkit" / "data",
                       "--json")
    got = json.loads(out)
    assert code == 0 and got["settings"]["preprocess"] == "mot17"
    assert sum(got["sequences"][n]["counts"]["removed_gt"] for n in ("m1", "m2")) > 0  # preprocessing did act
    for name in ("m1", "m2", "COMBINED"):
        _assert_summary_equals_trackeval(got["sequences"][name]["summary"], theirs[name])


@pytest.mark.parametrize("threshold, code", [(1.0, 0), (0.5, 0), (1.5, 2), (0.0, 2), (-0.1, 2)])
def test_tracking_threshold_range_is_0_exclusive_to_1_inclusive(run, tmp_path, threshold, code):
    _trackeval_layout(tmp_path, {"t": 7})
    got, _, err = run("eval", "tracking", "--gt", tmp_path / "gt" / "t" / "gt" / "gt.txt",
                      "--pred", tmp_path / "trackers" / "labkit" / "data" / "t.txt", "--threshold", threshold)
    assert got == code
    if code == 2:
        assert f"--threshold must be in (0, 1], got {threshold}" in err


def test_tracking_hand_worked_switch(run, tmp_path):
    """One object over 4 frames, tracked as id 7 then id 8 from frame 3: 4 TP, 1 ID switch,
    MOTA = 1 - (0 FN + 0 FP + 1 IDSW) / 4 = 0.75; IDF1 = 2 IDTP / (2 * 4) with IDTP 2 (the best
    single id covers two frames) = 0.5."""
    gt = tmp_path / "s" / "gt" / "gt.txt"
    gt.parent.mkdir(parents=True)
    gt.write_text("".join(f"{f},1,10,10,20,20,1,1,1\n" for f in range(1, 5)))
    pred = tmp_path / "s.txt"
    pred.write_text("".join(f"{f},{7 if f < 3 else 8},10,10,20,20,0.9,-1,-1,-1\n" for f in range(1, 5)))
    code, out, _ = run("eval", "tracking", "--gt", gt, "--pred", pred, "--preprocess", "none", "--json")
    s = json.loads(out)["sequences"]["COMBINED"]["summary"]
    assert code == 0
    assert (s["TP"], s["FP"], s["FN"], s["IDSW"]) == (4, 0, 0, 1)
    assert (s["MOTA"], s["IDF1"], s["IDTP"]) == pytest.approx((0.75, 0.5, 2))


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
    assert code == 1 and f"{tmp_path / 'pred'}: no tracker file for sequence s2 (expected s2.txt)" in err
    code, _, err = run("eval", "tracking", "--gt", tmp_path / "pred", "--pred", tmp_path / "pred")
    assert code == 1 and f"{tmp_path / 'pred'}: no <seq>/gt/gt.txt found" in err
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


def test_segmentation_one_class_is_allowed(run, tmp_path):
    """--num-classes 1 is the smallest valid value (0 is the usage error): all-zero masks score 1 pair."""
    _save(tmp_path / "gt" / "a.png", np.zeros((3, 4)))
    _save(tmp_path / "pred" / "a.png", np.zeros((3, 4)))
    code, out, _ = run("eval", "segmentation", "--gt", tmp_path / "gt", "--pred", tmp_path / "pred", "--num-classes", 1, "--json")
    assert code == 0 and json.loads(out)["files"] == 1


def test_segmentation_missing_masks_list_five_then_dots(run, tmp_path):
    """Exactly five missing counterparts are all listed; a sixth is cut to ' ...'; no ground truth at all is named."""
    (tmp_path / "gt").mkdir()
    (tmp_path / "pred").mkdir()
    code, _, err = run("eval", "segmentation", "--gt", tmp_path / "gt", "--pred", tmp_path / "pred", "--num-classes", 2)
    assert code == 1 and err == f"labkit: bad data: {tmp_path / 'gt'}: no *.png ground-truth masks found\n"
    _save(tmp_path / "gt" / "z.png", np.zeros((3, 4)))
    _save(tmp_path / "pred" / "z.png", np.zeros((3, 4)))
    for k in range(5):
        _save(tmp_path / "gt" / f"m{k}.png", np.zeros((3, 4)))
    code, _, err = run("eval", "segmentation", "--gt", tmp_path / "gt", "--pred", tmp_path / "pred", "--num-classes", 2)
    assert code == 1 and err.endswith("have no counterpart here: m0.png, m1.png, m2.png, m3.png, m4.png\n")
    _save(tmp_path / "gt" / "m5.png", np.zeros((3, 4)))
    code, _, err = run("eval", "segmentation", "--gt", tmp_path / "gt", "--pred", tmp_path / "pred", "--num-classes", 2)
    assert code == 1 and err.endswith("6 mask(s) of " + str(tmp_path / "gt") + " have no counterpart here: "
                                      "m0.png, m1.png, m2.png, m3.png, m4.png ...\n")


def test_segmentation_command_and_options_have_help(monkeypatch):
    import argparse

    monkeypatch.setattr(cli, "COMMAND_MODULES", ("labkit.metrics.cli",))
    monkeypatch.setattr(metrics_cli, "EVAL_MODULES", ("labkit.metrics.cli_segmentation",))
    top = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    tasks = next(a for a in top.choices["eval"]._actions if isinstance(a, argparse._SubParsersAction))
    assert [(a.dest, bool(a.help)) for a in tasks._choices_actions] == [("segmentation", True)]
    assert [a.option_strings for a in tasks.choices["segmentation"]._actions if not a.help] == []


def test_tracking_argument_errors_are_usage_errors(run, tmp_path):
    """argparse rejects a missing --gt, an unknown --preprocess and a non-integer --num-frames (exit 2)."""
    _sequence_folder(tmp_path / "gt", tmp_path / "pred", "s1", 7)
    gt_file, pred_file = tmp_path / "gt" / "s1" / "gt" / "gt.txt", tmp_path / "pred" / "s1.txt"
    for argv in (["--pred", pred_file], ["--gt", gt_file, "--pred", pred_file, "--preprocess", "mot99"],
                 ["--gt", gt_file, "--pred", pred_file, "--num-frames", "3.5"]):
        with pytest.raises(SystemExit) as exc:
            run("eval", "tracking", *argv)
        assert exc.value.code == 2


def test_tracking_command_and_options_have_help(monkeypatch):
    import argparse

    monkeypatch.setattr(cli, "COMMAND_MODULES", ("labkit.metrics.cli",))
    monkeypatch.setattr(metrics_cli, "EVAL_MODULES", ("labkit.metrics.cli_tracking",))
    top = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    tasks = next(a for a in top.choices["eval"]._actions if isinstance(a, argparse._SubParsersAction))
    assert [(a.dest, bool(a.help)) for a in tasks._choices_actions] == [("tracking", True)]
    assert [a.option_strings for a in tasks.choices["tracking"]._actions if not a.help] == []
