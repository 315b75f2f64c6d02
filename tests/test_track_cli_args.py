"""``labkit track run`` / ``render`` on tiny hand-written sequences (no generated dataset): the exact
usage errors (exit 2) and data errors (exit 1), what a run reports (JSON and text) for each
detection source, a split run, and the help of every command and option. The still box in every
frame gives one track of 5 boxes (min_hits 3, backfilled)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from labkit import cli
from labkit.cli import main
from labkit.data.mot import write_seqinfo

ROWS = "".join(f"{f},-1,10,10,20,20,0.9,-1,-1,-1\n" for f in range(1, 6))
GT = "".join(f"{f},1,10,10,20,20,1,1,1.0\n" for f in range(1, 6))


def _seq(root: Path, *, det: bool = True, gt: bool = False) -> Path:
    write_seqinfo(root / "seqinfo.ini", name=root.name, length=5, fps=25, width=64, height=48)
    if det:
        (root / "det").mkdir(parents=True)
        (root / "det" / "det.txt").write_text(ROWS)
    if gt:
        (root / "gt").mkdir(parents=True)
        (root / "gt" / "gt.txt").write_text(GT)
    return root


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("extra, message", [
    (["--config", "missing.yaml"], "--config file not found: missing.yaml"),
    ([], "give exactly one of --seq DIR or --split NAME"),
    (["--split", "val", "--seq", "SEQ"], "give exactly one of --seq DIR or --split NAME"),
    (["--seq", "SEQ", "--det", "SEQ/det/det.txt", "--simulate", "clean"], "give at most one of --det, --detector, --simulate"),
    (["--seq", "SEQ", "--detector", "hog", "--simulate", "clean"], "give at most one of --det, --detector, --simulate"),
    (["--seq", "SEQ", "--simulate", "easy"], "--simulate must be one of ['clean', 'hard', 'typical'], got 'easy'"),
    (["--seq", "SEQ", "--simulate", "clean"], "--simulate needs ground truth (SEQ/gt/gt.txt not found)"),
    (["--seq", "SEQ", "--det", "SEQ/nope.txt"], "--det file not found: SEQ/nope.txt"),
    (["--seq", "SEQ", "--max-frames", "3"], "--max-frames applies to a video given as --seq"),
    (["--seq", "SEQ/clip.mp4"], "--seq video not found: SEQ/clip.mp4"),
    (["--split", "val", "--det", "d.txt"], "--det, --video, --log and --max-frames apply to one sequence (--seq)"),
    (["--split", "val", "--log", "l.jsonl"], "--det, --video, --log and --max-frames apply to one sequence (--seq)"),
    (["--split", "val", "--video", "v.mp4"], "--det, --video, --log and --max-frames apply to one sequence (--seq)"),
    (["--split", "val", "--max-frames", "2"], "--det, --video, --log and --max-frames apply to one sequence (--seq)"),
    (["--seq", "SEQ", "--video", "v.avi"], "v.avi: a review video must be an .mp4 file, got suffix '.avi'"),
])
def test_run_usage_errors(tmp_path: Path, capsys, extra, message):
    seq = _seq(tmp_path / "s1")
    argv = [a.replace("SEQ", str(seq)) for a in extra]
    code, out, err = _run(capsys, "track", "run", "--out", tmp_path / "p.txt", *argv)
    assert (code, out) == (2, "")
    assert err == f"labkit: error: {message.replace('SEQ', str(seq))}\n"
    assert not (tmp_path / "p.txt").exists()


def test_run_without_any_detections_is_a_usage_error(tmp_path: Path, capsys):
    seq = _seq(tmp_path / "s1", det=False)
    code, _, err = _run(capsys, "track", "run", "--seq", seq, "--out", tmp_path / "p.txt")
    assert code == 2
    assert err == (f"labkit: error: no detections: {seq / 'det' / 'det.txt'} not found; give --det, --detector or "
                   "--simulate\n")


def test_run_needs_out_and_a_known_score_norm(tmp_path: Path, capsys):
    seq = _seq(tmp_path / "s1")
    for argv in (["--seq", seq], ["--seq", seq, "--out", tmp_path / "p.txt", "--score-norm", "sum"],
                 ["--seq", seq, "--out", tmp_path / "p.txt", "--seed", "1.5"]):
        with pytest.raises(SystemExit) as exc:
            main(["track", "run", *map(str, argv)])
        assert exc.value.code == 2


def test_run_with_the_folder_detections_reports_in_json(tmp_path: Path, capsys):
    seq = _seq(tmp_path / "s1")
    out = tmp_path / "res" / "p.txt"
    code, stdout, _ = _run(capsys, "track", "run", "--seq", seq, "--out", out, "--json")
    assert code == 0
    p = json.loads(stdout)
    assert (p["sequence"], p["out"], p["sequence_info"]) == ("s1", str(out), "seqinfo.ini")
    assert p["detection_source"] == {"source": str(seq / "det" / "det.txt"), "empty": False,
                                     "score_norm": {"mode": "auto", "max_score": 0.9, "divided_by": 1.0,
                                                    "clipped_negative": 0, "action": "unchanged"}}
    assert (p["frames"], p["detections"], p["tracks"], p["output_boxes"]) == (5, 5, 1, 5)
    assert p["frames_available"] is False and p["motion_only"] is True
    assert p["config"] == "default (configs/track_default.yaml)"
    assert "note" not in p and "log" not in p and "video" not in p
    rows = out.read_text().splitlines()
    assert len(rows) == 5 and rows[0].startswith("1,1,10")


def test_run_text_output_with_log_and_config(tmp_path: Path, capsys):
    seq = _seq(tmp_path / "s1")
    config = tmp_path / "t.yaml"
    config.write_text("min_hits: 1\n")
    out, log = tmp_path / "p.txt", tmp_path / "l.jsonl"
    code, stdout, _ = _run(capsys, "track", "run", "--seq", seq, "--out", out, "--log", log, "--config", config,
                           "--score-norm", "max")
    assert code == 0
    lines = stdout.splitlines()
    assert lines[0].startswith(f"s1: 5 frames, {seq / 'det' / 'det.txt'}, scores divided by the sequence maximum 0.9; "
                               "1 tracks, 5 boxes, ")
    assert lines[0].endswith(f" frames/s (motion-only) -> {out}")
    assert lines[1:] == ["  motion-only: config uses no frames (camera_motion: none, appearance: none)", f"  log: {log}"]
    assert len(log.read_text().splitlines()) == 5
    code, stdout, _ = _run(capsys, "track", "run", "--seq", seq, "--out", out, "--config", config, "--json")
    assert json.loads(stdout)["config"] == str(config)


def test_run_with_an_empty_detection_file_notes_it(tmp_path: Path, capsys):
    seq = _seq(tmp_path / "s1")
    empty = tmp_path / "none.txt"
    empty.write_text("")
    code, stdout, _ = _run(capsys, "track", "run", "--seq", seq, "--out", tmp_path / "p.txt", "--det", empty)
    assert code == 0
    assert "  note: no detections at all: every frame is empty, no track is started" in stdout.splitlines()
    code, stdout, _ = _run(capsys, "track", "run", "--seq", seq, "--out", tmp_path / "p.txt", "--det", empty, "--json")
    p = json.loads(stdout)
    assert p["detection_source"]["source"] == str(empty) and p["detection_source"]["empty"] is True
    assert p["note"] == "no detections at all: every frame is empty, no track is started"


def test_run_simulated_from_gt(tmp_path: Path, capsys):
    seq = _seq(tmp_path / "s1", det=False, gt=True)
    code, stdout, _ = _run(capsys, "track", "run", "--seq", seq, "--out", tmp_path / "p.txt", "--simulate", "clean",
                           "--seed", "3", "--json")
    assert code == 0
    assert json.loads(stdout)["detection_source"]["source"] == "simulated (clean, seed 3)"


def test_split_runs_every_sequence_with_simulated_detections(tmp_path: Path, capsys):
    root = tmp_path / "data"
    for name in ("b", "a"):
        _seq(root / "sequences" / "val" / name, det=False, gt=True)
    out = tmp_path / "out"
    code, stdout, _ = _run(capsys, "track", "run", "--split", "val", "--data", root, "--out", out, "--json")
    assert code == 0
    p = json.loads(stdout)
    assert (p["split"], p["data"], p["out"]) == ("val", str(root), str(out))
    assert [s["sequence"] for s in p["sequences"]] == ["a", "b"]
    assert [s["out"] for s in p["sequences"]] == [str(out / "a.txt"), str(out / "b.txt")]
    assert {s["detection_source"]["source"] for s in p["sequences"]} == {"simulated (typical, seed 0)"}
    assert (out / "a.txt").is_file() and (out / "b.txt").is_file()
    code, stdout, _ = _run(capsys, "track", "run", "--split", "val", "--data", root, "--out", out)
    assert [line.split(":")[0] for line in stdout.splitlines() if not line.startswith("  ")] == ["a", "b"]


def test_split_without_sequences_is_a_data_error(tmp_path: Path, capsys):
    code, _, err = _run(capsys, "track", "run", "--split", "test", "--data", tmp_path, "--out", tmp_path / "o")
    assert code == 1
    assert err == (f"labkit: bad data: {tmp_path}: no sequences in split 'test' "
                   "(expected sequences/test/<seq>/seqinfo.ini)\n")


def test_render_without_frames_draws_on_grey(tmp_path: Path, capsys):
    pytest.importorskip("imageio_ffmpeg")
    seq = _seq(tmp_path / "s1")
    pred = tmp_path / "p.txt"
    assert main(["track", "run", "--seq", str(seq), "--out", str(pred)]) == 0
    capsys.readouterr()
    video = tmp_path / "r.mp4"
    code, stdout, _ = _run(capsys, "track", "render", "--seq", seq, "--pred", pred, "--out", video)
    assert code == 0
    assert stdout == f"{video}: 5 frames at 25 fps, 0 ID switches flagged (no frames: grey canvas)\n"
    code, stdout, _ = _run(capsys, "track", "render", "--seq", seq, "--pred", pred, "--out", video, "--json")
    p = json.loads(stdout)
    assert (p["frames"], p["fps"], p["id_switches"], p["frames_available"]) == (5, 25, 0, False)


def test_track_commands_and_options_have_help(monkeypatch):
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("labkit.track.cli",))
    top = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert [(a.dest, bool(a.help)) for a in top._choices_actions] == [("track", True)]
    actions = next(a for a in top.choices["track"]._actions if isinstance(a, argparse._SubParsersAction))
    assert [(a.dest, bool(a.help)) for a in actions._choices_actions] == [("run", True), ("render", True)]
    for name in ("run", "render"):
        assert [a.option_strings for a in actions.choices[name]._actions if not a.help] == []
    run = actions.choices["run"]
    assert run.description == "``labkit track run`` and ``labkit track render``: the tracker and its review videos."
    defaults = {a.dest: a.default for a in run._actions}
    assert (defaults["seed"], defaults["score_norm"]) == (0, "auto")
    assert [a.dest for a in run._actions if a.required] == ["out"]
    render = actions.choices["render"]
    assert sorted(a.dest for a in render._actions if a.required) == ["out", "pred", "seq"]


def test_base_detector_is_the_registry_model(monkeypatch):
    import labkit.models
    from labkit.track import cli as track_cli

    calls = []

    def fake_load(name, **kwargs):
        calls.append((name, kwargs))
        return argparse.Namespace(weights=Path("base.pt"))

    monkeypatch.setattr(labkit.models, "load", fake_load)
    assert track_cli._base_weights() == Path("base.pt")
    assert calls == [("detect-base", {"progress": False, "follow_budget": False})]


def test_hog_detector_source_and_cache_folder(tmp_path: Path, capsys, monkeypatch):
    from labkit.track import cli as track_cli
    from labkit.track.sources import public_detections

    monkeypatch.setenv("LABKIT_ARTIFACTS", str(tmp_path / "art"))
    seq = _seq(tmp_path / "s1")
    calls = []

    def fake_hog(sequence, cache_dir, **kwargs):
        calls.append((sequence.name, Path(cache_dir)))
        return public_detections(seq / "det" / "det.txt", 5), {"cache": "c.txt", "cached": True}

    monkeypatch.setattr(track_cli, "hog_detections", fake_hog)
    code, stdout, _ = _run(capsys, "track", "run", "--seq", seq, "--out", tmp_path / "p.txt", "--detector", "hog",
                           "--json")
    assert code == 0
    assert calls == [("s1", tmp_path / "art" / "track_detections")]
    source = json.loads(stdout)["detection_source"]
    assert (source["source"], source["cache"], source["cached"]) == ("HOG people detector (OpenCV)", "c.txt", True)


def test_help_names_the_values_to_type(monkeypatch):
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("labkit.track.cli",))
    top = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    actions = next(a for a in top.choices["track"]._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in actions.choices["run"]._actions}
    assert helps["score_norm"].startswith("auto: ") and "; max: always; none" in helps["score_norm"]
    assert helps["split"].startswith("run every sequence of this embedded-dataset split (train, val, test)")
    assert "['clean', 'hard', 'typical']" in helps["simulate"]
