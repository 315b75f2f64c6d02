"""Graded quizzes whose answers exist only on the instructor's side.

Policy: a quiz question is worth one point and is checked **only at grading time**, in the
grader's process, against the instructor's key (``autograder/keys/<lab_id>.yaml``, never released).
The student copy holds no answer, no hash and nothing else to test a guess against, so a guess
cannot be confirmed offline; the notebook's check cell only confirms the answer is well formed
(:func:`record_answer`). The grader reads ``answer_qN`` from the student's kernel as plain data
(:func:`labkit.grading.labspec.quiz_items`) and its feedback says "correct" or "not the expected
answer", never the answer itself.

Answers are compared in a canonical form:

* text: lower-cased, surrounding whitespace stripped and inner runs of whitespace collapsed
  (``" B "`` and ``"b"`` are the same answer);
* a number (``bool`` excluded): rounded to ``decimals`` places (3 by default) -- the tolerance;
* a ``bool``: ``true`` / ``false``;
* a set, list or tuple of texts (a multi-select question): each text normalised, order ignored.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from labkit.errors import DataError

DEFAULT_DECIMALS = 3
LETTERS = ("a", "b", "c", "d")


def _text(value: str) -> str:
    return " ".join(value.lower().split())


def canonical_answer(answer: Any, *, decimals: int = DEFAULT_DECIMALS) -> str:
    """The canonical form compared (see the module docstring); ``TypeError`` for other types."""
    if isinstance(answer, bool):
        return f"bool:{str(answer).lower()}"
    if isinstance(answer, numbers.Real):
        value = float(answer)
        if not math.isfinite(value):
            raise ValueError(f"a numeric answer must be finite, got {value}")
        return f"num:{round(value, decimals) + 0.0:.{decimals}f}"  # + 0.0 turns -0.0 into 0.0
    if isinstance(answer, str):
        return f"text:{_text(answer)}"
    if isinstance(answer, (set, frozenset, list, tuple)) and all(isinstance(a, str) for a in answer):
        return "set:" + "|".join(sorted({_text(a) for a in answer}))
    raise TypeError(f"an answer must be text, a number, a bool or a set of texts, got {type(answer).__name__}")


def same_answer(given: Any, expected: Any, *, decimals: int = DEFAULT_DECIMALS) -> bool:
    """Whether ``given`` equals ``expected`` in canonical form; ``False`` for a malformed ``given``."""
    try:
        return canonical_answer(given, decimals=decimals) == canonical_answer(expected, decimals=decimals)
    except (TypeError, ValueError):
        return False


def record_answer(question_id: str, answer: Any, choices: tuple[str, ...] = LETTERS) -> None:
    """The notebook's check cell: confirm ``answer`` is one of ``choices`` (it is graded later)."""
    if answer is None:
        raise AssertionError(f"{question_id}: no answer yet")
    if not isinstance(answer, str) or _text(answer) not in choices:
        raise AssertionError(f"{question_id}: answer with one letter, one of {', '.join(choices)}")
    print(f"{question_id}: answer recorded; it is checked when the lab is graded")


@dataclass(frozen=True)
class QuizKey:
    """An instructor answer key: ``answers`` (question id -> answer) and ``decimals``."""

    answers: Mapping[str, Any] = field(default_factory=dict)
    decimals: int = DEFAULT_DECIMALS


def load_key(path: str | Path) -> QuizKey:
    """Read an answer key (YAML: ``answers`` mapping, optional ``decimals``)."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(f"cannot read the answer key: {exc}", source=str(path)) from None
    if not isinstance(raw, dict):
        raise DataError("an answer key is a mapping with 'answers'", source=str(path))
    answers, decimals = raw.get("answers"), raw.get("decimals", DEFAULT_DECIMALS)
    if not isinstance(answers, dict) or not answers:
        raise DataError("'answers' must map question ids to answers", source=str(path), record="answers")
    if not isinstance(decimals, int) or isinstance(decimals, bool) or not 0 <= decimals <= 12:
        raise DataError(f"'decimals' must be an integer in [0, 12], got {decimals!r}", source=str(path),
                        record="decimals")
    for question, answer in answers.items():
        try:
            canonical_answer(answer, decimals=decimals)
        except (TypeError, ValueError) as exc:
            raise DataError(str(exc), source=str(path), record=f"answers.{question}") from None
    return QuizKey({str(q): a for q, a in answers.items()}, decimals)
