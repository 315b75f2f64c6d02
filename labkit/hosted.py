"""What a hosted notebook (Colab, Binder) prepares once: the prebuilt course models and the dataset.

The setup cell at the top of every notebook (generated from ``course.yaml`` by ``make sync``, see
:func:`labkit.course.setup_cell_source`) installs ``labkit[colab]`` on Colab and then runs
``python -m labkit.hosted --marker FILE``; Binder's ``binder/postBuild`` runs ``python -m labkit.hosted``
while the image is built, so that no session trains the course models inside a notebook. Steps,
each reported on one line:

1. pull the prebuilt course models with ``labkit models pull``, skipped with the reason printed
   while this labkit has no ``models`` command (the model registry is not part of it yet);
2. generate the embedded dataset (:func:`labkit.data.synth.ensure_dataset`; reused when present;
   size from ``$LABKIT_DATA_SIZE``, default ``default``);
3. write the marker file when one is named, so the setup cell skips all this for the rest of the
   runtime.

Exit code 0 when every step that ran succeeded; 1 when the model pull failed (the marker is then not
written, so running the setup cell again retries). Locally nothing here runs: the setup cell only
prints :func:`environment_line`.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

#: The CLI command that pulls the prebuilt course models (from the model registry).
MODELS_PULL = ("models", "pull")


def has_command(group: str, command: str) -> bool:
    """Whether ``labkit <group> <command>`` exists in this install."""
    from labkit.cli import build_parser

    def choices(parser: argparse.ArgumentParser) -> dict:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return subs[0].choices if subs else {}

    sub = choices(build_parser()).get(group)
    return sub is not None and command in choices(sub)


def pull_models() -> tuple[bool, str]:
    """Run ``labkit models pull`` when the command exists: ``(ok, what happened)``."""
    if not has_command(*MODELS_PULL):
        return True, ("models: skipped, this labkit has no `labkit models pull` yet; "
                      "the lessons build the course models themselves on first use")
    run = subprocess.run([sys.executable, "-m", "labkit", *MODELS_PULL])
    if run.returncode != 0:
        return False, f"models: `labkit models pull` failed (exit {run.returncode}); see its message above"
    return True, "models: pulled the prebuilt course models (`labkit models pull`)"


def prepare_dataset() -> str:
    """Generate (or reuse) the embedded dataset; the line saying where it is."""
    from labkit.data.synth import default_root, ensure_dataset

    size = os.environ.get("LABKIT_DATA_SIZE", "default").strip() or "default"
    manifest = default_root(size=size) / "manifest.json"
    before = manifest.stat().st_mtime_ns if manifest.exists() else None
    root = ensure_dataset(size=size)
    reused = before is not None and manifest.stat().st_mtime_ns == before  # a stale copy is generated again
    return f"dataset: {'reused' if reused else 'generated'} the {size} embedded dataset at {root}"


def gpu_name() -> str | None:
    """The first NVIDIA GPU's name, or ``None``: asked of torch when it is imported already, else of
    ``nvidia-smi``, so that printing the environment does not import torch (seconds and about 1 GB
    of memory in a lesson that may never use it)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        run = subprocess.run([exe, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    names = run.stdout.strip().splitlines()
    return names[0].strip() if run.returncode == 0 and names else None


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment_line() -> str:
    """One line: labkit, Python, the installed torch/torchvision (a warning line for each outside
    labkit's supported range) and the GPU that ``device: auto`` will use. Reads package metadata
    only; imports no torch."""
    import labkit
    from labkit.envcheck import in_range, supported_range

    try:
        ranges = supported_range(importlib.metadata.requires("labkit"))
    except importlib.metadata.PackageNotFoundError:
        ranges = {}
    found = {name: _version(name) for name in ("torch", "torchvision")}
    warnings = [f"{name} is not installed" if found[name] is None else
                f"{name} {found[name]} is outside the supported {spec} (run `labkit env`)"
                for name, spec in ranges.items() if found[name] is None or not in_range(found[name], spec)]
    gpu = gpu_name()
    parts = [f"labkit {labkit.__version__}", f"Python {sys.version.split()[0]}", f"torch {found['torch']}",
             f"torchvision {found['torchvision']}", f"device auto = {'GPU ' + gpu if gpu else 'CPU (no GPU found)'}"]
    return " | ".join(parts) + "".join(f"\nWARNING: {line}" for line in warnings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labkit.hosted", description=__doc__.splitlines()[0])
    parser.add_argument("--marker", type=Path, help="file written when everything succeeded (once per runtime)")
    args = parser.parse_args(argv)
    ok, line = pull_models()
    print(line, flush=True)
    if not ok:
        return 1
    print(prepare_dataset(), flush=True)
    if args.marker is not None:
        args.marker.parent.mkdir(parents=True, exist_ok=True)
        args.marker.write_text("labkit hosted setup done\n", encoding="utf-8")
        print(f"setup: done; {args.marker} marks this runtime as set up", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
