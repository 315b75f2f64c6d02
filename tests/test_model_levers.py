"""benchmarks/model_levers.py, the base models' quality table: goal checks at their boundaries,
curves read from hand-written training logs, and chapter READMEs whose figures are exactly the
committed record's (no typed numbers)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import REPO, load_script

levers = load_script("model_levers", folder="benchmarks")
RECORD = REPO / "benchmarks" / "results" / "bench_models.json"


def test_goals_compare_at_their_boundaries():
    assert levers.meets(0.70, ">=", 0.70) and not levers.meets(0.6999, ">=", 0.70)
    assert not levers.meets(0.30, ">", 0.30) and levers.meets(0.3001, ">", 0.30)  # rod / star IoU: strictly above
    assert not levers.meets(None, ">=", 0.0)  # an undefined score never meets a goal


def test_goal_rows_report_shortfall_and_the_first_epoch_on_the_curve_that_reached_the_goal():
    curve = [{"epoch": 2, "AP50": 0.10}, {"epoch": 4, "AP50": 0.70}, {"epoch": 6, "AP50": 0.75}]
    (row,) = levers.goal_rows("detect-base", {"AP50": 0.25}, curve)
    assert row["met"] is False and row["goal"] == ">= 0.7"
    assert row["shortfall"] == pytest.approx(0.45) and row["first_epoch_reaching"] == 4
    (row,) = levers.goal_rows("detect-frcnn", {"AP50": 0.5}, curve[:1])
    assert row["met"] is True and row["shortfall"] == 0.0 and row["first_epoch_reaching"] is None
    # the U-Net's goals: mIoU and the thin and the rare class, read from the in-training curve
    unet = [{"epoch": 1, "val_miou_letterboxed": 0.2, "iou_rod_letterboxed": 0.31, "iou_star_letterboxed": 0.30}]
    rows = {r["metric"]: r for r in levers.goal_rows("segment-base", {"val_miou": 0.3, "iou_rod": 0.0}, unet)}
    assert rows["iou_rod"]["first_epoch_reaching"] == 1 and rows["iou_star"]["first_epoch_reaching"] is None
    assert rows["iou_star"]["value"] is None and rows["iou_star"]["met"] is False
    assert levers.goal_rows("track-reid", {"rank1": 0.9}, []) == []  # no goal in the issue


def test_gain_per_epoch_uses_the_last_two_points_that_have_the_metric():
    curve = [{"epoch": 2, "AP50": 0.0}, {"epoch": 6, "AP50": 0.183}, {"epoch": 7}, {"epoch": 8, "AP50": 0.245}]
    assert levers.gain_per_epoch(curve, "AP50") == pytest.approx((0.245 - 0.183) / 2)
    assert levers.gain_per_epoch(curve[:1], "AP50") is None


def test_the_detector_curve_is_read_from_ultralytics_results_and_labkit_epochs_logs(tmp_path: Path):
    (tmp_path / "results.csv").write_text(
        "  epoch,  time, train/box_loss, metrics/mAP50(B)\n1, 60, 3.0, 0.01\n2, 150, 2.5, 0.05\n3, 240, 2.2, 0.09\n")
    (tmp_path / "epochs.csv").write_text("epoch,train_minutes,coco/AP50,coco/AP\n1,1.0,,\n2,2.5,0.04,0.02\n3,4.0,,\n")
    points = levers.ultralytics_curve(tmp_path, "box")
    assert [p["epoch"] for p in points] == [1, 2, 3]
    assert [p["ultralytics_AP50"] for p in points] == [0.01, 0.05, 0.09]
    assert [p["minutes"] for p in points] == [1.0, 2.5, 4.0]
    assert points[1]["AP50"] == 0.04 and points[1]["AP50_95"] == 0.02 and "AP50" not in points[0]


def test_chapter_readmes_show_exactly_the_committed_record(tmp_path: Path):
    record = json.loads(RECORD.read_text(encoding="utf-8"))
    for rel in levers.READMES:
        (tmp_path / rel).parent.mkdir(parents=True)
        shutil.copyfile(REPO / rel, tmp_path / rel)
    levers.write_readmes(record, "benchmarks/results/bench_models.json", repo=tmp_path)
    for rel, names in levers.READMES.items():
        text = (REPO / rel).read_text(encoding="utf-8")
        assert text == (tmp_path / rel).read_text(encoding="utf-8"), f"{rel} is stale: run model_levers.py --readme"
        assert levers.START in text and all(f"| {name} |" in text for name in names
                                            if name in {m["name"] for m in record["models"]})


@pytest.mark.parametrize("record", sorted((REPO / "benchmarks" / "results").glob("*.json")), ids=lambda p: p.name)
def test_a_committed_record_names_no_machine_folder(record):
    text = record.read_text()
    assert '"/' not in text, f"{record.name} names an absolute path (a JSON string starting with a slash)"