"""The environment checklist (labkit.envcheck, ``labkit env``)."""

from __future__ import annotations

import json

import pytest

from labkit import envcheck
from labkit.cli import main

BUILD_INFO = """
General configuration for OpenCV 4.14.0 =====================================
  Media I/O:
    ZLib:                        /usr/lib64/libz.so (ver 1.2.11)
    JPEG:                        build-libjpeg-turbo (ver 3.1.2-70)
      SIMD Support Request:      YES
    PNG:                         /usr/local/lib/libpng.so (ver 1.6.58)

  Video I/O:
    FFMPEG:                      YES
      avcodec:                   YES (62.28.102)
    GStreamer:                   NO
    v4l/v4l2:                    YES (linux/videodev2.h)
"""


def test_parse_build_info():
    info = envcheck.parse_build_info(BUILD_INFO)
    assert info["Media I/O"]["JPEG"] == "build-libjpeg-turbo (ver 3.1.2-70)"
    assert info["Media I/O"]["PNG"].endswith("(ver 1.6.58)")
    assert "SIMD Support Request" not in info["Media I/O"] and "avcodec" not in info["Video I/O"]
    assert [k for k, v in info["Video I/O"].items() if v.startswith("YES")] == ["FFMPEG", "v4l/v4l2"]


def test_real_opencv_build_has_codecs():
    build = envcheck.opencv_build()
    assert build["jpeg"] and build["png"] and isinstance(build["video_backends"], list)


@pytest.fixture(scope="module")
def checks() -> list[envcheck.Check]:
    return envcheck.run_checks()


def test_every_check_runs_and_passes_here(checks):
    names = [c.name for c in checks]
    assert names == ["python", "torch", "cuda", "gpu_matmul", "opencv", "image_decode", "video_decode", "ffmpeg"]
    assert envcheck.all_required_ok(checks), envcheck.render(checks)
    by_name = {c.name: c for c in checks}
    assert "read back 5" in by_name["video_decode"].detail
    assert "mean abs error 0.00" in by_name["image_decode"].detail  # PNG is lossless
    assert by_name["cuda"].required is False


def test_a_raising_check_becomes_a_failed_line(monkeypatch):
    def _broken() -> envcheck.Check:
        raise RuntimeError("driver mismatch")

    monkeypatch.setattr(envcheck, "CHECKS", (envcheck._python, _broken))
    checks = envcheck.run_checks()
    assert checks[1] == envcheck.Check("broken", False, "RuntimeError: driver mismatch")
    assert not envcheck.all_required_ok(checks) and "[FAIL] broken" in envcheck.render(checks)
    assert main(["env"]) == 1


def test_optional_failures_do_not_fail_the_run(monkeypatch, capsys):
    monkeypatch.setattr(envcheck, "CHECKS", (envcheck._python, lambda: envcheck.Check("cuda", False, "x", required=False)))
    assert main(["env", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["ok"] is True and payload["checks"][1] == {"name": "cuda", "ok": False, "detail": "x", "required": False}


def test_opencv_without_hog_fails(monkeypatch):
    import cv2

    monkeypatch.delattr(cv2, "HOGDescriptor")
    check = envcheck._opencv()
    assert not check.ok and "MISSING HOGDescriptor" in check.detail
