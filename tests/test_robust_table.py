"""scripts/robust_table.py writes Chapter 5's INT8 tables from the committed benchmark records: hand-made
records give hand-worked lines, a record missing a section is refused naming the files, and the
committed README block is what the committed records say."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from conftest import load_script

table = load_script("robust_table")
REPO = Path(__file__).resolve().parents[1]

_SCORES = {"clean": {"AP50": 0.25}, "low_light_s3": {"AP50": 0.125}}
RUNTIMES = {
    "bench_robustness.int8": {
        "val_images": [1, 2, 3, 4], "calibration_images": 8, "target_int8_AP50_drop": 0.02, "meets_int8_AP50_target": True,
        "scores": {"pytorch": _SCORES, "onnx_fp32": _SCORES,
                   "onnx_int8": {"clean": {"AP50": 0.24}, "low_light_s3": {"AP50": 0.13}}},
        "AP50_change_vs_onnx_fp32": {"clean": {"onnx_int8": -0.01}, "low_light_s3": {"onnx_int8": 0.005}}},
    "bench_latency.runtimes": {
        "batch": 1, "threads": 1, "load_average_1min": [1.25, 1.5], "manifest": {"created_unix": 86400},
        "throughput": {"pytorch": {"images_per_s": 10.0}, "onnx_fp32": {"images_per_s": 11.0},
                       "onnx_int8": {"images_per_s": 16.5}},
        "file_bytes": {"pytorch": 6_200_000, "onnx_fp32": 12_100_000, "onnx_int8": 3_200_000},
        "onnx_fp32_vs_pytorch": 1.1, "onnx_int8_vs_onnx_fp32": 1.5,
        "targets": {"onnx_fp32_vs_pytorch": 1.2, "onnx_int8_vs_onnx_fp32": 1.5}}}
_TRACK = {"HOTA": 0.4, "IDF1": 0.5, "IDSW": 10}
EFFECTS = {
    "conditions": ["clean"], "load_average_1min": [1.0, 1.0],
    "tracking": {"sequences": ["seq05"], "frames_per_sequence": [150], "conf": 0.05,
                 "scores": {"onnx_fp32": {"clean": _TRACK}, "onnx_int8": {"clean": {"HOTA": 0.375, "IDF1": 0.5, "IDSW": 13}}}},
    "segmentation": {"val_images": [1, 2], "batch": 1, "int8_vs_fp32_speed": 2.5,
                     "scores": {"onnx_fp32": {"clean": {"mean_iou": 0.3}}, "onnx_int8": {"clean": {"mean_iou": 0.2995}}},
                     "throughput": {"onnx_fp32": {"images_per_s": 20.0}, "onnx_int8": {"images_per_s": 50.0}},
                     "file_bytes": {"onnx_fp32": 57_300_000, "onnx_int8": 14_400_000}}}


def test_hand_made_records_give_hand_worked_lines():
    text = table.render(RUNTIMES, EFFECTS)
    flat = " ".join(text.split())
    assert "| PyTorch | 10.00 | 0.250 | 0.125 | 6.2 MB |" in text
    assert "| ONNX Runtime INT8 | 16.50 | 0.240 | 0.130 | 3.2 MB |" in text
    # 1.1 < 1.2: not met; 1.5 >= 1.5: met (a ratio exactly at the target meets it)
    assert "ONNX fp32 / PyTorch 1.10x (target 1.2x: not met); INT8 / fp32 1.50x (target 1.5x: met)" in flat
    assert "the INT8 change in AP50 is -0.010 clean, +0.005 low_light_s3" in flat
    assert "measured on 1970-01-02" in flat and "same 4 val images" in flat
    assert "| clean | 0.400 -> 0.375 | 0.500 -> 0.500 | 10 -> 13 | 0.3000 -> 0.2995 |" in text
    assert "20.0 images/s fp32, 50.0 INT8 (2.50x), files 57.3 MB -> 14.4 MB" in flat


def test_a_record_missing_a_section_is_refused_naming_the_files(tmp_path, capsys):
    broken = copy.deepcopy(EFFECTS)
    del broken["segmentation"]
    (tmp_path / "runtimes.json").write_text(json.dumps(RUNTIMES))
    (tmp_path / "effects.json").write_text(json.dumps(broken))
    readme = tmp_path / "README.md"
    readme.write_text(f"# Ch5\n{table.START}\n{table.END}\n")
    assert table.main(["--runtimes", str(tmp_path / "runtimes.json"), "--effects", str(tmp_path / "effects.json"),
                       "--readme", str(readme)]) == 1
    assert "effects.json: not a record of the INT8 benchmarks (missing 'segmentation')" in capsys.readouterr().err


def test_write_then_check(tmp_path):
    (tmp_path / "runtimes.json").write_text(json.dumps(RUNTIMES))
    (tmp_path / "effects.json").write_text(json.dumps(EFFECTS))
    readme = tmp_path / "README.md"
    readme.write_text(f"# Ch5\nbefore\n{table.START}\nold\n{table.END}\nafter\n")
    args = ["--runtimes", str(tmp_path / "runtimes.json"), "--effects", str(tmp_path / "effects.json"), "--readme", str(readme)]
    assert table.main(args + ["--check"]) == 1
    assert table.main(args) == 0
    text = readme.read_text()
    assert text.startswith("# Ch5\nbefore\n") and text.endswith(f"{table.END}\nafter\n") and "old" not in text
    assert table.main(args + ["--check"]) == 0


def test_the_chapter_readme_shows_the_committed_records():
    assert table.main(["--check"]) == 0, "run scripts/robust_table.py"
