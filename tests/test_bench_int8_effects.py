"""benchmarks/robust_int8_effects.py end to end at tiny size (the shipped detect-base and
segment-base, 5 frames of one val sequence, 2 val images, 2 calibration images): the record holds
every runtime and condition; the INT8 - fp32 changes are the differences of the stored scores;
both INT8 files are smaller than their fp32 exports; and the fp32 ONNX tracking row is what the
PyTorch detector gives when its detections are tracked and scored independently here (a wrong
frame cut, ground truth or detector setting in the benchmark would part the two). Bad arguments
are refused by name before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import load_script

pytest.importorskip("onnxruntime")

TINY = ["--frames", "5", "--sequences", "1", "--images", "2", "--calibration", "2", "--repeats", "1"]
CONDITIONS = ["clean", "gaussian_noise_s3", "low_light_s3"]


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("int8-effects")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LABKIT_ARTIFACTS", str(folder))
        assert load_script("robust_int8_effects", folder="benchmarks").main(TINY) == 0
    return json.loads((folder / "bench_robust_int8_effects.json").read_text())


def test_record_holds_every_runtime_and_condition(record: dict) -> None:
    tracking, segmentation = record["tracking"], record["segmentation"]
    assert record["conditions"] == CONDITIONS and record["calibration_images"] == 2 and record["threads"] == 1
    assert tracking["frames_per_sequence"] == [5] and len(tracking["sequences"]) == 1
    assert len(segmentation["val_images"]) == 2 and len(record["load_average_1min"]) == 2
    assert record["manifest"]["config"]["frames"] == "5"
    for section, metrics in ((tracking, {"HOTA", "IDF1", "MOTA", "IDSW", "AP", "AP50"}),
                             (segmentation, {"mean_iou", "mean_boundary_f"})):
        assert set(section["scores"]) == {"onnx_fp32", "onnx_int8"}
        for runtime, by_condition in section["scores"].items():
            assert list(by_condition) == CONDITIONS
            for cond, scores in by_condition.items():
                assert metrics <= set(scores), (runtime, cond)
                change = section["change_int8_minus_fp32"][cond]
                for m in metrics:  # the change is INT8 minus fp32 of the stored scores, nothing else
                    a, b = section["scores"]["onnx_int8"][cond][m], section["scores"]["onnx_fp32"][cond][m]
                    assert change[m] == (None if a is None or b is None else pytest.approx(a - b, abs=1e-12))
        assert section["file_bytes"]["onnx_int8"] < 0.5 * section["file_bytes"]["onnx_fp32"]  # 8-bit weights
    assert tracking["corruptions"]["clean"] == [None]
    noise = tracking["corruptions"]["gaussian_noise_s3"][0]
    assert (noise["kind"], noise["severity"], noise["params"]["sigma"]) == ("gaussian_noise", 3, 20)
    assert all(v["images"] == 2 and v["images_per_s"] > 0 for v in segmentation["throughput"].values())


def test_fp32_tracking_matches_the_pytorch_detector(record: dict) -> None:
    """The same 5 clean frames through the PyTorch detector, the default tracker and TrackEval
    (labkit.metrics.tracking.evaluate_tracking), outside the benchmark's code."""
    from labkit.data.mot import read_mot
    from labkit.data.synth import ensure_dataset
    from labkit.detect.predict import load_detector, predict
    from labkit.metrics.tracking import evaluate_tracking
    from labkit.track.run import track_frames
    from labkit.track.sequence import open_sequence

    tracking = record["tracking"]
    seq = open_sequence(Path(ensure_dataset()) / "sequences" / "val" / tracking["sequences"][0])
    frames = {f: seq.read_frame(f) for f in range(1, 6)}
    found = predict(load_detector(tracking["weights"], device="cpu"), frames, conf=0.05, batch=1, progress=False)
    gt = {f: d for f, d in read_mot(seq.gt_file, "gt").items() if f <= 5}
    tracks = track_frames(found, 5, None, record=False).tracks
    summary = evaluate_tracking(gt, tracks, num_frames=5, preprocess="none").summary()
    stored = tracking["scores"]["onnx_fp32"]["clean"]
    assert sum(len(d) for d in found.values()) == stored["detections"]
    for metric in ("HOTA", "IDF1", "MOTA", "IDSW"):
        assert stored[metric] == pytest.approx(summary[metric], abs=1e-3), metric


@pytest.mark.parametrize("argv, message", [
    (["--frames", "0"], "--frames must be >= 1, got 0"),
    (["--images", "-1"], "--images must be >= 1, got -1"),
    (["--corruptions", "fogg:3"], "unknown corruption kind 'fogg'"),
    (["--corruptions", "gaussian_noise:9"], "severity must be an integer from 1 to 5, got 9"),
    (["--corruptions", "gaussian_noise"], "a corruption is KIND:SEVERITY"),
    (["--conf", "1.5"], "--conf must be in [0, 1], got 1.5"),
])
def test_bad_arguments_are_named(argv: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    bench = load_script("robust_int8_effects", folder="benchmarks")
    with pytest.raises(SystemExit) as exit_info:
        bench.main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
