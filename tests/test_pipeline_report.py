"""The capstone report's extra sections on hand-worked inputs: the spec and its requirements,
the dataset card, ablations from run folders, slices, the failure gallery, the latency sheet and
the weaknesses; every bad input named; and one real ``labkit run --spec``."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from pipeline_models import tiny_config

import labkit.cli
from labkit.cli import EXIT_USAGE
from labkit.data.annotations import Detections
from labkit.data.synth import default_root
from labkit.errors import DataError
from labkit.pipeline.diagnose import diagnosis_sections, failure_gallery, match_frame, slice_table
from labkit.pipeline.records import detections_to_record
from labkit.pipeline.report import markdown_to_html
from labkit.pipeline.spec import (check_requirements, evidence_sections, latency_sheet, load_spec, measured_values,
                                  spec_section)

SEQ = default_root() / "sequences" / "test" / "seq07"
PROTOCOL = {"splits": "test sequences seq07-08, thresholds tuned on val", "iou_thresholds": "0.50:0.05:0.95",
            "confidence_policy": "conf 0.25 chosen on val", "class_aware": False}
LATENCY = {"frames": 10, "wall_s": 2.0, "fps": 5.0,
           "stages": {"detect": {"p50_ms": 120.0, "p95_ms": 150.0, "mean_ms": 125.0, "frames": 10}}}
METRICS = {"box": {"AP": 0.4, "AP50": 0.6, "num_gt": 12}, "tracking": {"HOTA": 0.5, "IDSW": 5, "preprocess": "mot15"}}


def _spec(**changes) -> dict:
    spec = {"scenario": "shapes on a fixed camera", "protocol": dict(PROTOCOL),
            "success": [{"metric": "box.AP50", "op": ">=", "target": 0.5},
                        {"metric": "tracking.IDSW", "op": "<=", "target": 3},
                        {"metric": "mask.AP", "op": ">=", "target": 0.3},
                        {"metric": "latency.fps", "op": ">=", "target": 15}],
            "weaknesses": ["rods seen end-on are missed"]}
    return {**spec, **changes}


def _run_folder(root: Path, name: str, ap50: float, idsw: int, fps: float) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps({"box": {"AP50": ap50}, "tracking": {"IDSW": idsw}}))
    (folder / "latency.json").write_text(json.dumps({**LATENCY, "fps": fps}))
    return folder


# --- spec, requirements, ablations, card, weaknesses ---------------------------------------------------

def test_measured_values_flatten_the_run_files():
    values = measured_values(METRICS, LATENCY)
    assert values["box.AP50"] == 0.6 and values["tracking.IDSW"] == 5.0 and values["box.num_gt"] == 12.0
    assert "tracking.preprocess" not in values  # text, not a measurement
    assert values["latency.fps"] == 5.0 and values["latency.detect.p95_ms"] == 150.0


def test_spec_section_states_protocol_and_each_requirement_with_its_measured_value():
    spec = load_spec(_spec())
    measured = measured_values(METRICS, LATENCY)
    rows = check_requirements(spec, measured)
    assert [r["met"] for r in rows] == [True, False, None, False]  # 0.6>=0.5, 5<=3, no mask AP, 5>=15
    text = "\n".join(spec_section(spec, measured))
    for part in ("shapes on a fixed camera", PROTOCOL["splits"], "0.50:0.05:0.95", "conf 0.25 chosen on val",
                 "class-agnostic", "| `box.AP50` | >= 0.5 | 0.600 | yes |", "| `tracking.IDSW` | <= 3 | 5.000 | **no** |",
                 "| `mask.AP` | >= 0.3 | not measured | not measured |"):
        assert part in text, part


def test_ablations_come_from_run_folders_and_weaknesses_are_listed(tmp_path: Path):
    for name, ap50, idsw, fps in (("a", 0.61, 4, 9.5), ("b", 0.55, 2, 9.0), ("c", 0.7, 7, 3.25)):
        _run_folder(tmp_path, name, ap50, idsw, fps)
    spec_file = tmp_path / "spec.yaml"
    ablations = [{"name": f"variant {n}", "question": f"question {n}", "run": n,
                  "metrics": ["box.AP50", "tracking.IDSW"] + (["latency.fps"] if n == "c" else [])} for n in "abc"]
    spec_file.write_text(yaml.safe_dump(_spec(ablations=ablations)))
    spec = load_spec(spec_file)
    assert spec.ablations[2].values == {"box.AP50": 0.7, "tracking.IDSW": 7.0, "latency.fps": 3.25}
    text = "\n".join(evidence_sections(spec))
    assert f"| variant a | question a | 0.610 | 4.000 | - | {tmp_path / 'a'} |" in text
    assert f"| variant c | question c | 0.700 | 7.000 | 3.250 | {tmp_path / 'c'} |" in text
    assert "- rods seen end-on are missed" in text and "No dataset card given" in text


def test_dataset_card_is_embedded_below_its_section(tmp_path: Path):
    from labkit.data.card import DatasetCard, MetricSpec, save_card

    card = DatasetCard(name="mini", version="1", summary="three scenes", sources=["drawn by code"],
                       capture_devices=["none"], label_definitions={"1 disc": "a round shape"},
                       edge_case_policy=["crowds are one iscrowd region"], annotation_types=["boxes"],
                       split_strategy="Unit: scene; 2 train, 1 test", known_artifacts=["JPEG blocks"],
                       metrics=[MetricSpec("mAP", "IoU 0.50:0.95, maxDets 100")])
    path = save_card(card, tmp_path / "card.md")
    text = "\n".join(evidence_sections(load_spec(_spec(dataset_card=str(path)))))
    assert "### Dataset card: mini" in text and "#### Split strategy" in text and "Unit: scene" in text


@pytest.mark.parametrize("change, message", [
    ({"protocol": {k: v for k, v in PROTOCOL.items() if k != "iou_thresholds"}}, "protocol misses \\['iou_thresholds'\\]"),
    ({"protocol": {**PROTOCOL, "class_aware": "yes"}}, "class_aware must be true or false"),
    ({"success": []}, "at least one"),
    ({"success": [{"metric": "box.AP", "op": "=>", "target": 0.5}]}, "success\\[0\\]: op must be one of"),
    ({"success": [{"metric": "box.AP", "op": ">=", "target": "high"}]}, "success\\[0\\]: target must be a finite number"),
    ({"success": [{"metric": "box.AP", "target": 0.5}]}, "success\\[0\\] needs metric, op and target"),
    ({"scenario": "  "}, "scenario must be a non-empty text"),
    ({"owner": "me"}, "unknown config keys \\['owner'\\]"),
    ({"weaknesses": "none"}, "'weaknesses' must be a list"),
    ({"dataset_card": "nowhere/card.md"}, "dataset_card: no such file"),
    ({"ablations": [{"name": "a", "question": "q", "results": {"box.AP": 0.1}}] * 2}, "3 to 6 experiments, got 2"),
    ({"ablations": [{"name": "a", "question": "q", "results": {"box.AP": 0.1}}] * 7}, "3 to 6 experiments, got 7"),
    ({"ablations": [{"name": "a", "question": "q"}] * 3}, "ablations\\[0\\]: give exactly one of 'run'"),
    ({"ablations": [{"name": "a", "question": "q", "results": {"box.AP": 0.1}, "metrics": ["box.AP50"]}] * 3},
     "ablations\\[0\\]: metrics \\['box.AP50'\\] not among"),
])
def test_bad_spec_is_a_data_error_naming_the_entry(change: dict, message: str):
    with pytest.raises(DataError, match=message) as info:
        load_spec(_spec(**change), source="spec.yaml")
    assert str(info.value).startswith("spec.yaml: ")


def test_ablation_run_folder_that_never_finished_is_named(tmp_path: Path):
    (tmp_path / "half").mkdir()
    with pytest.raises(DataError, match="no latency.json") as info:
        load_spec(_spec(ablations=[{"name": "a", "question": "q", "run": str(tmp_path / "half")}] * 3))
    assert "half" in str(info.value)


def test_unfinished_dataset_card_is_refused_in_the_report(tmp_path: Path):
    card = tmp_path / "card.md"
    card.write_text("# Dataset card: x\n\n## Sources and capture devices\n\nTODO\n")
    with pytest.raises(DataError, match="the dataset card is unfinished") as info:
        evidence_sections(load_spec(_spec(dataset_card=str(card))))
    assert str(card) in str(info.value)


def test_latency_sheet_states_stages_and_latency_requirements():
    text = "\n".join(latency_sheet(LATENCY, load_spec(_spec())))
    assert "10 frames in 2.000 s (5.000 frames per second" in text
    assert "| detect | 120.00 | 150.00 | 125.00 | 10 |" in text
    assert "- `latency.fps` >= 15: 5.000, NOT met" in text


# --- slices and failure gallery --------------------------------------------------------------------

def _record(frame_id: int, xywh, cls, score, source: str = "x.png", size=(100, 100)) -> dict:
    det = Detections(np.asarray(xywh, float).reshape(-1, 4), cls, score=score)
    return detections_to_record(det, frame_id=frame_id, timestamp_s=frame_id / 10, source=source, width=size[0],
                                height=size[1], class_names={1: "disc", 2: "block"})


def test_match_frame_greedy_by_score_class_aware_and_crowd_ignored():
    gt = Detections(np.array([[0, 0, 10, 10], [50, 50, 10, 10], [80, 0, 20, 20]], float), [1, 1, 2],
                    data={"iscrowd": np.array([0, 0, 1])})
    # p0 (0.9) on gt0; p1 (0.8) on gt0 again -> duplicate FP; p2 on gt1 with the wrong class -> FP when
    # class-aware; p3 on the crowd region -> ignored
    pred = Detections(np.array([[1, 0, 10, 10], [0, 1, 10, 10], [50, 50, 10, 10], [80, 0, 20, 19]], float),
                      [1, 1, 2, 2], score=[0.9, 0.8, 0.7, 0.6])
    hit, status = match_frame(pred, gt)
    assert hit.tolist() == [True, False, False] and status.tolist() == [1, 0, 0, -1]
    hit, status = match_frame(pred, gt, class_aware=False)
    assert hit.tolist() == [True, True, False] and status.tolist() == [1, 0, 1, -1]


def test_slice_table_counts_by_size_occlusion_motion_and_lighting():
    # frame 1: track 1 small (20x20, fully visible) found, track 2 medium (40x40, visibility 0.6) missed
    # frame 2: track 1 moved 3 px (moderate) found, track 2 moved 10 px (fast, visibility 0.2) missed,
    #          one false positive far away
    gt = {1: Detections(np.array([[0, 0, 20, 20], [50, 50, 40, 40]], float), [1, 1], track_id=[1, 2],
                        data={"iscrowd": np.zeros(2), "visibility": np.array([1.0, 0.6])}),
          2: Detections(np.array([[3, 0, 20, 20], [56, 58, 40, 40]], float), [1, 1], track_id=[1, 2],
                        data={"iscrowd": np.zeros(2), "visibility": np.array([0.95, 0.2])})}
    records = [_record(1, [[0, 0, 20, 20]], [1], [0.9]), _record(2, [[3, 0, 20, 20], [0, 80, 10, 10]], [1, 1], [0.9, 0.5])]
    rows = {(r["slice"], r["bucket"]): r for r in slice_table(records, gt, {1: 30.0, 2: 120.0})}
    assert (rows["size", "small"]["objects"], rows["size", "small"]["hits"]) == (2, 2)
    assert (rows["size", "medium"]["objects"], rows["size", "medium"]["recall"]) == (2, 0.0)
    assert rows["size", "large"]["recall"] is None
    assert [rows["occlusion", b]["objects"] for b in ("none", "partial", "heavy")] == [2, 1, 1]
    assert [rows["motion", b]["objects"] for b in ("new", "static", "moderate", "fast")] == [2, 0, 1, 1]
    assert rows["motion", "moderate"]["recall"] == 1.0 and rows["motion", "fast"]["recall"] == 0.0
    dark, normal = rows["lighting", "dark"], rows["lighting", "normal"]
    assert (dark["frames"], dark["objects"], dark["hits"], dark["false_positives"]) == (1, 2, 1, 0)
    assert (normal["frames"], normal["recall"], normal["false_positives"]) == (1, 0.5, 1)
    text = "\n".join(diagnosis_sections(list(rows.values()), [], "failures", iou=0.5, class_aware=True))
    assert "| lighting | normal | 1 | 2 | 1 | 0.500 | 1 |" in text and "No frame with a miss" in text


def test_slices_without_visibility_or_tracks_leave_those_slices_out():
    gt = {1: Detections(np.array([[0, 0, 20, 20]], float), [1], data={"iscrowd": np.zeros(1)})}
    rows = slice_table([_record(1, [[0, 0, 20, 20]], [1], [0.9])], gt, {1: 200.0})
    assert {r["slice"] for r in rows} == {"size", "lighting"}


def test_slices_and_gallery_name_frames_without_truth_or_brightness():
    records = [_record(1, [[0, 0, 20, 20]], [1], [0.9]), _record(2, [], [], [])]
    gt = {1: Detections(np.array([[0, 0, 20, 20]], float), [1])}
    with pytest.raises(DataError, match=r"slices: no ground truth for frames \[2\]"):
        slice_table(records, gt, {1: 100.0, 2: 100.0})
    with pytest.raises(DataError, match=r"slices: no brightness for frames \[2\]"):
        slice_table(records, {**gt, 2: Detections.empty()}, {1: 100.0})
    with pytest.raises(DataError, match=r"failure gallery: no ground truth for frames \[2\]"):
        failure_gallery(records, gt, "unused")


def test_failure_gallery_crops_the_worst_frames_around_their_errors(tmp_path: Path):
    image = np.full((100, 120, 3), 90, np.uint8)
    cv2.imwrite(str(tmp_path / "f.png"), image)
    src = str(tmp_path / "f.png")
    gt = {1: Detections(np.array([[10, 10, 20, 20]], float), [1]),  # found: no error, never shown
          2: Detections(np.array([[10, 10, 20, 20], [60, 40, 20, 30]], float), [1, 2]),  # both missed + 1 FP
          3: Detections(np.array([[10, 10, 20, 20]], float), [1])}  # missed
    records = [_record(1, [[10, 10, 20, 20]], [1], [0.9], src, (120, 100)),
               _record(2, [[90, 5, 10, 10]], [1], [0.9], src, (120, 100)),
               _record(3, [], [], [], src, (120, 100))]
    rows = failure_gallery(records, gt, tmp_path / "failures", count=5, pad=4)
    assert rows == [{"frame_id": 2, "misses": 2, "false_positives": 1, "file": "frame_000002.png"},
                    {"frame_id": 3, "misses": 1, "false_positives": 0, "file": "frame_000003.png"}]
    crop = cv2.imread(str(tmp_path / "failures" / "frame_000002.png"))
    assert crop.shape[:2] == (70 - 5 + 4 + 4, 100 - 10 + 4 + 4)  # union (10,5)-(100,70), 4 px pad each side
    crop = cv2.imread(str(tmp_path / "failures" / "frame_000003.png"))
    assert crop.shape[:2] == (28, 28) and (crop[4, 10] == [0, 0, 255]).all()  # the red miss outline (BGR)


def test_html_shows_gallery_images_and_bold():
    out = markdown_to_html("**Scenario.** x\n\n![frame 2](failures/frame_000002.png)\n")
    assert "<strong>Scenario.</strong> x" in out and '<img src="failures/frame_000002.png" alt="frame 2">' in out


# --- one real run ----------------------------------------------------------------------------------

def test_run_with_spec_writes_every_capstone_section(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    if not SEQ.is_dir():
        pytest.skip(f"generated sequence not found at {SEQ} (make data)")
    config = tiny_config(tmp_path / "models", tracker="track_default.yaml")
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(_spec()))
    code = labkit.cli.main(["run", "--config", str(config), "--source", str(SEQ), "--out", str(tmp_path / "run"),
                            "--max-frames", "4", "--spec", str(spec), "--json"])
    assert code == 0
    out = tmp_path / "run"
    report = (out / "report.md").read_text()
    headings = [line for line in report.splitlines() if line.startswith("## ")]
    assert headings == ["## Capstone spec", "## Command", "## Source", "## Models", "## Metrics", "## Slices",
                        "## Failure gallery", "## Dataset card", "## Ablations", "## Known weaknesses",
                        "## Latency sheet", "## Outputs"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert f"| `box.AP50` | >= 0.5 | {metrics['box']['AP50']:.3f} |" in report
    assert "--spec" in json.loads((out / "manifest.json").read_text())["command"]
    slices = {line.split("|")[1].strip() for line in report.split("## Slices")[1].split("## Failure")[0].splitlines()
              if line.startswith("| ") and not line.startswith("| slice")}
    assert slices == {"size", "occlusion", "motion", "lighting"}  # gt.txt carries visibility and track ids
    shown = [line.split("(")[1].rstrip(")") for line in report.splitlines() if line.startswith("![")]
    assert shown and all((out / s).is_file() for s in shown)
    code = labkit.cli.main(["run", "--config", str(config), "--source", str(SEQ), "--out", str(tmp_path / "r2"),
                            "--spec", str(tmp_path / "missing.yaml")])
    assert code == EXIT_USAGE and "capstone spec not found" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists()


def test_budget_config_takes_each_model_from_the_registry_and_keeps_explicit_weights(monkeypatch, tmp_path: Path):
    from types import SimpleNamespace

    import labkit.models
    from labkit.pipeline.config import budget_config, load_config

    loaded = []

    def fake_load(name, **_):
        loaded.append(name)
        variant = {"detect-base": "detect-tiny", "segment-base": "segment-tiny"}[name]
        return SimpleNamespace(name=variant, weights=tmp_path / f"{variant}.pt")

    monkeypatch.setattr(labkit.models, "load", fake_load)
    values = budget_config({"detector": {"name": "detect-base", "conf": 0.3}, "segmenter": {"name": "segment-base"},
                            "tracker": None})
    assert loaded == ["detect-base", "segment-base"]
    assert values["detector"] == {"name": "detect-tiny", "conf": 0.3, "weights": str(tmp_path / "detect-tiny.pt")}
    assert values["segmenter"] == {"name": "segment-tiny", "weights": str(tmp_path / "segment-tiny.pt")}
    kept = budget_config({"detector": {"name": "detect-base", "weights": "mine.pt"}, "segmenter": None})
    assert kept["detector"] == {"name": "detect-base", "weights": "mine.pt"} and len(loaded) == 2
    assert load_config(values).detector.name == "detect-tiny"


def test_coco_truth_keeps_visibility_and_track_ids_for_the_slices(tmp_path: Path):
    from labkit.pipeline.evaluate import truth_from_coco

    coco = {"images": [{"id": 1, "file_name": "seq/img1/000001.jpg", "width": 100, "height": 100}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 20], "area": 400,
                             "iscrowd": 0, "visibility": 0.3, "track_id": 4}],
            "categories": [{"id": 1, "name": "disc"}]}
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(coco))
    record = _record(1, [[0, 0, 20, 20]], [1], [0.9], source=str(tmp_path / "seq" / "img1" / "000001.jpg"))
    truth = truth_from_coco(path, [record])
    assert truth.frames[1].data["visibility"].tolist() == [0.3] and truth.frames[1].track_id.tolist() == [4]
    filled = {(r["slice"], r["bucket"]) for r in slice_table([record], truth.frames, {1: 100.0}) if r["objects"]}
    assert filled == {("size", "small"), ("occlusion", "heavy"), ("motion", "new"), ("lighting", "normal")}
