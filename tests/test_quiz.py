"""Hashed quizzes: canonical answers, salted hashes, the Quiz helper, answer keys, and the Chapter 1
quiz notebook agreeing with its key."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import nbformat
import pytest

from labkit.errors import DataError
from labkit.grading.quiz import Quiz, QuizKey, canonical_answer, check, hash_answer, load_key, quiz_cell_source

REPO = Path(__file__).resolve().parents[1]
KEY = REPO / "autograder" / "keys" / "ch01_quiz.yaml"
SOURCE = REPO / "autograder" / "source" / "ch01_quiz" / "ch01_quiz.ipynb"


@pytest.mark.parametrize("a, b", [(" C ", "c"), ("Box  IoU", "box iou"), (["b", "A"], ("a", "B ")),
                                  (0.12341, 0.1234), (-0.0001, 0.0), (2, 2.0)])
def test_equivalent_answers_hash_alike(a, b):
    assert hash_answer("q", a, "s") == hash_answer("q", b, "s")


@pytest.mark.parametrize("a, b", [("c", "d"), (0.123, 0.124), (True, 1), ("1", 1), (["a"], ["a", "b"])])
def test_different_answers_hash_apart(a, b):
    assert hash_answer("q", a, "s") != hash_answer("q", b, "s")


def test_salt_and_question_change_the_hash():
    base = hash_answer("q1", "b", "salt")
    assert len({base, hash_answer("q2", "b", "salt"), hash_answer("q1", "b", "pepper")}) == 3
    assert re.fullmatch(r"[0-9a-f]{64}", base)


def test_tolerance_follows_decimals():
    assert hash_answer("q", 3.14159, "s", decimals=2) == hash_answer("q", 3.1402, "s", decimals=2)
    assert hash_answer("q", 3.14159, "s", decimals=4) != hash_answer("q", 3.1402, "s", decimals=4)


def test_check():
    expected = hash_answer("q1", "b", "s")
    assert check("q1", " B", expected, "s") and check("q1", "b", expected.upper(), "s")
    assert not check("q1", "c", expected, "s") and not check("q1", None, expected, "s")
    with pytest.raises(TypeError):
        check("q1", {"b": 1}, expected, "s")
    with pytest.raises(ValueError):
        canonical_answer(float("nan"))


def test_quiz_assert_correct(capsys):
    quiz = QuizKey("s", {"q1": "b", "q2": 0.5}).quiz()
    quiz.assert_correct("q1", "B")
    quiz.assert_correct("q2", 0.5001)
    assert capsys.readouterr().out == "q1: correct\nq2: correct\n"
    with pytest.raises(AssertionError, match=r"q1: 'c' is not the expected answer"):
        quiz.assert_correct("q1", "c")
    with pytest.raises(AssertionError, match="no answer"):
        quiz.assert_correct("q1", None)
    with pytest.raises(AssertionError, match="must be text"):
        quiz.assert_correct("q1", object())
    with pytest.raises(KeyError):
        quiz.assert_correct("q9", "a")


@pytest.mark.parametrize("text, record", [("answers: {q1: a}\n", "salt"), ("salt: s\n", "answers"),
                                          ("salt: s\ndecimals: -1\nanswers: {q1: a}\n", "decimals"),
                                          ("salt: s\nanswers: {q1: {x: 1}}\n", "answers.q1"), ("[1, 2]\n", None)])
def test_bad_answer_keys_name_file_and_record(tmp_path, text, record):
    path = tmp_path / "key.yaml"
    path.write_text(text)
    with pytest.raises(DataError) as exc:
        load_key(path)
    assert str(path) in str(exc.value) and (record is None or exc.value.record == record)


def test_chapter1_quiz_matches_its_key():
    key = load_key(KEY)
    nb = nbformat.read(SOURCE, as_version=4)
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    assert cells["quiz_setup"].source == quiz_cell_source(key)
    solutions = {m.group(1): m.group(2) for c in nb.cells for m in re.finditer(r'answer_(q\d+) = "(\w)"', c.source)}
    assert solutions == key.answers and len(solutions) == 5
    points = [c.metadata.nbgrader["points"] for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert points == [1] * 5


def test_quiz_cell_builds_the_quiz():
    key = QuizKey("s", {"q1": "a", "q2": 1.25}, decimals=2)
    namespace: dict = {}
    exec(quiz_cell_source(key), namespace)  # noqa: S102 - our own generated code
    assert namespace["quiz"] == Quiz("s", key.hashes(), 2)
    assert "'a'" not in quiz_cell_source(key)


def test_quiz_key_command(capsys):
    from labkit.grading import cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["quiz-key", str(KEY), "--json"])
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out)["hashes"] == load_key(KEY).hashes()
