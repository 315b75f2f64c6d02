"""What a hosted install ships and weighs: writes ``artifacts/packaging.json``.

1. Builds labkit's wheel from a clean copy of the checkout (:func:`build_wheel`, also used by
   ``tests/test_packaging.py``) and records its files (count, bytes, configs and checksums shipped).
2. Resolves ``labkit``, ``labkit[colab]`` and ``labkit[course]`` with ``pip install --dry-run
   --ignore-installed --report`` (package index metadata only, nothing installed) and sums the
   installed size of each resolved distribution from its ``RECORD`` in this interpreter's
   environment (a distribution not installed here, or at another version, is listed as unmeasured).
   Reported: the whole closure, the closure without torch/torchvision and the CUDA wheels (which
   Colab preinstalls), and what each extra adds over plain ``labkit``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from labkit.artifacts import artifacts_dir, write_json  # noqa: E402

#: Not part of a build: version control, local installs, generated data and earlier build output.
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "artifacts", "generated",
                                    "__pycache__", ".pytest_cache", ".ipynb_checkpoints", "graded")
#: Distributions a hosted GPU runtime such as Colab already has (torch and its CUDA libraries).
PREINSTALLED_PREFIXES = ("torch", "torchvision", "triton", "nvidia-")


def build_wheel(out: Path) -> Path:
    """Build labkit's wheel from a clean copy of the checkout (no stale ``build/``); its path."""
    src = out / "src"
    shutil.copytree(REPO, src, ignore=NOT_SOURCE)
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(out), str(src)], capture_output=True, text=True, timeout=300)
    if run.returncode != 0:
        raise RuntimeError(f"pip wheel failed:\n{run.stdout[-3000:]}{run.stderr[-3000:]}")
    (wheel,) = out.glob("labkit-*.whl")
    return wheel


def wheel_contents(wheel: Path) -> dict:
    with zipfile.ZipFile(wheel) as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    return {"file": wheel.name, "bytes": wheel.stat().st_size, "files": len(infos),
            "uncompressed_bytes": sum(i.file_size for i in infos),
            "configs": sorted(n.split("/")[-1] for n in names if n.startswith("labkit/configs/")),
            "checksums": sorted(n.split("/")[-1] for n in names if n.startswith("labkit/datasets/checksums/")),
            "python_modules": sum(n.endswith(".py") for n in names)}


def resolve(requirement: str, timeout: int) -> dict[str, str]:
    """``{distribution: version}`` pip would install for ``requirement`` into an empty environment."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        run = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q",
                              "--report", str(report), requirement], capture_output=True, text=True, timeout=timeout)
        if run.returncode != 0:
            raise RuntimeError(f"pip could not resolve {requirement}:\n{run.stderr[-3000:]}")
        installs = json.loads(report.read_text())["install"]
    return {i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"] for i in installs}


def installed_bytes(name: str, version: str) -> int | None:
    """Bytes on disk of ``name`` from its RECORD here, when that exact version is installed."""
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return None
    if dist.version.split("+")[0] != version.split("+")[0]:
        return None
    total = 0
    for f in dist.files or []:
        path = Path(dist.locate_file(f))
        if path.is_file():
            total += path.stat().st_size
    return total


def closure_size(packages: dict[str, str]) -> dict:
    sizes = {name: installed_bytes(name, version) for name, version in packages.items()}
    light = {n: b for n, b in sizes.items() if not n.startswith(PREINSTALLED_PREFIXES)}
    largest = sorted(((b, n) for n, b in light.items() if b), reverse=True)[:8]
    return {"packages": len(packages),
            "installed_mb": round(sum(b or 0 for b in sizes.values()) / 2**20, 1),
            "largest_without_torch_and_cuda_mb": {n: round(b / 2**20, 1) for b, n in largest},
            "installed_mb_without_torch_and_cuda": round(sum(b or 0 for b in light.values()) / 2**20, 1),
            "unmeasured": sorted(n for n, b in sizes.items() if b is None)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed for each pip resolution")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = build_wheel(Path(tmp))
        report: dict = {"wheel": wheel_contents(wheel), "python": sys.version.split()[0]}
        closures = {extra: resolve(f"{wheel}[{extra}]" if extra else str(wheel), args.timeout)
                    for extra in ("", "colab", "course")}
    base = closures[""]
    for extra, packages in closures.items():
        key = f"labkit[{extra}]" if extra else "labkit"
        added = {n: v for n, v in packages.items() if n not in base}
        report[key] = {**closure_size(packages), "added_over_labkit": sorted(added),
                       "added_installed_mb": closure_size(added)["installed_mb"] if added else 0.0}
    path = write_json(artifacts_dir() / "packaging.json", report)
    print(json.dumps({k: ({kk: vv for kk, vv in v.items() if kk not in ("configs", "checksums", "added_over_labkit")}
                          if isinstance(v, dict) else v) for k, v in report.items()}, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
