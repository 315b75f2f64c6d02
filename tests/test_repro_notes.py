"""The learner's per-section log: labkit.repro.note / read_notes, and its place in course_summary.json."""

from __future__ import annotations

import json

import pytest

from labkit.errors import DataError
from labkit.repro import NOTES_FILE, note, read_notes


def test_note_is_stored_and_read_back(tmp_path):
    entry = note("1.2", 4, changed="nearest for masks", why="ids are labels", next="try 0.25", root=tmp_path)
    assert entry["section"] == "4" and entry["changed"] == "nearest for masks"
    stored = json.loads((tmp_path / NOTES_FILE).read_text())
    assert [(e["lesson"], e["section"], e["why"], e["next"]) for e in stored] == [("1.2", "4", "ids are labels", "try 0.25")]
    assert read_notes(tmp_path) == stored


def test_same_section_replaces_other_sections_stay_in_order(tmp_path):
    note("1.4", 2, changed="a", why="b", next="c", root=tmp_path)
    note("1.1", 4, changed="first", why="b", next="c", root=tmp_path)
    note("1.1", 4, changed="  second  ", why="b", next="c", root=tmp_path)
    notes = read_notes(tmp_path)
    assert [(e["lesson"], e["section"], e["changed"]) for e in notes] == [("1.1", "4", "second"), ("1.4", "2", "a")]


@pytest.mark.parametrize("field", ["changed", "why", "next"])
@pytest.mark.parametrize("bad", [None, "", "   ", 3])
def test_empty_or_missing_text_is_refused_and_nothing_is_written(tmp_path, field, bad):
    fields = {"changed": "x", "why": "y", "next": "z", field: bad}
    with pytest.raises(DataError, match=f"'{field}' must be non-empty") as info:
        note("1.3", 7, **fields, root=tmp_path)
    assert "section 7" in str(info.value) and "1.3" in str(info.value)
    assert not (tmp_path / NOTES_FILE).exists()


def test_no_notes_is_an_empty_list(tmp_path):
    assert read_notes(tmp_path) == []


@pytest.mark.parametrize("content", ["{not json", json.dumps({"lesson": "1.1"}), json.dumps([{"why": "x"}])])
def test_damaged_notes_file_names_the_file(tmp_path, content):
    (tmp_path / NOTES_FILE).write_text(content)
    with pytest.raises(DataError, match=NOTES_FILE):
        read_notes(tmp_path)


def test_notes_default_to_the_artifacts_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_ARTIFACTS", str(tmp_path))
    note("1.1", 1, changed="a", why="b", next="c")
    assert [e["lesson"] for e in read_notes()] == ["1.1"] and (tmp_path / NOTES_FILE).is_file()
