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


REQUIRES = ["numpy>=1.26,<3", "torch>=2.2,<2.15", "torchvision>=0.17,<0.30",
            'jupyterlab>=4; extra == "course"', 'torch==9.9; extra == "other"']


def test_supported_range_reads_the_unconditional_torch_lines_only():
    ranges = envcheck.supported_range(REQUIRES)
    assert {name: str(spec) for name, spec in ranges.items()} == {"torch": "<2.15,>=2.2", "torchvision": "<0.30,>=0.17"}
    assert envcheck.supported_range(None) == {} and envcheck.supported_range(["not a requirement !!"]) == {}


@pytest.mark.parametrize("version, inside", [
    ("2.2.0", True), ("2.1.2", False),                  # lower bound is inclusive
    ("2.14.1", True), ("2.14.1+cu130", True),           # local build tags do not matter
    ("2.14.0rc1", True), ("2.15.0", False), ("2.15.0.dev20260101", False),  # <2.15 excludes 2.15's pre-releases
    ("garbage", False),
])
def test_torch_version_boundaries(version, inside):
    assert envcheck.in_range(version, envcheck.supported_range(REQUIRES)["torch"]) is inside


def test_torch_outside_the_declared_range_fails_the_check(monkeypatch):
    import torch

    monkeypatch.setattr(envcheck.importlib.metadata, "requires", lambda name: ["torch>=99", "torchvision>=0"])
    check = envcheck._torch()
    assert not check.ok and check.required
    assert f"torch {torch.__version__} is outside the supported >=99" in check.detail
    monkeypatch.setattr(envcheck.importlib.metadata, "requires", lambda name: [f"torch=={torch.__version__}"])
    assert envcheck._torch().ok
