"""Quizzes graded only at grading time: canonical answers, the notebook's format check, answer keys,
every quiz agreeing with its key, and no naive strategy scoring more than 2 of 5."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from labkit.errors import DataError
from labkit.grading.quiz import canonical_answer, load_key, record_answer, same_answer

REPO = Path(__file__).resolve().parents[1]
KEYS = REPO / "autograder" / "keys"
OPTION = re.compile(r"^\* \*\*([a-d])\*\*\) (.+)$", re.M)


@pytest.mark.parametrize("a, b", [(" C ", "c"), ("Box  IoU", "box iou"), (["b", "A"], ("a", "B ")),
                                  (0.12341, 0.1234), (-0.0001, 0.0), (2, 2.0)])
def test_equivalent_answers_compare_equal(a, b):
    assert canonical_answer(a) == canonical_answer(b) and same_answer(a, b)


@pytest.mark.parametrize("a, b", [("c", "d"), (0.123, 0.124), (True, 1), ("1", 1), (["a"], ["a", "b"])])
def test_different_answers_compare_apart(a, b):
    assert not same_answer(a, b)


def test_malformed_answers_are_simply_wrong():
    assert not same_answer({"b": 1}, "b") and not same_answer(float("nan"), 1.0) and not same_answer(None, "a")
    with pytest.raises(ValueError):
        canonical_answer(float("inf"))


def test_record_answer_checks_the_format_only(capsys):
    record_answer("q1", " B ")
    assert "recorded" in capsys.readouterr().out
    for bad in (None, "e", 3, "ab"):
        with pytest.raises(AssertionError):
            record_answer("q1", bad)


@pytest.mark.parametrize("text, record", [("salt: s\n", "answers"), ("decimals: -1\nanswers: {q1: a}\n", "decimals"),
                                          ("answers: {q1: {x: 1}}\n", "answers.q1"), ("[1, 2]\n", None)])
def test_bad_answer_keys_name_file_and_record(tmp_path, text, record):
    path = tmp_path / "key.yaml"
    path.write_text(text)
    with pytest.raises(DataError) as exc:
        load_key(path)
    assert str(path) in str(exc.value) and (record is None or exc.value.record == record)


def _questions(lab: str) -> dict[str, dict[str, str]]:
    nb = nbformat.read(REPO / "autograder" / "source" / lab / f"{lab}.ipynb", as_version=4)
    out = {}
    for cell in nb.cells:
        match = re.search(r"Question (\d+)", cell.source) if cell.cell_type == "markdown" else None
        if match:
            out[f"q{match.group(1)}"] = dict(OPTION.findall(cell.source))
    return out


@pytest.mark.parametrize("key_path", sorted(KEYS.glob("*.yaml")), ids=lambda p: p.stem)
def test_quiz_matches_its_key_and_resists_naive_strategies(key_path):
    lab, key = key_path.stem, load_key(key_path)
    questions = _questions(lab)
    assert set(questions) == set(key.answers) and len(questions) == 5
    nb_text = (REPO / "autograder" / "source" / lab / f"{lab}.ipynb").read_text()
    for q, answer in key.answers.items():
        assert len(questions[q]) == 4 and answer in questions[q]
        assert re.search(rf'answer_{q} = \\"{answer}\\"', nb_text), f"{q}: the instructor's answer cell disagrees"
    longest = sum(max(o, key=lambda k: len(o[k])) == key.answers[q] for q, o in questions.items())
    shortest = sum(min(o, key=lambda k: len(o[k])) == key.answers[q] for q, o in questions.items())
    same_letter = max(sum(a == letter for a in key.answers.values()) for letter in "abcd")
    assert max(longest, shortest, same_letter) <= 2, (longest, shortest, same_letter)
    for q, options in questions.items():  # distractors of similar length: none over 1.4x the shortest
        lengths = [len(t) for t in options.values()]
        assert max(lengths) <= 1.4 * min(lengths), f"{lab} {q}: option lengths {lengths}"
