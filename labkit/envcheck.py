"""``labkit env``: is this machine ready for the course?

Each check returns a :class:`Check` (name, ok, detail, required). Versions of Python, torch and
torchvision (failing when outside the range labkit's package metadata declares, :func:`supported_range`:
hosted notebooks keep their preinstalled torch when it is inside it), CUDA/cuDNN and OpenCV; OpenCV's JPEG/PNG codecs and video back-ends (parsed from
``cv2.getBuildInformation()``) and the classes the course needs (:data:`OPENCV_FEATURES`); a real matrix product on the GPU compared with the CPU (or
"CPU only"); JPEG and PNG encode/decode in memory; writing and reading back a short MJPG/AVI
video; ffmpeg through imageio-ffmpeg. Exit code 0 when every required check passes, else 1.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from labkit.cli import add_json_flag, emit

MIN_PYTHON = (3, 10)
#: OpenCV classes the course uses that OpenCV 5 dropped (Chapter 2: HOG people detector, Haar cascades).
OPENCV_FEATURES = ("HOGDescriptor", "CascadeClassifier")
#: Packages whose installed version is checked against labkit's declared range.
RANGED = ("torch", "torchvision")


@dataclass
class Check:
    """One line of the checklist. A failed check with ``required=False`` is informational."""

    name: str
    ok: bool
    detail: str
    required: bool = True


def parse_build_info(text: str) -> dict[str, dict[str, str]]:
    """``cv2.getBuildInformation()`` as ``{section: {entry: value}}``.

    Sections are the two-space-indented ``Name:`` lines (e.g. ``Media I/O``, ``Video I/O``);
    entries are the four-space-indented ``key: value`` lines below them (deeper lines, such as
    the ``avcodec`` versions under ``FFMPEG``, are skipped).
    """
    out: dict[str, dict[str, str]] = {}
    section: dict[str, str] | None = None
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip(" "))
        key, sep, value = line.strip().partition(":")
        if not sep:
            continue
        if indent == 2:
            section = out.setdefault(key.strip(), {})
        elif indent == 4 and section is not None:
            section[key.strip()] = value.strip()
    return out


def opencv_build() -> dict[str, object]:
    """OpenCV version, JPEG and PNG codec lines, and the video I/O back-ends built in."""
    import cv2

    info = parse_build_info(cv2.getBuildInformation())
    media, video = info.get("Media I/O", {}), info.get("Video I/O", {})
    return {
        "version": cv2.__version__,
        "jpeg": media.get("JPEG"),
        "png": media.get("PNG"),
        "video_backends": [k for k, v in video.items() if v.upper().startswith("YES")],
    }


def _python() -> Check:
    ok = sys.version_info[:2] >= MIN_PYTHON
    return Check("python", ok, f"{platform.python_version()} (need >= {'.'.join(map(str, MIN_PYTHON))})")


def supported_range(requirements: list[str] | None) -> dict[str, SpecifierSet]:
    """``{package: version range}`` for :data:`RANGED` from a list of requirement strings
    (``importlib.metadata.requires("labkit")``); requirements behind an extra are ignored."""
    out: dict[str, SpecifierSet] = {}
    for line in requirements or []:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.name in RANGED and req.marker is None:
            out[req.name] = req.specifier
    return out


def in_range(version: str, spec: SpecifierSet) -> bool:
    """Whether an installed version (local tags such as ``+cu121`` allowed) lies in ``spec``.
    Pre-releases count by their number, so ``2.14.0rc1`` is inside ``>=2.2,<2.15`` and
    ``2.15.0.dev0`` is not (PEP 440: ``<2.15`` excludes 2.15's pre-releases)."""
    try:
        return spec.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


def _torch() -> Check:
    import torch
    import torchvision

    try:
        ranges = supported_range(importlib.metadata.requires("labkit"))
    except importlib.metadata.PackageNotFoundError:
        ranges = {}
    found = {"torch": torch.__version__, "torchvision": torchvision.__version__}
    outside = [f"{name} {found[name]} is outside the supported {spec}" for name, spec in ranges.items()
               if not in_range(found[name], spec)]
    detail = f"torch {found['torch']}, torchvision {found['torchvision']}"
    if not ranges:
        return Check("torch", True, detail + " (supported range unknown: labkit is not installed as a package)")
    supported = ", ".join(f"{name}{spec}" for name, spec in sorted(ranges.items()))
    return Check("torch", not outside, "; ".join([detail, *outside]) + f" (supported: {supported})")


def _cuda() -> Check:
    import torch

    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    if not torch.cuda.is_available():
        return Check("cuda", True, f"CPU only (torch built with CUDA {torch.version.cuda}, cuDNN {cudnn})", required=False)
    return Check("cuda", True, f"CUDA {torch.version.cuda}, cuDNN {cudnn}, {torch.cuda.device_count()} device(s): "
                 f"{torch.cuda.get_device_name(0)}", required=False)


def _gpu_matmul() -> Check:
    import torch

    if not torch.cuda.is_available():
        return Check("gpu_matmul", True, "CPU only: no GPU to test")
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(512, 512, generator=gen, dtype=torch.float64), torch.randn(512, 512, generator=gen, dtype=torch.float64)
    gpu = (a.cuda() @ b.cuda()).cpu()
    err = float((gpu - a @ b).abs().max())
    return Check("gpu_matmul", err < 1e-8, f"512x512 float64 matmul on {torch.cuda.get_device_name(0)}: "
                 f"max |GPU - CPU| = {err:.2e}")


def _opencv() -> Check:
    import cv2

    build = opencv_build()
    missing = [name for name in OPENCV_FEATURES if not hasattr(cv2, name)]
    codecs = bool(build["jpeg"]) and bool(build["png"]) and "NO" not in (str(build["jpeg"]) + str(build["png"]))
    return Check("opencv", codecs and not missing,
                 f"OpenCV {build['version']}; JPEG: {build['jpeg']}; PNG: {build['png']}; video back-ends: "
                 f"{', '.join(build['video_backends']) or 'none'}" + (f"; MISSING {', '.join(missing)}" if missing else ""))


def _test_image() -> np.ndarray:
    y, x = np.mgrid[0:48, 0:64]
    return np.stack([x * 4, y * 5, (x + y) * 2], axis=-1).astype(np.uint8)


def _image_codecs() -> Check:
    import cv2

    img = _test_image()
    details, ok = [], True
    for ext, params in ((".png", []), (".jpg", [cv2.IMWRITE_JPEG_QUALITY, 95])):
        enc_ok, buf = cv2.imencode(ext, img, params)
        back = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if enc_ok else None
        if back is None or back.shape != img.shape:
            ok = False
            details.append(f"{ext}: encode/decode failed")
            continue
        err = float(np.abs(back.astype(int) - img.astype(int)).mean())
        good = err == 0 if ext == ".png" else err < 4
        ok &= good
        details.append(f"{ext}: {buf.size} bytes, mean abs error {err:.2f}")
    return Check("image_decode", ok, "; ".join(details))


def _video(frames: int = 5) -> Check:
    import cv2

    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "probe.avi")
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
        if not writer.isOpened():
            return Check("video_decode", False, "cv2.VideoWriter could not open an MJPG/AVI file")
        for i in range(frames):
            writer.write(np.roll(_test_image(), i * 4, axis=1))
        writer.release()
        cap = cv2.VideoCapture(path)
        read = 0
        while True:
            got, frame = cap.read()
            if not got:
                break
            read += frame is not None and frame.shape == (48, 64, 3)
        cap.release()
    return Check("video_decode", read == frames, f"wrote {frames} MJPG/AVI frames, read back {read}")


def _ffmpeg() -> Check:
    try:
        import imageio_ffmpeg
    except ImportError:
        return Check("ffmpeg", False, "imageio-ffmpeg is not installed")
    exe = imageio_ffmpeg.get_ffmpeg_exe()
    try:
        first = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=30).stdout.splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError) as exc:
        return Check("ffmpeg", False, f"{exe} does not run ({exc})")
    version = re.search(r"version (\S+)", first)
    return Check("ffmpeg", True, f"{exe} (ffmpeg {version.group(1) if version else '?'})")


#: The checks, in report order.
CHECKS: tuple[Callable[[], Check], ...] = (_python, _torch, _cuda, _gpu_matmul, _opencv, _image_codecs, _video, _ffmpeg)


def run_checks() -> list[Check]:
    """Run every check; a check that raises becomes a failed check naming the exception."""
    out = []
    for fn in CHECKS:
        try:
            out.append(fn())
        except Exception as exc:  # noqa: BLE001 - a broken install must show up as a failed line, not a traceback
            out.append(Check(fn.__name__.lstrip("_"), False, f"{type(exc).__name__}: {exc}"))
    return out


def all_required_ok(checks: list[Check]) -> bool:
    return all(c.ok for c in checks if c.required)


def render(checks: list[Check]) -> str:
    lines = [f"[{'ok' if c.ok else ('FAIL' if c.required else 'info')}] {c.name}: {c.detail}" for c in checks]
    lines.append("all required checks passed" if all_required_ok(checks) else "some required checks FAILED")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    checks = run_checks()
    emit(args, {"ok": all_required_ok(checks), "checks": [asdict(c) for c in checks]}, render(checks))
    return 0 if all_required_ok(checks) else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("env", help="check versions, OpenCV codecs, GPU and video I/O",
                                   description=__doc__.splitlines()[0])
    add_json_flag(parser)
    parser.set_defaults(func=_run)
