"""scripts/tracking_table.py writes the Chapter 4 README's detector table from a measured benchmark
file (never typed numbers), replaces only its own block, and refuses a file without the section."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import load_script

table = load_script("tracking_table")


def _bench(tmp_path: Path, by_detector: dict | None) -> Path:
    section = {"by_detector": by_detector} if by_detector is not None else {"skipped": "embedded dataset not generated"}
    path = tmp_path / "bench_tracking.json"
    path.write_text(json.dumps({"embedded_val": section, "manifest": {"created_unix": 0.0}}))
    return path


ROWS = {"simulated (typical, seed 0)": {"detections": {"AP": 0.61, "AP50": 0.875},
                                        "per_sequence": {"seq05": {}, "seq06": {}},
                                        "combined": {"HOTA": 0.4, "MOTA": 0.3125, "IDF1": 0.5, "IDSW": 12}},
        "course base detector (detect-base)": {"detections": {"AP": 0.1, "AP50": None},
                                               "per_sequence": {"seq05": {}, "seq06": {}},
                                               "combined": {"HOTA": 0.25, "MOTA": -0.5, "IDF1": 0.125, "IDSW": 3}}}


def test_writes_the_table_between_the_markers_only(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n{table.START}\nold text 0.999\n{table.END}\nafter\n")
    assert table.main(["--bench", str(_bench(tmp_path, ROWS)), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n") and text.endswith(f"{table.END}\nafter\n") and "0.999" not in text
    assert "| simulated (typical, seed 0) | 0.875 | 0.610 | 0.400 | 0.312 | 0.500 | 12 |" in text
    assert "| course base detector (detect-base) | n/a | 0.100 | 0.250 | -0.500 | 0.125 | 3 |" in text
    assert "1970-01-01" in text and "seq05, seq06" in " ".join(text.split())
    assert table.main(["--bench", str(_bench(tmp_path, ROWS)), "--readme", str(readme), "--check"]) == 0


def test_check_reports_an_out_of_date_readme(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"{table.START}\n{table.END}\n")
    assert table.main(["--bench", str(_bench(tmp_path, ROWS)), "--readme", str(readme), "--check"]) == 1
    assert "out of date" in capsys.readouterr().out


def test_refuses_a_skipped_section_or_missing_markers(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"{table.START}\n{table.END}\n")
    assert table.main(["--bench", str(_bench(tmp_path, None)), "--readme", str(readme)]) == 1
    assert "embedded dataset not generated" in capsys.readouterr().err
    readme.write_text("no markers here\n")
    assert table.main(["--bench", str(_bench(tmp_path, ROWS)), "--readme", str(readme)]) == 1
    assert "needs exactly one" in capsys.readouterr().err
    assert table.main(["--bench", str(tmp_path / "absent.json"), "--readme", str(readme)]) == 1


def test_the_chapter_readme_table_is_the_committed_run():
    """The README's figures are exactly those of the committed benchmark record, not typed."""
    bench = table.REPO / "benchmarks" / "results" / "bench_tracking_embedded_val.json"
    assert table.main(["--bench", str(bench), "--check"]) == 0
