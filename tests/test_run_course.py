"""scripts/run_course.py on a small real notebook that fails: the failure names the cell and the
values, the summary carries no ANSI codes, and per-cell seconds and the Binder flag are recorded."""

import json
import os
from pathlib import Path

import nbformat
import pytest
from conftest import load_script

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_course():
    return load_script('run_course')


def test_strip_ansi_removes_colour_codes_only(run_course):
    coloured = "\x1b[0;31mAssertionError\x1b[0m: \x1b[1;32mratio\x1b[39m 1.01 [x]"
    assert run_course.strip_ansi(coloured) == "AssertionError: ratio 1.01 [x]"
    assert run_course.strip_ansi("plain [31m text") == "plain [31m text"  # no ESC byte: nothing to strip


def write_notebook(path: Path, sources: list[str]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# a failing lesson")] + [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_a_failing_notebook_reports_cell_assertion_and_values(run_course, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LABKIT_BUDGET", "ci")
    path = write_notebook(tmp_path / "fails.ipynb", [
        "ratio = 1.01",
        'assert ratio < 1.0, f"expected the training loss ratio below 1, got {ratio:.2f}"',
        "never = 1",
    ])
    bare = write_notebook(tmp_path / "bare.ipynb", ["x = 3", "assert x == 4"])
    rows = [run_course.run_notebook(p, tmp_path / "out", timeout=60) for p in (path, bare)]
    first, second = rows
    assert first["status"] == "failed" and first["failed_cell"] == 2
    assert first["error"] == ("cell 2: AssertionError: expected the training loss ratio below 1, got 1.01 "
                              '[at: assert ratio < 1.0, f"expected the training loss ratio below 1, got {ratio:.2f}"]')
    assert [c["index"] for c in first["cells"]] == [1, 2]  # the cell after the failure did not run
    assert all(c["seconds"] >= 0 for c in first["cells"])
    assert second["error"] == "cell 2: AssertionError [at: assert x == 4]"
    assert "\x1b" not in json.dumps(rows)
    assert isinstance(first["over_binder_line"], bool) and first["peak_rss_mb"] < run_course.BINDER_LINE_MB
    # what the seconds depend on travels with them: the budget, the machine's cores and load, the commit
    assert first["budget"] == second["budget"] == "ci" and first["machine"]["cpus"] == os.cpu_count()
    assert first["machine"]["load_average"] >= 0 and first["finished_unix"] <= second["finished_unix"]
    run_course.print_table(rows)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "2 notebook(s) failed" in out
    assert f"{first['path']}, cell 2: AssertionError: expected the training loss ratio below 1, got 1.01" in out
    assert (tmp_path / "out" / tmp_path.name / "fails.ipynb").exists()  # the executed copy is kept


@pytest.mark.slow
def test_an_error_that_is_not_an_assert_names_its_line(run_course, tmp_path):
    path = write_notebook(tmp_path / "raises.ipynb", ["import json", "json.loads('{bad')"])
    row = run_course.run_notebook(path, tmp_path / "out", timeout=60)
    assert row["error"].startswith("cell 2: JSONDecodeError: Expecting property name")
    assert row["error"].endswith("[at: json.loads('{bad')]")


def test_binder_line_is_1_8_gb_in_mib(run_course):
    assert run_course.BINDER_LINE_MB == round(1.8e9 / 2**20, 1) == 1716.6


def test_disk_mb_counts_file_blocks_and_marks_absent_folders(run_course, tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "one.bin").write_bytes(b"x" * 2**20)  # 1 MiB of data: at least 1 MiB of blocks
    sizes = run_course.disk_mb({"a": tmp_path / "a", "gone": tmp_path / "missing"})
    assert 1.0 <= sizes["a"] < 1.1 and sizes["gone"] is None


def test_gpu_stack_counts_only_the_gpu_library_folders(run_course, tmp_path):
    for name, mib in (("nvidia", 2), ("triton", 1), ("numpy", 3)):  # numpy is not part of the GPU stack
        (tmp_path / name).mkdir()
        (tmp_path / name / "lib.so").write_bytes(b"x" * (mib * 2**20))
    assert 3.0 <= run_course.gpu_stack_mb(tmp_path) < 3.2
    assert run_course.gpu_stack_mb(tmp_path / "numpy") is None  # none of the folders: nothing to report


@pytest.mark.slow
def test_summary_carries_the_notes_the_notebooks_recorded(run_course, tmp_path, monkeypatch):
    (tmp_path / "01_x").mkdir()
    lesson = write_notebook(tmp_path / "01_x" / "01_note.ipynb", [
        "from labkit.repro import note",
        'note("9.1", 2, changed="nms iou 0.5", why="duplicates cost most", next="try 0.4")',
    ])
    monkeypatch.setenv("LABKIT_ARTIFACTS", str(tmp_path / "art"))
    monkeypatch.setattr(run_course, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(run_course, "lesson_notebooks", lambda root, chapters: [lesson])
    monkeypatch.setattr(run_course, "disk_mb", lambda paths: {name: None for name in paths})
    assert run_course.main(["--chapters", "01"]) == 0
    summary = json.loads((tmp_path / "art" / "course_summary.json").read_text())
    assert [(n["lesson"], n["section"], n["changed"], n["why"], n["next"]) for n in summary["notes"]] == \
        [("9.1", "2", "nms iou 0.5", "duplicates cost most", "try 0.4")]


def test_setup_times_are_read_per_step(run_course, tmp_path):
    path = tmp_path / "course_setup.tsv"
    path.write_text("install\t151\t1796820000\ndata\t0\t1796820001\nmodels\t1620\t1796821621\n")
    assert run_course.read_setup_times(path) == [
        {"step": "install", "seconds": 151, "finished_unix": 1796820000},
        {"step": "data", "seconds": 0, "finished_unix": 1796820001},
        {"step": "models", "seconds": 1620, "finished_unix": 1796821621}]


@pytest.mark.parametrize("line", ["install\t151", "install 151 1796820000", "\t5\t6", "data\tfive\t6", "data\t1\t2\t3"])
def test_a_bad_setup_line_names_the_file_and_line(run_course, tmp_path, line):
    path = tmp_path / "course_setup.tsv"
    path.write_text(f"install\t1\t2\n{line}\n")
    with pytest.raises(ValueError, match=rf"course_setup.tsv: line 2 is not"):
        run_course.read_setup_times(path)


def test_make_course_times_install_data_and_models_before_the_notebooks():
    import subprocess

    plan = subprocess.run(["make", "-n", "--no-print-directory", "course"], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.splitlines()
    timed = [line for line in plan if "course_setup.tsv" in line]
    assert [line.split("make --no-print-directory ")[1].split()[0] for line in timed[1:4]] == ["install", "data", "models"]
    assert timed[0].startswith("mkdir -p") and "rm -f" in timed[0]  # a stale file from an earlier run goes first
    assert timed[-1].endswith("scripts/run_course.py --setup-times ${LABKIT_ARTIFACTS:-artifacts}/course_setup.tsv")


def test_peak_rss_keeps_a_window_per_cell_beside_the_overall_peak(run_course):
    import time

    with run_course.PeakRSS(interval=0.05) as rss:
        rss.pid = os.getpid()
        time.sleep(0.3)
        baseline = rss.peak
        rss.start_window()
        block = bytearray(300 * 2**20)  # 300 MiB, touched so that it is resident
        block[::4096] = b"x" * len(block[::4096])
        time.sleep(0.3)
        big = rss.window
        del block
        rss.start_window()  # the block is freed: this window's samples lie below the last one's
        time.sleep(0.3)
        small = rss.window
    assert big - baseline > 250 * 2**20 and rss.peak >= big
    assert 0 < small < big - 200 * 2**20


def test_chapter_totals_count_ok_notebooks_sum_seconds_and_keep_the_highest_peak(run_course):
    rows = [{"path": "notebooks/05_robustness/01_a.ipynb", "status": "ok", "seconds": 30.25, "peak_rss_mb": 900.0},
            {"path": "autograder/lessons/05_robustness/02_b.ipynb", "status": "failed", "seconds": 90.5,
             "peak_rss_mb": 1900.4},
            {"path": "notebooks/06_capstone/01_c.ipynb", "status": "ok", "seconds": 60.0, "peak_rss_mb": 1200.6}]
    # a lesson source and a released notebook of one chapter folder count together (uneven groups: 2 and 1)
    assert run_course.chapter_totals(rows) == {
        "05_robustness": {"notebooks": 2, "ok": 1, "seconds": 120.75, "peak_rss_mb": 1900.4},
        "06_capstone": {"notebooks": 1, "ok": 1, "seconds": 60.0, "peak_rss_mb": 1200.6}}
    assert run_course.chapter_totals([]) == {}
