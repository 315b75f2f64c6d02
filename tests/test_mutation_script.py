"""scripts/mutation.py's own logic (module list, test selection, config), without running mutmut."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import load_script

from labkit.errors import DataError

REPO = Path(__file__).resolve().parents[1]
mutation = load_script("mutation")


def test_project_config_loads_and_covers_the_scoped_packages():
    cfg = mutation.load_config()
    assert cfg["floor"] == 0.8 and cfg["max_mutants_per_module"] > 0
    assert {"labkit/data", "labkit/metrics", "labkit/grading", "labkit/track"} <= set(cfg["scope"])


def test_module_files_expand_folders_skip_globs_and_leave_out_missing_ones():
    files = mutation.module_files(["labkit/data", "labkit/no_such_package"], ["labkit/data/synth/*", "*/__init__.py"])
    names = {str(p) for p in files}
    assert "labkit/data/splits.py" in names and "labkit/data/validate.py" in names
    assert not any(n.startswith("labkit/data/synth/") or n.endswith("__init__.py") for n in names)
    assert mutation.module_files(["labkit/data/splits.py"], []) == [Path("labkit/data/splits.py")]


def test_dotted_names():
    assert mutation.dotted(Path("labkit/data/splits.py")) == "labkit.data.splits"
    assert mutation.dotted(Path("labkit/metrics/__init__.py")) == "labkit.metrics"


def test_tests_for_finds_importers_adds_listed_and_drops_excluded():
    found = mutation.tests_for(Path("labkit/data/splits.py"), {"labkit/data/splits.py": ["tests/test_cli_data.py"]},
                               ["tests/test_ch0*_lab.py"])
    assert "tests/test_splits.py" in found and "tests/test_cli_data.py" in found
    assert not any("_lab.py" in t for t in found)
    globbed = mutation.tests_for(Path("labkit/metrics/iou.py"), {"labkit/metrics": ["tests/test_metrics_*.py"]}, [])
    assert "tests/test_metrics_detection.py" in globbed and "tests/test_metrics_boundary.py" in globbed
    iou_tests = mutation.tests_for(Path("labkit/metrics/iou.py"), {}, [])
    assert "tests/test_metrics_voc.py" in iou_tests and "tests/test_splits.py" not in iou_tests


@pytest.mark.parametrize("text, message", [
    ("floor: 1.5\n", "floor must be a fraction"),
    ("floor: 0.8\nmax_mutant: 3\n", "unknown config keys"),
    ("floor: 0.8\nfloors: {labkit/x.py: 80}\n", "floors: labkit/x.py must be a fraction"),
    ("floor: 0.8\nequivalent: {labkit.x.x_f__mutmut_1: ''}\n", "labkit.x.x_f__mutmut_1 needs the reason"),
])
def test_bad_config_names_the_file(tmp_path, text, message):
    path = tmp_path / "mutation.yaml"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as exc:
        mutation.load_config(path)
    assert str(path) in str(exc.value)


def test_mutmut_path_keeps_the_callers_entries_but_not_the_checkout(monkeypatch, tmp_path):
    """mutmut may be installed outside the environment (PYTHONPATH=checkout:site); the mutant
    runs keep that site but not the checkout, whose unmutated labkit would shadow the mutants."""
    import os

    site = tmp_path / "site"
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), str(site), ""]))
    assert mutation._pythonpath(tmp_path / "mutants") == os.pathsep.join([str(tmp_path / "mutants"), str(site)])
    assert mutation._pythonpath() == str(site)
    monkeypatch.delenv("PYTHONPATH")
    assert mutation._pythonpath(tmp_path / "mutants") == str(tmp_path / "mutants")
