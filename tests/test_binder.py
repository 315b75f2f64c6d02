"""Binder and Colab set-up: what can be checked without those services (the setup cell is run
here with Colab's module, pip and the marker file simulated)."""

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import types
import venv
from pathlib import Path

import nbformat
import pytest
from conftest import load_script
import torch  # noqa: F401 - imported before the tests patch importlib.metadata
from packaging.requirements import Requirement

from labkit import hosted
from labkit.course import COLAB_MARKER, SETUP_TAG, badges, colab_url, install_spec, setup_cell_source

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


def test_binder_installs_the_same_light_extra_as_colab():
    lines = [line.strip() for line in (REPO / "binder/requirements.txt").read_text().splitlines()]
    assert "-e .[colab]" in lines and not any("[course]" in line for line in lines)
    assert install_spec().startswith("labkit[colab] @ git+https://github.com/")


def test_the_package_accepts_a_torch_range_that_holds_the_local_pin():
    import tomllib

    deps = {Requirement(d).name: Requirement(d).specifier
            for d in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]}
    constraints = _pins((REPO / "constraints.txt").read_text().splitlines())
    for name in ("torch", "torchvision"):
        assert not any(s.operator == "==" for s in deps[name]), f"{name}: an exact pin would replace Colab's {name}"
        pinned = constraints[name].removeprefix("==")
        assert deps[name].contains(pinned), (name, str(deps[name]), pinned)
        # the local install (Makefile) still installs exactly the constraints' pin
        assert f"{name}=={pinned}" in (REPO / "Makefile").read_text()


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
    assert names["torch"] == "2.14.1" and names["labkit"] and names["ipywidgets"]
    assert "nbgrader" not in names and "jupyterlab" not in names, "Binder's image brings its own Jupyter"
    assert names["opencv-python-headless"].startswith("4.")


@pytest.mark.slow
def test_postbuild_runs_in_a_temp_venv(tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    site = next(env_dir.glob("lib/python*/site-packages"))
    # the temp venv sees the course's packages through a .pth file; its own installs stay inside it
    (site / "course.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # `labkit models pull` (every shipped checkpoint) fetches from a local mirror, never the network
    from labkit.models.checkpoints import MIRROR_ENV, PACKAGED, read_manifest

    mirror = tmp_path / "mirror"
    for name, entry in read_manifest().items():
        for file in entry["files"]:
            (mirror / name).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(PACKAGED / name / file, mirror / name / file)
    env = dict(os.environ, PATH=f"{env_dir / 'bin'}:{os.environ['PATH']}", LABKIT_DATA=str(tmp_path / "data"),
               LABKIT_DATA_SIZE="small", PIP_NO_INPUT="1", LABKIT_CACHE=str(tmp_path / "cache"),
               **{MIRROR_ENV: str(mirror)})
    env.pop("VIRTUAL_ENV", None)
    run = subprocess.run(["bash", "binder/postBuild"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert (tmp_path / "data" / "small-seed0" / "manifest.json").exists()
    assert any(site.glob("opencv_python_headless-4*"))
    assert re.search(r"^models: pulled", run.stdout, re.M), run.stdout
    assert "dataset: generated the small embedded dataset" in run.stdout


def test_setup_cell_and_badges_come_from_one_url():
    cell = setup_cell_source()
    assert "google.colab" in cell and install_spec() in cell
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


@pytest.fixture
def setup_cell(monkeypatch, capsys):
    """Run the generated setup cell here: ``colab`` fakes ``google.colab``; pip and labkit.hosted are
    recorded, not run (pip may change torch's version); the marker may be present."""

    def run(*, colab: bool, marker: bool = False, torch_after: str | None = None):
        if colab:
            monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
        else:
            monkeypatch.delitem(sys.modules, "google.colab", raising=False)
        versions, calls = {"torch": "2.14.1", "torchvision": "0.29.1"}, []

        def fake_run(cmd, check=False, **kwargs):
            calls.append(list(cmd))
            if "pip" in cmd and torch_after:
                versions["torch"] = torch_after
            return subprocess.CompletedProcess(cmd, 0)

        real_exists = os.path.exists
        monkeypatch.setattr(subprocess, "run", fake_run)
        real_version = importlib.metadata.version
        monkeypatch.setattr(importlib.metadata, "version", lambda name: versions.get(name) or real_version(name))
        monkeypatch.setattr(os.path, "exists", lambda p: marker if p == COLAB_MARKER else real_exists(p))
        exec(compile(setup_cell_source(), "setup-cell", "exec"), {})
        return calls, capsys.readouterr().out

    return run


def test_setup_cell_locally_and_on_binder_only_prints_the_environment(setup_cell):
    calls, out = setup_cell(colab=False)
    assert calls == [] and out.startswith("labkit 0.1.0 | Python ") and "device auto = " in out


def test_setup_cell_on_a_fresh_colab_runtime_installs_the_light_extra_then_runs_the_hosted_step(setup_cell):
    calls, out = setup_cell(colab=True)
    assert calls == [[sys.executable, "-m", "pip", "install", "-q", install_spec()],
                     [sys.executable, "-m", "labkit.hosted", "--marker", COLAB_MARKER]]
    assert "(once per runtime)" in out and "Restart" not in out and "labkit 0.1.0 |" in out


def test_setup_cell_asks_for_a_restart_only_when_pip_changed_torch(setup_cell):
    with pytest.raises(SystemExit, match=r"pip changed torch 2\.14\.1 -> 2\.13\.0: Runtime > Restart session"):
        setup_cell(colab=True, torch_after="2.13.0")


def test_setup_cell_runs_once_per_colab_runtime(setup_cell):
    calls, out = setup_cell(colab=True, marker=True)
    assert calls == [] and "labkit 0.1.0 |" in out


def test_environment_line_names_the_gpu_without_importing_torch(monkeypatch, tmp_path):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'Tesla T4'\n")
    fake.chmod(0o755)
    monkeypatch.delitem(sys.modules, "torch")  # as in a fresh kernel: the line must come from nvidia-smi
    monkeypatch.setattr(hosted.shutil, "which", lambda name: str(fake) if name == "nvidia-smi" else None)
    assert hosted.gpu_name() == "Tesla T4" and hosted.environment_line().endswith("device auto = GPU Tesla T4")
    assert "torch" not in sys.modules
    monkeypatch.setattr(hosted.shutil, "which", lambda name: None)
    assert hosted.gpu_name() is None and "device auto = CPU (no GPU found)" in hosted.environment_line()


def test_environment_line_warns_when_torch_is_outside_the_supported_range(monkeypatch):
    monkeypatch.setattr(importlib.metadata, "requires", lambda name: ["torch>=99", "torchvision<0.30"])
    line = hosted.environment_line()
    torch_version = importlib.metadata.version("torch")
    assert line.splitlines()[1:] == [f"WARNING: torch {torch_version} is outside the supported >=99 (run `labkit env`)"]


def test_has_command_reads_the_cli():
    assert hosted.has_command("models", "pull") and hosted.has_command("detect", "train")
    assert not hosted.has_command("detect", "base")  # removed with the model registry (labkit models build)
    assert not hosted.has_command("detect", "no-such-command") and not hosted.has_command("no-such-group", "pull")


def test_hosted_step_skips_the_model_pull_with_a_reason_when_the_command_is_absent(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(hosted, "has_command", lambda group, command: False)
    monkeypatch.setattr(hosted, "prepare_dataset", lambda: "dataset: (stub)")
    assert hosted.main(["--marker", str(tmp_path / "m" / "ready")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("models: skipped, this labkit has no `labkit models pull`")
    assert out[1] == "dataset: (stub)" and (tmp_path / "m" / "ready").exists()


@pytest.mark.parametrize("returncode", [0, 3])
def test_hosted_step_runs_the_model_pull_and_stops_when_it_fails(monkeypatch, capsys, tmp_path, returncode):
    calls = []
    monkeypatch.setattr(hosted, "has_command", lambda group, command: (group, command) == ("models", "pull"))
    monkeypatch.setattr(hosted.subprocess, "run",
                        lambda cmd, **kw: calls.append(cmd) or subprocess.CompletedProcess(cmd, returncode))
    monkeypatch.setattr(hosted, "prepare_dataset", lambda: "dataset: (stub)")
    marker = tmp_path / "ready"
    assert hosted.main(["--marker", str(marker)]) == (0 if returncode == 0 else 1)
    assert calls == [[sys.executable, "-m", "labkit", "models", "pull"]]
    out = capsys.readouterr().out
    if returncode:
        assert "failed (exit 3)" in out and "dataset" not in out and not marker.exists()
    else:
        assert out.startswith("models: pulled") and marker.exists()


def _sync_module():
    return load_script('sync_course')


def test_measured_slow_cells_get_a_duration_line_above_them():
    sync = _sync_module()
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    nb = nbformat.v4.new_notebook(cells=[md("Train."), code("a"), md("Check."), code("b"), code("c"),
                                         md("Grid."), code("d"), md("Edge."), code("e")])
    measured = [{"index": 1, "seconds": 25.0}, {"index": 3, "seconds": 5.0}, {"index": 4, "seconds": 100.0},
                {"index": 6, "seconds": 600.0}, {"index": 8, "seconds": 20.0}]
    sync.with_durations(nb, measured)
    assert nb.cells[0].source.startswith("Train.\n\n<!-- expected-duration -->") and "about 25 s" in nb.cells[0].source
    assert nb.cells[2].source == "Check."               # 5 s: fast
    assert "about 10 min" in nb.cells[5].source          # 600 s
    assert nb.cells[7].source == "Edge."                 # exactly 20 s is not slower than 20 s
    assert "about 100 s" not in str(nb)                  # the cell above index 4 is code: nowhere to write
    # measured again: lines are replaced, not added; a cell now fast loses its line
    sync.with_durations(nb, [{"index": 1, "seconds": 95.0}, {"index": 6, "seconds": 3.0}])
    assert nb.cells[0].source.count("<!-- expected-duration -->") == 1 and "about 2 min" in nb.cells[0].source
    assert nb.cells[5].source == "Grid."
    assert sync.duration_text(89.4) == "about 89 s" and sync.duration_text(150) == "about 2 min"
    # the line names how busy the measuring machine was; an old summary without it says nothing
    sync.with_durations(nb, [{"index": 1, "seconds": 95.0}], {"cpus": 2, "load_average": 21.5})
    assert "`make course` on 2 CPU cores at a load average of 21.5 (" in nb.cells[0].source
    assert "load average" not in sync.duration_line(30.0, {"cpus": 2})


def test_durations_from_a_summary_of_another_notebook_version_are_refused():
    sync = _sync_module()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("x"), nbformat.v4.new_code_cell("y")])
    with pytest.raises(ValueError, match=r"cells \[0, 5\] are not code cells"):
        sync.with_durations(nb, [{"index": 0, "seconds": 30}, {"index": 5, "seconds": 30}])


def test_dataset_line_says_whether_it_was_generated_or_reused(monkeypatch, tmp_path):
    monkeypatch.setenv("LABKIT_DATA", str(tmp_path))
    monkeypatch.setenv("LABKIT_DATA_SIZE", "small")
    calls = []

    def fake_ensure(size):  # stands in for the generator: writes the manifest on the first call only
        calls.append(size)
        manifest = tmp_path / f"{size}-seed0" / "manifest.json"
        if not manifest.exists():
            manifest.parent.mkdir(parents=True)
            manifest.write_text("{}")
        return manifest.parent

    import labkit.data.synth as synth

    monkeypatch.setattr(synth, "ensure_dataset", lambda size: fake_ensure(size))
    assert hosted.prepare_dataset() == f"dataset: generated the small embedded dataset at {tmp_path / 'small-seed0'}"
    assert hosted.prepare_dataset().startswith("dataset: reused the small embedded dataset")
    assert calls == ["small", "small"]


def test_a_lesson_above_the_binder_line_says_so_at_its_top():
    sync = _sync_module()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("setup"), nbformat.v4.new_markdown_cell("# 3.5"),
                                         nbformat.v4.new_markdown_cell("Section")])
    sync.with_memory_note(nb, {"peak_rss_mb": 1990.4, "over_binder_line": True})
    assert nb.cells[1].source.startswith("# 3.5\n\n<!-- binder-memory -->**Memory:** this lesson peaked at 1990 MiB")
    assert "(1717 MiB)" in nb.cells[1].source and nb.cells[2].source == "Section"
    sync.with_memory_note(nb, {"peak_rss_mb": 1716.0, "over_binder_line": False})  # measured again, now below
    assert nb.cells[1].source == "# 3.5"
    sync.with_memory_note(nb, {"peak_rss_mb": 1717.0})  # an older summary without the flag: 1717 MiB > 1.8e9 bytes
    assert "peaked at 1717 MiB" in nb.cells[1].source


def test_the_memory_note_names_the_section_of_the_cell_that_peaked():
    sync = _sync_module()
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    nb = nbformat.v4.new_notebook(cells=[code("setup"), md("# 2.1"), md("## 1. Load\ntext"), code("load()"),
                                         md("intro\n## 2. Fine-tune the detector"), code("train()"), code("plot()")])
    row = {"peak_rss_mb": 1990.4, "over_binder_line": True,
           "cells": [{"index": 0, "peak_rss_mb": None}, {"index": 3, "peak_rss_mb": 900.0},
                     {"index": 5, "peak_rss_mb": 1990.4}, {"index": 6, "peak_rss_mb": 1500.0}]}
    sync.with_memory_note(nb, row)
    assert 'peaked at 1990 MiB in `make course` (`artifacts/course_summary.json`) in the section "2. Fine-tune the detector", above' \
        in nb.cells[1].source
    row["cells"][1]["peak_rss_mb"] = 2000.0  # now the load cell peaks
    sync.with_memory_note(nb, row)
    assert 'in the section "1. Load"' in nb.cells[1].source and "Fine-tune" not in nb.cells[1].source


def test_durations_are_written_only_with_their_machine_memory_notes_always(tmp_path, monkeypatch):
    sync = _sync_module()
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    paths = [tmp_path / "with_machine.ipynb", tmp_path / "without.ipynb"]
    for path in paths:
        nbformat.write(nbformat.v4.new_notebook(cells=[md("Title."), md("Train."), code("x = 1")]), path)
    row = {"status": "ok", "cells": [{"index": 2, "seconds": 50.0}], "peak_rss_mb": 1900.0, "over_binder_line": True}
    summary = tmp_path / "course_summary.json"
    summary.write_text(json.dumps({"notebooks": [{**row, "path": paths[0].name, "machine": {"cpus": 2, "load_average": 1.5}},
                                                 {**row, "path": paths[1].name}]}))
    monkeypatch.setattr(sync, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(sync, "notebooks", lambda: paths)
    monkeypatch.setattr(sync, "readmes", lambda: {})
    monkeypatch.setattr(sync, "synced_notebook", lambda path: nbformat.read(path, as_version=4))
    monkeypatch.setattr(sync, "release_lessons", lambda *args: None)
    assert sync.main(["--durations", str(summary)]) == 0
    timed, untimed = (nbformat.read(p, as_version=4) for p in paths)
    assert "about 50 s, as measured by `make course` on 2 CPU cores at a load average of 1.5" in timed.cells[1].source
    assert "expected-duration" not in str(untimed)  # no machine recorded: no duration stated
    assert all("this lesson peaked at 1900 MiB" in nb.cells[0].source for nb in (timed, untimed))
