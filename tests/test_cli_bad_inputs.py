"""Bad inputs a newcomer meets in the first hour, through the real ``labkit`` dispatcher (every
command module registered): each is a clear error naming the file (and the record), exit 1 for
bad data and 2 for bad usage, never a traceback or a silently wrong number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit.cli import main

GT = {"images": [{"id": 1, "file_name": "1.png", "width": 100, "height": 100}],
      "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "area": 1600, "iscrowd": 0}],
      "categories": [{"id": 1, "name": "café"}]}
PRED = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "score": 0.9}]


@pytest.fixture
def run(capsys):
    def _run(*argv) -> tuple[int, str, str]:
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse's own usage errors
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return _run


@pytest.fixture
def coco(tmp_path) -> tuple[Path, Path]:
    (tmp_path / "gt.json").write_text(json.dumps(GT, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "pred.json").write_text(json.dumps(PRED), encoding="utf-8")
    return tmp_path / "gt.json", tmp_path / "pred.json"


def _latin1(path: Path) -> Path:
    """Re-save a JSON file in Latin-1 (what some Windows tools write): 'é' becomes byte 0xE9."""
    path.write_bytes(path.read_text(encoding="utf-8").encode("latin-1"))
    return path


def test_the_good_files_pass(run, coco):
    gt, pred = coco
    code, out, _ = run("eval", "detection", "--gt", gt, "--pred", pred, "--json")
    assert code == 0 and json.loads(out)["stats"]["AP50"] == pytest.approx(1.0)


@pytest.mark.parametrize("which", ["--gt", "--pred"])
def test_eval_detection_non_utf8_file_names_it(run, coco, which):
    gt, pred = coco
    bad = _latin1(gt) if which == "--gt" else pred
    if which == "--pred":
        pred.write_bytes(b'[{"image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5], "score": 0.5, "note": "\xe9"}]')
    code, _, err = run("eval", "detection", "--gt", gt, "--pred", pred)
    assert code == 1 and "Traceback" not in err
    assert f"{bad}: not a UTF-8 text file" in err


def test_data_validate_non_utf8_file_names_it(run, coco):
    gt, _ = coco
    _latin1(gt)
    code, _, err = run("data", "validate", gt, "--no-files")
    assert code == 1 and f"{gt}: not a UTF-8 text file" in err and "JSON must be UTF-8" in err


@pytest.mark.parametrize("box, record", [
    ([0, 0, 1e308, 1e308], "result #0"),    # w * h overflows
    ([1e308, 10, 1e308, 10], "result #0"),  # x + w overflows
])
def test_eval_detection_overflowing_prediction_box_names_file_and_record(run, coco, box, record):
    gt, pred = coco
    pred.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": box, "score": 0.9}]))
    code, out, err = run("eval", "detection", "--gt", gt, "--pred", pred, "--json")
    assert code == 1 and out == ""
    assert f"{pred}: record {record}: bbox overflows" in err


def test_eval_detection_overflowing_ground_truth_box_names_file_and_record(run, coco):
    gt, pred = coco
    broken = json.loads(json.dumps(GT))
    broken["annotations"][0]["bbox"] = [0, 0, 1e308, 1e308]
    gt.write_text(json.dumps(broken))
    code, _, err = run("eval", "detection", "--gt", gt, "--pred", pred)
    assert code == 1 and f"{gt}: record annotation 1: bbox overflows" in err


def test_largest_finite_boxes_that_do_not_overflow_still_evaluate(run, coco):
    """The rule is overflow, not size: a far-away box is a false positive, not an error."""
    gt, pred = coco
    pred.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [1e300, 1e300, 10, 10], "score": 0.9}]))
    code, out, _ = run("eval", "detection", "--gt", gt, "--pred", pred, "--json")
    assert code == 0 and json.loads(out)["stats"]["AP50"] == 0.0


def _mot_sequence(root: Path, gt_text: str) -> tuple[Path, Path]:
    gt = root / "seq" / "gt" / "gt.txt"
    gt.parent.mkdir(parents=True)
    gt.write_text(gt_text)
    pred = root / "seq.txt"
    pred.write_text("1,1,10,10,20,20,0.9,-1,-1,-1\n")
    return gt, pred


@pytest.mark.parametrize("gt_text", ["", "\n  \n"])
def test_eval_tracking_empty_ground_truth_is_an_error(run, tmp_path, gt_text):
    gt, pred = _mot_sequence(tmp_path, gt_text)
    code, out, err = run("eval", "tracking", "--gt", gt, "--pred", pred, "--preprocess", "none", "--json")
    assert code == 1 and out == ""
    assert f"{gt}: the ground-truth file is empty" in err
    # folder form: the same file, found in the MOTChallenge layout
    code, _, err = run("eval", "tracking", "--gt", tmp_path, "--pred", tmp_path, "--preprocess", "none")
    assert code == 1 and f"{gt}: the ground-truth file is empty" in err


def test_eval_tracking_empty_tracker_file_is_a_tracker_that_found_nothing(run, tmp_path):
    gt, pred = _mot_sequence(tmp_path, "1,1,10,10,20,20,1,1,1\n2,1,12,10,20,20,1,1,1\n")
    pred.write_text("")
    code, out, _ = run("eval", "tracking", "--gt", gt, "--pred", pred, "--preprocess", "none", "--json")
    summary = json.loads(out)["sequences"]["COMBINED"]["summary"]
    assert code == 0 and summary["FN"] == 2 and summary["MOTA"] == 0.0  # 1 - 2 misses / 2 objects


@pytest.mark.parametrize("name", ["model.onnx", "best.pt.zip", "weights"])
def test_detect_predict_weights_not_pt_is_a_usage_error(run, tmp_path, name):
    weights = tmp_path / name
    weights.write_bytes(b"\0" * 16)
    code, _, err = run("detect", "predict", "--weights", weights, "--source", tmp_path, "--out", tmp_path / "out")
    assert code == 2 and f"--weights {weights} is not a .pt file" in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["predict", "hog"])
def test_detect_out_existing_file_is_a_usage_error(run, tmp_path, command):
    weights = tmp_path / "best.pt"
    weights.write_bytes(b"\0" * 16)
    out = tmp_path / "results.json"
    out.write_text("{}")
    extra = ["--weights", weights] if command == "predict" else []
    code, _, err = run("detect", command, *extra, "--source", tmp_path, "--out", out)
    assert code == 2 and f"--out {out} is an existing file" in err
    assert out.read_text() == "{}"  # left alone
