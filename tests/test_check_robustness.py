"""scripts/check_robustness.py: the seed patch, the seeded copy and the check-line reader (the
full run takes hours and is not part of the suite)."""

import json
from pathlib import Path

import nbformat
import pytest
from conftest import load_script
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def robustness():
    return load_script('check_robustness')


def test_set_seed_changes_only_the_top_level_seed(robustness):
    text = "name: base\ndataset_seed: 0\nseed: 0            # training seed\noverrides:\n  seed: 5\n"
    patched = yaml.safe_load(robustness.set_seed(text, 3, "x.yaml"))
    assert patched["seed"] == 3 and patched["dataset_seed"] == 0 and patched["overrides"] == {"seed": 5}


@pytest.mark.parametrize("text, found", [("name: a\n", 0), ("seed: 1\nseed: 2\n", 2)])
def test_set_seed_needs_exactly_one_seed_line(robustness, text, found):
    with pytest.raises(ValueError, match=f"x.yaml: expected one top-level 'seed:' line, found {found}"):
        robustness.set_seed(text, 1, "x.yaml")


def test_the_seeded_copy_seeds_every_base_config(robustness, tmp_path):
    copy = robustness.prepare_copy(tmp_path / "course", 7, robustness.BASE_CONFIGS)
    for name in robustness.BASE_CONFIGS:
        seeded = yaml.safe_load((copy / "configs" / name).read_text())
        original = yaml.safe_load((REPO / "configs" / name).read_text())
        assert seeded["seed"] == 7 and {k: v for k, v in seeded.items() if k != "seed"} == \
            {k: v for k, v in original.items() if k != "seed"}
    assert (copy / "labkit" / "budget.py").exists() and (copy / "scripts" / "run_course.py").exists()
    # what labkit reads (labkit/configs, a link to configs/ in a checkout) is the seeded file in the copy
    for name in robustness.BASE_CONFIGS:
        assert yaml.safe_load((copy / "labkit" / "configs" / name).read_text())["seed"] == 7
    # make course runs the lesson sources (answers in), not the released copies with blank exercises
    run_course = load_script("run_course")
    assert run_course.lesson_notebooks(copy / "notebooks", ["02"], copy / "autograder" / "lessons") == \
        sorted((copy / "autograder" / "lessons" / "02_detection").glob("*.ipynb"))
    with pytest.raises(ValueError, match="configs/nope.yaml: no such config"):
        robustness.prepare_copy(tmp_path / "other", 1, ("nope.yaml",))


def test_check_lines_reads_checks_and_errors(robustness, tmp_path):
    nb = nbformat.v4.new_notebook()
    ok = nbformat.v4.new_code_cell("x")
    ok.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                         text="check passed: a\nunrelated\nnot asserted: b within noise\n")]
    bad = nbformat.v4.new_code_cell("y")
    bad.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue="c: got 1.01", traceback=[])]
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), ok, bad]
    nbformat.write(nb, tmp_path / "run.ipynb")
    assert robustness.check_lines(tmp_path / "run.ipynb") == [
        {"cell": 1, "line": "check passed: a"}, {"cell": 1, "line": "not asserted: b within noise"},
        {"cell": 2, "line": "failed: AssertionError: c: got 1.01"}]


def test_one_seed_is_a_usage_error(robustness):
    with pytest.raises(SystemExit) as exit_info:
        robustness.main(["--seeds", "1", "1"])
    assert exit_info.value.code == 2


def test_resume_reads_a_finished_run_of_the_chapters_instead_of_running_it(robustness, tmp_path):
    artifacts = tmp_path / "seed0" / "artifacts"
    (artifacts / "notebooks" / "02_detection").mkdir(parents=True)
    rows = [{"path": "autograder/lessons/02_detection/01_a.ipynb", "status": "ok", "error": None, "seconds": 1.0,
             "budget": "full"},
            {"path": "autograder/lessons/05_robustness/01_b.ipynb", "status": "ok", "error": None, "seconds": 2.0,
             "budget": "full"}]
    (artifacts / "course_summary.json").write_text(json.dumps({"notebooks": rows}))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x", outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="check passed: a > b\n")])])
    nbformat.write(nb, artifacts / "notebooks" / "02_detection" / "01_a.ipynb")
    assert robustness.finished_run(artifacts, ["02"]) and not robustness.finished_run(artifacts, ["02", "03"])
    run = robustness.run_seed(0, ["02"], tmp_path, robustness.BASE_CONFIGS, 60, dry_run=False, resume=True)
    assert [n["path"] for n in run["notebooks"]] == [rows[0]["path"]]  # only the chapters asked for
    assert run["notebooks"][0]["checks"] == [{"cell": 0, "line": "check passed: a > b"}]
    assert not (tmp_path / "seed0" / "course").exists()  # nothing was copied or run
