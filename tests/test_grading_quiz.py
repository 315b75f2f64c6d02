"""labkit.grading.quiz without the course folders (test_quiz.py needs autograder/): the canonical forms
written out by hand, the notebook's format check word for word, and answer keys naming the file and
the record at fault."""

from __future__ import annotations

import pytest

from labkit.errors import DataError
from labkit.grading import quiz
from labkit.grading.quiz import QuizKey, canonical_answer, load_key, record_answer, same_answer


def test_defaults():
    assert quiz.DEFAULT_DECIMALS == 3 and quiz.LETTERS == ("a", "b", "c", "d")
    assert QuizKey() == QuizKey({}, 3)


@pytest.mark.parametrize("answer, form", [
    (True, "bool:true"), (False, "bool:false"),
    (0.12349, "num:0.123"), (0.12351, "num:0.124"), (2, "num:2.000"), (-0.0001, "num:0.000"),
    ("  Box \t IoU\n", "text:box iou"), ("", "text:"),
    (["b", " A ", "a"], "set:a|b"), (("x  y",), "set:x y"), ({"B"}, "set:b"), (frozenset(), "set:"), ([], "set:"),
])
def test_canonical_forms_by_hand(answer, form):
    assert canonical_answer(answer) == form


def test_decimals_set_the_tolerance():
    assert canonical_answer(1.23456, decimals=1) == "num:1.2"
    assert canonical_answer(1.23456, decimals=0) == "num:1"
    assert canonical_answer(7, decimals=5) == "num:7.00000"
    assert same_answer(0.1234, 0.1236, decimals=2) and not same_answer(0.1234, 0.1236, decimals=3)
    assert same_answer(0.1234, 0.1236, decimals=2) is True and same_answer("a", "b") is False


@pytest.mark.parametrize("value, shown", [(float("nan"), "nan"), (float("inf"), "inf"), (float("-inf"), "-inf")])
def test_a_numeric_answer_must_be_finite(value, shown):
    with pytest.raises(ValueError) as exc:
        canonical_answer(value)
    assert str(exc.value) == f"a numeric answer must be finite, got {shown}"


@pytest.mark.parametrize("answer, kind", [(None, "NoneType"), ({"a": 1}, "dict"), (["a", 1], "list"), (b"a", "bytes")])
def test_other_types_are_refused_by_name(answer, kind):
    with pytest.raises(TypeError) as exc:
        canonical_answer(answer)
    assert str(exc.value) == f"an answer must be text, a number, a bool or a set of texts, got {kind}"


def test_a_malformed_given_answer_is_wrong_not_an_error():
    assert same_answer(None, "a") is False and same_answer(float("nan"), 1.0) is False
    assert same_answer("a", None) is False  # a malformed expected answer too


def test_record_answer_messages(capsys):
    record_answer("q3", " B ")
    assert capsys.readouterr().out == "q3: answer recorded; it is checked when the lab is graded\n"
    with pytest.raises(AssertionError) as exc:
        record_answer("q3", None)
    assert str(exc.value) == "q3: no answer yet"
    for bad in ("e", 3, "a b"):
        with pytest.raises(AssertionError) as exc:
            record_answer("q3", bad)
        assert str(exc.value) == "q3: answer with one letter, one of a, b, c, d"
    record_answer("q4", "Yes", choices=("yes", "no"))
    assert capsys.readouterr().out.startswith("q4: answer recorded")
    with pytest.raises(AssertionError) as exc:
        record_answer("q4", "a", choices=("yes", "no"))
    assert str(exc.value) == "q4: answer with one letter, one of yes, no"


def _key(tmp_path, text: str):
    path = tmp_path / "key.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_key_is_read_with_its_decimals(tmp_path):
    key = load_key(_key(tmp_path, "answers: {q1: B, 2: 0.5, q3: [a, c]}\n"))
    assert key == QuizKey({"q1": "B", "2": 0.5, "q3": ["a", "c"]}, 3)
    assert all(isinstance(q, str) for q in key.answers)
    assert load_key(_key(tmp_path, "decimals: 0\nanswers: {q1: 1}\n")).decimals == 0
    assert load_key(_key(tmp_path, "decimals: 12\nanswers: {q1: 1}\n")).decimals == 12
    assert load_key(str(_key(tmp_path, "answers: {q1: a}\n"))).answers == {"q1": "a"}  # a str path too


def test_a_key_in_utf8(tmp_path):
    path = tmp_path / "key.yaml"
    path.write_bytes("answers: {q1: \"bo\u00eete\"}\n".encode("utf-8"))
    assert load_key(path).answers == {"q1": "bo\u00eete"}


@pytest.mark.parametrize("text, record, message", [
    ("- 1\n- 2\n", None, "an answer key is a mapping with 'answers'"),
    ("decimals: 2\n", "answers", "'answers' must map question ids to answers"),
    ("answers: {}\n", "answers", "'answers' must map question ids to answers"),
    ("answers: [a, b]\n", "answers", "'answers' must map question ids to answers"),
    ("decimals: 13\nanswers: {q1: a}\n", "decimals", "'decimals' must be an integer in [0, 12], got 13"),
    ("decimals: -1\nanswers: {q1: a}\n", "decimals", "'decimals' must be an integer in [0, 12], got -1"),
    ("decimals: true\nanswers: {q1: a}\n", "decimals", "'decimals' must be an integer in [0, 12], got True"),
    ("decimals: 2.0\nanswers: {q1: a}\n", "decimals", "'decimals' must be an integer in [0, 12], got 2.0"),
    ("answers: {q1: a, q2: .nan}\n", "answers.q2", "a numeric answer must be finite, got nan"),
    ("answers: {q1: {x: 1}}\n", "answers.q1",
     "an answer must be text, a number, a bool or a set of texts, got dict"),
])
def test_bad_keys_name_the_file_and_the_record(tmp_path, text, record, message):
    path = _key(tmp_path, text)
    with pytest.raises(DataError) as exc:
        load_key(path)
    assert exc.value.source == str(path) and exc.value.record == record
    where = f"{path}: record {record}: " if record else f"{path}: "
    assert str(exc.value) == where + message


def test_unreadable_keys(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(DataError) as exc:
        load_key(missing)
    assert exc.value.source == str(missing) and exc.value.record is None
    assert str(exc.value).startswith(f"{missing}: cannot read the answer key: ") and "nope.yaml" in str(exc.value)
    broken = _key(tmp_path, "answers: {q1: [\n")
    with pytest.raises(DataError, match="cannot read the answer key: ") as exc:
        load_key(broken)
    assert exc.value.source == str(broken)


def test_a_key_is_utf8_whatever_the_graders_locale(tmp_path):
    """A grader started in the plain C locale (no UTF-8 coercion) still reads an accented key."""
    import os
    import subprocess
    import sys

    path = tmp_path / "key.yaml"
    path.write_bytes("answers: {q1: \"bo\u00eete\"}\n".encode("utf-8"))
    assert load_key(path).answers == {"q1": "bo\u00eete"}  # here (mutmut runs a test only for what it calls here)
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0",
           "PYTHONIOENCODING": "utf-8", "PYTHONPATH": os.pathsep.join(sys.path)}
    code = ("import locale, sys; from labkit.grading.quiz import load_key; "
            "print(locale.getpreferredencoding(False)); print(ascii(load_key(sys.argv[1]).answers))")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    encoding, answers = done.stdout.splitlines()
    assert encoding != "UTF-8" and answers == "{'q1': 'bo\\xeete'}"
