"""scripts/tracking_table.py writes Chapter 4's measured tracking tables (the detectors on the embedded
val sequences, labkit against the peer trackers) from a benchmark record (never typed numbers) into the
chapter README and the top-level README, replaces only its own blocks, and refuses a record without
a section, naming the file."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from conftest import load_script

table = load_script("tracking_table")

DETECTORS = {"simulated (typical, seed 0)": {"detections": {"AP": 0.61, "AP50": 0.875},
                                             "per_sequence": {"seq05": {}, "seq06": {}},
                                             "combined": {"HOTA": 0.4, "MOTA": 0.3125, "IDF1": 0.5, "IDSW": 12}},
             "course base detector (detect-base)": {"detections": {"AP": 0.1, "AP50": None},
                                                    "per_sequence": {"seq05": {}, "seq06": {}},
                                                    "combined": {"HOTA": 0.25, "MOTA": -0.5, "IDF1": 0.125, "IDSW": 3}}}


def _row(hota: float, mota: float, idf1: float, idsw: int, fps: float, package: str, version: str) -> dict:
    return {"HOTA": hota, "MOTA": mota, "IDF1": idf1, "IDSW": idsw, "frames_per_second": fps,
            "package": package, "version": version}


RECORD = {
    "load_average": {"start": [1.5, 1.25, 1.0], "end": [2.0, 1.5, 1.0]}, "cpus": 2,
    "tud_campus": {"sequence": "Campus", "frames": 10, "detections": 20, "results": {
        table.LABKIT: _row(0.5, 0.25, 0.75, 2, 1000.4, "labkit", "0.1.0"),
        "peer A": _row(0.625, 0.5, 0.5, 1, 2000.6, "pa", "1.2"),
        "peer B": {"error": "not installed (no module named b)"}}},
    "tud_stadtmitte_simulated": {"sequence": "Stadtmitte", "frames": 30, "detections": 40, "results": {
        table.LABKIT: _row(0.75, 0.5, 0.875, 0, 500.0, "labkit", "0.1.0"),
        "peer A": _row(0.5, 0.625, 0.25, 7, 250.0, "pa", "1.2")}},
    "embedded_val": {"by_detector": DETECTORS},
    "reid": {"weights": "w.pt", "ms_per_crop": 1.5, "val_crops": 10, "histogram_ms_per_crop": 0.02},
    "manifest": {"created_unix": 0.0, "config": {"repeats": 5}},
}


def _bench(tmp_path: Path, record: dict) -> Path:
    path = tmp_path / "bench_tracking.json"
    path.write_text(json.dumps(record))
    return path


def _readmes(tmp_path: Path) -> tuple[Path, Path]:
    chapter, top = tmp_path / "chapter.md", tmp_path / "top.md"
    chapter.write_text(f"# Title\n\nbefore\n{table.START}\nold text 0.999\n{table.END}\nmiddle\n"
                       f"{table.PEERS_START}\nold 0.998\n{table.PEERS_END}\nafter\n")
    top.write_text(f"# Top\n{table.PEERS_START}\n{table.PEERS_END}\nend\n")
    return chapter, top


def _args(bench: Path, chapter: Path, top: Path, *more: str) -> list[str]:
    return ["--bench", str(bench), "--readme", str(chapter), "--top-readme", str(top), *more]


def test_writes_both_tables_between_the_markers_only(tmp_path):
    chapter, top = _readmes(tmp_path)
    bench = _bench(tmp_path, RECORD)
    assert table.main(_args(bench, chapter, top)) == 0
    text = chapter.read_text()
    assert text.startswith("# Title\n\nbefore\n") and text.endswith(f"{table.PEERS_END}\nafter\n")
    assert "0.999" not in text and "0.998" not in text and "\nmiddle\n" in text
    assert "| simulated (typical, seed 0) | 0.875 | 0.610 | 0.400 | 0.312 | 0.500 | 12 |" in text
    assert "| course base detector (detect-base) | n/a | 0.100 | 0.250 | -0.500 | 0.125 | 3 |" in text
    assert "1970-01-01" in text and "seq05, seq06" in " ".join(text.split())
    peers = top.read_text()
    assert peers.startswith("# Top\n") and peers.endswith(f"{table.PEERS_END}\nend\n")
    block = peers.split(table.PEERS_START)[1].split(table.PEERS_END)[0]
    assert block in text  # the same block in both READMEs
    for line in ("| labkit default (motion-only) | labkit 0.1.0 | 0.500 | 0.250 | 0.750 | 2 | 1000 |",
                 "| peer A | pa 1.2 | 0.625 | 0.500 | 0.500 | 1 | 2001 |",
                 "| peer B | not installed (no module named b) | | | | | |",
                 "| labkit default (motion-only) | labkit 0.1.0 | 0.750 | 0.500 | 0.875 | 0 | 500 |",
                 "| peer A | pa 1.2 | 0.500 | 0.625 | 0.250 | 7 | 250 |"):
        assert line in block.splitlines()
    flat = " ".join(block.split())
    for sentence in ("bench_tracking.json`, load average 1.50 / 1.25 / 1.00 (1 / 5 / 15 min) "
                     "at its start on 2 CPUs)", "best of 5 runs",
                     "Campus, 10 frames, 20 detections (`tud_campus`):",
                     "Highest HOTA: peer A, 0.625; labkit's default is not the highest. labkit's motion-only update "
                     "loop: 1000 frames/s, slower than the fastest peer, peer A, at 2001 frames/s.",
                     "Highest HOTA: labkit default (motion-only), 0.750; labkit's default is the highest. labkit's "
                     "motion-only update loop: 500 frames/s, at least as fast as the fastest peer, peer A, "
                     "at 250 frames/s.",
                     "The course ReID (`w.pt`) costs 1.50 ms per crop (10 val crops, best of 3; the colour histogram "
                     "0.020 ms)."):
        assert sentence in flat, sentence
    assert table.main(_args(bench, chapter, top, "--check")) == 0


def test_check_fails_when_either_readme_is_out_of_date(tmp_path, capsys):
    chapter, top = _readmes(tmp_path)
    bench = _bench(tmp_path, RECORD)
    assert table.main(_args(bench, chapter, top)) == 0
    top.write_text(top.read_text().replace("| 2001 |", "| 2002 |"))
    assert table.main(_args(bench, chapter, top, "--check")) == 1
    out = capsys.readouterr().out
    assert f"{top}: out of date" in out and f"{chapter}: current" in out


def test_refuses_a_record_without_a_section_naming_the_file(tmp_path, capsys):
    chapter, top = _readmes(tmp_path)
    for key, said in (("tud_campus", "tud_campus.results"), ("reid", "reid.ms_per_crop")):
        record = copy.deepcopy(RECORD)
        del record[key]
        assert table.main(_args(_bench(tmp_path, record), chapter, top)) == 1
        err = capsys.readouterr().err
        assert "bench_tracking.json" in err and said in err
    record = copy.deepcopy(RECORD)
    record["embedded_val"] = {"skipped": "embedded dataset not generated"}
    assert table.main(_args(_bench(tmp_path, record), chapter, top)) == 1
    assert "bench_tracking.json: nothing to write: embedded dataset not generated" in capsys.readouterr().err
    record = copy.deepcopy(RECORD)
    del record["tud_campus"]["frames"]
    assert table.main(_args(_bench(tmp_path, record), chapter, top)) == 1
    assert "bench_tracking.json: not a benchmarks/tracking.py record" in capsys.readouterr().err
    assert chapter.read_text().count("old text 0.999") == 1  # nothing written on a refusal
    top.write_text("no markers here\n")
    assert table.main(_args(_bench(tmp_path, RECORD), chapter, top)) == 1
    assert f"{top}: needs exactly one" in capsys.readouterr().err
    assert table.main(_args(tmp_path / "absent.json", chapter, top)) == 1


def test_the_readme_tables_are_the_committed_run():
    """Both READMEs' figures are exactly those of the committed benchmark record, not typed."""
    assert table.RECORD.is_file()
    assert table.main(["--check"]) == 0
