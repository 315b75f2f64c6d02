"""scripts/course_table.py records a chapter's measured run from its artifacts (refusing a run at
another budget or a pattern that selects nothing) and writes it into the README between its markers
only; every committed record is what its README shows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import load_script

table = load_script("course_table")
REPO = Path(__file__).resolve().parents[1]


def _row(lesson: str, budget: str | None = "full", **extra) -> dict:
    row = {"path": f"autograder/lessons/05_robustness/{lesson}.ipynb", "status": "ok", "seconds": 90.4,
           "peak_rss_mb": 1200.6, "machine": {"cpus": 2, "load_average": 3.5}, "git_commit": "abcdef1234567890",
           "finished_unix": 86400.0, **extra}
    if budget is not None:
        row["budget"] = budget
    return row


SUMMARY = {"notebooks": [_row("01_stress"), _row("02_shift", seconds=29.6, status="failed"),
                         {**_row("01_other"), "path": "autograder/lessons/04_tracking/01_other.ipynb"}]}
METRICS = {"l1_fog_s3_AP": 0.25, "l1_fog_s5_AP": 0.125, "l1_images": 48, "l2_clean_AP": None}


def test_record_keeps_the_chapter_rows_and_the_selected_keys():
    record = table.make_record(SUMMARY, METRICS, chapter="05_robustness", log="robustness", patterns=["l1_fog_*", "l2_*"])
    assert [r["lesson"] for r in record["notebooks"]] == ["01_stress", "02_shift"]  # not chapter 4's
    assert record["metrics"] == {"l1_fog_s3_AP": 0.25, "l1_fog_s5_AP": 0.125, "l2_clean_AP": None}
    assert record["metric_log"] == "artifacts/metrics/robustness.json" and record["budget"] == "full"


@pytest.mark.parametrize("budget", ["ci", None])
def test_record_refuses_a_notebook_run_at_another_budget(budget):
    summary = {"notebooks": [_row("01_stress"), _row("02_shift", budget=budget)]}
    why = "budget not recorded" if budget is None else "ci"
    with pytest.raises(ValueError, match=rf"not every notebook of 05_robustness ran at the full budget: 02_shift.ipynb \({why}\)"):
        table.make_record(summary, METRICS, chapter="05_robustness", log="robustness", patterns=["l1_*"])


def test_record_refuses_an_empty_chapter_and_a_pattern_that_selects_nothing():
    with pytest.raises(ValueError, match="no notebook of 06_capstone"):
        table.make_record(SUMMARY, METRICS, chapter="06_capstone", log="capstone", patterns=["*"])
    with pytest.raises(ValueError, match="pattern 'l9_[*]' selects no key of the metric log robustness"):
        table.make_record(SUMMARY, METRICS, chapter="05_robustness", log="robustness", patterns=["l9_*"])


def test_write_replaces_only_the_marked_block_and_check_reports(tmp_path):
    art = tmp_path / "art"
    (art / "metrics").mkdir(parents=True)
    (art / "course_summary.json").write_text(json.dumps(SUMMARY))
    (art / "metrics" / "robustness.json").write_text(json.dumps(METRICS))
    record = tmp_path / "record.json"
    assert table.main(["record", "--chapter", "05_robustness", "--log", "robustness", "--keys", "l1_*",
                       "--artifacts", str(art), "--out", str(record)]) == 0
    readme = tmp_path / "README.md"
    readme.write_text(f"# Ch5\n\nbefore\n{table.START}\nold 0.999\n{table.END}\nafter\n")
    assert table.main(["write", "--record", str(record), "--readme", str(readme), "--check"]) == 1
    assert table.main(["write", "--record", str(record), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# Ch5\n\nbefore\n") and text.endswith(f"{table.END}\nafter\n") and "0.999" not in text
    assert "| 01_stress | ok | 90 | 1201 | 2 | 3.5 |" in text and "| 02_shift | failed | 30 | 1201 | 2 | 3.5 |" in text
    assert "| `l1_fog_s3_AP` | 0.25 |" in text and "| `l1_images` | 48 |" in text
    flat = " ".join(text.split())
    assert "on 1970-01-02, commit abcdef123456; 2 notebooks, 2.0 min in all" in flat
    assert table.main(["write", "--record", str(record), "--readme", str(readme), "--check"]) == 0
    readme.write_text("no markers here\n")
    assert table.main(["write", "--record", str(record), "--readme", str(readme)]) == 1


@pytest.mark.parametrize("record", sorted((REPO / "benchmarks" / "results").glob("course_*.json")), ids=lambda p: p.stem)
def test_committed_readmes_show_their_committed_records(record):
    assert table.main(["write", "--record", str(record), "--check"]) == 0, f"run scripts/course_table.py write --record {record}"


def _course_summary(**extra) -> dict:
    rows = [_row("01_a", seconds=30.0, machine={"cpus": 2, "load_average": 1.0}),
            _row("02_b", seconds=90.0, peak_rss_mb=1900.4, machine={"cpus": 2, "load_average": 2.5}),
            {**_row("01_c", seconds=60.0, status="failed"), "path": "autograder/lessons/06_capstone/01_c.ipynb"}]
    return {"setup": [{"step": "install", "seconds": 120, "finished_unix": 1}, {"step": "data", "seconds": 6, "finished_unix": 2},
                      {"step": "models", "seconds": 54, "finished_unix": 3}],
            "notebooks": rows, "disk_mb": {".venv": 7472.4, "data": 44.0, ".venv GPU stack": None},
            # what scripts/run_course.py writes for these rows (its chapter_totals has its own test)
            "chapters": {"05_robustness": {"notebooks": 2, "ok": 2, "seconds": 120.0, "peak_rss_mb": 1900.4},
                         "06_capstone": {"notebooks": 1, "ok": 0, "seconds": 60.0, "peak_rss_mb": 1200.6}}, **extra}


def test_course_record_keeps_setup_and_chapters_and_renders_them():
    record = table.make_course_record(_course_summary())
    assert record["chapters"] == _course_summary()["chapters"]
    assert record["load_average"] == [1.0, 3.5] and record["cpus"] == 2
    text = table.render_course(record)
    flat = " ".join(text.split())
    # set-up 120 + 6 + 54 s = 3.0 min; notebooks 30 + 90 + 60 s = 3.0 min
    assert ("2 of 3 notebooks ok; 6.0 min in all: set-up 3.0 min, notebooks 3.0 min" in flat
            and "load average 1.0-3.5" in flat and "on 2 CPU cores" in flat)
    assert "| set-up: `make install` | 2.0 | |" in text and "| set-up: `make data` | 0.1 | |" in text
    assert "| 05_robustness (2/2 ok) | 2.0 | 1900 |" in text and "| 06_capstone (0/1 ok) | 1.0 | 1201 |" in text
    assert "Disk after the run (MiB): .venv 7472, data 44, .venv GPU stack n/a." in text


def test_course_record_refuses_a_run_without_setup_times_chapter_totals_or_at_another_budget():
    with pytest.raises(ValueError, match="no timed set-up steps"):
        table.make_course_record(_course_summary(setup=[]))
    for chapters in ({}, {"05_robustness": {"notebooks": 2, "seconds": 120.0, "peak_rss_mb": 1900.4}}):
        with pytest.raises(ValueError, match="no per-chapter totals with an 'ok' count"):
            table.make_course_record(_course_summary(chapters=chapters))
    summary = _course_summary()
    summary["notebooks"][1]["budget"] = "ci"
    with pytest.raises(ValueError, match="not every notebook ran at the full budget: 02_b.ipynb"):
        table.make_course_record(summary)


def test_write_course_fills_the_top_readme_block(tmp_path):
    (tmp_path / "course_summary.json").write_text(json.dumps(_course_summary()))
    record, readme = tmp_path / "make_course.json", tmp_path / "README.md"
    assert table.main(["record-course", "--artifacts", str(tmp_path), "--out", str(record)]) == 0
    readme.write_text(f"# Course\n{table.COURSE_START}\n{table.COURSE_END}\n")
    assert table.main(["write-course", "--record", str(record), "--readme", str(readme), "--check"]) == 1
    assert table.main(["write-course", "--record", str(record), "--readme", str(readme)]) == 0
    assert "| 06_capstone (0/1 ok) | 1.0 | 1201 |" in readme.read_text()
    assert table.main(["write-course", "--record", str(record), "--readme", str(readme), "--check"]) == 0


def test_the_committed_make_course_record_is_what_the_readme_shows():
    record = REPO / "benchmarks" / "results" / "make_course.json"
    assert record.is_file(), "record a fresh-clone `make course`: scripts/course_table.py record-course"
    assert table.main(["write-course", "--record", str(record), "--check"]) == 0, f"run scripts/course_table.py write-course --record {record}"


def test_a_section_block_replaces_between_markers_or_becomes_a_new_last_section():
    from labkit.course import with_section_block

    start, end = "<!-- x:start -->", "<!-- x:end -->"
    assert (with_section_block("# T\n\nintro\n\n", start, end, "new", "R.md", "Measured")
            == f"# T\n\nintro\n\n## Measured\n\n{start}\nnew\n{end}\n")
    text = f"# T\n{start}\nold\n{end}\ntail\n"
    assert with_section_block(text, start, end, "new", "R.md", "Measured") == f"# T\n{start}\nnew\n{end}\ntail\n"
    with pytest.raises(ValueError, match="R.md: needs exactly one"):  # one marker without the other
        with_section_block(f"# T\n{start}\n", start, end, "new", "R.md", "Measured")
