"""``labkit robust corrupt``: images, folders and videos in, PNGs and the record out; bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from labkit.cli import main
from labkit.data.images import load_image
from labkit.robust.corruptions import make_corruption


def _image(seed: int, h: int = 48, w: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), (0, 0), 2)
    cv2.rectangle(img, (10, 10), (30, 30), (250, 20, 20), -1)
    return img


def _save(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), rgb[..., ::-1])
    return path


def _corrupt(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, dict | None, str]:
    code = main(["robust", "corrupt", *argv, "--json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


def test_one_image_is_corrupted_as_the_api_does(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = _save(tmp_path / "in" / "shot.png", _image(0))
    code, record, _ = _corrupt(capsys, "--kind", "motion_blur", "--severity", "3", "--seed", "4", "--in", str(src),
                               "--out", str(tmp_path / "out"))
    assert code == 0 and record["mode"] == "image" and record["files"] == ["shot.png"]
    expected = make_corruption("motion_blur", 3, 4)
    assert record["params"] == expected.params
    np.testing.assert_array_equal(load_image(tmp_path / "out" / "shot.png"), expected.apply(_image(0)))
    saved = json.loads((tmp_path / "out" / "corruption.json").read_text())
    assert saved["params"] == expected.params and saved["seed"] == 4


def test_a_folder_is_one_sequence(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for k in range(3):
        _save(tmp_path / "seq" / f"{k:06d}.png", _image(k))
    code, record, _ = _corrupt(capsys, "--kind", "h264", "--severity", "5", "--in", str(tmp_path / "seq"),
                               "--out", str(tmp_path / "out"))
    assert code == 0 and record["mode"] == "sequence" and record["frames"] == 3
    assert record["params"] == {"kbps": 20}
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["000000.png", "000001.png", "000002.png"]


def test_a_video_is_read_frame_by_frame(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import imageio_ffmpeg

    video = tmp_path / "clip.mp4"
    writer = imageio_ffmpeg.write_frames(str(video), (64, 48), fps=10, codec="libx264", quality=8,
                                         macro_block_size=16, output_params=["-pix_fmt", "yuv420p"])
    writer.send(None)
    for k in range(4):
        writer.send(np.ascontiguousarray(_image(k)))
    writer.close()
    code, record, _ = _corrupt(capsys, "--kind", "fog", "--severity", "2", "--in", str(video),
                               "--out", str(tmp_path / "out"))
    assert code == 0 and record["mode"] == "sequence" and record["frames"] == 4
    assert record["files"][0] == "clip_000001.png"


def test_unknown_kind_is_a_usage_error_listing_the_kinds(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["robust", "corrupt", "--kind", "haze", "--severity", "1", "--in", "x.png", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "haze" in err and "motion_blur" in err and "h264" in err


@pytest.mark.parametrize("severity", ["0", "6"])
def test_severity_outside_one_to_five(severity: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = _save(tmp_path / "a.png", _image(0))
    code, _, err = _corrupt(capsys, "--kind", "jpeg", "--severity", severity, "--in", str(src), "--out", str(tmp_path / "o"))
    assert code == 2 and "severity must be an integer from 1 to 5" in err


def test_unreadable_image_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    code, _, err = _corrupt(capsys, "--kind", "jpeg", "--severity", "1", "--in", str(bad), "--out", str(tmp_path / "o"))
    assert code == 1 and str(bad) in err


def test_undecodable_video_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    code, _, err = _corrupt(capsys, "--kind", "jpeg", "--severity", "1", "--in", str(bad), "--out", str(tmp_path / "o"))
    assert code == 1 and str(bad) in err


def test_missing_input_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, err = _corrupt(capsys, "--kind", "jpeg", "--severity", "1", "--in", str(tmp_path / "nope.png"),
                            "--out", str(tmp_path / "o"))
    assert code == 2 and "nope.png" in err


def test_monitor_logs_features_and_raises_the_alarm_at_dusk(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(60, 200, (48, 64, 3), dtype=np.uint8), (0, 0), 1)

    def shot(gain: float) -> np.ndarray:  # the scene with a little exposure flicker
        return np.clip(base * gain + rng.integers(-3, 4), 0, 255).astype(np.uint8)

    for k in range(60):
        _save(tmp_path / "ref" / f"{k:04d}.png", shot(1.0))
    for k in range(60):  # darker from frame 30 on
        _save(tmp_path / "live" / f"{k:04d}.png", shot(1.0 if k < 30 else 0.4))
    code, ref, _ = _corrupt_like(capsys, "monitor", "--in", str(tmp_path / "ref"), "--out", str(tmp_path / "ref.jsonl"))
    assert code == 0 and ref["frames"] == 60
    # window 10: PSI's noise floor (5 bins) is about 4 * (1/10 + 1/60) = 0.47, so PSI alarms at 1.5
    drift = ["--reference", str(tmp_path / "ref.jsonl"), "--window", "10", "--psi-alarm", "1.5"]
    code, live, _ = _corrupt_like(capsys, "monitor", "--in", str(tmp_path / "live"), "--out", str(tmp_path / "live.jsonl"),
                                  *drift)
    assert code == 0
    assert live["first_alarm"] is not None and 30 <= int(live["first_alarm"]) < 40  # within one window of dusk
    lines = (tmp_path / "live.jsonl").read_text().splitlines()
    assert len(lines) == 60 and {"blur", "brightness", "contrast", "blockiness"} <= set(json.loads(lines[0]))
    code, _, _ = _corrupt_like(capsys, "monitor", "--in", str(tmp_path / "live"), "--out", str(tmp_path / "x.jsonl"),
                               *drift, "--fail-on-alarm")
    assert code == 1


def _corrupt_like(capsys: pytest.CaptureFixture, command: str, *argv: str) -> tuple[int, dict | None, str]:
    code = main(["robust", command, *argv, "--json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err
