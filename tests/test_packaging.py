"""The package alone runs the course (the path Colab and Binder take): the wheel's contents, and
lessons executed from a wheel install in a fresh virtualenv outside the checkout.

The virtualenv gets the heavy dependencies (torch, ultralytics, ...) from this interpreter through
a ``.pth`` line instead of downloading them; that line adds a folder to ``sys.path`` without running
the ``.pth`` files inside it, so the checkout's editable-install finder stays out and ``labkit``
can only come from the wheel (each run asserts where it was imported from).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest
from conftest import load_script
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
#: One lesson per chapter that has lessons, run from the wheel at the ci budget. A single-sourced lesson
#: runs as its source copy: the learner's copy stops at its first unanswered exercise by design.
LESSONS = ["autograder/lessons/01_data_foundations/01_lab_environment.ipynb",
           "autograder/lessons/02_detection/05_confidence.ipynb",
           "autograder/lessons/03_segmentation/01_semantic_vs_instance.ipynb",
           "autograder/lessons/04_tracking/01_track_ready_data.ipynb",
           "autograder/lessons/05_robustness/05_monitoring.ipynb",
           "autograder/lessons/06_capstone/02_unified_dataset.ipynb"]


def test_config_path_finds_every_course_config_through_the_package():
    from labkit.configfile import config_names, config_path

    sources = sorted((REPO / "configs").glob("*.yaml"))
    assert config_names() == [p.name for p in sources]
    for source in sources:  # in a checkout, labkit/configs is the top-level configs/ (one file to edit)
        assert config_path(source.name).samefile(source) and "labkit/configs" in config_path(source.name).as_posix()


@pytest.mark.parametrize("name", ["", "detect_base", "../pyproject.toml", "configs/detect_base.yaml", "nope.yaml"])
def test_config_path_refuses_what_is_not_a_shipped_config(name):
    from labkit.configfile import config_path
    from labkit.errors import DataError

    with pytest.raises(DataError, match="bare file name" if not name.endswith(".yaml") or "/" in name else
                       r"no course config 'nope.yaml'; known: \[.*'detect_base.yaml'"):
        config_path(name)


def _package_report():
    return load_script('package_report')


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return _package_report().build_wheel(tmp_path_factory.mktemp("wheel"))


def test_the_wheel_ships_configs_and_checksums_and_nothing_of_the_course_material(wheel: Path):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for config in sorted((REPO / "configs").glob("*.yaml")):
            assert zf.read(f"labkit/configs/{config.name}") == config.read_bytes(), config.name
        assert zf.read("labkit/course.yaml") == (REPO / "course.yaml").read_bytes()
        checksums = sorted((REPO / "labkit/datasets/checksums").glob("*.json"))
        assert checksums and all(f"labkit/datasets/checksums/{p.name}" in names for p in checksums)
        modules = {p.relative_to(REPO).as_posix() for p in (REPO / "labkit").rglob("*.py")}
        assert modules <= names, sorted(modules - names)
        assert {n.split("/")[0] for n in names} == {"labkit", wheel.name.split("-py3")[0] + ".dist-info"}
        assert not [n for n in names if n.endswith(".ipynb") or "/tests/" in n or "/data/generated/" in n]
        metadata = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    requires = [Requirement(line.split(":", 1)[1].strip()) for line in metadata.splitlines()
                if line.startswith("Requires-Dist:")]
    torch = [r for r in requires if r.name in ("torch", "torchvision")]
    assert len(torch) == 2 and not any(s.operator == "==" for r in torch for s in r.specifier)
    colab = {r.name for r in requires if r.marker and r.marker.evaluate({"extra": "colab"})
             and not r.marker.evaluate({"extra": ""})}
    assert colab and not colab & {"jupyterlab", "notebook", "nbgrader"}, colab


@pytest.fixture(scope="module")
def wheel_venv(wheel: Path, tmp_path_factory) -> Path:
    """A virtualenv outside the checkout with the wheel installed; its python."""
    env_dir = tmp_path_factory.mktemp("venv") / "env"
    assert not env_dir.is_relative_to(REPO)
    venv.EnvBuilder(with_pip=False).create(env_dir)
    site = next(env_dir.glob("lib/python*/site-packages"))
    (site / "heavy_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = env_dir / "bin" / "python"
    run = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                          "--no-index", str(wheel)], capture_output=True, text=True, timeout=300, env=_clean_env())
    assert run.returncode == 0, run.stderr[-3000:]
    return python


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "LABKIT_ARTIFACTS")}
    return {**env, **extra}


PROBE = """
import importlib.metadata as md, json, sys
from pathlib import Path
import labkit
from labkit.configfile import config_path
from labkit.detect.twostage import FRCNN_CONFIG
from labkit.segment.base import BaseConfig
from labkit.detect.config import DetectConfig
from labkit.models.checkpoints import MANIFEST, PACKAGED
from labkit.course import CONFIG_FILE, course_config
missing = []
for line in md.requires("labkit"):
    req = __import__("packaging.requirements", fromlist=["Requirement"]).Requirement(line)
    if req.marker is None or req.marker.evaluate({"extra": "colab"}):
        try:
            if not req.specifier.contains(md.version(req.name), prereleases=True):
                missing.append(f"{req} (found {md.version(req.name)})")
        except md.PackageNotFoundError:
            missing.append(f"{req} (absent)")
print(json.dumps({"labkit": labkit.__file__, "config": str(config_path("detect_base.yaml")),
                  "frcnn": str(FRCNN_CONFIG), "segment": str(config_path("segment_base.yaml")), "loads": DetectConfig.load(config_path("detect_tiny.yaml")).name,
                  "segment_loads": type(BaseConfig.load(config_path("segment_base.yaml"))).__name__, "unmet": missing,
                  "course_yaml": str(CONFIG_FILE), "checkpoints": str(MANIFEST),
                  "shipped": sorted(p.name for p in PACKAGED.iterdir() if (p / "weights.pt").is_file()), "repository": course_config()["repository"]}))
"""


@pytest.mark.slow
def test_the_installed_wheel_finds_everything_inside_itself(wheel_venv: Path, tmp_path: Path):
    run = subprocess.run([str(wheel_venv), "-c", PROBE], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300, env=_clean_env())
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    site = str(wheel_venv.parents[1])
    assert found["labkit"].startswith(site), found
    assert found["repository"].startswith("https://github.com/")
    for key in ("config", "frcnn", "segment"):
        assert found[key].startswith(site) and "/labkit/configs/" in found[key], found
    assert found["course_yaml"].startswith(site) and found["course_yaml"].endswith("/labkit/course.yaml")
    assert found["checkpoints"].startswith(site) and found["checkpoints"].endswith("/labkit/models/checkpoints.json")
    shipped = json.loads((REPO / "labkit" / "models" / "checkpoints.json").read_text())["models"]
    assert found["shipped"] == sorted(n for n, e in shipped.items() if e.get("packaged")), found
    assert found["unmet"] == [], "the heavy-dependency interpreter does not satisfy the wheel's requirements"
    env = subprocess.run([str(wheel_venv.parent / "labkit"), "env", "--json"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, env=_clean_env())
    torch_line = next(c for c in json.loads(env.stdout)["checks"] if c["name"] == "torch")
    assert torch_line["ok"] and "supported: torch<2.15,>=2.2" in torch_line["detail"], torch_line


KERNEL_DRIVER = """
import json, sys, time
from pathlib import Path
import nbformat
from nbclient import NotebookClient
nb_path, out = Path(sys.argv[1]), Path(sys.argv[2])
nb = nbformat.read(nb_path, as_version=4)
probe = "import labkit, sys; assert labkit.__file__.startswith(sys.prefix), labkit.__file__"
nb.cells.insert(1, nbformat.v4.new_code_cell(probe))
client = NotebookClient(nb, timeout=900, kernel_name="labkit-wheel", resources={"metadata": {"path": str(out)}})
start = time.perf_counter()
client.execute()
print(json.dumps({"notebook": nb_path.name, "seconds": round(time.perf_counter() - start, 1)}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: Path(p).parent.name[:2])
def test_one_lesson_per_chapter_runs_from_the_wheel_in_a_temporary_folder(wheel_venv: Path, tmp_path: Path,
                                                                         lesson: str):
    kernels = tmp_path / "jupyter" / "kernels" / "labkit-wheel"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(wheel_venv), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "labkit wheel", "language": "python"}))
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(REPO / lesson, work / Path(lesson).name)  # the notebook alone, as Colab opens it
    env = _clean_env(JUPYTER_PATH=str(tmp_path / "jupyter"), LABKIT_BUDGET="ci")
    run = subprocess.run([str(wheel_venv), "-c", KERNEL_DRIVER, str(work / Path(lesson).name), str(work)],
                         cwd=work, capture_output=True, text=True, timeout=1800, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    assert (work / "artifacts" / "metrics").is_dir(), "artifacts belong in the working folder, not the package"
