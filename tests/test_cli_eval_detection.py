"""``labkit eval detection``: output and exit codes (0 ok, 1 bad data, 2 bad usage)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import labkit.cli
import labkit.metrics.cli


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """``labkit ...`` through the real dispatcher, with only this command registered (sibling
    command modules may not exist yet in a partial checkout)."""
    monkeypatch.setattr(labkit.cli, "COMMAND_MODULES", ("labkit.metrics.cli",))
    monkeypatch.setattr(labkit.metrics.cli, "EVAL_MODULES", ("labkit.metrics.cli_detection",))

    def _run(*argv: str) -> tuple[int, str, str]:
        try:
            code = labkit.cli.main(["eval", "detection", *argv])
        except SystemExit as exc:  # argparse usage errors
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return _run


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    gt = {"images": [{"id": 1, "width": 100, "height": 100}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "area": 1600, "iscrowd": 0},
                          {"id": 2, "image_id": 1, "category_id": 1, "bbox": [60, 60, 30, 30], "area": 900, "iscrowd": 0}],
          "categories": [{"id": 1, "name": "thing"}]}
    pred = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "score": 0.9},
            {"image_id": 1, "category_id": 1, "bbox": [0, 60, 20, 20], "score": 0.8}]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text(json.dumps(pred))
    return tmp_path / "gt.json", tmp_path / "pred.json"


def test_ok_json_and_text(run, files) -> None:
    gt, pred = files
    code, out, _ = run("--gt", str(gt), "--pred", str(pred), "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["stats"]["AP50"] == pytest.approx(51 / 101) and payload["stats"]["APl"] is None
    code, out, _ = run("--gt", str(gt), "--pred", str(pred), "--backend", "pycocotools", "--errors")
    assert code == 0 and "| AP | AP50 |" in out and "| background | 1 |" in out


def test_bad_file_exits_1_naming_file_and_record(run, files) -> None:
    gt, pred = files
    results = json.loads(pred.read_text())
    results[1]["score"] = 7
    pred.write_text(json.dumps(results))
    code, out, err = run("--gt", str(gt), "--pred", str(pred))
    assert code == 1 and out == ""
    assert str(pred) in err and "result #1" in err and "outside [0, 1]" in err
    pred.write_text("")
    code, _, err = run("--gt", str(gt), "--pred", str(pred))
    assert code == 1 and "file is empty" in err


def test_usage_errors_exit_2(run, files, tmp_path: Path) -> None:
    gt, pred = files
    assert run("--gt", str(gt), "--pred", str(pred), "--iou-type", "keypoints")[0] == 2
    code, _, err = run("--gt", str(tmp_path / "missing.json"), "--pred", str(pred))
    assert code == 2 and "missing.json is not a file" in err
    assert run("--gt", str(gt))[0] == 2


def test_eval_is_listed_and_needs_a_task(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """`labkit --help` lists `eval` with a line of help; `labkit eval` without a task is a usage
    error (exit 2) that names the missing TASK."""
    import argparse

    monkeypatch.setattr(labkit.cli, "COMMAND_MODULES", ("labkit.metrics.cli",))
    top = next(a for a in labkit.cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert [(a.dest, bool(a.help)) for a in top._choices_actions] == [("eval", True)]
    with pytest.raises(SystemExit) as exc:
        labkit.cli.main(["eval"])
    assert exc.value.code == 2 and "error: the following arguments are required: TASK" in capsys.readouterr().err


def test_missing_files_name_their_flag(run, files, tmp_path: Path) -> None:
    gt, pred = files
    code, _, err = run("--gt", str(gt), "--pred", str(tmp_path / "none.json"))
    assert code == 2 and err == f"labkit: error: --pred {tmp_path / 'none.json'} is not a file\n"
    code, _, err = run("--gt", str(tmp_path), "--pred", str(pred))
    assert code == 2 and err == f"labkit: error: --gt {tmp_path} is not a file\n"


def test_backend_applies_to_the_error_analysis_too(run, files, monkeypatch: pytest.MonkeyPatch) -> None:
    import labkit.metrics.errors

    seen = []
    real = labkit.metrics.errors.analyze_errors

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(labkit.metrics.errors, "analyze_errors", spy)
    gt, pred = files
    assert run("--gt", str(gt), "--pred", str(pred), "--backend", "pycocotools", "--errors", "--json")[0] == 0
    assert seen == [{"iou_type": "bbox", "backend": "pycocotools"}]


def test_detection_command_and_options_have_help(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    monkeypatch.setattr(labkit.cli, "COMMAND_MODULES", ("labkit.metrics.cli",))
    monkeypatch.setattr(labkit.metrics.cli, "EVAL_MODULES", ("labkit.metrics.cli_detection",))
    top = next(a for a in labkit.cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    tasks = next(a for a in top.choices["eval"]._actions if isinstance(a, argparse._SubParsersAction))
    assert [(a.dest, bool(a.help)) for a in tasks._choices_actions] == [("detection", True)]
    undocumented = [a.option_strings for a in tasks.choices["detection"]._actions if not a.help]
    assert undocumented == []
