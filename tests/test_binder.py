"""Binder and Colab set-up: what can be checked without those services."""

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import nbformat
import pytest
from packaging.requirements import Requirement

from labkit.course import SETUP_TAG, badges, colab_url, setup_cell_source

REPO = Path(__file__).resolve().parents[1]


def _pins(lines):
    out = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            req = Requirement(line)
            out[req.name] = str(req.specifier)
    return out


def test_binder_pins_agree_with_the_project():
    binder = _pins((REPO / "binder/requirements.txt").read_text().splitlines())
    constraints = _pins((REPO / "constraints.txt").read_text().splitlines())
    for name in ("torch", "torchvision", "opencv-python-headless"):
        assert binder[name] == constraints[name], name
    assert (REPO / "binder/runtime.txt").read_text().startswith("python-3.")


@pytest.mark.slow
def test_binder_requirements_resolve(tmp_path):
    report = tmp_path / "report.json"
    run = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q", "-r", "binder/requirements.txt",
         "--report", str(report), "--retries", "0", "--timeout", "10"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    names = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in json.loads(report.read_text())["install"]}
    assert names["torch"] == "2.14.1" and names["labkit"] and names["nbgrader"]
    assert names["opencv-python-headless"].startswith("4.")


@pytest.mark.slow
def test_postbuild_runs_in_a_temp_venv(tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    site = next(env_dir.glob("lib/python*/site-packages"))
    # the temp venv sees the course's packages through a .pth file; its own installs stay inside it
    (site / "course.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = dict(os.environ, PATH=f"{env_dir / 'bin'}:{os.environ['PATH']}", LABKIT_DATA=str(tmp_path / "data"),
               LABKIT_DATA_SIZE="small", PIP_NO_INPUT="1")
    env.pop("VIRTUAL_ENV", None)
    run = subprocess.run(["bash", "binder/postBuild"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert (tmp_path / "data" / "small-seed0" / "manifest.json").exists()
    assert any(site.glob("opencv_python_headless-4*"))


def test_setup_cell_and_badges_come_from_one_url():
    cell = setup_cell_source()
    assert "google.colab" in cell and "git+https://github.com/" in cell
    nb = "notebooks/01_data_foundations/01_lab_environment.ipynb"
    assert colab_url(nb).endswith(nb) and "colab-badge" in badges(nb)


def test_notebooks_and_readmes_are_in_sync_with_course_yaml():
    run = subprocess.run([sys.executable, "scripts/sync_course.py", "--check"], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, "run `make sync`:\n" + run.stdout


def test_every_notebook_starts_with_the_setup_cell():
    paths = list((REPO / "notebooks").glob("0*/*.ipynb")) + list((REPO / "autograder/source").glob("*/*.ipynb"))
    for path in paths:
        first = nbformat.read(path, as_version=4).cells[0]
        assert SETUP_TAG in first.metadata.get("tags", []) and first.source == setup_cell_source(), path
