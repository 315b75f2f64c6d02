"""``labkit run`` / ``labkit render`` end to end with tiny real networks, the run's scores on
hand-worked cases, and every bad input the pipeline must name."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from pipeline_models import CATEGORIES, tiny_config

import labkit.cli
from labkit.data.annotations import Detections
from labkit.data.masks import mask_to_rle
from labkit.data.synth import default_root
from labkit.pipeline import evaluate
from labkit.pipeline.records import detections_to_record, read_jsonl
from labkit.pipeline.run import run
from labkit.repro import sha256_file

DATA = default_root()  # the embedded dataset ($LABKIT_DATA or data/generated), made by `make data`
SEQ = DATA / "sequences" / "test" / "seq07"
FRAMES = 6
DETERMINISTIC = ("predictions.jsonl", "results_coco.json", "metrics.json")


def _video_frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_config(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def two_runs(config: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if not SEQ.is_dir():
        pytest.skip(f"generated sequence not found at {SEQ} (make data)")
    root = tmp_path_factory.mktemp("runs")
    for name in ("a", "b"):
        code = labkit.cli.main(["run", "--config", str(config), "--source", str(SEQ), "--out", str(root / name),
                                "--max-frames", str(FRAMES), "--json"])
        assert code == 0
    return root / "a", root / "b"


def test_same_command_twice_gives_byte_identical_predictions_and_metrics(two_runs: tuple[Path, Path]) -> None:
    a, b = two_runs
    for name in DETERMINISTIC:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    for name in ("demo.mp4", "latency.json", "report.md", "report.html", "manifest.json"):
        assert (a / name).is_file(), name
    assert not (a / "results_mot.txt").exists()  # no tracker, no track ids


def test_run_outputs_follow_the_contract(two_runs: tuple[Path, Path], config: Path) -> None:
    out = two_runs[0]
    records = read_jsonl(out / "predictions.jsonl")  # validates every record
    assert [r["frame_id"] for r in records] == list(range(1, FRAMES + 1))
    assert [r["timestamp_s"] for r in records] == [k / 25 for k in range(FRAMES)]  # seqinfo frameRate=25
    assert records[0]["source"].endswith("img1/000001.jpg")
    assert all(r["semantic"] is not None and all(o["mask"] is not None for o in r["objects"]) for r in records)
    coco = json.loads((out / "results_coco.json").read_text())
    assert len(coco) == sum(len(r["objects"]) for r in records) and {c["image_id"] for c in coco} <= set(range(1, 7))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["ground_truth"].endswith("gt/gt.txt") and metrics["frames"] == FRAMES
    gt_rows = [line for line in (SEQ / "gt" / "gt.txt").read_text().splitlines() if int(line.split(",")[0]) <= FRAMES]
    assert metrics["box"]["num_gt"] == sum(1 for line in gt_rows if line.split(",")[6] == "1")
    manifest = json.loads((out / "manifest.json").read_text())
    cfg = yaml.safe_load(config.read_text())
    assert manifest["models"]["detector"]["sha256"] == sha256_file(cfg["detector"]["weights"])
    assert manifest["models"]["segmenter"]["sha256"] == sha256_file(cfg["segmenter"]["weights"])
    assert manifest["models"]["detector"]["input"] == {"size": 128, "pad_value": 114, "mean": [0.0, 0.0, 0.0],
                                                       "std": [1.0, 1.0, 1.0], "channel_order": "RGB"}
    assert manifest["command"].startswith("labkit run --config") and manifest["status"] == "finished"
    assert "git_commit" in manifest and manifest["versions"]["torch"]
    latency = json.loads((out / "latency.json").read_text())
    assert set(latency["stages"]) == {"load", "detect", "segment", "export", "render"}
    assert all(s["frames"] == FRAMES and s["p95_ms"] >= s["p50_ms"] > 0 for s in latency["stages"].values())
    report = (out / "report.md").read_text()
    assert manifest["command"] in report and manifest["models"]["detector"]["sha256"][:16] in report
    assert "<table>" in (out / "report.html").read_text()


def test_video_decodes_and_render_regenerates_it_from_predictions_alone(two_runs: tuple[Path, Path],
                                                                         tmp_path: Path) -> None:
    out = two_runs[0]
    demo = _video_frames(out / "demo.mp4")
    assert len(demo) == FRAMES and demo[0].shape == (240, 320, 3)
    assert labkit.cli.main(["render", "--predictions", str(out / "predictions.jsonl"), "--out",
                            str(tmp_path / "again.mp4")]) == 0
    again = _video_frames(tmp_path / "again.mp4")
    assert len(again) == FRAMES
    assert max(float(np.abs(x.astype(int) - y.astype(int)).mean()) for x, y in zip(demo, again)) < 1.0


def test_boxes_agree_with_the_course_predictor_in_original_pixels(config: Path, two_runs: tuple[Path, Path]) -> None:
    """labkit.detect.predict maps boxes back with the isotropic letterbox scale; the pipeline
    with the per-axis one: on 320x240 (whose letterbox needs no rounding) they must agree."""
    from labkit.detect.predict import predict

    cfg = yaml.safe_load(config.read_text())
    record = read_jsonl(two_runs[0] / "predictions.jsonl")[0]
    ref = predict(cfg["detector"]["weights"], [record["source"]], conf=cfg["detector"]["conf"], iou=0.7,
                  max_det=20, device="cpu", progress=False)[record["source"]]
    boxes = np.array([o["box_xywh"] for o in record["objects"]])
    np.testing.assert_allclose(boxes, ref.xywh, atol=1e-3)
    np.testing.assert_allclose([o["score"] for o in record["objects"]], ref.score, atol=1e-6)


def test_image_folder_and_video_sources(config: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    folder.mkdir()
    for k in range(3):
        cv2.imwrite(str(folder / f"img{k}.png"), rng.integers(0, 255, (77, 101, 3), dtype=np.uint8))
    summary = run(config, folder, tmp_path / "run_images")
    records = read_jsonl(tmp_path / "run_images" / "predictions.jsonl")
    assert summary["metrics"] is None and not (tmp_path / "run_images" / "metrics.json").exists()
    assert [Path(r["source"]).name for r in records] == ["img0.png", "img1.png", "img2.png"]
    for r in records:
        assert (r["width"], r["height"]) == (101, 77)
        for o in r["objects"]:
            x, y, w, h = o["box_xywh"]
            assert 0 <= x and 0 <= y and x + w <= 101 + 1e-9 and y + h <= 77 + 1e-9
    assert len(_video_frames(tmp_path / "run_images" / "demo.mp4")) == 3  # odd size padded to 102x78

    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for k in range(4):
        writer.write(np.full((48, 64, 3), 40 * k, np.uint8))
    writer.release()
    run(config, video, tmp_path / "run_video")
    records = read_jsonl(tmp_path / "run_video" / "predictions.jsonl")
    assert [r["source"] for r in records] == [f"{video}#{k}" for k in range(1, 5)]
    assert [r["timestamp_s"] for r in records] == [k / 10 for k in range(4)]  # the container says 10 fps
    from labkit.pipeline.render import render_predictions

    again = render_predictions(tmp_path / "run_video" / "predictions.jsonl", tmp_path / "again.mp4")
    assert again["frames"] == 4 and again["fps"] == 10.0  # frames found again by seeking in the video
    assert len(_video_frames(tmp_path / "again.mp4")) == 4


# ------------------------------------------------------------------ bad input
def _cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    code = labkit.cli.main(argv)
    return code, capsys.readouterr().err


def test_unknown_source_type_is_a_usage_error(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    code, err = _cli(["run", "--config", str(config), "--source", str(notes), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "unknown source type '.txt'" in err and str(notes) in err
    code, err = _cli(["run", "--config", str(config), "--source", str(tmp_path / "nothing"), "--out",
                      str(tmp_path / "o")], capsys)
    assert code == 2 and "no such file or folder" in err


def test_unreadable_frame_names_its_file(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.zeros((20, 30, 3), np.uint8))
    (folder / "b.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    code, err = _cli(["run", "--config", str(config), "--source", str(folder), "--out", str(tmp_path / "o")], capsys)
    assert code == 1 and str(folder / "b.jpg") in err


def test_config_naming_an_unknown_model_is_named(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    values = yaml.safe_load(config.read_text())
    values["detector"]["name"] = "yolo-imaginary"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(values))
    code, err = _cli(["run", "--config", str(bad), "--source", str(tmp_path), "--out", str(tmp_path / "o")], capsys)
    assert code == 1 and str(bad) in err and "unknown model 'yolo-imaginary'" in err and "detect-tiny" in err
    values["detector"]["name"], values["segmenter"]["name"] = "detect-tiny", "detect-tiny"
    bad.write_text(yaml.safe_dump(values))
    code, err = _cli(["run", "--config", str(bad), "--source", str(tmp_path), "--out", str(tmp_path / "o")], capsys)
    assert code == 1 and "segmenter: unknown model 'detect-tiny'" in err
    values["segmenter"], values["tracker"] = None, {"kind": "sort"}
    bad.write_text(yaml.safe_dump(values))
    code, err = _cli(["run", "--config", str(bad), "--source", str(tmp_path), "--out", str(tmp_path / "o")], capsys)
    assert code == 1 and "tracker: " in err and "unknown config keys ['kind']" in err and str(bad) in err
    values["tracker"] = "track_imaginary.yaml"
    bad.write_text(yaml.safe_dump(values))
    code, err = _cli(["run", "--config", str(bad), "--source", str(tmp_path), "--out", str(tmp_path / "o")], capsys)
    assert code == 1 and "no such track config 'track_imaginary.yaml'" in err
    values["tracker"], values["detector"]["conf_threshold"] = None, 0.3
    bad.write_text(yaml.safe_dump(values))
    code, err = _cli(["run", "--config", str(bad), "--source", str(tmp_path), "--out", str(tmp_path / "o")], capsys)
    assert code == 1 and "unknown config keys ['conf_threshold']" in err


def test_run_never_clears_a_folder_it_did_not_make(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    code, err = _cli(["run", "--config", str(config), "--source", str(SEQ), "--out", str(tmp_path)], capsys)
    assert code == 1 and "refusing to clear" in err and (tmp_path / "mine.txt").is_file()


# ------------------------------------------------------------------ scores on hand-worked cases
def _truth_records(truth: evaluate.Truth, shift: float = 0.0) -> list[dict]:
    names = {c["id"]: c["name"] for c in CATEGORIES}
    records = []
    for fid, gt in truth.frames.items():
        keep = gt.data["iscrowd"] == 0
        det = gt[keep]
        masks = det.masks(240, 320)
        pred = Detections(det.xywh + [shift, 0, 0, 0], det.class_id, score=np.ones(len(det)),
                          segmentation=[mask_to_rle(m) for m in masks])
        semantic = {int(c): mask_to_rle(evaluate.semantic_truth(gt, 240, 320) == c) for c in np.unique(det.class_id)}
        records.append(detections_to_record(pred, frame_id=fid, timestamp_s=0.0, source=f"test/seq07/img1/{fid:06d}.jpg",
                                            width=320, height=240, class_names=names, semantic=semantic))
    return records


def test_ground_truth_as_predictions_scores_perfectly() -> None:
    path = DATA / "annotations" / "sequences_test.json"
    if not path.is_file():
        pytest.skip("generated annotations not found")
    stub = [{"frame_id": k, "source": f"/x/sequences/test/seq07/img1/{k:06d}.jpg", "width": 320, "height": 240}
            for k in (1, 2, 3)]
    truth = evaluate.truth_from_coco(path, stub)
    records = _truth_records(truth)
    scores = evaluate.evaluate_records(records, truth)
    assert scores["box"]["AP"] == pytest.approx(1.0) and scores["mask"]["AP"] == pytest.approx(1.0)
    assert all(scores["box"][k] in (None, pytest.approx(1.0)) for k in ("APs", "APm", "APl"))
    # every non-ignored pixel is predicted with its own class: IoU 1 for each class present
    assert scores["semantic"]["mean_iou"] == pytest.approx(1.0)
    # boxes moved right by their own width overlap nothing: no true positive at any IoU threshold
    truth_boxes = [truth.frames[k].xywh for k in (1, 2, 3)]
    moved = _truth_records(truth)
    for r, boxes in zip(moved, truth_boxes):
        keep = truth.frames[r["frame_id"]].data["iscrowd"] == 0
        for o, (x, y, w, h) in zip(r["objects"], boxes[keep]):
            o["box_xywh"] = [x + w, y, w, h]
    assert evaluate.evaluate_records(moved, truth)["box"]["AP"] == pytest.approx(0.0)


def test_frames_missing_from_the_ground_truth_are_named(tmp_path: Path) -> None:
    path = DATA / "annotations" / "sequences_test.json"
    if not path.is_file():
        pytest.skip("generated annotations not found")
    stub = [{"frame_id": 1, "source": "/elsewhere/unknown.jpg", "width": 320, "height": 240}]
    with pytest.raises(Exception, match="0 images match frame 1"):
        evaluate.truth_from_coco(path, stub)


@pytest.mark.parametrize("name", ["capstone.yaml", "capstone_tiny.yaml"])
def test_shipped_configs_read_strictly(name: str) -> None:
    from labkit.artifacts import REPO_ROOT
    from labkit.pipeline.config import load_config

    cfg = load_config(REPO_ROOT / "configs" / name)
    assert cfg.segmenter is not None and cfg.detector.name.startswith("detect-")


def test_tracker_stage_writes_mot_results_of_the_confirmed_tracks(config: Path, tmp_path: Path) -> None:
    if not SEQ.is_dir():
        pytest.skip(f"generated sequence not found at {SEQ}")
    values = yaml.safe_load(config.read_text())
    values["tracker"] = {"min_hits": 2, "high_score": 0.001, "low_score": 0.0, "new_track_score": 0.001}
    tracked = tmp_path / "tracked.yaml"
    tracked.write_text(yaml.safe_dump(values))
    summary = run(tracked, SEQ, tmp_path / "run", max_frames=4)
    records = read_jsonl(tmp_path / "run" / "predictions.jsonl")
    states = [o["track_state"] for r in records for o in r["objects"]]
    assert "tentative" in states and "confirmed" in states  # min_hits 2: born tentative, confirmed next frame
    assert all(o["track_state"] != "confirmed" for o in records[0]["objects"])
    rows = [line.split(",") for line in (tmp_path / "run" / "results_mot.txt").read_text().splitlines()]
    confirmed = sorted((r["frame_id"], o["track_id"]) for r in records for o in r["objects"]
                       if o["track_state"] == "confirmed")
    assert sorted((int(f), int(t)) for f, t, *_ in rows) == confirmed
    assert set(summary["metrics"]["tracking"]) >= {"HOTA", "MOTA", "IDF1", "IDSW"}
    assert summary["models"]["tracker"]["min_hits"] == 2
    assert "track" in summary["latency"]["stages"]


def test_ground_truth_tracks_as_predictions_track_perfectly() -> None:
    path = DATA / "annotations" / "sequences_test.json"
    if not path.is_file():
        pytest.skip("generated annotations not found")
    stub = [{"frame_id": k, "source": f"/x/sequences/test/seq07/img1/{k:06d}.jpg", "width": 320, "height": 240}
            for k in range(1, 6)]
    truth = evaluate.truth_from_coco(path, stub)
    records = _truth_records(truth)
    for r in records:  # every ground-truth object as a confirmed track with its own id
        gt = truth.frames[r["frame_id"]]
        ids = gt.track_id[gt.data["iscrowd"] == 0]
        for o, tid in zip(r["objects"], ids):
            o["track_id"], o["track_state"] = int(tid), "confirmed"
    scores = evaluate.evaluate_records(records, truth, tracked=True)["tracking"]
    assert scores["HOTA"] == pytest.approx(1.0) and scores["MOTA"] == pytest.approx(1.0)
    assert scores["IDSW"] == 0 and scores["IDF1"] == pytest.approx(1.0)


def test_coco_ground_truth_gives_mask_ap_and_miou(config: Path, tmp_path: Path) -> None:
    gt = DATA / "annotations" / "sequences_test.json"
    if not (SEQ.is_dir() and gt.is_file()):
        pytest.skip("generated sequence or annotations not found")
    summary = run(config, SEQ, tmp_path / "run", gt=gt, max_frames=3)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics == summary["metrics"] and metrics["ground_truth"] == str(gt)
    assert {"box", "mask", "semantic"} <= set(metrics)
    assert metrics["box"]["num_gt"] == metrics["mask"]["num_gt"] > 0
    assert 0.0 <= metrics["semantic"]["mean_iou"] <= 1.0
    assert [row["name"] for row in metrics["semantic"]["per_class"]] == ["background"] + [c["name"] for c in CATEGORIES]


def test_camera_source_needs_a_camera_and_a_frame_count(config: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    from labkit.pipeline.loader import FrameSource, SourceError, iter_source

    code, err = _cli(["run", "--config", str(config), "--source", "97", "--out", str(tmp_path / "o")], capsys)
    assert code == 1 and "cannot open camera 97" in err  # no such device here
    with pytest.raises(SourceError, match="--max-frames"):
        next(iter_source(FrameSource("camera", Path("0"), 25.0)))


def test_predicting_nothing_scores_zero_everywhere() -> None:
    path = DATA / "annotations" / "sequences_test.json"
    if not path.is_file():
        pytest.skip("generated annotations not found")
    stub = [{"frame_id": k, "source": f"/x/sequences/test/seq07/img1/{k:06d}.jpg", "width": 320, "height": 240}
            for k in (1, 2)]
    truth = evaluate.truth_from_coco(path, stub)
    records = [detections_to_record(Detections.empty(with_score=True), frame_id=s["frame_id"], timestamp_s=0.0,
                                    source=s["source"], width=320, height=240, class_names={}, semantic={})
               for s in stub]
    scores = evaluate.evaluate_records(records, truth, tracked=True)
    assert scores["box"]["AP"] == 0.0 and scores["mask"]["AP"] == 0.0 and scores["box"]["num_predictions"] == 0
    # every pixel called background: IoU(background) = background pixels / scored pixels, every object class 0
    maps = [evaluate.semantic_truth(truth.frames[s["frame_id"]], 240, 320) for s in stub]
    background = sum(int((m == 0).sum()) for m in maps) / sum(int((m != evaluate.IGNORE).sum()) for m in maps)
    present = set(np.unique(np.concatenate([m.ravel() for m in maps]))) - {0, evaluate.IGNORE}
    assert scores["semantic"]["mean_iou"] == pytest.approx(background / (1 + len(present)))
    assert scores["tracking"]["HOTA"] == 0.0 and scores["tracking"]["MOTA"] == 0.0
